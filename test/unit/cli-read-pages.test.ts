/**
 * The CLI's paged reads (scripts/cli/api-client.ts readPages): an empty page with a token is read
 * past — the API bounds each request's reads, so a sparse filter can answer an empty page with
 * matches behind it — and --all follows every token.
 */
import { describe, expect, it } from 'vitest';
import { readPages, type ApiClient } from '../../scripts/cli/api-client.ts';

/** An API whose pages are `pages`, each token naming the next page's index. */
function pagedApi(pages: { items: string[] }[]) {
  const asked: (string | undefined)[] = [];
  const api = {
    request: async (_method: string, _path: string, options: { query?: Record<string, string | undefined> }) => {
      const token = options.query?.next_token;
      asked.push(token);
      const at = token === undefined ? 0 : Number(token);
      const page = pages[at] as { items: string[] };
      return { items: page.items, count: page.items.length, next_token: at + 1 < pages.length ? String(at + 1) : null };
    },
  } as unknown as ApiClient;
  return { api, asked };
}

describe('readPages', () => {
  it('reads past empty pages to the first with items, and says so each time', async () => {
    const { api, asked } = pagedApi([{ items: [] }, { items: [] }, { items: ['a', 'b'] }, { items: ['c'] }]);
    const empty: number[] = [];
    const read = await readPages<string>(api, '/exceptions', { team: 'far' }, { onEmpty: (n) => empty.push(n) });
    expect(read).toEqual({ items: ['a', 'b'], next: '3', truncated: false });
    expect(asked).toEqual([undefined, '1', '2']);
    expect(empty).toEqual([1, 2]);
  });

  it('stops at one page with items, at the end, and follows every page with all', async () => {
    expect(await readPages<string>(pagedApi([{ items: ['a'] }, { items: ['b'] }]).api, '/x', {}, {})).toEqual({
      items: ['a'],
      next: '1',
      truncated: false,
    });
    expect(await readPages<string>(pagedApi([{ items: [] }, { items: [] }]).api, '/x', {}, {})).toEqual({
      items: [],
      next: null,
      truncated: false,
    });
    const all = await readPages<string>(
      pagedApi([{ items: ['a'] }, { items: [] }, { items: ['c'] }]).api,
      '/x',
      {},
      {
        all: true,
      },
    );
    expect(all).toEqual({ items: ['a', 'c'], next: null, truncated: false });
  });

  it('passes on a sorted page that left matches out (sort=due past DUE_SORT_CAP)', async () => {
    const api = {
      request: async () => ({ items: ['a'], count: 1, next_token: null, truncated: true }),
    } as unknown as ApiClient;
    expect(await readPages<string>(api, '/exceptions', { sort: 'due' }, {})).toEqual({
      items: ['a'],
      next: null,
      truncated: true,
    });
  });
});

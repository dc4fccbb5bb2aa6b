/**
 * Before its first writer creates it, an index reads as empty: triage retrieves no passages
 * (and still answers), search returns no hits — never a 500 on index_not_found (issue 9, defect 4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@opensearch-project/opensearch';
import { OpenSearchVectorIndex } from '../../functions/shared/search/opensearch-index.ts';
import { startFakeOpenSearch } from '../support/fake-opensearch.ts';

let fake: Awaited<ReturnType<typeof startFakeOpenSearch>>;
let index: OpenSearchVectorIndex;

beforeAll(async () => {
  fake = await startFakeOpenSearch();
  index = new OpenSearchVectorIndex({
    client: new Client({ node: fake.url }),
    index: 'tally-policies',
    dimensions: 4,
    keywordFields: ['document'],
    lookupAttempts: 1,
  });
});
afterAll(() => fake?.stop());

describe('an index that does not exist yet', () => {
  it('has no search hits, counts zero, deletes nothing and ignores field updates', async () => {
    expect(await index.search([1, 0, 0, 0], 4)).toEqual([]);
    expect(await index.count()).toBe(0);
    expect(await index.deleteWhere('document', 'recon-policy.md')).toBe(0);
    await expect(index.updateFields('x', { status: 'RESOLVED' })).resolves.toBeUndefined();
    expect(
      fake.requests.every((r) => r.method !== 'PUT'),
      'readers never create the index',
    ).toBe(true);
  });

  it('other errors still fail', async () => {
    const broken = new OpenSearchVectorIndex({
      client: new Client({ node: 'http://127.0.0.1:1' }),
      index: 'tally-policies',
      dimensions: 4,
      keywordFields: [],
    });

    await expect(broken.search([1, 0, 0, 0], 4)).rejects.toThrow();
  });
});

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeToken, encodeToken, filterHash } from '../../functions/query-api/pagination.ts';
import { listExceptions, planQuery } from '../../functions/query-api/listing.ts';
import { checkHealth } from '../../functions/query-api/health.ts';
import { ApiError, BadRequestError } from '../../functions/query-api/errors.ts';
import type { QueryStore } from '../../functions/query-api/ports.ts';
import {
  compareKeys,
  readShardedPage,
  type IndexPage,
  type IndexQuery,
  type StoredItem,
} from '../../functions/shared/tables/index-query.ts';
import {
  exceptionIndexKeys,
  exceptionShard,
  shardedValues,
} from '../../functions/shared/tables/exceptions-index-keys.ts';
import { EXCEPTION_INDEX_SHARDS, TABLES } from '../../functions/shared/resources.ts';
import type { ListFilters } from '../../functions/query-api/schemas.ts';

const SECRET = 'unit-secret';

describe('pagination tokens', () => {
  it('round-trips the index and start key', () => {
    const cursor = {
      index: 'by_run_sharded',
      startKey: { exception_id: 'e1', gsi_run: 'r1#03', gsi_sort: '2025-01-01T00:00:00Z#e1' },
    };
    const hash = filterHash({ run_id: 'r1' });

    const token = encodeToken(SECRET, cursor, hash);

    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(decodeToken(SECRET, token, hash)).toEqual(cursor);
  });

  it('hashes filters regardless of order and ignores absent ones', () => {
    expect(filterHash({ status: 'OPEN', dataset: 'x' })).toBe(
      filterHash({ dataset: 'x', status: 'OPEN', run_id: undefined }),
    );
    expect(filterHash({ status: 'OPEN' })).not.toBe(filterHash({ status: 'ACKNOWLEDGED' }));
    expect(filterHash({ status: 'OPEN' })).not.toBe(filterHash({ severity: 'OPEN' }));
  });

  it('rejects tokens from another secret or another filter set', () => {
    const token = encodeToken(SECRET, { index: 'by_created_sharded', startKey: {} }, filterHash({}));

    expect(() => decodeToken('other', token, filterHash({}))).toThrow(
      expect.objectContaining({ code: 'INVALID_NEXT_TOKEN' }),
    );
    expect(() => decodeToken(SECRET, token, filterHash({ status: 'OPEN' }))).toThrow(
      expect.objectContaining({ code: 'NEXT_TOKEN_FILTER_MISMATCH' }),
    );
  });

  it('answers any junk with a 400, never an internal error', () => {
    const hash = filterHash({});
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), (junk) => {
        try {
          decodeToken(SECRET, junk, hash);
          return false;
        } catch (error) {
          return error instanceof BadRequestError;
        }
      }),
    );
  });

  it('detects any single-character change to a valid token', () => {
    const hash = filterHash({ run_id: 'r' });
    const token = encodeToken(
      SECRET,
      { index: 'by_run_sharded', startKey: { exception_id: 'a', gsi_run: 'r#00', gsi_sort: 'c#a' } },
      hash,
    );
    fc.assert(
      fc.property(fc.nat({ max: token.length - 1 }), fc.constantFrom(...'ABCabc012_-.'), (at, ch) => {
        const changed = token.slice(0, at) + ch + token.slice(at + 1);
        if (changed === token) return true;
        try {
          decodeToken(SECRET, changed, hash);
          // base64url's last character can carry unused bits: a change there may decode to the same bytes.
          return at === token.length - 1 || at === token.indexOf('.') - 1;
        } catch (error) {
          return error instanceof ApiError && error.statusCode === 400;
        }
      }),
    );
  });
});

describe('query planning', () => {
  it.each([
    [{}, 'by_created_sharded', 'record_type', []],
    [{ status: 'OPEN' }, 'by_status_sharded', 'status', []],
    [{ status: 'OPEN', exception_type: 'AMOUNT_MISMATCH' }, 'by_type_sharded', 'exception_type', ['status']],
    [
      { status: 'OPEN', severity: 'HIGH', exception_type: 'AMOUNT_MISMATCH' },
      'by_severity_sharded',
      'severity',
      ['exception_type', 'status'],
    ],
    [{ dataset: 'trades' }, 'by_created_sharded', 'record_type', ['dataset']],
    [
      { dataset: 'trades', business_date: '2025-12-10', status: 'OPEN' },
      'by_dataset_date_sharded',
      'dataset_date',
      ['status'],
    ],
    [
      { run_id: 'r', dataset: 'trades', business_date: '2025-12-10' },
      'by_run_sharded',
      'run_id',
      ['business_date', 'dataset'],
    ],
    // An analyst's queue before everything, a team's after the small partitions.
    [{ assignee: 'ana', run_id: 'r', team: 'ops' }, 'by_assignee_sharded', 'assignee', ['run_id', 'team']],
    [{ team: 'ops', status: 'OPEN', severity: 'HIGH' }, 'by_team_sharded', 'team', ['severity', 'status']],
    [{ team: 'ops', run_id: 'r' }, 'by_run_sharded', 'run_id', ['team']],
  ] as const)('serves %j from %s', (filters, index, partition, rest) => {
    const plan = planQuery(filters);

    expect(plan.index).toBe(index);
    expect(plan.partition.attribute).toBe(partition);
    expect(plan.filters.map((f) => f.attribute)).toEqual(rest);
  });

  it('keys the dataset-date index the way recon writes it', () => {
    expect(planQuery({ dataset: 'trades', business_date: '2025-12-10' }).partition.value).toBe('trades#2025-12-10');
    expect(planQuery({}).partition.value).toBe('EXCEPTION');
  });
});

/**
 * The exceptions table's sharded GSIs in memory. One Query call on one shard behaves like
 * DynamoDB's with a FilterExpression: Limit applies before the filter, at most `pageCap` items
 * are evaluated (DynamoDB's 1 MB page), and a LastEvaluatedKey comes back whenever a call stopped
 * at its limit, even with nothing after it. The store merges the shards as the DynamoDB adapter
 * does (readShardedPage).
 */
function fakeStore(items: StoredItem[], pageCap = 3) {
  const calls: IndexQuery[] = [];
  const shardCalls: IndexQuery[] = [];
  const stored = items.map((i) => ({ ...i, ...exceptionIndexKeys(i) }));
  const sortOf = (i: StoredItem) => String(i.gsi_sort);
  /** How many entries each wholeExceptions call was asked for. */
  const wholeAsked: number[] = [];
  const byId = new Map<unknown, StoredItem>(stored.map((i) => [i.exception_id, i]));
  // An index entry is marked as one: only wholeExceptions turns it back into the stored item.
  const entries = async (q: IndexQuery): Promise<IndexPage> => {
    calls.push(q);
    const def = TABLES.exceptions.indexes[q.index as keyof typeof TABLES.exceptions.indexes];
    const page = await readShardedPage(
      q,
      { attribute: def.partitionKey.name, values: shardedValues(q.partition.value), sortAttribute: 'gsi_sort' },
      queryOne,
    );
    return { ...page, items: page.items.map((i) => ({ ...i, index_entry: true })) };
  };
  const whole = async (asked: readonly StoredItem[]): Promise<StoredItem[]> =>
    asked.flatMap((e): StoredItem[] => {
      const found = byId.get(e.exception_id);
      return found ? [found] : [];
    });
  const queryOne = async (q: IndexQuery): Promise<IndexPage> => {
    shardCalls.push(q);
    const after = stored
      .filter((i) => i[q.partition.attribute] === q.partition.value)
      .filter((i) => q.startKey === undefined || compareKeys(sortOf(i), String(q.startKey.gsi_sort)) < 0)
      .sort((a, b) => compareKeys(sortOf(b), sortOf(a)));
    const cap = Math.min(q.limit, pageCap);
    const evaluated = after.slice(0, cap);
    const last = evaluated.at(-1);
    return {
      items: evaluated.filter((i) => q.filters.every((f) => i[f.attribute] === f.value)),
      ...(evaluated.length === cap && last
        ? {
            lastKey: {
              exception_id: last.exception_id,
              [q.partition.attribute]: last[q.partition.attribute],
              gsi_sort: last.gsi_sort,
            },
          }
        : {}),
    };
  };
  const store: QueryStore = {
    getException: async () => undefined,
    patchException: async () => undefined,
    getRun: async () => undefined,
    queryRuns: async () => ({ items: [] }),
    queryFiles: async () => ({ items: [] }),
    currentFiles: async () => [],
    listPatterns: async () => [],
    getPattern: async () => undefined,
    queryExceptions: async (q) => {
      const page = await entries(q);
      return { ...page, items: await whole(page.items) };
    },
    queryExceptionEntries: (q) => entries(q),
    soonestDue: async () => [],
    wholeExceptions: async (asked) => {
      wholeAsked.push(asked.length);
      return whole(asked);
    },
  };
  return { store, calls, shardCalls, wholeAsked };
}

/** Item n is the n-th newest. */
const item = (n: number, dataset: string): StoredItem => ({
  exception_id: `e${String(n).padStart(3, '0')}`,
  record_type: 'EXCEPTION',
  dataset,
  created_at: new Date(Date.UTC(2025, 0, 1) - n * 1000).toISOString(),
});

describe('listing', () => {
  it('keeps querying through short filtered pages until the page is full', async () => {
    const items = Array.from({ length: 40 }, (_, n) => item(n, n % 4 === 0 ? 'payments' : 'trades'));
    const { store, calls } = fakeStore(items, 1);
    const deps = { store, paginationSecret: SECRET };
    const seen: string[] = [];

    let token: string | undefined;
    const counts: number[] = [];
    do {
      const page = await listExceptions({ filters: { dataset: 'payments' }, limit: 4, nextToken: token }, deps);
      counts.push(page.count);
      seen.push(...page.items.map((i) => String(i.exception_id)));
      token = page.next_token ?? undefined;
    } while (token);

    expect(counts).toEqual([4, 4, 2]);
    expect(seen).toEqual(items.filter((i) => i.dataset === 'payments').map((i) => i.exception_id));
    expect(calls.length).toBeGreaterThan(3);
    expect(calls.every((c) => c.index === 'by_created_sharded' && c.filters[0]?.attribute === 'dataset')).toBe(true);
  });

  it('returns a short page with a next_token rather than reading without end', async () => {
    const items = Array.from({ length: 200 }, (_, n) => item(n, n === 199 ? 'payments' : 'trades'));
    const { store, calls } = fakeStore(items, 1);

    const page = await listExceptions(
      { filters: { dataset: 'payments' }, limit: 5 },
      { store, paginationSecret: SECRET },
    );

    expect(page.count).toBe(0);
    expect(page.next_token).not.toBeNull();
    expect(calls).toHaveLength(25);
  });

  it('reads whole only the items a page returns, not every entry the shards gave', async () => {
    const items = Array.from({ length: 60 }, (_, n) => item(n, n % 2 === 0 ? 'payments' : 'trades'));
    const { store, calls, wholeAsked } = fakeStore(items, 1000);
    const deps = { store, paginationSecret: SECRET };

    const unfiltered = await listExceptions({ filters: {}, limit: 5 }, deps);
    const filtered = await listExceptions({ filters: { dataset: 'payments' }, limit: 5 }, deps);
    const byDue = await listExceptions({ filters: { dataset: 'payments' }, limit: 3, sort: 'due' }, deps);

    // Each read gave the page more entries than it keeps (16 shards, 13-60 entries a read)...
    expect(calls.length).toBeGreaterThanOrEqual(3);
    // ...and only the kept ones were read whole, once a page.
    expect(wholeAsked).toEqual([5, 5, 3]);
    for (const page of [unfiltered, filtered, byDue])
      for (const returned of page.items) expect(returned).not.toHaveProperty('index_entry');
    expect(unfiltered.items.map((i) => i.exception_id)).toEqual(items.slice(0, 5).map((i) => i.exception_id));
    expect(filtered.items.map((i) => i.exception_id)).toEqual(
      items
        .filter((i) => i.dataset === 'payments')
        .slice(0, 5)
        .map((i) => i.exception_id),
    );
  });
});

/** Exception-like items with few distinct created_at values (recon stamps a whole run with one). */
const generatedItems = fc
  .array(
    fc.record({
      second: fc.integer({ min: 0, max: 4 }),
      run_id: fc.constantFrom('run-1', 'run-2', 'run-3'),
      status: fc.constantFrom('OPEN', 'ACKNOWLEDGED', 'RESOLVED'),
      exception_type: fc.constantFrom('AMOUNT_MISMATCH', 'MISSING_IN_TARGET'),
      dataset: fc.constantFrom('trades', 'payments'),
      severity: fc.option(fc.constantFrom('LOW', 'HIGH'), { nil: undefined }),
    }),
    { maxLength: 150 },
  )
  .map((rows) =>
    rows.map((r, i): StoredItem => ({
      // Ids in an order unrelated to creation, as hashes are.
      exception_id: createHash('md5').update(String(i)).digest('hex'),
      run_id: r.run_id,
      status: r.status,
      exception_type: r.exception_type,
      dataset: r.dataset,
      business_date: '2025-12-10',
      dataset_date: `${r.dataset}#2025-12-10`,
      record_type: 'EXCEPTION',
      ...(r.severity ? { severity: r.severity } : {}),
      created_at: `2025-12-10T08:00:0${r.second}.000Z`,
    })),
  );

const generatedFilters = fc
  .record({
    status: fc.option(fc.constantFrom('OPEN', 'ACKNOWLEDGED', 'RESOLVED'), { nil: undefined }),
    exception_type: fc.option(fc.constantFrom('AMOUNT_MISMATCH', 'MISSING_IN_TARGET'), { nil: undefined }),
    run_id: fc.option(fc.constantFrom('run-1', 'run-2', 'run-3'), { nil: undefined }),
    dataset: fc.option(fc.constantFrom('trades', 'payments'), { nil: undefined }),
    severity: fc.option(fc.constantFrom('LOW', 'HIGH'), { nil: undefined }),
    withDate: fc.boolean(),
  })
  .map(({ withDate, ...f }) => ({
    ...f,
    ...(withDate && f.dataset ? { business_date: '2025-12-10' } : {}),
  })) as fc.Arbitrary<ListFilters>;

/** One unsharded index, newest first, ties by exception_id (descending): what every listing must equal. */
function referenceOrder(items: StoredItem[], filters: ListFilters): string[] {
  return items
    .filter((i) => Object.entries(filters).every(([k, v]) => v === undefined || i[k] === v))
    .sort((a, b) =>
      a.created_at === b.created_at
        ? compareKeys(String(b.exception_id), String(a.exception_id))
        : compareKeys(String(b.created_at), String(a.created_at)),
    )
    .map((i) => String(i.exception_id));
}

async function listAll(store: QueryStore, filters: ListFilters, limit: number) {
  const pages: string[][] = [];
  const tokens: (string | null)[] = [];
  let token: string | undefined;
  do {
    const page = await listExceptions({ filters, limit, nextToken: token }, { store, paginationSecret: SECRET });
    pages.push(page.items.map((i) => String(i.exception_id)));
    tokens.push(page.next_token);
    token = page.next_token ?? undefined;
  } while (token);
  return { pages, tokens };
}

describe('sharded listing against an unsharded reference', () => {
  it('pages exactly as one index sorted by created_at, then exception_id: same items, same full pages', async () => {
    await fc.assert(
      fc.asyncProperty(
        generatedItems,
        generatedFilters,
        fc.integer({ min: 1, max: 30 }),
        async (items, filters, limit) => {
          const { store } = fakeStore(items, 1000);
          const expected = referenceOrder(items, filters);

          const { pages } = await listAll(store, filters, limit);

          expect(pages.flat()).toEqual(expected);
          // Every page full but the last; no empty last page unless nothing matches at all.
          const sizes = pages.map((p) => p.length);
          const full = Array.from({ length: Math.ceil(expected.length / limit) }, (_, i) =>
            Math.min(limit, expected.length - i * limit),
          );
          expect(sizes).toEqual(full.length > 0 ? full : [0]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('loses and repeats nothing when DynamoDB pages are tiny (short pages, each with a next_token)', async () => {
    await fc.assert(
      fc.asyncProperty(
        generatedItems,
        generatedFilters,
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        async (items, filters, limit, pageCap) => {
          const { store } = fakeStore(items, pageCap);

          const { pages } = await listAll(store, filters, limit);

          expect(pages.flat()).toEqual(referenceOrder(items, filters));
          expect(pages.every((p) => p.length <= limit)).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('reads every matching item exactly once when the order does not matter (counting)', async () => {
    await fc.assert(
      fc.asyncProperty(
        generatedItems,
        generatedFilters,
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        async (items, filters, limit, pageCap) => {
          const { store } = fakeStore(items, pageCap);
          const plan = planQuery(filters);
          const seen: string[] = [];
          let startKey: Record<string, unknown> | undefined;
          do {
            const page = await store.queryExceptions({
              ...plan,
              limit,
              order: 'any',
              ...(startKey ? { startKey } : {}),
            });
            seen.push(...page.items.map((i) => String(i.exception_id)));
            startKey = page.lastKey;
          } while (startKey);

          expect(seen.sort()).toEqual(referenceOrder(items, filters).sort());
        },
      ),
      { numRuns: 100 },
    );
  });

  it('merges in DynamoDB key order (UTF-8 bytes), not UTF-16 order', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(compareKeys(a, b)).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      }),
    );
    expect(compareKeys('\u{1F600}', '\uFFFF')).toBe(1);
  });

  it('spreads a run over every shard, an exception staying in its shard in every index', () => {
    const ids = Array.from({ length: 1600 }, (_, i) => createHash('md5').update(String(i)).digest('hex'));
    const perShard = new Map<number, number>();
    for (const id of ids) perShard.set(exceptionShard(id), (perShard.get(exceptionShard(id)) ?? 0) + 1);

    expect(perShard.size).toBe(EXCEPTION_INDEX_SHARDS);
    // 100 expected per shard: a stable hash spreads within a few standard deviations (10).
    expect(Math.min(...perShard.values())).toBeGreaterThan(60);
    expect(Math.max(...perShard.values())).toBeLessThan(140);
    const keys = exceptionIndexKeys({
      exception_id: 'abc',
      created_at: '2025-12-10T08:00:00.000Z',
      status: 'OPEN',
      run_id: 'run-1',
      exception_type: 'AMOUNT_MISMATCH',
      dataset_date: 'trades#2025-12-10',
      record_type: 'EXCEPTION',
    });
    const suffixes = new Set(Object.entries(keys).flatMap(([k, v]) => (k === 'gsi_sort' ? [] : [v.slice(-3)])));
    expect(suffixes).toEqual(new Set([`#${String(exceptionShard('abc')).padStart(2, '0')}`]));
    expect(keys).not.toHaveProperty('gsi_severity');
    expect(keys.gsi_sort).toBe('2025-12-10T08:00:00.000Z#abc');
  });
});

describe('health', () => {
  it('counts a check that hangs as a timeout', async () => {
    const report = await checkHealth(
      [
        { name: 'fast', check: async () => undefined },
        { name: 'slow', check: () => new Promise(() => undefined) },
      ],
      undefined,
      20,
    );

    expect(report).toEqual({ status: 'unavailable', checks: { fast: 'ok', slow: 'timeout' } });
  });
});

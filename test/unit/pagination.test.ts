import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeToken, encodeToken, filterHash } from '../../functions/query-api/pagination.ts';
import { listExceptions, planQuery } from '../../functions/query-api/listing.ts';
import { checkHealth } from '../../functions/query-api/health.ts';
import { ApiError, BadRequestError } from '../../functions/query-api/errors.ts';
import type { QueryStore } from '../../functions/query-api/ports.ts';
import type { IndexQuery, StoredItem } from '../../functions/shared/tables/index-query.ts';

const SECRET = 'unit-secret';

describe('pagination tokens', () => {
  it('round-trips the index and start key', () => {
    const cursor = {
      index: 'by_run',
      startKey: { exception_id: 'e1', run_id: 'r1', created_at: '2025-01-01T00:00:00Z' },
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
    const token = encodeToken(SECRET, { index: 'by_created', startKey: {} }, filterHash({}));

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
      { index: 'by_run', startKey: { exception_id: 'a', run_id: 'r', created_at: 'c' } },
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
    [{}, 'by_created', 'record_type', []],
    [{ status: 'OPEN' }, 'by_status', 'status', []],
    [{ status: 'OPEN', exception_type: 'AMOUNT_MISMATCH' }, 'by_type', 'exception_type', ['status']],
    [
      { status: 'OPEN', severity: 'HIGH', exception_type: 'AMOUNT_MISMATCH' },
      'by_severity',
      'severity',
      ['exception_type', 'status'],
    ],
    [{ dataset: 'trades' }, 'by_created', 'record_type', ['dataset']],
    [{ dataset: 'trades', business_date: '2025-12-10', status: 'OPEN' }, 'by_dataset_date', 'dataset_date', ['status']],
    [{ run_id: 'r', dataset: 'trades', business_date: '2025-12-10' }, 'by_run', 'run_id', ['business_date', 'dataset']],
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
 * An in-memory GSI that, like DynamoDB with a FilterExpression, applies Limit before the filter
 * and stops after `pageCap` evaluated items (DynamoDB's 1 MB page), so pages come back short.
 */
function fakeStore(items: StoredItem[], pageCap = 3) {
  const calls: IndexQuery[] = [];
  const sorted = [...items].sort((a, b) =>
    String(b.created_at) < String(a.created_at)
      ? -1
      : String(b.created_at) > String(a.created_at)
        ? 1
        : String(a.exception_id) < String(b.exception_id)
          ? -1
          : 1,
  );
  const store: QueryStore = {
    getException: async () => undefined,
    patchException: async () => undefined,
    getRun: async () => undefined,
    queryRuns: async () => ({ items: [] }),
    queryFiles: async () => ({ items: [] }),
    currentFiles: async () => [],
    queryExceptions: async (q) => {
      calls.push(q);
      const inPartition = sorted.filter((i) => i[q.partition.attribute] === q.partition.value);
      const start = q.startKey ? inPartition.findIndex((i) => i.exception_id === q.startKey?.exception_id) + 1 : 0;
      const evaluated = inPartition.slice(start, start + Math.min(q.limit, pageCap));
      const matching = evaluated.filter((i) => q.filters.every((f) => i[f.attribute] === f.value));
      const more = start + evaluated.length < inPartition.length;
      const last = evaluated.at(-1);
      return {
        items: matching,
        ...(more && last
          ? {
              lastKey: {
                exception_id: last.exception_id,
                [q.partition.attribute]: last[q.partition.attribute],
                created_at: last.created_at,
              },
            }
          : {}),
      };
    },
  };
  return { store, calls };
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
    const { store, calls } = fakeStore(items);
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
    expect(calls.every((c) => c.index === 'by_created' && c.filters[0]?.attribute === 'dataset')).toBe(true);
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

/**
 * GET /exception-counts: the dashboard's charts count every matching exception in one call,
 * past the 1,600 the page-by-page count used to stop at, through the real handler on dynalite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import { countExceptions } from '../../functions/query-api/counts.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { putExceptions, recordingWholeReads, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';
import { EXCEPTION_INDEX_SHARDS } from '../../functions/shared/resources.ts';

let dynamo: TestDynamo;
/** More than the old chart cap (1,600): 1,500 missing in target, 200 amount mismatches. */
const MISSING = 1500;
const MISMATCHED = 200;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const items = Array.from({ length: MISSING + MISMATCHED }, (_, i) => {
    const at = new Date(Date.UTC(2025, 11, 10, 8) + i).toISOString();
    const mismatch = i >= MISSING;
    return {
      exception_id: i.toString(16).padStart(32, '0'),
      run_id: 'run-1',
      dataset: 'trades',
      business_date: '2025-12-10',
      dataset_date: 'trades#2025-12-10',
      exception_type: mismatch ? 'AMOUNT_MISMATCH' : 'MISSING_IN_TARGET',
      policy_severity: 'MEDIUM',
      // Triage has set a severity on every fourth exception.
      ...(i % 4 === 0 ? { severity: 'HIGH' } : {}),
      status: i % 2 === 0 ? 'OPEN' : 'ACKNOWLEDGED',
      record_type: 'EXCEPTION',
      created_at: at,
      updated_at: at,
      version: 1,
    };
  });
  await putExceptions(dynamo, items);
}, 120_000);
afterAll(async () => {
  await dynamo.stop();
});

/** Items read whole by the last get(): counting reads index entries, whole items only without a severity. */
let readWhole = 0;

function get(query: Record<string, string>) {
  const { store, reads } = recordingWholeReads(dynamo);
  const deps = {
    store,
    paginationSecret: 's',
    corsOrigins: ['*'],
    localIdentity: 'me',
    now: Date.now,
    healthChecks: [],
  } as unknown as QueryApiDeps;
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/exception-counts',
    rawQueryString: new URLSearchParams(query).toString(),
    headers: {},
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      http: { method: 'GET', path: '/exception-counts', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
      requestId: 'req',
    },
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  return createHandler(() => deps)(event, lambdaContext).then((r) => {
    readWhole = reads.reduce((n, read) => n + read.ids.length, 0);
    const res = r as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  });
}

describe('GET /exception-counts', () => {
  it('counts every matching exception by type and severity, past 1,600', async () => {
    const res = await get({});

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      total: MISSING + MISMATCHED,
      by_type: { MISSING_IN_TARGET: MISSING, AMOUNT_MISMATCH: MISMATCHED },
      by_severity: { HIGH: (MISSING + MISMATCHED) / 4, MEDIUM: ((MISSING + MISMATCHED) * 3) / 4 },
      complete: true,
    });
  });

  it('applies the listing filters', async () => {
    const open = await get({ status: 'OPEN', dataset: 'trades', business_date: '2025-12-10' });
    const mismatches = await get({ exception_type: 'AMOUNT_MISMATCH', run_id: 'run-1' });

    expect(open.body.total).toBe((MISSING + MISMATCHED) / 2);
    expect(mismatches.body).toMatchObject({ total: MISMATCHED, by_type: { AMOUNT_MISMATCH: MISMATCHED } });
  });

  it('counts from the index entries, reading whole only the items whose entry has no severity', async () => {
    const all = await get({});
    expect(all.body.total).toBe(MISSING + MISMATCHED);
    // Three in four have no severity (only policy_severity, which the indexes do not carry).
    expect(readWhole).toBe(((MISSING + MISMATCHED) * 3) / 4);

    // The partition fixes what its entries leave out: by_severity_sharded's severity...
    const high = await get({ severity: 'HIGH' });
    expect(high.body).toMatchObject({
      total: (MISSING + MISMATCHED) / 4,
      by_severity: { HIGH: (MISSING + MISMATCHED) / 4 },
    });
    expect(readWhole).toBe(0);
    // ...and by_type_sharded's exception_type.
    const mismatches = await get({ exception_type: 'AMOUNT_MISMATCH' });
    expect(mismatches.body).toMatchObject({ total: MISMATCHED, by_type: { AMOUNT_MISMATCH: MISMATCHED } });
    expect(mismatches.body.by_severity).toEqual({ HIGH: MISMATCHED / 4, MEDIUM: (MISMATCHED * 3) / 4 });
  });

  it('rejects what the listing rejects', async () => {
    const res = await get({ business_date: '2025-12-10' });

    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/business_date needs dataset/);
  });

  it('stops at its time budget and says the counts are a lower bound', async () => {
    let clock = 0;
    const store = {
      queryExceptionEntries: async () => {
        clock += 15_000;
        return { items: [{ exception_type: 'MISSING_IN_TARGET', severity: 'LOW' }], lastKey: { k: 1 } };
      },
    } as unknown as QueryApiDeps['store'];

    const counts = await countExceptions({}, { store, now: () => clock });

    expect(counts).toEqual({
      total: 2,
      by_type: { MISSING_IN_TARGET: 2 },
      by_severity: { LOW: 2 },
      complete: false,
    });
  });

  it('asks every shard for 1,000 entries a round, not 1,000 split among the shards', async () => {
    const limits: number[] = [];
    const store = {
      queryExceptionEntries: async (query: { limit: number }) => {
        limits.push(query.limit);
        return { items: [] };
      },
    } as unknown as QueryApiDeps['store'];

    await countExceptions({}, { store, now: () => 0 });

    // 100k exceptions took 100 rounds of 16 calls at 63 entries a shard; now 7.
    expect(limits).toEqual([1000 * EXCEPTION_INDEX_SHARDS]);
  });
});

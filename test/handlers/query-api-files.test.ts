/**
 * GET /files (the intake view: every side's current file, accepted or rejected with its reason,
 * from GSIs only) and the latest uploads a run carries, through the real handler on dynalite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import { planFilesQuery } from '../../functions/query-api/files.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { ApiFile, ApiRun } from '../../functions/shared/api-types.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import type { FileRecord } from '../../functions/shared/tables/files.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

let dynamo: TestDynamo;

function file(
  dataset: string,
  date: string,
  side: 'source' | 'target',
  n: number,
  outcome: Pick<FileRecord, 'status' | 'error'> = { status: 'ACCEPTED' },
  uploaded = true,
): FileRecord {
  return {
    bucket: 'tally-data',
    key: `incoming/${dataset}/${date}/${side}.csv`,
    etag: `${side[0]}${n}`,
    dataset,
    business_date: date,
    side,
    sequencer: String(n).padStart(16, '0'),
    size: 100,
    rows: outcome.status === 'ACCEPTED' ? 20 : 0,
    ...outcome,
    ...(uploaded ? { uploaded_at: `2026-01-0${n}T07:59:00.000Z` } : {}),
    ingested_at: `2026-01-0${n}T08:00:00.000Z`,
    generation: 1,
  };
}

const REJECTED_TARGET = {
  status: 'REJECTED',
  error: {
    code: 'MISSING_COLUMNS',
    message: 'missing required column(s) amount (the header looks semicolon-delimited)',
    line: 1,
  },
} as const;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const files = new DynamoFileStore(dynamo.doc, dynamo.names.tables.files);
  const runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  // Written the way ingest writes them: through the FileStore (which adds the index attributes).
  await files.putIfNewer(file('trades', '2025-12-10', 'source', 1));
  await files.putIfNewer(file('trades', '2025-12-10', 'target', 2));
  await runs.request({
    run_id: 'run-1',
    dataset: 'trades',
    business_date: '2025-12-10',
    source: { bucket: 'tally-data', key: 'incoming/trades/2025-12-10/source.csv', etag: 's1' },
    target: { bucket: 'tally-data', key: 'incoming/trades/2025-12-10/target.csv', etag: 't2' },
    status: 'COMPLETED',
    requested_at: '2026-01-02T08:00:01.000Z',
    requested_by: 'ingest-2',
  });
  await files.putIfNewer(
    file('payments', '2025-12-10', 'source', 3, {
      status: 'REJECTED',
      error: { code: 'EMPTY_FILE', message: 'source.csv: file has a header but no data rows' },
    }),
  );
  // The target of trades/2025-12-10 replaced by a bad file: the run above is now behind it.
  await files.putIfNewer(file('trades', '2025-12-10', 'target', 4, REJECTED_TARGET));
  // A record from before uploaded_at was kept.
  await files.putIfNewer(file('trades', '2025-12-11', 'source', 5, { status: 'ACCEPTED' }, false));
});
afterAll(async () => {
  await dynamo.stop();
});

function httpEvent(path: string, query: Record<string, string>): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: {},
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '0',
      apiId: 'api',
      domainName: 'x',
      domainPrefix: 'x',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
      requestId: 'req',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
  };
}

function setup() {
  const deps = {
    store: queryStoreOf(dynamo),
    queues: { depths: async () => [] },
    paginationSecret: 'test-secret',
    corsOrigins: ['*'],
    localIdentity: 'me',
    now: () => 0,
    healthChecks: [],
  } as unknown as QueryApiDeps;
  const handler = createHandler(() => deps);
  return async (path: string, query: Record<string, string> = {}) => {
    const res = (await handler(httpEvent(path, query), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
}

const ids = (items: ApiFile[]) => items.map((f) => `${f.dataset}/${f.business_date}/${f.side}`);

describe('GET /files', () => {
  it('lists every current file newest ingest first, the rejected ones with their reason', async () => {
    const res = await setup()('/files');

    expect(res.status).toBe(200);
    expect(ids(res.body.items)).toEqual([
      'trades/2025-12-11/source',
      'trades/2025-12-10/target',
      'payments/2025-12-10/source',
      'trades/2025-12-10/source',
    ]);
    expect(res.body.items[1]).toEqual({
      dataset: 'trades',
      business_date: '2025-12-10',
      side: 'target',
      key: 'incoming/trades/2025-12-10/target.csv',
      etag: 't4',
      size: 100,
      rows: 0,
      ...REJECTED_TARGET,
      uploaded_at: '2026-01-04T07:59:00.000Z',
      ingested_at: '2026-01-04T08:00:00.000Z',
    });
    expect(res.body.items[0]).toMatchObject({ status: 'ACCEPTED', rows: 20, uploaded_at: null });
    expect(res.body).toMatchObject({ count: 4, next_token: null });
  });

  it('narrows to a dataset, a business date (across datasets), both, or a status', async () => {
    const get = setup();

    const dataset = await get('/files', { dataset: 'trades' });
    const date = await get('/files', { business_date: '2025-12-10' });
    const day = await get('/files', { dataset: 'trades', business_date: '2025-12-10' });
    const rejected = await get('/files', { status: 'REJECTED' });
    const rejectedDay = await get('/files', { dataset: 'trades', business_date: '2025-12-10', status: 'REJECTED' });

    expect(ids(dataset.body.items)).toEqual([
      'trades/2025-12-11/source',
      'trades/2025-12-10/target',
      'trades/2025-12-10/source',
    ]);
    expect(ids(date.body.items)).toEqual([
      'trades/2025-12-10/target',
      'payments/2025-12-10/source',
      'trades/2025-12-10/source',
    ]);
    expect(ids(day.body.items)).toEqual(['trades/2025-12-10/target', 'trades/2025-12-10/source']);
    expect(ids(rejected.body.items)).toEqual(['trades/2025-12-10/target', 'payments/2025-12-10/source']);
    expect(rejected.body.items[1].error).toEqual({
      code: 'EMPTY_FILE',
      message: 'source.csv: file has a header but no data rows',
    });
    expect(ids(rejectedDay.body.items)).toEqual(['trades/2025-12-10/target']);
  });

  it('pages with a signed next_token that only works for the same filters', async () => {
    const get = setup();

    const first = await get('/files', { limit: '3' });
    const second = await get('/files', { limit: '3', next_token: first.body.next_token });
    const mismatched = await get('/files', { limit: '3', status: 'ACCEPTED', next_token: first.body.next_token });

    expect(first.body.count).toBe(3);
    expect(ids(second.body.items)).toEqual(['trades/2025-12-10/source']);
    expect(second.body.next_token).toBeNull();
    expect(mismatched.status).toBe(400);
    expect(mismatched.body.error.code).toBe('NEXT_TOKEN_FILTER_MISMATCH');
  });

  it.each([
    [{ status: 'FAILED' }, /status: must be one of ACCEPTED, REJECTED/],
    [{ limit: '101' }, /limit: must be an integer from 1 to 100/],
    [{ business_date: '2025-13-45' }, /business_date: must be a calendar date/],
    [{ dataset: 'a/b' }, /dataset/],
    [{ side: 'source' }, /unknown query parameter "side"/],
  ])('rejects %j with a 400 saying what is allowed', async (query, message) => {
    const res = await setup()('/files', query as Record<string, string>);

    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it('is served by a key query on a GSI, never a Scan', () => {
    expect(planFilesQuery({})).toEqual({
      index: 'by_ingested',
      partition: { attribute: 'record_type', value: 'FILE' },
      filters: [],
    });
    expect(planFilesQuery({ dataset: 'trades', status: 'REJECTED' })).toEqual({
      index: 'by_dataset',
      partition: { attribute: 'dataset', value: 'trades' },
      filters: [{ attribute: 'status', value: 'REJECTED' }],
    });
    expect(planFilesQuery({ dataset: 'trades', business_date: '2025-12-10' })).toEqual({
      index: 'by_business_date',
      partition: { attribute: 'business_date', value: '2025-12-10' },
      filters: [{ attribute: 'dataset', value: 'trades' }],
    });
  });
});

describe('a run and the latest upload of each side', () => {
  it('GET /runs/{id} says the latest target upload was rejected and the run reconciles the previous one', async () => {
    const res = await setup()('/runs/run-1');

    expect(res.status).toBe(200);
    const run = res.body as ApiRun;
    expect(run.latest_uploads.source).toMatchObject({ status: 'ACCEPTED', etag: 's1', in_run: true });
    expect(run.latest_uploads.target).toEqual({
      key: 'incoming/trades/2025-12-10/target.csv',
      etag: 't4',
      size: 100,
      rows: 0,
      ...REJECTED_TARGET,
      uploaded_at: '2026-01-04T07:59:00.000Z',
      ingested_at: '2026-01-04T08:00:00.000Z',
      in_run: false,
    });
  });

  it('GET /runs carries the same on every run', async () => {
    const res = await setup()('/runs', { dataset: 'trades', business_date: '2025-12-10' });

    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0].latest_uploads.target).toMatchObject({ status: 'REJECTED', in_run: false });
  });
});

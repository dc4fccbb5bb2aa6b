import { afterEach, describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import { queryApiConfig } from '../../functions/query-api/config.ts';
import { S3UploadSigner } from '../../functions/query-api/s3.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { createAwsClients } from '../../functions/shared/adapters/clients.ts';
import { ConfigError } from '../../functions/shared/config.ts';
import type { VectorHit, VectorIndex } from '../../functions/shared/search/ports.ts';
import { lambdaContext } from '../support/events.ts';
import { readFileSync } from 'node:fs';
import { parseReconPolicy } from '../../functions/shared/policy.ts';

const NOW = Date.parse('2026-01-05T10:00:00.000Z');

afterEach(() => {
  vi.unstubAllEnvs();
});

function httpEvent(
  method: string,
  path: string,
  options: { query?: Record<string, string>; body?: unknown } = {},
): APIGatewayProxyEventV2 {
  const query = options.query ?? {};
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json' },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '0',
      apiId: 'api',
      domainName: 'api',
      domainPrefix: 'api',
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: NOW,
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    isBase64Encoded: false,
  };
}

const hit = (id: string, score: number, fields: Record<string, string> = {}): VectorHit => ({
  id,
  score,
  text: `text of ${id}`,
  fields: {
    exception_id: id,
    exception_type: 'AMOUNT_MISMATCH',
    status: 'OPEN',
    severity: 'HIGH',
    dataset: 'trades',
    business_date: '2025-12-10',
    run_id: 'run-1',
    key: '{"trade_id":"T0005"}',
    summary: `summary of ${id}`,
    ...fields,
  },
});

function setup(hits: VectorHit[] = [], known: string[] = ['payments', 'trades']) {
  const index: VectorIndex = {
    ensure: vi.fn(),
    replace: vi.fn(),
    replaceMany: vi.fn(),
    updateFields: vi.fn(),
    deleteWhere: vi.fn(),
    count: vi.fn(),
    search: vi.fn(async () => hits),
  };
  const embed = vi.fn(async (texts: string[]) => texts.map(() => [1, 0, 0]));
  const s3 = createAwsClients({ s3ForcePathStyle: false }).s3;
  const deps: QueryApiDeps = {
    store: {
      getException: vi.fn(),
      queryExceptions: vi.fn(),
      queryExceptionEntries: vi.fn(),
      wholeExceptions: vi.fn(),
      soonestDue: vi.fn(),
      patchException: vi.fn(),
      getRun: vi.fn(),
      queryRuns: vi.fn(),
      queryFiles: vi.fn(),
      currentFiles: vi.fn(),
      listPatterns: vi.fn(),
      getPattern: vi.fn(),
    },
    uploads: new S3UploadSigner(s3, 'tally-data-test'),
    datasets: {
      known: async () => known,
      // The sample policies: trades reads csv both sides, payments csv and jsonl.
      policy: async (dataset: string) =>
        known.includes(dataset)
          ? parseReconPolicy(readFileSync(`policies/datasets/${dataset}.md`, 'utf8'), dataset, dataset)
          : undefined,
    },
    healthChecks: [],
    embedder: { id: 'fake', dimensions: 3, embed },
    exceptionsIndex: index,
    queues: { depths: vi.fn(async () => []) },
    paginationSecret: 's',
    corsOrigins: ['*'],
    localIdentity: 'local-analyst',
    now: () => NOW,
  };
  const handler = createHandler(() => deps);
  const call = async (
    method: string,
    path: string,
    options: { query?: Record<string, string>; body?: unknown } = {},
  ) => {
    const res = (await handler(httpEvent(method, path, options), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
  return { call, index, embed };
}

describe('GET /search', () => {
  it('embeds the question, asks for a hybrid ranking and returns the best exceptions first, with their scores', async () => {
    const api = setup([hit('b', 0.71), hit('a', 0.93, { summary: '' }), hit('c', 0.5, { key: 'not json' })]);

    const res = await api.call('GET', '/search', { query: { q: 'amount breaks on trade T0005' } });

    expect(res.status).toBe(200);
    expect(api.embed).toHaveBeenCalledWith(['amount breaks on trade T0005']);
    // The question's words go along: the index fuses its lexical ranking with the vector one.
    expect(api.index.search).toHaveBeenCalledWith([1, 0, 0], 10, undefined, { text: 'amount breaks on trade T0005' });
    expect(res.body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual(['a', 'b', 'c']);
    expect(res.body.items[1]).toEqual({
      exception_id: 'b',
      exception_type: 'AMOUNT_MISMATCH',
      key: { trade_id: 'T0005' },
      status: 'OPEN',
      severity: 'HIGH',
      dataset: 'trades',
      business_date: '2025-12-10',
      run_id: 'run-1',
      summary: 'summary of b',
      score: 0.71,
    });
    expect(res.body.items[2].key).toBe('not json');
  });

  it('passes every filter and k through to the index', async () => {
    const api = setup();
    const filters = {
      status: 'OPEN',
      exception_type: 'MISSING_IN_TARGET',
      severity: 'CRITICAL',
      dataset: 'trades',
      business_date: '2025-12-10',
      run_id: 'run-9',
    };

    const res = await api.call('GET', '/search', { query: { q: 'missing', k: '50', ...filters } });

    expect(res.status).toBe(200);
    expect(api.index.search).toHaveBeenCalledWith([1, 0, 0], 50, filters, { text: 'missing' });
  });

  it('filters on a field by name (key or either row), a business-date range and a pattern', async () => {
    const api = setup();

    const res = await api.call('GET', '/search', {
      query: {
        q: 'paid twice',
        field: 'account_id',
        value: 'ACCT2042',
        date_from: '2025-12-01',
        date_to: '2025-12-31',
        pattern_id: 'pat-7',
        status: 'OPEN',
      },
    });

    expect(res.status).toBe(200);
    expect(api.index.search).toHaveBeenCalledWith(
      [1, 0, 0],
      10,
      { status: 'OPEN', pattern_id: 'pat-7', values: 'account_id=ACCT2042' },
      { text: 'paid twice', ranges: { business_date: { from: '2025-12-01', to: '2025-12-31' } } },
    );
  });

  it('takes an open-ended date range', async () => {
    const api = setup();

    await api.call('GET', '/search', { query: { q: 'x', date_to: '2025-12-10' } });

    expect(api.index.search).toHaveBeenCalledWith([1, 0, 0], 10, undefined, {
      text: 'x',
      ranges: { business_date: { from: undefined, to: '2025-12-10' } },
    });
  });

  it.each([
    [{ q: 'x', k: '0' }, 'k: must be an integer from 1 to 50'],
    [{ q: 'x', k: '51' }, 'k: must be an integer from 1 to 50'],
    [{ q: '' }, 'q: must not be empty'],
    [{ q: '   ' }, 'q: must not be empty'],
    [{}, 'q: is required: the text to search for'],
    [{ q: 'x', severity: 'BAD' }, 'severity: must be one of LOW, MEDIUM, HIGH, CRITICAL'],
    // What API Gateway makes of severity=HIGH&severity=LOW.
    [
      { q: 'x', severity: 'HIGH,LOW' },
      'got the string "HIGH,LOW" (one value: a query parameter given more than once arrives joined',
    ],
    [{ q: 'x', query: 'y' }, 'unknown query parameter "query"'],
    [{ q: 'x', field: 'account_id' }, 'field: goes with value'],
    [{ q: 'x', value: 'ACCT2042' }, 'field: goes with value'],
    [{ q: 'x', field: 'account id!', value: 'A' }, 'field: must be a field name of the dataset'],
    [{ q: 'x', date_from: '2025-12-10', date_to: '2025-12-01' }, 'date_from: must not be after date_to'],
    [{ q: 'x', date_from: '2025-02-30' }, 'date_from: must be a calendar date'],
    [{ q: 'x', pattern_id: '' }, 'pattern_id: must not be empty'],
  ])('rejects %j with a 400', async (query, message) => {
    const api = setup();

    const res = await api.call('GET', '/search', { query });

    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
    expect(api.embed).not.toHaveBeenCalled();
  });
});

describe('POST /uploads', () => {
  const body = {
    dataset: 'trades',
    business_date: '2025-12-10',
    side: 'source',
    content_type: 'text/csv',
    content_length: 1234,
  };

  it('returns a short-lived pre-signed PUT for the key the server chose, content type and length signed', async () => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    vi.stubEnv('AWS_ENDPOINT_URL_S3', '');
    const api = setup();

    const res = await api.call('POST', '/uploads', { body });

    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      method: 'PUT',
      key: 'incoming/trades/2025-12-10/source.csv',
      headers: { 'content-type': 'text/csv', 'content-length': '1234' },
      expires_at: new Date(NOW + 300_000).toISOString(),
    });
    const url = new URL(res.body.url);
    expect(url.pathname).toBe('/incoming/trades/2025-12-10/source.csv');
    expect(url.hostname).toContain('tally-data-test');
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get('X-Amz-SignedHeaders')?.split(';')).toEqual(
      expect.arrayContaining(['content-type', 'content-length', 'host']),
    );
    expect(url.searchParams.get('X-Amz-Expires')).toBe('300');
    expect(url.searchParams.has('x-amz-checksum-crc32')).toBe(false);
  });

  it('takes the format and gzip: the key and the signed content type follow', async () => {
    vi.stubEnv('AWS_REGION', 'us-east-1');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDEXAMPLE');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    vi.stubEnv('AWS_ENDPOINT_URL_S3', '');
    const { content_type: _ct, ...bare } = body;
    const api = setup();

    const jsonl = await api.call('POST', '/uploads', {
      body: { ...bare, dataset: 'payments', side: 'target', format: 'jsonl' },
    });
    const gzipped = await api.call('POST', '/uploads', { body: { ...bare, format: 'csv', gzip: true } });

    expect(jsonl.status).toBe(201);
    expect(jsonl.body).toMatchObject({
      key: 'incoming/payments/2025-12-10/target.jsonl',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(gzipped.body).toMatchObject({
      key: 'incoming/trades/2025-12-10/source.csv.gz',
      headers: { 'content-type': 'application/gzip' },
    });
  });

  it("refuses a format the dataset's policy does not read for that side, before any bytes are sent", async () => {
    const api = setup();

    const jsonl = await api.call('POST', '/uploads', { body: { ...body, format: 'jsonl' } });
    const csvTarget = await api.call('POST', '/uploads', { body: { ...body, dataset: 'payments', side: 'target' } });

    expect(jsonl.status).toBe(400);
    expect(jsonl.body.error).toMatchObject({
      code: 'FORMAT_MISMATCH',
      message:
        'the trades policy reads the source as csv, not jsonl (send format "csv", or change the policy\'s source format first)',
    });
    expect(csvTarget.status).toBe(400);
    expect(csvTarget.body.error).toMatchObject({ code: 'FORMAT_MISMATCH', details: { expected_format: 'jsonl' } });
  });

  it('refuses a dataset with no policy with a 400 listing the known datasets', async () => {
    const res = await setup().call('POST', '/uploads', { body: { ...body, dataset: 'positions' } });

    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      code: 'UNKNOWN_DATASET',
      message: expect.stringContaining('known datasets: payments, trades'),
    });
  });

  it.each([
    [{ ...body, dataset: '../x' }, 'dataset: must be 1-64 letters, digits, "-" or "_"'],
    [{ ...body, dataset: 'a/b' }, 'dataset: must be 1-64'],
    [{ ...body, business_date: '2025-02-30' }, 'business_date: must be a calendar date YYYY-MM-DD'],
    [{ ...body, business_date: '10/12/2025' }, 'business_date: must be a calendar date'],
    [{ ...body, side: 'left' }, 'side: must be one of source, target'],
    [{ ...body, content_type: 'application/zip' }, 'content_type: must be one of text/csv, text/plain,'],
    [{ ...body, format: 'xlsx' }, 'format: must be one of csv, jsonl, parquet'],
    [{ ...body, gzip: 'yes' }, 'gzip: must be true or false'],
    [{ ...body, content_length: 0 }, 'content_length: must be at least 1'],
    [{ ...body, content_length: 5 * 1024 ** 3 + 1 }, 'S3 single-PUT limit'],
    [{ ...body, key: 'incoming/evil.csv' }, 'unknown field "key"'],
    // A value of the wrong type is not missing: say what was expected and what came.
    [{ ...body, content_length: '1234' }, 'content_length: must be a whole number of bytes, got the string "1234"'],
    [{ ...body, dataset: 7 }, 'dataset: must be a string of 1-64 letters, digits, "-" or "_", got number 7'],
    [{ ...body, side: null }, 'side: must be one of source, target, got null'],
    [{ ...body, content_length: undefined }, 'content_length: is required: the file size in bytes'],
  ])('rejects %j with a 400', async (request, message) => {
    const res = await setup().call('POST', '/uploads', { body: request });

    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
  });
});

describe('query API configuration', () => {
  const base = {
    TALLY_BUCKET: 'b',
    TALLY_EXCEPTIONS_TABLE: 'e',
    TALLY_RUNS_TABLE: 'r',
    TALLY_FILES_TABLE: 'f',
    TALLY_PATTERNS_TABLE: 'p',
    TALLY_TRIAGE_QUEUE_URL: 'q',
    TALLY_USAGE_TABLE: 'u',
  };

  it('has local defaults for the pagination secret and identity, and allows no other origin locally', () => {
    const config = queryApiConfig(base);

    expect(config).toMatchObject({ corsOrigins: [], localIdentity: 'local-analyst' });
    expect(config.paginationSecret.length).toBeGreaterThan(0);
  });

  it('on Lambda, requires the secret and the origins and has no fallback identity', () => {
    const lambda = { ...base, AWS_LAMBDA_FUNCTION_NAME: 'tally-query-api' };

    expect(() => queryApiConfig(lambda)).toThrow(
      /TALLY_PAGINATION_SECRET: is required on AWS.*TALLY_MASKING_SECRET: is required on AWS.*TALLY_CORS_ORIGINS: is required/,
    );
    expect(() => queryApiConfig({ ...lambda, TALLY_PAGINATION_SECRET: 'short', TALLY_CORS_ORIGINS: '*' })).toThrow(
      /at least 32/,
    );
    expect(() =>
      queryApiConfig({
        ...lambda,
        TALLY_PAGINATION_SECRET: 'x'.repeat(32),
        TALLY_MASKING_SECRET: 'm'.repeat(32),
        TALLY_CORS_ORIGINS: '*',
        TALLY_LOCAL_IDENTITY: 'me',
      }),
    ).toThrow(ConfigError);
    const config = queryApiConfig({
      ...lambda,
      TALLY_PAGINATION_SECRET: 'x'.repeat(32),
      TALLY_MASKING_SECRET: 'm'.repeat(32),
      TALLY_CORS_ORIGINS: 'https://a.example, https://b.example',
    });
    expect(config).toMatchObject({ corsOrigins: ['https://a.example', 'https://b.example'], localIdentity: undefined });
  });

  it('names every missing variable in one error', () => {
    expect(() => queryApiConfig({})).toThrow(
      /TALLY_BUCKET.*TALLY_EXCEPTIONS_TABLE.*TALLY_RUNS_TABLE.*TALLY_FILES_TABLE.*TALLY_USAGE_TABLE/,
    );
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import { DynamoQueryStore } from '../../functions/query-api/dynamo-store.ts';
import { encodeToken } from '../../functions/query-api/pagination.ts';
import type { HealthCheck, QueryApiDeps, QueryStore } from '../../functions/query-api/ports.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import type { ExceptionRecord, ExceptionStatus, ExceptionType, Severity } from '../../functions/shared/types.ts';
import type { Embedder, VectorIndex } from '../../functions/shared/search/ports.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

const SECRET = 'test-pagination-secret-0123456789abcdef';
/** The role and dataset claims (access.ts defaults) of an analyst of every dataset. */
const ANALYST = { 'cognito:groups': '[analyst]', 'tally:datasets': '*' };
const NOW = Date.parse('2026-01-05T10:00:00.000Z');

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

interface EventOptions {
  query?: Record<string, string>;
  body?: unknown;
  claims?: Record<string, string>;
  headers?: Record<string, string>;
}

let requestCounter = 0;
function httpEvent(method: string, path: string, options: EventOptions = {}): APIGatewayProxyEventV2 {
  const query = options.query ?? {};
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json', ...options.headers },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: `req-${++requestCounter}`,
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: NOW,
      ...(options.claims ? { authorizer: { jwt: { claims: options.claims, scopes: [] } } } : {}),
    } as APIGatewayProxyEventV2['requestContext'],
    ...(options.body === undefined
      ? {}
      : { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }),
    isBase64Encoded: false,
  };
}

interface Seed {
  dataset?: string;
  date?: string;
  type?: ExceptionType;
  status?: ExceptionStatus;
  severity?: Severity;
  runId?: string;
  createdAt?: string;
  tradeId?: string;
  /** An account on the source row only (the target row carries none). */
  account?: string;
}

let seedCounter = 0;
/** Stores an exception with the attributes recon's putNew writes (index keys, bookkeeping). */
async function seed(table: string, doc: TestDynamo['doc'], s: Seed = {}) {
  const dataset = s.dataset ?? 'trades';
  const date = s.date ?? '2025-12-10';
  const type = s.type ?? 'AMOUNT_MISMATCH';
  const tradeId = s.tradeId ?? `T${String(++seedCounter).padStart(5, '0')}`;
  const createdAt = s.createdAt ?? '2025-12-10T08:00:00.000Z';
  const runId = s.runId ?? 'run-1';
  const record: ExceptionRecord = {
    exception_id: exceptionId(dataset, date, type, JSON.stringify({ trade_id: tradeId })),
    run_id: runId,
    dataset,
    business_date: date,
    exception_type: type,
    key: { trade_id: tradeId },
    source: { trade_id: tradeId, amount: '100.00', ...(s.account ? { account_id: s.account } : {}) },
    target: { trade_id: tradeId, amount: '101.00' },
    diffs: [{ field: 'amount', source: '100.00', target: '101.00', delta: '1.00' }],
    lines: { source: [2], target: [2] },
    policy_severity: 'MEDIUM',
    status: s.status ?? 'OPEN',
    created_at: createdAt,
    updated_at: createdAt,
    version: 1,
    history: [{ at: createdAt, by: 'system:recon', action: 'CREATED', to: 'OPEN', run_id: runId }],
    ...(s.severity
      ? {
          severity: s.severity,
          triage: {
            severity: s.severity,
            summary: `Amount differs by 1.00 on ${tradeId}`,
            recommended_actions: ['confirm with the counterparty'],
            root_cause_hypotheses: ['late amendment'],
            rejected_citations: [],
            policy_citations: [
              {
                passage_id: 'recon-policy.md#tolerances',
                document: 'recon-policy.md',
                section: 'Tolerances',
                passage: 'Amounts must match within 0.01.',
              },
            ],
            provider: 'rules',
            model: 'rules-v1',
            triaged_at: createdAt,
            degraded: false,
            prompt_version: 'p1',
            policy_version: 'v1',
            content_hash: 'c',
            attempts: [],
          },
        }
      : {}),
  };
  const stored = {
    ...record,
    content_hash: 'hash',
    last_changed_run_id: runId,
    record_type: 'EXCEPTION',
    dataset_date: `${dataset}#${date}`,
    last_seen_at: createdAt,
  };
  await doc.send(new PutCommand({ TableName: table, Item: { ...stored, ...exceptionIndexKeys(stored) } }));
  return record;
}

function fakeIndex() {
  return {
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async () => undefined),
    replaceMany: vi.fn(async () => undefined),
    updateFields: vi.fn(async () => undefined),
    deleteWhere: vi.fn(async () => 0),
    search: vi.fn(async () => []),
    count: vi.fn(async () => 0),
  } satisfies VectorIndex;
}

function fakeEmbedder(): Embedder {
  return { id: 'fake', dimensions: 3, embed: vi.fn(async (texts: string[]) => texts.map(() => [0.1, 0.2, 0.3])) };
}

function setup(overrides: Partial<QueryApiDeps> = {}, db: TestDynamo = dynamo) {
  const index = fakeIndex();
  const deps: QueryApiDeps = {
    store: queryStoreOf(db),
    uploads: { presignPut: vi.fn(async () => 'https://bucket.s3.amazonaws.com/signed') },
    healthChecks: [
      { name: 'dynamodb', check: async () => undefined },
      { name: 's3', check: async () => undefined },
    ],
    embedder: fakeEmbedder(),
    exceptionsIndex: index,
    queues: { depths: vi.fn(async () => []) },
    paginationSecret: SECRET,
    corsOrigins: ['*'],
    localIdentity: 'local-analyst',
    now: () => NOW,
    ...overrides,
  };
  const handler = createHandler(() => deps);
  const call = async (method: string, path: string, options: EventOptions = {}) => {
    const res = (await handler(httpEvent(method, path, options), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return {
      status: res.statusCode,
      headers: res.headers ?? {},
      raw: res.body ?? '',
      body: JSON.parse(res.body ?? 'null'),
    };
  };
  return { call, deps, index, seed: (s: Seed = {}) => seed(db.names.tables.exceptions, db.doc, s) };
}

describe('GET /health', () => {
  it('answers 200 with every check ok', async () => {
    const api = setup();

    const res = await api.call('GET', '/health');

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok', checks: { dynamodb: 'ok', s3: 'ok' } });
  });

  it('answers 503 naming the failed dependency but not its error', async () => {
    const broken: HealthCheck = {
      name: 's3',
      check: async () => {
        throw new Error('AccessDenied arn:aws:s3:::secret-bucket');
      },
    };
    const api = setup({ healthChecks: [{ name: 'dynamodb', check: async () => undefined }, broken] });

    const res = await api.call('GET', '/health');

    expect(res.status).toBe(503);
    expect(res.body).toEqual({ status: 'unavailable', checks: { dynamodb: 'ok', s3: 'failed' } });
    expect(res.raw).not.toContain('secret-bucket');
  });

  it('probes the real exceptions table with a GetItem on a key that does not exist', async () => {
    const store = queryStoreOf(dynamo);
    const missing = new DynamoQueryStore(dynamo.doc, {
      exceptions: 'no-such-table',
      runs: 'no-such-table',
      files: 'no-such-table',
      patterns: 'no-such-table',
    });

    await expect(store.healthCheck().check()).resolves.toBeUndefined();
    await expect(missing.healthCheck().check()).rejects.toThrow();
  });
});

describe('routing, CORS and errors', () => {
  it('answers an unknown path with 404 listing the endpoints', async () => {
    const res = await setup().call('GET', '/nope');

    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('NOT_FOUND');
    expect(res.body.error.details.endpoints).toContain('GET /exceptions/{id}');
  });

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const res = await setup().call('DELETE', '/exceptions/0123456789abcdef0123456789abcdef');

    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, PATCH');
  });

  it('adds CORS headers and answers preflight requests', async () => {
    const api = setup({ corsOrigins: ['https://app.example.com'] });

    const allowed = await api.call('GET', '/health', { headers: { origin: 'https://app.example.com' } });
    const other = await api.call('GET', '/health', { headers: { origin: 'https://evil.example.com' } });
    const preflight = await setup()
      .call('OPTIONS', '/exceptions', {
        headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'PATCH' },
      })
      .catch(() => undefined);

    expect(allowed.headers['Access-Control-Allow-Origin']).toBe('https://app.example.com');
    expect(other.headers['Access-Control-Allow-Origin']).toBeUndefined();
    expect(preflight?.status).toBe(204);
    expect(preflight?.headers['Access-Control-Allow-Methods']).toContain('PATCH');
  });

  it('answers 500 without internals when the store fails, with a correlation id to quote', async () => {
    const failing: QueryStore = {
      getException: async () => {
        throw new Error('ProvisionedThroughputExceeded on arn:aws:dynamodb:us-east-1:123456789012:table/secret');
      },
      queryExceptions: async () => {
        throw new Error('boom at internal line 42');
      },
      queryExceptionEntries: async () => {
        throw new Error('boom at internal line 42');
      },
      wholeExceptions: async () => {
        throw new Error('boom at internal line 43');
      },
      soonestDue: async () => {
        throw new Error('boom at internal line 44');
      },
      patchException: async () => undefined,
      getRun: async () => undefined,
      queryRuns: async () => ({ items: [] }),
      queryFiles: async () => ({ items: [] }),
      currentFiles: async () => [],
      listPatterns: async () => [],
      getPattern: async () => undefined,
    };
    const api = setup({ store: failing });

    const res = await api.call('GET', '/exceptions/0123456789abcdef0123456789abcdef');
    const list = await api.call('GET', '/exceptions');

    expect(res.status).toBe(500);
    expect(res.raw).not.toMatch(/arn:aws|Provisioned|secret|stack/i);
    expect(list.raw).not.toMatch(/boom|line 42/);
    expect(res.body.error.code).toBe('INTERNAL_ERROR');
    expect(res.body.error.details.correlation_id).toBe(res.headers['x-correlation-id']);
    expect(res.body.error.message).toContain(res.headers['x-correlation-id']);
  });

  it('answers 500 without internals when the configuration is invalid', async () => {
    const handler = createHandler(() => {
      throw new Error('invalid configuration: TALLY_BUCKET: is required');
    });

    const res = (await handler(httpEvent('GET', '/health'), lambdaContext)) as APIGatewayProxyStructuredResultV2;

    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('TALLY_BUCKET');
  });
});

describe('GET /exceptions', () => {
  it('pages through 60 exceptions 25, 25, 10, newest first, without duplicates', async () => {
    const api = setup();
    const date = '2025-11-01';
    // Recon stamps a whole run with one created_at: ties must page correctly too.
    for (let i = 0; i < 60; i++) {
      await api.seed({ dataset: 'paging', date, createdAt: `2025-11-01T0${Math.floor(i / 20)}:00:00.000Z` });
    }

    const pages = [];
    let token: string | undefined;
    do {
      const res = await api.call('GET', '/exceptions', {
        query: { dataset: 'paging', business_date: date, ...(token ? { next_token: token } : {}) },
      });
      expect(res.status).toBe(200);
      pages.push(res.body);
      token = res.body.next_token ?? undefined;
    } while (token);

    expect(pages.map((p) => p.count)).toEqual([25, 25, 10]);
    const items = pages.flatMap((p) => p.items);
    expect(new Set(items.map((i) => i.exception_id)).size).toBe(60);
    const created = items.map((i) => i.created_at);
    expect(created).toEqual([...created].sort().reverse());
    expect(pages.at(-1)?.next_token).toBeNull();
  });

  it('lists everything newest first with no filter, via the by_created_sharded index', async () => {
    const own = await startTestDynamo();
    try {
      const api = setup({}, own);
      for (let i = 0; i < 7; i++) await api.seed({ createdAt: `2025-10-0${i + 1}T00:00:00.000Z`, dataset: `d${i}` });

      const first = await api.call('GET', '/exceptions', { query: { limit: '4' } });
      const second = await api.call('GET', '/exceptions', { query: { limit: '4', next_token: first.body.next_token } });

      expect(first.body.items.map((i: { dataset: string }) => i.dataset)).toEqual(['d6', 'd5', 'd4', 'd3']);
      expect(second.body).toMatchObject({ count: 3, next_token: null });
      expect(second.body.items.map((i: { dataset: string }) => i.dataset)).toEqual(['d2', 'd1', 'd0']);
    } finally {
      await own.stop();
    }
  });

  it('ends on the last full page without an empty extra page', async () => {
    const api = setup();
    for (let i = 0; i < 4; i++) await api.seed({ runId: 'run-exact', createdAt: `2025-09-0${i + 1}T00:00:00.000Z` });

    const res = await api.call('GET', '/exceptions', { query: { run_id: 'run-exact', limit: '4' } });

    expect(res.body).toMatchObject({ count: 4, next_token: null });
  });

  it('combines filters: the index narrows, the rest filter, pages stay full', async () => {
    const api = setup();
    for (let i = 0; i < 30; i++) {
      await api.seed({
        runId: 'run-mixed',
        status: i % 3 === 0 ? 'ACKNOWLEDGED' : 'OPEN',
        type: i % 2 === 0 ? 'AMOUNT_MISMATCH' : 'MISSING_IN_TARGET',
        createdAt: `2025-08-01T00:00:${String(i).padStart(2, '0')}.000Z`,
      });
    }

    const first = await api.call('GET', '/exceptions', {
      query: { run_id: 'run-mixed', status: 'ACKNOWLEDGED', limit: '6' },
    });
    const second = await api.call('GET', '/exceptions', {
      query: { run_id: 'run-mixed', status: 'ACKNOWLEDGED', limit: '6', next_token: first.body.next_token },
    });
    const both = await api.call('GET', '/exceptions', {
      query: { run_id: 'run-mixed', status: 'ACKNOWLEDGED', exception_type: 'AMOUNT_MISMATCH' },
    });

    expect(first.body.count).toBe(6);
    expect(second.body).toMatchObject({ count: 4, next_token: null });
    expect(
      [...first.body.items, ...second.body.items].every((i) => i.status === 'ACKNOWLEDGED' && i.run_id === 'run-mixed'),
    ).toBe(true);
    expect(both.body.count).toBe(5);
  });

  it('filters by dataset alone, by severity and by type', async () => {
    const api = setup();
    await api.seed({ dataset: 'payments', date: '2025-07-01', severity: 'CRITICAL', type: 'DUPLICATE_IN_SOURCE' });
    await api.seed({ dataset: 'payments', date: '2025-07-02', severity: 'LOW' });
    await api.seed({ dataset: 'positions', date: '2025-07-01', severity: 'CRITICAL' });

    const byDataset = await api.call('GET', '/exceptions', { query: { dataset: 'payments' } });
    const bySeverity = await api.call('GET', '/exceptions', { query: { severity: 'CRITICAL', dataset: 'payments' } });
    const byType = await api.call('GET', '/exceptions', { query: { exception_type: 'DUPLICATE_IN_SOURCE' } });

    expect(byDataset.body.count).toBe(2);
    expect(bySeverity.body.items.map((i: { business_date: string }) => i.business_date)).toEqual(['2025-07-01']);
    expect(byType.body.items.map((i: { dataset: string }) => i.dataset)).toEqual(['payments']);
  });

  it('filters by an account on either row (field and value) and by a business-date range', async () => {
    const api = setup();
    await api.seed({ dataset: 'fx', date: '2025-08-01', account: 'ACCT1' });
    await api.seed({ dataset: 'fx', date: '2025-08-05', account: 'ACCT1' });
    await api.seed({ dataset: 'fx', date: '2025-08-05', account: 'ACCT2' });
    await api.seed({ dataset: 'fx', date: '2025-08-09', account: 'ACCT2' });
    await api.seed({ dataset: 'fx', date: '2025-08-05', tradeId: 'TKEY9' });
    const dates = (res: { body: { items: { business_date: string }[] } }) =>
      res.body.items.map((i) => i.business_date).sort();

    const account = await api.call('GET', '/exceptions', { query: { field: 'account_id', value: 'ACCT1' } });
    const range = await api.call('GET', '/exceptions', {
      query: { dataset: 'fx', date_from: '2025-08-02', date_to: '2025-08-06' },
    });
    const both = await api.call('GET', '/exceptions', {
      query: { field: 'account_id', value: 'ACCT2', date_from: '2025-08-06' },
    });
    const inKey = await api.call('GET', '/exceptions', { query: { field: 'trade_id', value: 'TKEY9' } });
    const counted = await api.call('GET', '/exception-counts', { query: { field: 'account_id', value: 'ACCT1' } });
    const alone = await api.call('GET', '/exceptions', { query: { field: 'account_id' } });
    const backwards = await api.call('GET', '/exceptions', {
      query: { date_from: '2025-08-09', date_to: '2025-08-01' },
    });

    expect(dates(account)).toEqual(['2025-08-01', '2025-08-05']);
    expect(dates(range)).toEqual(['2025-08-05', '2025-08-05', '2025-08-05']);
    expect(dates(both)).toEqual(['2025-08-09']);
    expect(inKey.body.items.map((i: { key: { trade_id: string } }) => i.key.trade_id)).toEqual(['TKEY9']);
    expect(counted.body.total).toBe(2);
    expect(alone.status).toBe(400);
    expect(alone.body.error.message).toContain('goes with value');
    expect(backwards.status).toBe(400);
    expect(backwards.body.error.message).toContain('must not be after date_to');
  });

  it('never returns internal attributes', async () => {
    const api = setup();
    await api.seed({ runId: 'run-internal' });

    const res = await api.call('GET', '/exceptions', { query: { run_id: 'run-internal' } });

    expect(Object.keys(res.body.items[0])).not.toEqual(expect.arrayContaining(['record_type']));
    for (const attribute of ['record_type', 'dataset_date', 'content_hash', 'last_changed_run_id', 'last_seen_at'])
      expect(res.body.items[0]).not.toHaveProperty(attribute);
    expect(res.body.items[0]).toHaveProperty('version', 1);
  });

  it.each([
    [
      { status: 'CLOSED' },
      'status: must be one of PENDING, OPEN, ACKNOWLEDGED, IN_PROGRESS, AWAITING_APPROVAL, RESOLVED, FALSE_POSITIVE',
    ],
    [{ exception_type: 'TYPO' }, 'exception_type: must be one of MISSING_IN_TARGET'],
    [{ severity: 'URGENT' }, 'severity: must be one of LOW, MEDIUM, HIGH, CRITICAL'],
    [{ limit: '0' }, 'limit: must be an integer from 1 to 200'],
    [{ limit: '201' }, 'limit: must be an integer from 1 to 200'],
    [{ limit: 'ten' }, 'limit: must be an integer from 1 to 200'],
    [{ dataset: '../x' }, 'dataset: must be 1-64 letters, digits, "-" or "_"'],
    [{ dataset: 'trades', business_date: '2025-02-30' }, 'business_date: must be a calendar date YYYY-MM-DD'],
    [{ business_date: '2025-12-10' }, 'business_date needs dataset as well'],
    [{ stauts: 'OPEN' }, 'unknown query parameter "stauts"; allowed: status, exception_type'],
  ])('rejects %j with a 400 that says what is allowed', async (query, message) => {
    const res = await setup().call('GET', '/exceptions', { query: query as Record<string, string> });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('VALIDATION_ERROR');
    expect(res.body.error.message).toContain(message);
    expect(res.body.error.details.issues.length).toBeGreaterThan(0);
  });

  it('rejects a tampered next_token', async () => {
    const api = setup();
    for (let i = 0; i < 3; i++) await api.seed({ runId: 'run-token' });
    const first = await api.call('GET', '/exceptions', { query: { run_id: 'run-token', limit: '1' } });
    const [payload, signature] = (first.body.next_token as string).split('.') as [string, string];
    const edited = JSON.parse(Buffer.from(payload, 'base64url').toString());
    edited.k.gsi_run = 'run-other#00';
    const tampered = `${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${signature}`;

    for (const token of [tampered, `${payload}.${signature.slice(0, -2)}`, 'garbage', `${payload}.${signature}.x`]) {
      const res = await api.call('GET', '/exceptions', {
        query: { run_id: 'run-token', limit: '1', next_token: token },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('INVALID_NEXT_TOKEN');
      expect(res.body.error.message).toContain('altered');
    }
  });

  it('rejects a token signed with another secret', async () => {
    const token = encodeToken(
      'another-deployment-secret',
      { index: 'by_run_sharded', startKey: { gsi_run: 'r#00' } },
      'x',
    );

    const res = await setup().call('GET', '/exceptions', { query: { run_id: 'r', next_token: token } });

    expect(res.body.error.code).toBe('INVALID_NEXT_TOKEN');
  });

  it('rejects a next_token issued for other filters', async () => {
    const api = setup();
    for (let i = 0; i < 3; i++) await api.seed({ runId: 'run-foreign' });
    const first = await api.call('GET', '/exceptions', { query: { run_id: 'run-foreign', limit: '1' } });

    const res = await api.call('GET', '/exceptions', {
      query: { run_id: 'run-foreign', status: 'OPEN', limit: '1', next_token: first.body.next_token },
    });
    const sameFiltersOtherLimit = await api.call('GET', '/exceptions', {
      query: { run_id: 'run-foreign', limit: '2', next_token: first.body.next_token },
    });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('NEXT_TOKEN_FILTER_MISMATCH');
    expect(res.body.error.message).toContain('different set of filters');
    expect(sameFiltersOtherLimit.status).toBe(200);
  });
});

describe('GET /exceptions/{id}', () => {
  it('returns the full record with triage, citations and history', async () => {
    const api = setup();
    const record = await api.seed({ severity: 'HIGH' });

    const res = await api.call('GET', `/exceptions/${record.exception_id}`);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      exception_id: record.exception_id,
      version: 1,
      status: 'OPEN',
      severity: 'HIGH',
      key: record.key,
      diffs: record.diffs,
      triage: {
        summary: expect.stringContaining('Amount differs'),
        policy_citations: [{ document: 'recon-policy.md', section: 'Tolerances' }],
      },
      history: [{ by: 'system:recon', action: 'CREATED' }],
    });
    expect(res.body).not.toHaveProperty('dataset_date');
    expect(res.body).not.toHaveProperty('content_hash');
  });

  it('answers 404 for an unknown id and 400 for something that is not an id', async () => {
    const api = setup();

    const unknown = await api.call('GET', '/exceptions/ffffffffffffffffffffffffffffffff');
    const malformed = await api.call('GET', '/exceptions/..%2Fetc');

    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain('ffffffffffffffffffffffffffffffff');
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.message).toContain('32 lower-case hexadecimal');
  });
});

describe('PATCH /exceptions/{id}', () => {
  it('acknowledges, records the JWT identity in history, bumps the version and updates the search copy', async () => {
    const api = setup();
    const record = await api.seed();

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, status: 'ACKNOWLEDGED', note: 'looking into it' },
      claims: { email: 'ana@bank.example', sub: 'u-1', ...ANALYST },
    });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ACKNOWLEDGED', version: 2, updated_at: new Date(NOW).toISOString() });
    expect(res.body.history.at(-1)).toEqual({
      at: new Date(NOW).toISOString(),
      by: 'ana@bank.example',
      action: 'ACKNOWLEDGED',
      from: 'OPEN',
      to: 'ACKNOWLEDGED',
      note: 'looking into it',
    });
    expect(api.index.updateFields).toHaveBeenCalledWith(record.exception_id, { status: 'ACKNOWLEDGED' });
    const reread = await api.call('GET', `/exceptions/${record.exception_id}`);
    expect(reread.body.version).toBe(2);
  });

  it('records sub when the token has no email, and the local identity only without an authorizer', async () => {
    const api = setup();
    const a = await api.seed();
    const b = await api.seed();

    const bySub = await api.call('PATCH', `/exceptions/${a.exception_id}`, {
      body: { version: 1, note: 'n' },
      claims: { sub: 'user-42', ...ANALYST },
    });
    const local = await api.call('PATCH', `/exceptions/${b.exception_id}`, { body: { version: 1, note: 'n' } });

    expect(bySub.body.history.at(-1)).toMatchObject({ by: 'user-42', action: 'NOTE', note: 'n' });
    expect(local.body.history.at(-1)).toMatchObject({ by: 'local-analyst' });
  });

  it('refuses a change without a caller identity when no local identity is configured', async () => {
    const api = setup({ localIdentity: undefined });
    const record = await api.seed();

    const anonymous = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, note: 'n' },
    });
    const noUsableClaim = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, note: 'n' },
      claims: { scope: 'x' },
    });

    expect(anonymous.status).toBe(401);
    expect(noUsableClaim.status).toBe(401);
  });

  it('answers a stale version with 409 and the current version', async () => {
    const api = setup();
    const record = await api.seed();
    await api.call('PATCH', `/exceptions/${record.exception_id}`, { body: { version: 1, status: 'ACKNOWLEDGED' } });

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, status: 'FALSE_POSITIVE' },
    });

    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({
      code: 'VERSION_CONFLICT',
      details: { sent_version: 1, current_version: 2 },
    });
    expect(res.body.error.message).toContain('has changed since you read it');
  });

  it('says a version from ahead of the record is one it never had, not that it changed', async () => {
    const api = setup();
    const record = await api.seed();

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, { body: { version: 7, note: 'n' } });

    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe(
      `exception ${record.exception_id} is at version 1; you sent version 7, which it has never had: send the version you last read (read it again if unsure)`,
    );
  });

  it('lets exactly one of two concurrent changes with the same version through', async () => {
    const api = setup();
    const record = await api.seed();

    const results = await Promise.all([
      api.call('PATCH', `/exceptions/${record.exception_id}`, {
        body: { version: 1, status: 'ACKNOWLEDGED' },
        claims: { email: 'a@x', ...ANALYST },
      }),
      api.call('PATCH', `/exceptions/${record.exception_id}`, {
        body: { version: 1, status: 'FALSE_POSITIVE' },
        claims: { email: 'b@x', ...ANALYST },
      }),
    ]);

    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const conflict = results.find((r) => r.status === 409);
    expect(conflict?.body.error.details.current_version).toBe(2);
    const stored = await api.call('GET', `/exceptions/${record.exception_id}`);
    expect(stored.body.history).toHaveLength(2);
  });

  it('loses a race it could not see coming with a 409 too (conditional write)', async () => {
    const api = setup();
    const record = await api.seed();
    const store = api.deps.store;
    // Another writer slips in between this request's read and its write.
    const racing: QueryStore = {
      ...store,
      getException: (id) => store.getException(id),
      queryExceptions: (q) => store.queryExceptions(q),
      getRun: (id) => store.getRun(id),
      queryRuns: (q) => store.queryRuns(q),
      patchException: async (patch) => {
        await store.patchException({
          ...patch,
          set: { status: 'FALSE_POSITIVE' },
          history: [{ at: 'x', by: 'other', action: 'FALSE_POSITIVE' }],
        });
        return store.patchException(patch);
      },
    };
    const res = await setup({ store: racing }).call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, status: 'ACKNOWLEDGED' },
    });

    expect(res.status).toBe(409);
    expect(res.body.error.details.current_version).toBe(2);
  });

  it.each([
    ['OPEN', 'ACKNOWLEDGED', 'ACKNOWLEDGED'],
    ['OPEN', 'IN_PROGRESS', 'IN_PROGRESS'],
    ['ACKNOWLEDGED', 'RESOLVED', 'RESOLVED'],
    ['IN_PROGRESS', 'RESOLVED', 'RESOLVED'],
    ['IN_PROGRESS', 'ACKNOWLEDGED', 'ACKNOWLEDGED'],
    ['RESOLVED', 'OPEN', 'REOPENED'],
    ['FALSE_POSITIVE', 'OPEN', 'REOPENED'],
  ] as const)('allows %s -> %s', async (from, to, action) => {
    const api = setup();
    const record = await api.seed({ status: from });

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, { body: { version: 1, status: to } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: to, resolved_by_system: false });
    expect(res.body.history.at(-1)).toMatchObject({ action, from, to, by: 'local-analyst' });
  });

  it.each([
    ['OPEN', 'RESOLVED', ['ACKNOWLEDGED', 'IN_PROGRESS', 'FALSE_POSITIVE']],
    ['OPEN', 'OPEN', ['ACKNOWLEDGED', 'IN_PROGRESS', 'FALSE_POSITIVE']],
    ['ACKNOWLEDGED', 'OPEN', ['IN_PROGRESS', 'RESOLVED', 'FALSE_POSITIVE']],
    ['AWAITING_APPROVAL', 'RESOLVED', []],
    ['RESOLVED', 'ACKNOWLEDGED', ['OPEN']],
    ['FALSE_POSITIVE', 'RESOLVED', ['OPEN']],
  ] as const)('refuses %s -> %s with the allowed transitions', async (from, to, allowed) => {
    const api = setup();
    const record = await api.seed({ status: from });

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, { body: { version: 1, status: to } });

    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'INVALID_TRANSITION', details: { from, to, allowed } });
    expect(api.index.updateFields).not.toHaveBeenCalled();
  });

  it('assigns, unassigns and notes without touching the status or the search copy', async () => {
    const api = setup();
    const record = await api.seed();

    const assigned = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, assignee: 'bo@bank.example', note: 'yours' },
    });
    const cleared = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 2, assignee: null },
    });
    const same = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 3, assignee: null },
    });

    expect(assigned.body).toMatchObject({ status: 'OPEN', assignee: 'bo@bank.example', version: 2 });
    expect(assigned.body.history.at(-1)).toMatchObject({ action: 'ASSIGNED', to: 'bo@bank.example', note: 'yours' });
    expect(cleared.body).not.toHaveProperty('assignee');
    expect(cleared.body.history.at(-1)).toMatchObject({ action: 'UNASSIGNED', from: 'bo@bank.example' });
    expect(same.body.version).toBe(3);
    expect(api.index.updateFields).not.toHaveBeenCalled();
  });

  it('keeps the change when the search copy cannot be updated', async () => {
    const api = setup();
    api.index.updateFields.mockRejectedValueOnce(new Error('opensearch down'));
    const record = await api.seed();

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, {
      body: { version: 1, status: 'ACKNOWLEDGED' },
    });

    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ACKNOWLEDGED');
  });

  it.each([
    [{ status: 'ACKNOWLEDGED' }, 'VALIDATION_ERROR', 'version: is required'],
    [{ version: 1 }, 'VALIDATION_ERROR', 'nothing to change'],
    [{ version: 1, status: 'DONE' }, 'VALIDATION_ERROR', 'status: must be one of PENDING, OPEN'],
    [{ version: 1.5, note: 'x' }, 'VALIDATION_ERROR', 'version: must be an integer'],
    [{ version: '2', note: 'x' }, 'VALIDATION_ERROR', 'version: must be an integer, got the string "2"'],
    [
      { version: 1, assignee: 42 },
      'VALIDATION_ERROR',
      'assignee: must be a string, or null to clear it, got number 42',
    ],
    [{ version: 1, status: 7 }, 'VALIDATION_ERROR', 'status: must be one of PENDING, OPEN'],
    [
      { version: 1, note: 'x', priority: 1 },
      'VALIDATION_ERROR',
      'unknown field "priority"; allowed: version, status, assignee, team, note',
    ],
    [{ version: 1, note: '   ' }, 'VALIDATION_ERROR', 'note: must not be empty'],
    ['{"version":', 'INVALID_JSON', 'not valid JSON'],
    [undefined, 'MISSING_BODY', 'needs a JSON body'],
  ])('rejects the body %j', async (body, code, message) => {
    const api = setup();
    const record = await api.seed();

    const res = await api.call('PATCH', `/exceptions/${record.exception_id}`, { body });

    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toContain(message);
  });

  it('answers 404 for an unknown id', async () => {
    const res = await setup().call('PATCH', '/exceptions/ffffffffffffffffffffffffffffffff', {
      body: { version: 1, status: 'ACKNOWLEDGED' },
    });

    expect(res.status).toBe(404);
  });
});

describe('GET /runs/{run_id}', () => {
  it('returns the run summary without internal attributes, 404 when unknown', async () => {
    const api = setup();
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.runs,
        Item: {
          run_id: 'trades-2025-12-10-1-1',
          dataset_date: 'trades#2025-12-10',
          dataset: 'trades',
          business_date: '2025-12-10',
          status: 'COMPLETED',
          lease_until: 0,
          requested_at: '2025-12-10T08:00:00Z',
          requested_by: 'x',
          summary: { rows: { source: 20, target: 19 }, matched: 15, new: 5 },
        },
      }),
    );

    const found = await api.call('GET', '/runs/trades-2025-12-10-1-1');
    const missing = await api.call('GET', '/runs/nope');
    const huge = await api.call('GET', `/runs/${'r'.repeat(300)}`);

    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({
      run_id: 'trades-2025-12-10-1-1',
      status: 'COMPLETED',
      summary: { matched: 15 },
    });
    expect(found.body).not.toHaveProperty('dataset_date');
    expect(found.body).not.toHaveProperty('lease_until');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain('nope');
    expect(huge.status).toBe(400);
  });
});

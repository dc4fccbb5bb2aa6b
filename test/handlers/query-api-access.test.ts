/**
 * Who may do what, through the query API handler: every route's roles (allowed and refused, for
 * each role, before the handler runs) and the dataset entitlements of listings, search, reads,
 * changes and uploads. The claims are what API Gateway's JWT authorizer passes (arrays as `[a b]`).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { ROLES, rolesSatisfying, type Role } from '../../functions/query-api/access.ts';
import { API_ROUTES, routeKey, type RouteKey } from '../../functions/query-api/route-table.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import type { VectorIndex } from '../../functions/shared/search/ports.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';
import { completedSummary, runRecord } from '../support/runs.ts';
import { createMasker, LOCAL_MASKING_SECRET } from '../../functions/shared/masking.ts';
import type { ReconPolicy } from '../../functions/shared/policy.ts';
import { datasetTriagePolicies } from '../../functions/triage/dataset-policy.ts';

const NOW = Date.parse('2026-01-05T10:00:00.000Z');
let dynamo: TestDynamo;
const ids: Record<string, string> = {};

async function seedException(dataset: string, key: string, runId = `run-${dataset}`) {
  const date = '2025-12-10';
  const createdAt = '2025-12-10T08:00:00.000Z';
  const id = exceptionId(dataset, date, 'AMOUNT_MISMATCH', JSON.stringify({ id: key }));
  const stored = {
    exception_id: id,
    run_id: runId,
    dataset,
    business_date: date,
    exception_type: 'AMOUNT_MISMATCH',
    key: { id: key },
    source: { id: key, amount: '1.00' },
    target: { id: key, amount: '2.00' },
    diffs: [{ field: 'amount', source: '1.00', target: '2.00', delta: '1.00' }],
    lines: { source: [2], target: [2] },
    policy_severity: 'MEDIUM',
    status: 'OPEN',
    created_at: createdAt,
    updated_at: createdAt,
    version: 1,
    history: [],
    content_hash: 'h',
    last_changed_run_id: runId,
    record_type: 'EXCEPTION',
    dataset_date: `${dataset}#${date}`,
    last_seen_at: createdAt,
  };
  await dynamo.doc.send(
    new PutCommand({ TableName: dynamo.names.tables.exceptions, Item: { ...stored, ...exceptionIndexKeys(stored) } }),
  );
  return id;
}

beforeAll(async () => {
  dynamo = await startTestDynamo();
  for (const dataset of ['trades', 'payments', 'fx']) {
    ids[dataset] = await seedException(dataset, `${dataset}-1`);
    await seedException(dataset, `${dataset}-2`);
    await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request(
      runRecord({
        run_id: `run-${dataset}`,
        dataset,
        business_date: '2025-12-10',
        status: 'FAILED',
        requested_at: '2026-01-01T08:00:00.000Z',
      }),
    );
  }
});
afterAll(async () => {
  await dynamo.stop();
});

type Claims = Record<string, string>;
const claimsOf = (roles: string, datasets = '*'): Claims => ({
  sub: `user-${roles || 'none'}`,
  email: `${roles || 'none'}@bank.example`,
  'cognito:groups': `[${roles}]`,
  'tally:datasets': datasets,
});

function event(
  method: string,
  path: string,
  options: { claims?: Claims; query?: Record<string, string>; body?: unknown } = {},
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
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: NOW,
      ...(options.claims ? { authorizer: { jwt: { claims: options.claims, scopes: null } } } : {}),
    } as APIGatewayProxyEventV2['requestContext'],
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    isBase64Encoded: false,
  };
}

function setup(overrides: Partial<QueryApiDeps> = {}) {
  const index = {
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async () => undefined),
    replaceMany: vi.fn(async () => undefined),
    updateFields: vi.fn(async () => undefined),
    deleteWhere: vi.fn(async () => 0),
    search: vi.fn(async (_v: number[], _k: number, filter?: Readonly<Record<string, string>>) => [
      {
        id: `hit-${filter?.dataset ?? 'any'}`,
        score: 0.5,
        fields: { exception_id: `hit-${filter?.dataset ?? 'any'}`, dataset: filter?.dataset ?? 'any' },
        text: 't',
      },
    ]),
    count: vi.fn(async () => 0),
  } satisfies VectorIndex;
  const deps: QueryApiDeps = {
    store: queryStoreOf(dynamo),
    uploads: { presignPut: vi.fn(async () => 'https://bucket.s3.amazonaws.com/signed') },
    datasets: { known: async () => ['trades', 'payments', 'fx'] },
    policyDocuments: {
      objects: { list: async () => [], read: async () => undefined },
    },
    runTriage: {
      runs: new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs),
      triageQueue: { send: async () => undefined },
    },
    retriage: { triageQueue: { send: async () => undefined } },
    usage: { queries: { getDays: async () => [] }, dailyBudgetMicroUsd: undefined },
    healthChecks: [],
    embedder: { id: 'fake', dimensions: 3, embed: async (texts: string[]) => texts.map(() => [0.1, 0.2, 0.3]) },
    exceptionsIndex: index,
    queues: { depths: async () => [] },
    paginationSecret: 'test-pagination-secret-0123456789abcdef',
    corsOrigins: [],
    // As on AWS: no fallback identity; every request carries the authorizer's claims.
    localIdentity: undefined,
    now: () => NOW,
    ...overrides,
  };
  const handler = createHandler(() => deps);
  const call = async (
    method: string,
    path: string,
    options: { claims?: Claims; query?: Record<string, string>; body?: unknown } = {},
  ) => {
    const res = (await handler(event(method, path, options), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    const text = res.body ?? '';
    let body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.statusCode as number, body };
  };
  return { call, index, deps };
}

/**
 * The roles each route needs, written out again here on purpose: a route added to the table
 * without an entry here fails below, so its rule is decided and tested, not inherited.
 */
const EXPECTED: Readonly<Record<RouteKey, readonly Role[]>> = {
  'GET /health': [],
  'GET /me': [],
  'POST /uploads': ['uploader'],
  'POST /policies': ['admin'],
  'GET /exceptions': ['viewer'],
  'GET /exception-counts': ['viewer'],
  'GET /exceptions/{id}': ['viewer'],
  'PATCH /exceptions/{id}': ['analyst'],
  'POST /exceptions/bulk': ['analyst'],
  // An approver decides; the maker (an analyst) may withdraw (workflow.ts checks which).
  'POST /exceptions/{id}/approval': ['analyst'],
  'POST /exceptions/{id}/match': ['analyst'],
  'POST /exceptions/{id}/triage': ['analyst'],
  'GET /exceptions/{id}/suggestions': ['viewer'],
  'POST /exceptions/{id}/suggestions/{other_id}/decline': ['analyst'],
  'GET /search': ['viewer'],
  'GET /runs': ['viewer'],
  'GET /runs/{run_id}': ['viewer'],
  'GET /runs/{run_id}/report': ['viewer'],
  'GET /runs/{run_id}/patterns': ['viewer'],
  'POST /runs/{run_id}/patterns/{pattern_id}/actions': ['analyst'],
  'POST /runs/{run_id}/triage': ['admin'],
  'GET /files': ['viewer'],
  'GET /queues': ['viewer'],
  'GET /usage': ['viewer'],
  'GET /policies': ['viewer'],
  'GET /policies/{name}': ['viewer'],
  'GET /policies/datasets/{dataset}': ['viewer'],
  // Each tool call meets its own route's rule (test/unit/mcp-http.test.ts).
  'POST /mcp': [],
};

/** One concrete request per route (a valid shape; whether the thing exists does not matter here). */
function sampleRequest(key: string): { path: string; query?: Record<string, string>; body?: unknown } {
  const fill = (path: string) =>
    path
      .replace('{id}', ids.trades as string)
      .replace('{run_id}', 'run-trades')
      .replace('{other_id}', ids.payments as string)
      .replace('{pattern_id}', 'pat_0123456789abcdef')
      .replace('{name}', 'recon-policy')
      .replace('{dataset}', 'trades');
  const [, path] = key.split(' ') as [string, string];
  const bodies: Record<string, unknown> = {
    'POST /uploads': {
      dataset: 'trades',
      business_date: '2025-12-10',
      side: 'source',
      content_length: 10,
    },
    'POST /policies': { dataset: 'trades', content_length: 10 },
    'PATCH /exceptions/{id}': { version: 99, note: 'checking' },
    'POST /runs/{run_id}/patterns/{pattern_id}/actions': { action: 'acknowledge' },
    'POST /runs/{run_id}/triage': { action: 'release' },
    'POST /exceptions/bulk': { ids: [ids.trades], change: { note: 'checking' } },
    'POST /exceptions/{id}/approval': { version: 99, decision: 'approve' },
    'POST /exceptions/{id}/match': { other_id: ids.payments, reason_code: 'OTHER', version: 99, other_version: 99 },
    'POST /mcp': { jsonrpc: '2.0', id: 1, method: 'tools/list' },
  };
  return {
    path: fill(path),
    ...(key === 'GET /search' ? { query: { q: 'amount' } } : {}),
    ...(bodies[key] !== undefined ? { body: bodies[key] } : {}),
  };
}

describe('route rules', () => {
  it('every route in the table has its rule stated in this test, and the table says the same', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(API_ROUTES.map(routeKey).sort());
    for (const route of API_ROUTES) expect(route.roles, routeKey(route)).toEqual(EXPECTED[routeKey(route) as RouteKey]);
  });

  const cases = API_ROUTES.filter((r) => !r.public).flatMap((route) =>
    [...ROLES, 'none' as const].map((role) => ({ key: routeKey(route), role })),
  );
  it.each(cases)('$key as $role', async ({ key, role }) => {
    const api = setup();
    const needed = EXPECTED[key as RouteKey];
    const allowed = needed.length === 0 || (role !== 'none' && rolesSatisfying(needed).includes(role));
    const request = sampleRequest(key);
    const [method] = key.split(' ') as [string];

    const res = await api.call(method, request.path, {
      claims: claimsOf(role === 'none' ? '' : role),
      ...(request.query ? { query: request.query } : {}),
      ...(request.body !== undefined ? { body: request.body } : {}),
    });

    if (allowed) {
      expect([401, 403], `${key} as ${role}: ${JSON.stringify(res.body)}`).not.toContain(res.status);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
    } else {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
      expect(res.body.error.message).toContain(`needs the ${needed.join(' or ')} role`);
    }
  });

  it('the health probe needs no caller at all', async () => {
    const res = await setup().call('GET', '/health');
    expect(res.status).toBe(200);
  });

  it('a request without claims is refused with 401 when there is no local identity (AWS)', async () => {
    const res = await setup().call('GET', '/exceptions');
    expect(res.status).toBe(401);
  });

  it('the local identity without an authorizer is an admin of every dataset (npm start)', async () => {
    const res = await setup({ localIdentity: 'local-analyst' }).call('GET', '/me');
    expect(res.body).toEqual({ id: 'local-analyst', roles: [...ROLES], datasets: '*' });
  });

  it('GET /me returns the id, roles with those implied, and datasets', async () => {
    const res = await setup().call('GET', '/me', { claims: claimsOf('approver', 'payments, fx') });
    expect(res.body).toEqual({
      id: 'approver@bank.example',
      roles: ['viewer', 'analyst', 'approver'],
      datasets: ['fx', 'payments'],
    });
  });

  it('reads roles from the scope claim with a prefix when so configured', async () => {
    const api = setup({ access: { roleClaim: 'scope', rolePrefix: 'tally/', datasetsClaim: 'tally:datasets' } });
    const me = await api.call('GET', '/me', {
      claims: { sub: 's', scope: 'openid tally/uploader analyst', 'tally:datasets': '*' },
    });
    expect(me.body.roles).toEqual(['viewer', 'uploader']);
  });
});

describe('dataset entitlements', () => {
  const paymentsAndFx = claimsOf('analyst', 'payments fx');
  const paymentsOnly = claimsOf('analyst', 'payments');

  it('listings return only the entitled datasets, one or several, without short pages', async () => {
    const api = setup();
    const several = await api.call('GET', '/exceptions', { claims: paymentsAndFx, query: { limit: '3' } });
    const one = await api.call('GET', '/exceptions', { claims: paymentsOnly });
    const all = await api.call('GET', '/exceptions', { claims: claimsOf('analyst', '*') });
    const none = await api.call('GET', '/exceptions', { claims: { ...claimsOf('analyst'), 'tally:datasets': '' } });

    // Four entitled exceptions: a page of 3 is full (filtered in the query, not after it).
    expect(several.body.items).toHaveLength(3);
    expect(several.body.next_token).not.toBeNull();
    const rest = await api.call('GET', '/exceptions', {
      claims: paymentsAndFx,
      query: { limit: '3', next_token: several.body.next_token },
    });
    const seen = [...several.body.items, ...rest.body.items].map((i: { dataset: string }) => i.dataset);
    expect(seen.sort()).toEqual(['fx', 'fx', 'payments', 'payments']);
    expect(new Set(one.body.items.map((i: { dataset: string }) => i.dataset))).toEqual(new Set(['payments']));
    expect(all.body.items).toHaveLength(6);
    expect(none.body.items).toEqual([]);
  });

  it('more entitled datasets than one IN condition takes (100) still filter in the query', async () => {
    const many = [...Array.from({ length: 150 }, (_, i) => `ds${i}`), 'fx'].join(' ');
    const res = await setup().call('GET', '/exceptions', { claims: claimsOf('viewer', many) });
    expect(res.body.items.map((i: { dataset: string }) => i.dataset)).toEqual(['fx', 'fx']);
  });

  it('a dataset filter outside the entitlement is refused with 403 naming it', async () => {
    const res = await setup().call('GET', '/exceptions', { claims: paymentsOnly, query: { dataset: 'trades' } });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN_DATASET', details: { dataset: 'trades' } });
  });

  it('counts, runs and files narrow to the entitlement too', async () => {
    const api = setup();
    const counts = await api.call('GET', '/exception-counts', { claims: paymentsAndFx });
    const runs = await api.call('GET', '/runs', { claims: paymentsAndFx });
    const files = await api.call('GET', '/files', { claims: paymentsOnly });
    const runsOne = await api.call('GET', '/runs', { claims: paymentsOnly });

    expect(counts.body.total).toBe(4);
    expect(runs.body.items.map((r: { dataset: string }) => r.dataset).sort()).toEqual(['fx', 'payments']);
    expect(runsOne.body.items.map((r: { dataset: string }) => r.dataset)).toEqual(['payments']);
    expect(files.status).toBe(200);
    expect((await api.call('GET', '/runs', { claims: paymentsOnly, query: { dataset: 'fx' } })).status).toBe(403);
  });

  it('search asks the index for each entitled dataset and returns only those', async () => {
    const api = setup();
    const res = await api.call('GET', '/search', { claims: paymentsAndFx, query: { q: 'amount' } });

    const filters = api.index.search.mock.calls.map((c) => c[2]);
    expect(filters).toEqual([{ dataset: 'fx' }, { dataset: 'payments' }]);
    expect(res.body.items.map((i: { dataset: string }) => i.dataset).sort()).toEqual(['fx', 'payments']);
    const refused = await api.call('GET', '/search', { claims: paymentsAndFx, query: { q: 'x', dataset: 'trades' } });
    expect(refused.status).toBe(403);
  });

  it('an exception or run of another dataset is answered 404, as if it did not exist', async () => {
    const api = setup();
    const read = await api.call('GET', `/exceptions/${ids.trades}`, { claims: paymentsOnly });
    const change = await api.call('PATCH', `/exceptions/${ids.trades}`, {
      claims: paymentsOnly,
      body: { version: 1, status: 'ACKNOWLEDGED' },
    });
    const run = await api.call('GET', '/runs/run-trades', { claims: paymentsOnly });
    const own = await api.call('PATCH', `/exceptions/${ids.payments}`, {
      claims: paymentsOnly,
      body: { version: 1, note: 'mine' },
    });

    expect([read.status, change.status, run.status]).toEqual([404, 404, 404]);
    expect(read.body.error.message).toBe(`no exception with id ${ids.trades}`);
    const stored = await api.call('GET', `/exceptions/${ids.trades}`, { claims: claimsOf('viewer', '*') });
    expect(stored.body.status).toBe('OPEN');
    expect(own.status).toBe(200);
    expect(own.body.history.at(-1)).toMatchObject({ by: 'analyst@bank.example', note: 'mine' });
  });

  it('an upload outside the entitlement is refused before any URL is signed', async () => {
    const api = setup();
    const upload = (dataset: string) =>
      api.call('POST', '/uploads', {
        claims: claimsOf('uploader', 'payments'),
        body: { dataset, business_date: '2025-12-10', side: 'source', content_length: 10 },
      });

    const refused = await upload('trades');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('FORBIDDEN_DATASET');
    expect(api.deps.uploads.presignPut).not.toHaveBeenCalled();
    expect((await upload('payments')).status).toBe(201);
  });
});

describe('sensitive values', () => {
  // fx's policy here: the key `id` is sensitive.
  const FX_ID_SENSITIVE = datasetTriagePolicies(
    { current: async () => ({ sensitiveFields: ['id'] }) as unknown as ReconPolicy },
    'tally-data',
    LOCAL_MASKING_SECRET,
  );
  const recordFxRun = (runId: string, date: string, summary: NonNullable<RunRecord['summary']>) =>
    new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request(
      runRecord({ run_id: runId, dataset: 'fx', business_date: date, summary }),
    );

  it("a viewer's run report shows the dataset's sensitive values as their tokens, as the listing does", async () => {
    // A completed fx run of one exception whose key `id` is sensitive in fx's policy.
    await seedException('fx', 'FX-ACCT-2042', 'run-fx-done');
    await recordFxRun('run-fx-done', '2025-12-10', completedSummary({ AMOUNT_MISMATCH: 1 }));
    const api = setup({ datasetPolicies: FX_ID_SENSITIVE });
    const token = createMasker(['id'], LOCAL_MASKING_SECRET).token('FX-ACCT-2042');
    const report = (roles: string) =>
      api.call('GET', '/runs/run-fx-done/report', { claims: claimsOf(roles), query: { format: 'md' } });

    const viewer = await report('viewer');
    const analyst = await report('analyst');
    const listed = await api.call('GET', '/exceptions', {
      claims: claimsOf('viewer'),
      query: { run_id: 'run-fx-done' },
    });

    expect(viewer.status).toBe(200);
    expect(viewer.body).not.toContain('FX-ACCT-2042');
    expect(viewer.body).toContain(`Key id=${token}`);
    expect(listed.body.items[0].key).toEqual({ id: token });
    expect(analyst.body).toContain('Key id=FX-ACCT-2042');
  });

  it("a viewer's run, runs listing and report show a control total's group of a sensitive column as its token", async () => {
    const group = {
      group: { id: 'FX-ACCT-2042' },
      source: { rows: 1, sums: { amount: '10.00' } },
      target: { rows: 1, sums: { amount: '12.00' } },
      difference: { rows: 0, sums: { amount: '2.00' } },
    };
    await recordFxRun('run-fx-totals', '2025-12-11', { ...completedSummary({}), control_totals: [group] });
    const api = setup({ datasetPolicies: FX_ID_SENSITIVE });
    const token = createMasker(['id'], LOCAL_MASKING_SECRET).token('FX-ACCT-2042');
    const as = (roles: string) => ({ claims: claimsOf(roles) });

    const run = await api.call('GET', '/runs/run-fx-totals', as('viewer'));
    const listed = await api.call('GET', '/runs', { ...as('viewer'), query: { dataset: 'fx' } });
    const report = await api.call('GET', '/runs/run-fx-totals/report', { ...as('viewer'), query: { format: 'md' } });
    const analysts = await api.call('GET', '/runs/run-fx-totals', as('analyst'));

    expect(run.body.summary.control_totals).toEqual([{ ...group, group: { id: token } }]);
    expect(
      listed.body.items.find((r: { run_id: string }) => r.run_id === 'run-fx-totals').summary.control_totals,
    ).toEqual([{ ...group, group: { id: token } }]);
    expect(report.status).toBe(200);
    expect(report.body).not.toContain('FX-ACCT-2042');
    expect(report.body).toContain(token);
    expect(analysts.body.summary.control_totals).toEqual([group]);
  });
});

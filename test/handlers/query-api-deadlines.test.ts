/**
 * GET /exceptions?overdue=true&sort=due through the real handler on dynalite: only open
 * exceptions past their due date, soonest due first, each with its age and overdue flag; with no
 * other filter than status, exactly so however many there are (by_status_due_sharded).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { BusinessEvent } from '../../functions/shared/notifications.ts';
import { putExceptions, queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';
import { DUE_SORT_CAP } from '../../functions/shared/deadlines.ts';

const NOW = Date.parse('2026-12-08T12:00:00.000Z');
let dynamo: TestDynamo;

/** id suffix, status, due_at (none: no target). */
const SEEDS: [string, string, string | undefined][] = [
  ['1', 'OPEN', '2026-12-08T00:00:00.000Z'],
  ['2', 'IN_PROGRESS', '2026-12-07T00:00:00.000Z'],
  ['3', 'ACKNOWLEDGED', '2026-12-09T00:00:00.000Z'],
  ['4', 'RESOLVED', '2026-12-01T00:00:00.000Z'],
  ['5', 'PENDING', undefined],
  ['6', 'OPEN', undefined],
  ['7', 'AWAITING_APPROVAL', '2026-12-08T11:59:59.000Z'],
];

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const items = SEEDS.map(([n, status, due], i) => {
    const at = new Date(Date.UTC(2026, 11, 4, 8) + i * 60_000).toISOString();
    return {
      exception_id: n.padStart(32, '0'),
      run_id: 'run-1',
      dataset: 'trades',
      business_date: '2026-12-04',
      dataset_date: 'trades#2026-12-04',
      exception_type: 'AMOUNT_MISMATCH',
      policy_severity: 'HIGH',
      status,
      record_type: 'EXCEPTION',
      created_at: at,
      updated_at: at,
      first_seen_at: at,
      ...(due ? { due_at: due } : {}),
      version: 1,
    };
  });
  await putExceptions(dynamo, items);
}, 60_000);
afterAll(async () => {
  await dynamo.stop();
});

const announced: BusinessEvent[] = [];

function get(
  query: Record<string, string>,
  request: { method?: string; path?: string; body?: unknown } = {},
  db: TestDynamo = dynamo,
) {
  const deps = {
    store: queryStoreOf(db),
    paginationSecret: 's',
    corsOrigins: ['*'],
    localIdentity: 'me',
    now: () => NOW,
    notifier: { publish: async (e: BusinessEvent) => void announced.push(e) },
    exceptionsIndex: { updateFields: async () => undefined },
    healthChecks: [],
  } as unknown as QueryApiDeps;
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: request.path ?? '/exceptions',
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json' },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      http: {
        method: request.method ?? 'GET',
        path: request.path ?? '/exceptions',
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 't',
      },
      requestId: 'req',
    },
    ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  return createHandler(() => deps)(event, lambdaContext).then((r) => {
    const res = r as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  });
}

const ids = (body: { items: { exception_id: string }[] }) => body.items.map((e) => e.exception_id.replace(/^0+/, ''));

describe('GET /exceptions by deadline', () => {
  it('overdue=true lists only open exceptions past their due date, with their age and overdue flag', async () => {
    const res = await get({ overdue: 'true' });
    expect(res.status).toBe(200);
    expect(ids(res.body).sort()).toEqual(['1', '2', '7']);
    expect(res.body.items.every((e: { overdue: boolean }) => e.overdue)).toBe(true);
    expect(res.body.items.find((e: { exception_id: string }) => e.exception_id.endsWith('1'))).toMatchObject({
      due_at: '2026-12-08T00:00:00.000Z',
      age_hours: 100,
    });
  });

  it('counts what overdue=true lists, for the dashboard charts', async () => {
    const res = await get({ overdue: 'true' }, { path: '/exception-counts' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ total: 3, by_type: { AMOUNT_MISMATCH: 3 }, complete: true });
    expect((await get({}, { path: '/exception-counts' })).body.total).toBe(SEEDS.length);
  });

  it('sort=due orders soonest due first, those without a due date last', async () => {
    const res = await get({ sort: 'due' });
    expect(res.status).toBe(200);
    expect(ids(res.body)).toEqual(['4', '2', '1', '7', '3', '5', '6'].slice(0, 5).concat(ids(res.body).slice(5)));
    expect(ids(res.body).slice(5).sort()).toEqual(['5', '6']);
    expect(res.body).toMatchObject({ next_token: null, truncated: false });

    const overdueFirst = await get({ overdue: 'true', sort: 'due', status: 'OPEN' });
    expect(ids(overdueFirst.body)).toEqual(['1']);
  });

  it('overdue=true&sort=due reads the due-date index: exact order, any other filter as before', async () => {
    const res = await get({ overdue: 'true', sort: 'due' });
    expect(res.status).toBe(200);
    expect(ids(res.body)).toEqual(['2', '1', '7']);
    expect(res.body).toMatchObject({ count: 3, next_token: null, truncated: false });
    expect(ids((await get({ overdue: 'true', sort: 'due', limit: '2' })).body)).toEqual(['2', '1']);
    // A status that is never overdue, and one that can be.
    expect(ids((await get({ overdue: 'true', sort: 'due', status: 'PENDING' })).body)).toEqual([]);
    expect(ids((await get({ overdue: 'true', sort: 'due', status: 'AWAITING_APPROVAL' })).body)).toEqual(['7']);
    // A filter that index does not hold: the listing by creation, the same answer.
    expect(ids((await get({ overdue: 'true', sort: 'due', dataset: 'trades' })).body)).toEqual(['2', '1', '7']);
    expect(ids((await get({ overdue: 'true', sort: 'due', dataset: 'other' })).body)).toEqual([]);
  });

  it('refuses an overdue value that is not true or false, and a token with sort=due', async () => {
    expect((await get({ overdue: 'yes' })).status).toBe(400);
    expect((await get({ sort: 'due', next_token: 'abc' })).status).toBe(400);
    expect((await get({ sort: 'soon' })).status).toBe(400);
  });
});

describe('PATCH /exceptions/{id} with an assignee', () => {
  it('announces the assignment on the business events topic, and an unassignment not', async () => {
    const id = '3'.padStart(32, '0');
    const assigned = await get(
      {},
      { method: 'PATCH', path: `/exceptions/${id}`, body: { version: 1, assignee: 'ana' } },
    );
    expect(assigned.status).toBe(200);
    await get({}, { method: 'PATCH', path: `/exceptions/${id}`, body: { version: 2, assignee: null } });
    expect(announced).toEqual([
      expect.objectContaining({ kind: 'assigned', exception_id: id, assignee: 'ana', by: 'me', dataset: 'trades' }),
    ]);
  });
});

describe('GET /exceptions?overdue=true&sort=due past DUE_SORT_CAP matches', () => {
  let many: TestDynamo;
  /** More overdue exceptions than sort=due collects by creation; the oldest created is due soonest. */
  const COUNT = DUE_SORT_CAP + 100;
  beforeAll(async () => {
    many = await startTestDynamo();
    await putExceptions(
      many,
      Array.from({ length: COUNT }, (_, i) => {
        const at = new Date(Date.UTC(2026, 11, 1) + i * 1000).toISOString();
        return {
          exception_id: String(i + 1).padStart(32, '0'),
          run_id: 'run-1',
          dataset: 'trades',
          business_date: '2026-12-01',
          dataset_date: 'trades#2026-12-01',
          exception_type: 'AMOUNT_MISMATCH',
          policy_severity: 'HIGH',
          status: 'OPEN',
          record_type: 'EXCEPTION',
          created_at: at,
          updated_at: at,
          first_seen_at: at,
          // Created later, due later: the newest-first read meets the soonest due last.
          due_at: new Date(Date.UTC(2026, 11, 2) + i * 1000).toISOString(),
          version: 1,
        };
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await many.stop();
  });

  it('lists the soonest due of all of them, not of the newest DUE_SORT_CAP', async () => {
    const res = await get({ overdue: 'true', sort: 'due', limit: '3' }, {}, many);
    expect(res.status).toBe(200);
    expect(ids(res.body)).toEqual(['1', '2', '3']);
    expect(res.body.truncated).toBe(false);
    // The listing by creation (a filter the due-date index does not hold) stops at the cap and says so.
    const capped = await get({ overdue: 'true', sort: 'due', limit: '3', dataset: 'trades' }, {}, many);
    expect(ids(capped.body)).toEqual(['101', '102', '103']);
    expect(capped.body.truncated).toBe(true);
  });
});

/**
 * POST /runs/{id}/triage through the real handler: an analyst releases or abandons a run the
 * runaway guard held; GET /runs and GET /runs/{id} show the run's triage state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { DispatchRequest } from '../../functions/shared/messages.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { RunRecord, RunTriageState } from '../../functions/shared/tables/runs.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

const NOW = Date.parse('2026-01-05T10:00:00.000Z');
let dynamo: TestDynamo;
let runs: DynamoRunStore;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
});
afterAll(async () => {
  await dynamo.stop();
});

let n = 0;
async function recordRun(status: RunRecord['status'], triage?: RunTriageState): Promise<string> {
  const runId = `run-held-${++n}`;
  await runs.request({
    run_id: runId,
    dataset: 'trades',
    business_date: '2025-12-10',
    status,
    source: { bucket: 'b', key: 'incoming/trades/2025-12-10/source.csv', etag: `s${n}` },
    target: { bucket: 'b', key: 'incoming/trades/2025-12-10/target.csv', etag: `t${n}` },
    requested_at: `2026-01-05T0${n % 10}:00:00.000Z`,
    requested_by: 'ingest',
    ...(triage ? { triage } : {}),
  });
  return runId;
}

const HELD: RunTriageState = {
  state: 'HELD',
  reason: 'break rate 0.95 is above 0.5',
  at: '2026-01-05T09:00:00.000Z',
  notified: true,
};

function setup() {
  const queued: DispatchRequest[] = [];
  const deps = {
    store: queryStoreOf(dynamo),
    runTriage: { runs, triageQueue: { send: async (m: DispatchRequest[]) => void queued.push(...m) } },
    queues: { depths: async () => [] },
    paginationSecret: 'test-secret',
    corsOrigins: ['*'],
    localIdentity: 'analyst@acme.example',
    now: () => NOW,
    healthChecks: [],
  } as unknown as QueryApiDeps;
  const handler = createHandler(() => deps);
  const call = async (method: string, path: string, body?: unknown) => {
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: path,
      rawQueryString: '',
      headers: { 'content-type': 'application/json' },
      requestContext: {
        accountId: '0',
        apiId: 'api',
        domainName: 'x',
        domainPrefix: 'x',
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
        requestId: 'req',
        routeKey: '$default',
        stage: '$default',
        time: '',
        timeEpoch: NOW,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEventV2;
    const res = (await handler(event, lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
  return { call, queued };
}

describe('POST /runs/{id}/triage', () => {
  it('releases a held, completed run: RELEASED by the caller, and its dispatch queued', async () => {
    const runId = await recordRun('COMPLETED', HELD);
    const { call, queued } = setup();

    const res = await call('POST', `/runs/${runId}/triage`, { action: 'release' });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      run_id: runId,
      triage: { state: 'RELEASED', by: 'analyst@acme.example', at: '2026-01-05T10:00:00.000Z', reason: HELD.reason },
    });
    expect(queued).toEqual([{ kind: 'dispatch', run_id: runId }]);
    expect((await call('GET', `/runs/${runId}`)).body.triage.state).toBe('RELEASED');
  });

  it('releases a held run still storing without queueing: its completion dispatches it', async () => {
    const runId = await recordRun('STORING', HELD);
    const { call, queued } = setup();

    const res = await call('POST', `/runs/${runId}/triage`, { action: 'release' });

    expect(res.body.triage.state).toBe('RELEASED');
    expect(queued).toEqual([]);
  });

  it('abandons a held run: ABANDONED, nothing queued', async () => {
    const runId = await recordRun('COMPLETED', HELD);
    const { call, queued } = setup();

    const res = await call('POST', `/runs/${runId}/triage`, { action: 'abandon' });

    expect(res.status).toBe(200);
    expect(res.body.triage).toMatchObject({ state: 'ABANDONED', by: 'analyst@acme.example' });
    expect(queued).toEqual([]);
  });

  it.each([
    ['a run that is not held', { state: 'PENDING', at: '2026-01-05T09:00:00.000Z' } as RunTriageState, 'PENDING'],
    ['a run recorded before the guard', undefined, 'PENDING'],
    ['a run already released', { state: 'RELEASED', at: '2026-01-05T09:00:00.000Z' } as RunTriageState, 'RELEASED'],
  ])('answers 409 for %s, changing nothing', async (_, triage, state) => {
    const runId = await recordRun('COMPLETED', triage);
    const { call, queued } = setup();

    const res = await call('POST', `/runs/${runId}/triage`, { action: 'release' });

    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('RUN_NOT_HELD');
    expect(res.body.error.message).toContain(`its triage is ${state}`);
    expect(queued).toEqual([]);
  });

  it('makes two concurrent releases one decision: one 200, one 409, one dispatch', async () => {
    const runId = await recordRun('COMPLETED', HELD);
    const { call, queued } = setup();

    const answers = await Promise.all([
      call('POST', `/runs/${runId}/triage`, { action: 'release' }),
      call('POST', `/runs/${runId}/triage`, { action: 'abandon' }),
    ]);

    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(queued.length).toBeLessThanOrEqual(1);
  });

  it.each([
    [{}, 'action: is required'],
    [{ action: 'approve' }, 'action: must be one of release, abandon'],
    [{ action: 'release', note: 'x' }, 'unknown field "note"'],
  ])('rejects %j with a 400', async (body, message) => {
    const runId = await recordRun('COMPLETED', HELD);
    const res = await setup().call('POST', `/runs/${runId}/triage`, body);

    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(message);
  });

  it('answers 404 for a run that does not exist', async () => {
    const res = await setup().call('POST', '/runs/run-nope/triage', { action: 'release' });

    expect(res.status).toBe(404);
  });
});

describe('GET /runs', () => {
  it("shows each run's triage state and reason", async () => {
    const runId = await recordRun('COMPLETED', HELD);

    const res = await setup().call('GET', '/runs');

    expect(res.body.items.find((r: RunRecord) => r.run_id === runId)).toMatchObject({
      triage: { state: 'HELD', reason: HELD.reason },
    });
  });
});

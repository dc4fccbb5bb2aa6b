/**
 * The workflow of issue 14 through the query API's handler against DynamoDB (dynalite): owners and
 * queues (team, assignee=me, team=), bulk changes, maker-checker, manual matches (remembered by
 * recon's writes) and suggested matches.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { Finding } from '../../functions/recon/findings.ts';
import { validateDatasetPolicy } from '../../functions/shared/dataset-policies.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { triageQueueMessageSchema, type TriageRequest } from '../../functions/shared/messages.ts';
import type { VectorIndex } from '../../functions/shared/search/ports.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import type { Row } from '../../functions/shared/types.ts';
import { writeFindings } from '../../functions/store/exception-writes.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

const NOW = Date.parse('2026-01-05T10:00:00.000Z');
const TRADES = validateDatasetPolicy(
  'trades',
  readFileSync(join(import.meta.dirname, '../../policies/datasets/trades.md'), 'utf8'),
  'trades.md',
);

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

function httpEvent(
  method: string,
  path: string,
  body?: unknown,
  query?: Record<string, string>,
  who?: string,
  role = 'approver',
) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query ?? {}).toString(),
    headers: { 'content-type': 'application/json' },
    ...(query ? { queryStringParameters: query } : {}),
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req',
      routeKey: '$default',
      stage: '$default',
      timeEpoch: NOW,
      ...(who
        ? {
            authorizer: {
              jwt: { claims: { email: who, 'cognito:groups': `[${role}]`, 'tally:datasets': '*' }, scopes: [] },
            },
          }
        : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

function setup() {
  const statusUpdates: { id: string; status: string }[] = [];
  const triageRequests: TriageRequest[] = [];
  const index = {
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async () => undefined),
    replaceMany: vi.fn(async () => undefined),
    updateFields: vi.fn(async (id: string, fields: Record<string, unknown>) => {
      statusUpdates.push({ id, status: String(fields.status) });
    }),
    deleteWhere: vi.fn(async () => 0),
    search: vi.fn(async () => []),
    count: vi.fn(async () => 0),
  } satisfies VectorIndex;
  const deps: QueryApiDeps = {
    store: queryStoreOf(dynamo),
    uploads: { presignPut: vi.fn(async () => 'https://signed') },
    // Every test's dataset reads like trades (its own name keeps its exceptions apart).
    datasets: { known: async () => ['trades'], policy: async () => TRADES },
    healthChecks: [],
    embedder: { id: 'fake', dimensions: 3, embed: vi.fn(async (t: string[]) => t.map(() => [0, 0, 1])) },
    exceptionsIndex: index,
    queues: { depths: vi.fn(async () => []) },
    paginationSecret: 'test-pagination-secret-0123456789abcdef',
    corsOrigins: ['*'],
    localIdentity: 'local-analyst',
    retriage: { triageQueue: { send: async (messages: TriageRequest[]) => void triageRequests.push(...messages) } },
    now: () => NOW,
  };
  const handler = createHandler(() => deps);
  const call = async (
    method: string,
    path: string,
    options: { body?: unknown; query?: Record<string, string>; as?: string; role?: string } = {},
  ) => {
    const res = (await handler(
      httpEvent(method, path, options.body, options.query, options.as, options.role),
      lambdaContext,
    )) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
  return { call, statusUpdates, triageRequests };
}

let counter = 0;
/** A unique dataset per test, so listings and suggestions see only that test's exceptions. */
const freshDataset = () => `wf${++counter}`;

interface Missing {
  type: 'MISSING_IN_TARGET' | 'MISSING_IN_SOURCE' | 'AMOUNT_MISMATCH';
  tradeId: string;
  account?: string;
  date?: string;
  amount?: string;
}

function finding(m: Missing): Finding {
  const row: Row = {
    trade_id: m.tradeId,
    account_id: m.account ?? 'ACC1',
    trade_date: m.date ?? '2025-12-10',
    amount: m.amount ?? '100.00',
  };
  return {
    type: m.type,
    key: { trade_id: m.tradeId },
    keyText: m.tradeId,
    source: m.type === 'MISSING_IN_SOURCE' ? null : row,
    target: m.type === 'MISSING_IN_TARGET' ? null : row,
    diffs: [],
    lines: { source: m.type === 'MISSING_IN_SOURCE' ? [] : [2], target: m.type === 'MISSING_IN_TARGET' ? [] : [2] },
    severity: 'HIGH',
  };
}

/** Stores the findings as recon's store consumer does (a run of `dataset` on 2025-12-10); returns their ids. */
async function run(dataset: string, runId: string, findings: Missing[]): Promise<string[]> {
  const store = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
  const ctx = { runId, dataset, businessDate: '2025-12-10', now: new Date(NOW).toISOString() };
  await writeFindings(ctx, findings.map(finding), { exceptions: store });
  return findings.map((m) => exceptionId(dataset, '2025-12-10', m.type, m.tradeId));
}

describe('owners and queues', () => {
  it('sets a team beside the assignee, keeps every reassignment in the history, and filters by team and assignee=me', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [a, b, c] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T3' },
    ]);

    const first = await api.call('PATCH', `/exceptions/${a}`, {
      body: { version: 1, team: 'payments-ops', assignee: 'ana@x' },
      as: 'lead@x',
    });
    const second = await api.call('PATCH', `/exceptions/${a}`, { body: { version: 2, team: 'fx-ops' }, as: 'lead@x' });
    // `me` is whoever calls: stored as them, so their `assignee=me` listing finds it.
    const taken = await api.call('PATCH', `/exceptions/${b}`, {
      body: { version: 1, team: 'fx-ops', assignee: 'me' },
      as: 'lead@x',
    });
    expect(taken.body).toMatchObject({ assignee: 'lead@x' });
    expect(taken.body.history.at(-2)).toMatchObject({ action: 'ASSIGNED', to: 'lead@x' });
    await api.call('PATCH', `/exceptions/${c}`, { body: { version: 1, status: 'IN_PROGRESS' }, as: 'lead@x' });

    expect(first.status).toBe(200);
    expect(second.body).toMatchObject({ team: 'fx-ops', assignee: 'ana@x', version: 3 });
    expect(
      second.body.history.slice(1).map((h: { action: string; from?: string; to?: string }) => [h.action, h.from, h.to]),
    ).toEqual([
      ['ASSIGNED', undefined, 'ana@x'],
      ['TEAM_ASSIGNED', undefined, 'payments-ops'],
      ['TEAM_ASSIGNED', 'payments-ops', 'fx-ops'],
    ]);
    const fx = await api.call('GET', '/exceptions', { query: { dataset, team: 'fx-ops', limit: '1' } });
    expect(fx.body.items).toHaveLength(1);
    const rest = await api.call('GET', '/exceptions', {
      query: { dataset, team: 'fx-ops', limit: '1', next_token: fx.body.next_token },
    });
    expect([fx.body.items[0].exception_id, rest.body.items[0].exception_id].sort()).toEqual([a, b].sort());
    const mine = await api.call('GET', '/exceptions', { query: { dataset, assignee: 'me' }, as: 'lead@x' });
    expect(mine.body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual([b]);
    const myCounts = await api.call('GET', '/exception-counts', { query: { dataset, assignee: 'me' }, as: 'lead@x' });
    expect(myCounts.body.total).toBe(1);
    const started = await api.call('GET', '/exceptions', { query: { dataset, status: 'IN_PROGRESS' } });
    expect(started.body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual([c]);
  });
});

describe('POST /exceptions/{id}/triage', () => {
  it("queues the exception's triage again with the time asked, which the triage queue's consumer reads as an exception's", async () => {
    const api = setup();
    const dataset = freshDataset();
    const [id] = (await run(dataset, 'r1', [{ type: 'AMOUNT_MISMATCH', tradeId: 'T1' }])) as [string];
    const asked = await api.call('POST', `/exceptions/${id}/triage`, { as: 'ana@x' });

    expect(asked.status).toBe(202);
    expect(asked.body).toEqual({ exception_id: id, requested_at: new Date(NOW).toISOString() });
    expect(api.triageRequests).toEqual([
      {
        kind: 'exception',
        exception_id: id,
        run_id: 'r1',
        content_hash: expect.stringMatching(/^[0-9a-f]{32}$/),
        requested_at: new Date(NOW).toISOString(),
      },
    ]);
    expect(triageQueueMessageSchema.parse(api.triageRequests[0])).toEqual(api.triageRequests[0]);
  });

  it('takes no body or {}, and refuses a field rather than ignoring it', async () => {
    const api = setup();
    const [id] = (await run(freshDataset(), 'r1', [{ type: 'AMOUNT_MISMATCH', tradeId: 'T1' }])) as [string];

    const empty = await api.call('POST', `/exceptions/${id}/triage`, { body: {} });
    const noted = await api.call('POST', `/exceptions/${id}/triage`, { body: { note: 'look again' } });

    expect(empty.status).toBe(202);
    expect(noted.status).toBe(400);
    expect(noted.body.error.message).toContain('unknown field "note"; this takes no fields');
    expect(api.triageRequests).toHaveLength(1);
  });

  it('answers 404 for an unknown exception and 409 for one inside its late-arrival window, queuing nothing', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [id] = (await run(dataset, 'r1', [{ type: 'MISSING_IN_TARGET', tradeId: 'T1' }])) as [string];
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.exceptions,
        Key: { exception_id: id },
        UpdateExpression: 'SET #s = :p',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':p': 'PENDING' },
      }),
    );

    const unknown = await api.call('POST', `/exceptions/${'0'.repeat(32)}/triage`);
    const pending = await api.call('POST', `/exceptions/${id}/triage`);

    expect(unknown.status).toBe(404);
    expect(pending.status).toBe(409);
    expect(pending.body.error).toMatchObject({ code: 'EXCEPTION_PENDING', details: { exception_id: id } });
    expect(api.triageRequests).toEqual([]);
  });
});

describe('maker-checker', () => {
  it('lets an analyst who asked withdraw the request, but not decide one someone else asked', async () => {
    const api = setup();
    const [mine, theirs] = await run(freshDataset(), 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
    ]);
    const ana = { as: 'ana@x', role: 'analyst' };
    await api.call('PATCH', `/exceptions/${mine}`, { body: { version: 1, status: 'FALSE_POSITIVE' }, ...ana });
    await api.call('PATCH', `/exceptions/${theirs}`, {
      body: { version: 1, status: 'FALSE_POSITIVE' },
      as: 'bob@x',
      role: 'analyst',
    });

    const withdrawn = await api.call('POST', `/exceptions/${mine}/approval`, {
      body: { version: 2, decision: 'reject' },
      ...ana,
    });
    const rejectOthers = await api.call('POST', `/exceptions/${theirs}/approval`, {
      body: { version: 2, decision: 'reject' },
      ...ana,
    });
    const approveOthers = await api.call('POST', `/exceptions/${theirs}/approval`, {
      body: { version: 2, decision: 'approve' },
      ...ana,
    });

    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.record).toMatchObject({ status: 'OPEN' });
    expect([rejectOthers.status, rejectOthers.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect(rejectOthers.body.error.message).toContain('needs the approver role');
    expect([approveOthers.status, approveOthers.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await api.call('GET', `/exceptions/${theirs}`)).body.status).toBe('AWAITING_APPROVAL');
  });

  it('lets the maker withdraw a request by rejecting it, and says how a waiting change is decided (locally: how to be a second person)', async () => {
    const api = setup();
    const [id] = await run(freshDataset(), 'r1', [{ type: 'MISSING_IN_TARGET', tradeId: 'T1' }]);

    // No claims: the local identity, as `npm start` without --auth serves every request.
    const asked = await api.call('PATCH', `/exceptions/${id}`, { body: { version: 1, status: 'FALSE_POSITIVE' } });
    const self = await api.call('POST', `/exceptions/${id}/approval`, { body: { version: 2, decision: 'approve' } });
    const moved = await api.call('PATCH', `/exceptions/${id}`, { body: { version: 2, status: 'OPEN' } });
    const withdrawn = await api.call('POST', `/exceptions/${id}/approval`, {
      body: { version: 2, decision: 'reject', note: 'asked by mistake' },
    });

    expect(asked.body).toMatchObject({ status: 'AWAITING_APPROVAL' });
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('SAME_PERSON');
    expect(self.body.error.message).toContain('local-analyst may reject it, which withdraws the request');
    expect(self.body.error.message).toContain('`npm start -- --auth` to sign in as a second person');
    expect(moved.body.error).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(moved.body.error.message).toContain(
      `a change waiting for approval is decided, not changed: approve or reject it (POST /exceptions/${id}/approval`,
    );
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.record).toMatchObject({ status: 'OPEN', version: 3 });
    expect(withdrawn.body.record.history.at(-1)).toMatchObject({
      action: 'REJECTED',
      by: 'local-analyst',
      from: 'AWAITING_APPROVAL',
      to: 'OPEN',
      note: 'asked by mistake',
    });
  });

  it('holds a false positive for approval, refuses the maker as approver, and lets someone else approve', async () => {
    const api = setup();
    const [id] = await run(freshDataset(), 'r1', [{ type: 'MISSING_IN_TARGET', tradeId: 'T1' }]);

    const asked = await api.call('PATCH', `/exceptions/${id}`, {
      body: { version: 1, status: 'FALSE_POSITIVE', note: 'test booking' },
      as: 'maker@x',
    });
    const moveWhileWaiting = await api.call('PATCH', `/exceptions/${id}`, { body: { version: 2, status: 'RESOLVED' } });
    const self = await api.call('POST', `/exceptions/${id}/approval`, {
      body: { version: 2, decision: 'approve' },
      as: 'maker@x',
    });
    const approved = await api.call('POST', `/exceptions/${id}/approval`, {
      body: { version: 2, decision: 'approve', note: 'agreed' },
      as: 'checker@x',
    });

    expect(asked.status).toBe(200);
    expect(asked.body).toMatchObject({
      status: 'AWAITING_APPROVAL',
      approval: {
        requested_status: 'FALSE_POSITIVE',
        requested_by: 'maker@x',
        previous_status: 'OPEN',
        note: 'test booking',
      },
    });
    expect(moveWhileWaiting.body.error).toMatchObject({ code: 'INVALID_TRANSITION', details: { allowed: [] } });
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('SAME_PERSON');
    expect(approved.status).toBe(200);
    expect(approved.body.record).toMatchObject({ status: 'FALSE_POSITIVE', version: 3 });
    expect(approved.body.record).not.toHaveProperty('approval');
    expect(approved.body.record.history.slice(-2)).toMatchObject([
      { action: 'APPROVAL_REQUESTED', by: 'maker@x', from: 'OPEN', to: 'FALSE_POSITIVE' },
      { action: 'APPROVED', by: 'checker@x', from: 'AWAITING_APPROVAL', to: 'FALSE_POSITIVE', note: 'agreed' },
    ]);
    expect(api.statusUpdates).toEqual([
      { id, status: 'AWAITING_APPROVAL' },
      { id, status: 'FALSE_POSITIVE' },
    ]);
  });

  it('puts a rejected request back where it was, and lists what waits as the approval queue', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [id, other] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
    ]);
    await api.call('PATCH', `/exceptions/${id}`, { body: { version: 1, status: 'ACKNOWLEDGED' }, as: 'maker@x' });
    await api.call('PATCH', `/exceptions/${id}`, { body: { version: 2, status: 'FALSE_POSITIVE' }, as: 'maker@x' });

    const queue = await api.call('GET', '/exceptions', { query: { dataset, status: 'AWAITING_APPROVAL' } });
    const rejected = await api.call('POST', `/exceptions/${id}/approval`, {
      body: { version: 3, decision: 'reject' },
      as: 'checker@x',
    });
    const nothingWaiting = await api.call('POST', `/exceptions/${other}/approval`, {
      body: { version: 1, decision: 'approve' },
      as: 'checker@x',
    });

    expect(queue.body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual([id]);
    expect(rejected.body.record).toMatchObject({ status: 'ACKNOWLEDGED', version: 4 });
    expect(rejected.body.record.history.at(-1)).toMatchObject({
      action: 'REJECTED',
      by: 'checker@x',
      to: 'ACKNOWLEDGED',
    });
    expect(nothingWaiting.status).toBe(400);
    expect(nothingWaiting.body.error.code).toBe('NOT_AWAITING_APPROVAL');
  });
});

describe('POST /exceptions/bulk', () => {
  it('changes each exception on its own and reports every outcome', async () => {
    const api = setup();
    const [ok, stale, resolved, dismissed] = await run(freshDataset(), 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T3' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T4' },
    ]);
    await api.call('PATCH', `/exceptions/${stale}`, { body: { version: 1, note: 'someone was here' } });
    await api.call('PATCH', `/exceptions/${resolved}`, { body: { version: 1, status: 'ACKNOWLEDGED' } });
    await api.call('PATCH', `/exceptions/${resolved}`, { body: { version: 2, status: 'RESOLVED' } });
    const missing = 'f'.repeat(32);

    const res = await api.call('POST', '/exceptions/bulk', {
      body: {
        ids: [ok, stale, resolved, missing],
        change: { status: 'ACKNOWLEDGED', note: 'morning sweep' },
        versions: { [stale as string]: 1 },
      },
      as: 'ana@x',
    });
    const fp = await api.call('POST', '/exceptions/bulk', {
      body: { ids: [dismissed], change: { status: 'FALSE_POSITIVE' } },
      as: 'ana@x',
    });

    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([
      { id: ok, outcome: 'updated', version: 2 },
      { id: stale, outcome: 'conflict', version: 2, error: expect.stringContaining('version 1 was sent') },
      { id: resolved, outcome: 'invalid_transition', version: 3, error: 'RESOLVED can only move to OPEN' },
      { id: missing, outcome: 'not_found', error: expect.stringContaining('no exception') },
    ]);
    expect(res.body).toMatchObject({
      counts: { updated: 1, conflict: 1, invalid_transition: 1, not_found: 1, awaiting_approval: 0 },
      matched: 4,
      more_matched: false,
    });
    const moved = await api.call('GET', `/exceptions/${ok}`);
    expect(moved.body.history.at(-1)).toMatchObject({ action: 'ACKNOWLEDGED', by: 'ana@x', note: 'morning sweep' });
    // Bulk goes through the same maker-checker rule as one exception.
    expect(fp.body.results).toEqual([{ id: dismissed, outcome: 'awaiting_approval', version: 2 }]);
  });

  it('changes what a filter matches, versions read now', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [a, b, c] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'T3' },
    ]);

    const res = await api.call('POST', '/exceptions/bulk', {
      body: { filter: { dataset, exception_type: 'MISSING_IN_TARGET' }, change: { team: 'recs', assignee: 'me' } },
      as: 'ana@x',
    });
    const noTarget = await api.call('POST', '/exceptions/bulk', { body: { change: { note: 'x' } } });
    const both = await api.call('POST', '/exceptions/bulk', {
      body: { ids: [a], filter: { dataset }, change: { note: 'x' } },
    });

    expect(res.body.counts.updated).toBe(2);
    expect(res.body.results.map((r: { id: string }) => r.id).sort()).toEqual([a, b].sort());
    // `me` in the change is the caller, as in a filter (it was stored as the word "me").
    expect((await api.call('GET', `/exceptions/${a}`)).body).toMatchObject({ team: 'recs', assignee: 'ana@x' });
    expect((await api.call('GET', `/exceptions/${c}`)).body).not.toHaveProperty('team');
    expect(noTarget.status).toBe(400);
    expect(both.status).toBe(400);
    expect(both.body.error.message).toContain('exactly one of ids');
    const strayVersion = await api.call('POST', '/exceptions/bulk', {
      body: { ids: [a], change: { note: 'x' }, versions: { [a as string]: 1, ['f'.repeat(32)]: 3 } },
    });
    expect(strayVersion.status).toBe(400);
    expect(strayVersion.body.error.message).toContain(`versions: names ${'f'.repeat(32)}, not among ids`);
    const noChange = await api.call('POST', '/exceptions/bulk', { body: { ids: [a] } });
    expect(noChange.body.error.message).toContain(
      'change: is required: the change to make to each exception, e.g. {"status": "ACKNOWLEDGED"}',
    );
  });
});

describe('POST /exceptions/bulk with a filter matching more than 500', () => {
  it('changes the first 500 and says more matched; the same request again changes the rest', async () => {
    const api = setup();
    const dataset = freshDataset();
    await run(
      dataset,
      'r1',
      Array.from({ length: 503 }, (_, i) => ({ type: 'MISSING_IN_TARGET' as const, tradeId: `B${i}` })),
    );

    const first = await api.call('POST', '/exceptions/bulk', {
      body: { filter: { dataset, status: 'OPEN' }, change: { status: 'ACKNOWLEDGED' } },
    });
    const second = await api.call('POST', '/exceptions/bulk', {
      body: { filter: { dataset, status: 'OPEN' }, change: { status: 'ACKNOWLEDGED' } },
    });

    expect(first.body).toMatchObject({ matched: 500, more_matched: true, counts: { updated: 500 } });
    expect(second.body).toMatchObject({ matched: 3, more_matched: false, counts: { updated: 3 } });
  }, 60_000);
});

describe('manual match', () => {
  it('pairs opposite missing rows after approval, and a later run of the same data does not reopen them', async () => {
    const api = setup();
    const dataset = freshDataset();
    const findings: Missing[] = [
      { type: 'MISSING_IN_TARGET', tradeId: 'T100', amount: '250.00' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'T1OO', amount: '250.00' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T200' },
    ];
    const [source, target, unmatched] = await run(dataset, 'r1', findings);

    const wrongPair = await api.call('POST', `/exceptions/${source}/match`, {
      body: { other_id: unmatched, reason_code: 'KEY_TYPO', version: 1, other_version: 1 },
    });
    const asked = await api.call('POST', `/exceptions/${source}/match`, {
      body: { other_id: target, reason_code: 'KEY_TYPO', version: 1, other_version: 1, note: 'O for 0' },
      as: 'maker@x',
    });
    const self = await api.call('POST', `/exceptions/${target}/approval`, {
      body: { version: 2, decision: 'approve' },
      as: 'maker@x',
    });
    const approved = await api.call('POST', `/exceptions/${target}/approval`, {
      body: { version: 2, decision: 'approve' },
      as: 'checker@x',
    });

    expect(wrongPair.status).toBe(400);
    expect(wrongPair.body.error.code).toBe('NOT_MATCHABLE');
    expect(asked.status).toBe(200);
    expect(asked.body.record).toMatchObject({
      status: 'AWAITING_APPROVAL',
      approval: { requested_status: 'RESOLVED', match: { exception_id: target, reason_code: 'KEY_TYPO' } },
    });
    expect(asked.body.other.approval.match.exception_id).toBe(source);
    expect(self.body.error.code).toBe('SAME_PERSON');
    expect(approved.status).toBe(200);
    const [s, t] = [
      (await api.call('GET', `/exceptions/${source}`)).body,
      (await api.call('GET', `/exceptions/${target}`)).body,
    ];
    expect(s).toMatchObject({
      status: 'RESOLVED',
      match: { exception_id: target, reason_code: 'KEY_TYPO', by: 'maker@x', approved_by: 'checker@x' },
    });
    expect(t).toMatchObject({ status: 'RESOLVED', match: { exception_id: source } });
    expect(s.history.at(-1)).toMatchObject({ action: 'MATCHED', to: target });
    expect(t.history.at(-1)).toMatchObject({ action: 'MATCHED', to: source });

    // The unmatched one resolved by an analyst too: recon reopens it, not the matched pair.
    await api.call('PATCH', `/exceptions/${unmatched}`, { body: { version: 1, status: 'ACKNOWLEDGED' } });
    await api.call('PATCH', `/exceptions/${unmatched}`, { body: { version: 2, status: 'RESOLVED' } });
    await run(dataset, 'r2', findings);

    expect((await api.call('GET', `/exceptions/${source}`)).body.status).toBe('RESOLVED');
    expect((await api.call('GET', `/exceptions/${target}`)).body.status).toBe('RESOLVED');
    expect((await api.call('GET', `/exceptions/${unmatched}`)).body.status).toBe('OPEN');
    // Different values for a matched row: the match no longer explains it.
    await run(dataset, 'r3', [{ ...(findings[0] as Missing), amount: '999.00' }]);
    expect((await api.call('GET', `/exceptions/${source}`)).body.status).toBe('OPEN');
  });
});

describe('a match request left half-written', () => {
  it('is not approved while the other side is not waiting for it, and can be rejected', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [source, target] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T300' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'T3OO' },
    ]);
    const asked = await api.call('POST', `/exceptions/${source}/match`, {
      body: { other_id: target, reason_code: 'KEY_TYPO', version: 1, other_version: 1 },
      as: 'maker@x',
    });
    expect(asked.status).toBe(200);
    // As a crash between the request's two writes leaves it: the other side never asked.
    const store = queryStoreOf(dynamo);
    await store.patchException({
      exceptionId: target as string,
      expectedVersion: 2,
      set: { status: 'OPEN' },
      remove: ['approval'],
      history: [],
    });

    const approved = await api.call('POST', `/exceptions/${source}/approval`, {
      body: { version: 2, decision: 'approve' },
      as: 'checker@x',
    });
    expect(approved.status).toBe(409);
    expect(approved.body.error).toMatchObject({
      code: 'MATCH_INCOMPLETE',
      details: { exception_id: source, other_id: target, other_status: 'OPEN' },
    });
    expect((await api.call('GET', `/exceptions/${source}`)).body).toMatchObject({ status: 'AWAITING_APPROVAL' });
    expect((await api.call('GET', `/exceptions/${target}`)).body).toMatchObject({ status: 'OPEN' });
    expect((await api.call('GET', `/exceptions/${target}`)).body.match).toBeUndefined();

    const rejected = await api.call('POST', `/exceptions/${source}/approval`, {
      body: { version: 2, decision: 'reject' },
      as: 'checker@x',
    });
    expect(rejected.status).toBe(200);
    expect((await api.call('GET', `/exceptions/${source}`)).body).toMatchObject({ status: 'OPEN' });
  });
});

describe('suggested matches', () => {
  it('scores opposite-side missing rows with reasons, and never suggests a declined one again', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [source, close, sameAccount, far, alsoMissingInTarget] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T500', account: 'ACC9', amount: '1000.00' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'T50O', account: 'ACC9', amount: '1000.01' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'X999', account: 'ACC9', amount: '5.00', date: '2025-11-01' },
      { type: 'MISSING_IN_SOURCE', tradeId: 'Z777', account: 'ACC2', amount: '7.00', date: '2025-11-02' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T501', account: 'ACC9', amount: '1000.00' },
    ]);

    const res = await api.call('GET', `/exceptions/${source}/suggestions`);

    expect(res.status).toBe(200);
    expect(res.body.items.map((i: { exception_id: string; score: number }) => [i.exception_id, i.score])).toEqual([
      [close, 100],
      [sameAccount, 20],
    ]);
    expect(res.body.items[0].reasons.map((r: { kind: string }) => r.kind)).toEqual([
      'amount',
      'account',
      'date',
      'key',
    ]);
    expect(res.body.items[0].exception).toMatchObject({ exception_id: close, version: 1 });
    expect(res.body.items.map((i: { exception_id: string }) => i.exception_id)).not.toContain(far);
    expect(res.body.items.map((i: { exception_id: string }) => i.exception_id)).not.toContain(alsoMissingInTarget);

    const declined = await api.call('POST', `/exceptions/${source}/suggestions/${close}/decline`, { as: 'ana@x' });
    const after = await api.call('GET', `/exceptions/${source}/suggestions`);
    const fromTheOtherSide = await api.call('GET', `/exceptions/${close}/suggestions`);

    expect(declined.status).toBe(200);
    expect(after.body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual([sameAccount]);
    expect(fromTheOtherSide.body.items.map((i: { exception_id: string }) => i.exception_id)).not.toContain(source);
    const record = (await api.call('GET', `/exceptions/${source}`)).body;
    expect(record.history.at(-1)).toMatchObject({
      action: 'NOTE',
      by: 'ana@x',
      note: expect.stringContaining(close as string),
    });
    expect(record).not.toHaveProperty('declined_matches');
    const notMissing = await run(dataset, 'r1', [{ type: 'AMOUNT_MISMATCH', tradeId: 'T9' }]);
    expect((await api.call('GET', `/exceptions/${notMissing[0]}/suggestions`)).body.error.code).toBe('NOT_MATCHABLE');
  });

  it('refuses to decline a pair no suggestion could offer: itself, the same side, another dataset, a break that is not a missing row', async () => {
    const api = setup();
    const dataset = freshDataset();
    const [source, sameSide, amount] = await run(dataset, 'r1', [
      { type: 'MISSING_IN_TARGET', tradeId: 'T1' },
      { type: 'MISSING_IN_TARGET', tradeId: 'T2' },
      { type: 'AMOUNT_MISMATCH', tradeId: 'T3' },
    ]);
    const [elsewhere] = await run(freshDataset(), 'r2', [{ type: 'MISSING_IN_SOURCE', tradeId: 'T1' }]);
    const decline = (a: string | undefined, b: string | undefined) =>
      api.call('POST', `/exceptions/${a}/suggestions/${b}/decline`);

    const answers = await Promise.all([
      decline(source, source),
      decline(source, sameSide),
      decline(source, elsewhere),
      decline(amount, source),
    ]);

    expect(answers.map((a) => [a.status, a.body.error?.code])).toEqual(Array(4).fill([400, 'NOT_MATCHABLE']));
    expect(answers[1]?.body.error.message).toContain('a match pairs MISSING_IN_TARGET with MISSING_IN_SOURCE');
    expect((await api.call('GET', `/exceptions/${source}`)).body.version).toBe(1);
  });
});

describe('listings of large exceptions', () => {
  it('keeps a page inside a Lambda response: rows by their key and diff fields, the rest counted', async () => {
    // Prepare: 30 exceptions of ~240 KB each (three 40,000-character values a side), stored as
    // the store consumer stores them: a 7 MB page, over the 6 MB a Lambda may answer.
    const api = setup();
    const dataset = freshDataset();
    const row = (id: string, c: string) => ({
      trade_id: id,
      amount: '1.00',
      a: c.repeat(40_000),
      b: c.repeat(40_000),
      n: c.repeat(40_000),
    });
    const findings: Finding[] = Array.from({ length: 30 }, (_, i) => ({
      type: 'FIELD_MISMATCH',
      key: { trade_id: `T${i}` },
      keyText: `T${i}`,
      source: row(`T${i}`, 'x'),
      target: row(`T${i}`, 'y'),
      diffs: [{ field: 'a', source: 'x', target: 'y' }],
      lines: { source: [i + 2], target: [i + 2] },
      severity: 'LOW',
    }));
    const store = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
    await writeFindings(
      { runId: 'big', dataset, businessDate: '2025-12-10', now: new Date(NOW).toISOString() },
      findings,
      {
        exceptions: store,
      },
    );
    // Act
    const page = await api.call('GET', '/exceptions', { query: { dataset, limit: '30' } });
    const one = await api.call('GET', `/exceptions/${page.body.items[0].exception_id}`);
    // Assess
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(30);
    expect(Buffer.byteLength(JSON.stringify(page.body))).toBeLessThan(4 * 1024 * 1024);
    const first = page.body.items[0];
    expect(first.source).toEqual({
      trade_id: first.key.trade_id,
      a: 'x'.repeat(40_000),
      _omitted: `3 fields not listed (the page was over the API's response size): GET /exceptions/${first.exception_id} has them`,
    });
    expect(one.body.source).toEqual(row(first.key.trade_id, 'x'));
  });
});

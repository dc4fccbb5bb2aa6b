/**
 * A run's break patterns through the query API on dynalite: GET /runs/{id}/patterns with member
 * counts by status from the by_pattern_sharded index, GET /exceptions?pattern_id=, and a pattern
 * action that moves each member on its own (a stale version on one member is that member's
 * CONFLICT; the others are APPLIED, each with its own history entry).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { PatternActionResponse, PatternsResponse } from '../../functions/shared/api-types.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import type { ExceptionBookkeeping } from '../../functions/shared/tables/exceptions.ts';
import { DynamoPatternStore } from '../../functions/shared/tables/patterns-dynamo.ts';
import type { PatternRecord } from '../../functions/shared/tables/patterns.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';
import { queryStoreOf, recordingWholeReads, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';
import { runRecord } from '../support/runs.ts';
import { EXCEPTION_INDEX_SHARDS } from '../../functions/shared/resources.ts';

let dynamo: TestDynamo;
const statusUpdates: { id: string; status: string }[] = [];

const RUN = 'run-fx';
const PATTERN = 'pat_00112233445566aa';
const OTHER = 'pat_ffeeddccbbaa9988';
const AT = '2026-11-30T08:00:00.000Z';

function member(i: number, patternId: string, runId = RUN): ExceptionRecord & ExceptionBookkeeping {
  const key = { trade_id: `J${i}` };
  return {
    exception_id: exceptionId('fx', '2026-11-30', 'AMOUNT_MISMATCH', key.trade_id),
    run_id: runId,
    dataset: 'fx',
    business_date: '2026-11-30',
    exception_type: 'AMOUNT_MISMATCH',
    key,
    source: { ...key, currency: 'JPY', amount: '10' },
    target: { ...key, currency: 'JPY', amount: '1000' },
    diffs: [{ field: 'amount', source: '10', target: '1000', delta: '990' }],
    lines: { source: [i + 2], target: [i + 2] },
    policy_severity: 'MEDIUM',
    status: 'OPEN',
    created_at: AT,
    updated_at: AT,
    version: 1,
    history: [{ at: AT, by: 'system:recon', action: 'CREATED', to: 'OPEN', run_id: runId }],
    pattern_id: patternId,
    content_hash: `h${i}`,
    last_changed_run_id: runId,
  };
}

const PATTERN_RECORD: PatternRecord = {
  run_id: RUN,
  pattern_id: PATTERN,
  dataset: 'fx',
  business_date: '2026-11-30',
  exception_type: 'AMOUNT_MISMATCH',
  signature: { type: 'AMOUNT_MISMATCH', fields: ['amount'], shapes: { amount: { kind: 'number', ratio: '100' } } },
  description: 'AMOUNT_MISMATCH: amount target = source × 100',
  size: 12,
  segments: [{ field: 'currency', value: 'JPY', count: 12, share: 1 }],
  stats: { 'amount.delta_min': '990', 'amount.delta_max': '990', 'amount.delta_median': '990', 'amount.ratio': '100' },
  representatives: [],
};

function call(
  method: string,
  path: string,
  query: Record<string, string> = {},
  body?: unknown,
  store: QueryApiDeps['store'] = queryStoreOf(dynamo),
) {
  const deps = {
    store,
    paginationSecret: 'patterns-test-secret',
    corsOrigins: ['*'],
    localIdentity: 'analyst@example.com',
    now: Date.now,
    healthChecks: [],
    exceptionsIndex: {
      updateFields: async (id: string, fields: { status: string }) => void statusUpdates.push({ id, ...fields }),
    },
  } as unknown as QueryApiDeps;
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json' },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
      requestId: 'req',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  return createHandler(() => deps)(event, lambdaContext).then((r) => {
    const res = r as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  });
}

const members = Array.from({ length: 12 }, (_, i) => member(i, PATTERN));
const ids = members.map((m) => m.exception_id);

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const exceptions = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
  // The pattern's 12 members; 3 of another pattern; one exception of a later run sharing the pattern id.
  await exceptions.putNew([...members, ...[20, 21, 22].map((i) => member(i, OTHER)), member(30, PATTERN, 'run-later')]);
  const runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  await runs.request(
    runRecord({
      run_id: RUN,
      dataset: 'fx',
      business_date: '2026-11-30',
      requested_at: AT,
      patterns: { patterns: 1, members: 12, singletons: 3 },
    }),
  );
  await new DynamoPatternStore(dynamo.doc, dynamo.names.tables.patterns).putAll([PATTERN_RECORD]);
});
afterAll(async () => {
  await dynamo.stop();
});

describe('GET /runs/{id}/patterns', () => {
  it('lists the run’s patterns with their members in this run by status, from the index entries', async () => {
    // Counting reads the index entries' statuses, no member whole (1.8-3.3 s whole at 5,322 members).
    const { store, reads } = recordingWholeReads(dynamo);
    const res = await call('GET', `/runs/${RUN}/patterns`, {}, undefined, store);
    expect(reads).toEqual([]);
    expect(res.status).toBe(200);
    const body = res.body as PatternsResponse;
    expect(body.summary).toEqual({ patterns: 1, members: 12, singletons: 3 });
    expect(body.items).toHaveLength(1);
    expect(body.items[0]).toMatchObject({
      ...PATTERN_RECORD,
      members_by_status: { OPEN: 12 },
      members_complete: true,
    });
  });

  it('counts members 1,000 a shard a round (a round splits its limit among the shards)', async () => {
    const real = queryStoreOf(dynamo);
    const limits: number[] = [];
    const store = Object.assign(Object.create(real) as typeof real, {
      queryExceptionEntries: (query: Parameters<typeof real.queryExceptionEntries>[0]) => {
        limits.push(query.limit);
        return real.queryExceptionEntries(query);
      },
    });
    const res = await call('GET', `/runs/${RUN}/patterns`, {}, undefined, store);
    expect((res.body as PatternsResponse).items[0]?.members_by_status).toEqual({ OPEN: 12 });
    expect(limits).toEqual([1000 * EXCEPTION_INDEX_SHARDS]);
  });

  it('answers 404 for an unknown run and 400 for an over-long run id', async () => {
    expect((await call('GET', '/runs/run-none/patterns')).status).toBe(404);
    expect((await call('GET', `/runs/${'r'.repeat(300)}/patterns`)).body.error.code).toBe('INVALID_RUN_ID');
  });
});

describe('GET /exceptions?pattern_id=', () => {
  it('lists the pattern’s members from its index, in every run unless run_id is given', async () => {
    const all = await call('GET', '/exceptions', { pattern_id: PATTERN, limit: '200' });
    expect(all.status).toBe(200);
    expect(all.body.items).toHaveLength(13);
    expect(all.body.items.every((e: { pattern_id: string }) => e.pattern_id === PATTERN)).toBe(true);
    const inRun = await call('GET', '/exceptions', { pattern_id: PATTERN, run_id: RUN, limit: '5' });
    expect(inRun.body.items).toHaveLength(5);
    expect(inRun.body.next_token).not.toBeNull();
    const rest = await call('GET', '/exceptions', {
      pattern_id: PATTERN,
      run_id: RUN,
      limit: '200',
      next_token: inRun.body.next_token,
    });
    expect(
      [...inRun.body.items, ...rest.body.items].map((e: { exception_id: string }) => e.exception_id).sort(),
    ).toEqual([...ids].sort());
  });

  it('refuses a value that is not a pattern id', async () => {
    const res = await call('GET', '/exceptions', { pattern_id: 'JPY' });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('pattern_id: must be a pattern id');
  });
});

describe('POST /runs/{id}/patterns/{pattern_id}/actions', () => {
  it('moves each member on its own: a stale version is that member’s CONFLICT, the rest APPLIED with their own history', async () => {
    // Prepare: someone changed one member since the caller read it (version 1 -> 2).
    const stale = ids[3] as string;
    const noted = await call('PATCH', `/exceptions/${stale}`, {}, { version: 1, note: 'looked at it' });
    expect(noted.body.version).toBe(2);
    statusUpdates.length = 0;
    // Act
    const res = await call(
      'POST',
      `/runs/${RUN}/patterns/${PATTERN}/actions`,
      {},
      {
        action: 'acknowledge',
        note: 'JPY sent in the wrong unit',
        versions: Object.fromEntries(ids.map((id) => [id, 1])),
      },
    );
    // Assess
    expect(res.status).toBe(200);
    const body = res.body as PatternActionResponse;
    expect(body).toMatchObject({ run_id: RUN, pattern_id: PATTERN, action: 'acknowledge', complete: true });
    expect(body.counts).toEqual({ APPLIED: 11, CONFLICT: 1, SKIPPED: 0 });
    expect(body.results.map((r) => r.exception_id)).toEqual([...ids].sort());
    expect(body.results.find((r) => r.exception_id === stale)).toMatchObject({ outcome: 'CONFLICT', version: 2 });
    for (const r of body.results.filter((x) => x.exception_id !== stale))
      expect(r).toMatchObject({ outcome: 'APPLIED', version: 2 });
    for (const id of ids) {
      const record = (await call('GET', `/exceptions/${id}`)).body;
      if (id === stale) {
        expect(record.status).toBe('OPEN');
        expect(record.history.map((h: { action: string }) => h.action)).toEqual(['CREATED', 'NOTE']);
        continue;
      }
      expect(record.status).toBe('ACKNOWLEDGED');
      expect(record.history.at(-1)).toMatchObject({
        action: 'ACKNOWLEDGED',
        by: 'analyst@example.com',
        from: 'OPEN',
        to: 'ACKNOWLEDGED',
        note: 'JPY sent in the wrong unit',
      });
    }
    // The search copies follow, member by member; the other run's member and pattern are untouched.
    expect(statusUpdates.map((u) => u.id).sort()).toEqual(ids.filter((id) => id !== stale).sort());
    const later = member(30, PATTERN, 'run-later').exception_id;
    expect((await call('GET', `/exceptions/${later}`)).body.status).toBe('OPEN');
    const listed = (await call('GET', `/runs/${RUN}/patterns`)).body as PatternsResponse;
    expect(listed.items[0]?.members_by_status).toEqual({ ACKNOWLEDGED: 11, OPEN: 1 });
  });

  it('without versions checks each member against the version it reads, and skips what the lifecycle refuses', async () => {
    // Resolving: 11 members are ACKNOWLEDGED (allowed), the 12th is OPEN (OPEN cannot go to RESOLVED).
    const res = await call('POST', `/runs/${RUN}/patterns/${PATTERN}/actions`, {}, { action: 'resolve' });
    const body = res.body as PatternActionResponse;
    expect(body.counts).toEqual({ APPLIED: 11, CONFLICT: 0, SKIPPED: 1 });
    expect(body.results.find((r) => r.outcome === 'SKIPPED')).toMatchObject({
      exception_id: ids[3],
      version: 2,
      reason: expect.stringContaining('OPEN can only move to ACKNOWLEDGED or IN_PROGRESS or FALSE_POSITIVE'),
    });
    // Again: nothing left to move, every member skipped.
    const again = (await call('POST', `/runs/${RUN}/patterns/${PATTERN}/actions`, {}, { action: 'resolve' }))
      .body as PatternActionResponse;
    expect(again.counts).toEqual({ APPLIED: 0, CONFLICT: 0, SKIPPED: 12 });
  });

  it('answers 404 for a pattern the run does not have, 400 for a bad id or body', async () => {
    expect((await call('POST', `/runs/${RUN}/patterns/${OTHER}/actions`, {}, { action: 'resolve' })).status).toBe(404);
    const badId = await call('POST', `/runs/${RUN}/patterns/JPY/actions`, {}, { action: 'resolve' });
    expect(badId.body.error.code).toBe('INVALID_PATTERN_ID');
    const badBody = await call(
      'POST',
      `/runs/${RUN}/patterns/${PATTERN}/actions`,
      {},
      {
        action: 'close',
        versions: { nope: 0 },
      },
    );
    expect(badBody.status).toBe(400);
    expect(badBody.body.error.message).toContain('action: must be one of acknowledge, resolve, false_positive');
    expect(badBody.body.error.message).toContain('versions');
  });
});

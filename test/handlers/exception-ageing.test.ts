/**
 * Ageing through the store consumer against dynalite: an across-dates dataset (positions) keeps
 * one exception for the same break on consecutive dates, with its first sighting, and resolves it
 * when a later date no longer finds it; deadlines from the policy's resolution targets; late
 * arrivals stored PENDING and resolved when a re-run finds the row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoDBDocumentClient, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { LATE_ARRIVAL_STATUS, OPEN_STATUSES } from '../../functions/shared/exception-lifecycle.ts';
import { writeChunks } from '../../functions/recon/chunks.ts';
import type { Finding } from '../../functions/recon/findings.ts';
import { exceptionId, exceptionIdFor } from '../../functions/shared/keys.ts';
import { DEFAULT_WORKFLOW, type WorkflowSettings } from '../../functions/shared/policy.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import { DynamoRunExceptionListing } from '../../functions/shared/tables/run-exceptions-dynamo.ts';
import type { EngineSummary, RunRecord } from '../../functions/shared/tables/runs.ts';
import { storeChunk, type StoreDeps } from '../../functions/store/store.ts';
import { sweepDeadlines } from '../../functions/deadlines/deadlines.ts';
import type { TriageRequest } from '../../functions/shared/messages.ts';
import type { BusinessEvent } from '../../functions/shared/notifications.ts';
import { finding, memoryChunks } from '../support/chunks.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

const SUMMARY: EngineSummary = {
  rows: { source: 1, target: 1 },
  matched: 0,
  exceptions: {},
  rejected: { source: 0, target: 0 },
  duration_ms: 1,
};

let runs = 0;

/** One run of (dataset, date) through the store consumer at `now`: every chunk stored, the run completed. */
async function runDate(dataset: string, date: string, findings: Finding[], now: string, workflow: WorkflowSettings) {
  const runId = `${dataset}-run-${++runs}`;
  const refs = {
    source: { bucket: 'tally-data', key: `incoming/${dataset}/${date}/source.csv`, etag: `s${runs}` },
    target: { bucket: 'tally-data', key: `incoming/${dataset}/${date}/target.csv`, etag: `t${runs}` },
  };
  for (const side of ['source', 'target'] as const)
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.files,
        Item: {
          dataset_date: `${dataset}#${date}`,
          side,
          dataset,
          business_date: date,
          ...refs[side],
          status: 'ACCEPTED',
        },
      }),
    );
  const run: RunRecord = {
    run_id: runId,
    dataset,
    business_date: date,
    ...refs,
    status: 'RUNNING',
    requested_at: now,
    requested_by: 'test',
    lease_owner: 'recon-1',
    lease_until: Date.now() + 60_000,
  };
  await dynamo.doc.send(
    new PutCommand({ TableName: dynamo.names.tables.runs, Item: { ...run, dataset_date: `${dataset}#${date}` } }),
  );
  const chunks = memoryChunks();
  const runStore = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  const deps: StoreDeps = {
    chunks,
    files: new DynamoFileStore(dynamo.doc, dynamo.names.tables.files),
    runs: runStore,
    exceptions: new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions),
    triageQueue: { send: async () => undefined },
    notifier: { publish: async () => undefined },
    exceptionsIndex: { updateFields: async () => undefined },
    workflows: async () => workflow,
    now: () => Date.parse(now),
  };
  const messages = await writeChunks(
    { objects: chunks, queue: { send: async () => undefined }, chunkFindings: 5 },
    { run_id: runId, dataset, business_date: date, bucket: 'tally-data' },
    findings,
  );
  await runStore.startStoring(runId, 'recon-1', {
    chunks_total: messages.length,
    engine_summary: SUMMARY,
    policy_version: 'v1',
    policy_hash: 'h1',
  });
  const outcomes = [];
  for (const m of messages) outcomes.push(await storeChunk(m, deps));
  const last = outcomes.at(-1);
  expect(last?.outcome !== 'SKIPPED' && last?.completion?.outcome).toBe('COMPLETED');
  return {
    runId,
    resolved: last?.outcome === 'STORED' && last.completion?.outcome === 'COMPLETED' ? last.completion.resolved : -1,
  };
}

async function itemsOf(dataset: string) {
  const out = await dynamo.doc.send(
    new ScanCommand({
      TableName: dynamo.names.tables.exceptions,
      FilterExpression: 'dataset = :d',
      ExpressionAttributeValues: { ':d': dataset },
      ConsistentRead: true,
    }),
  );
  return out.Items ?? [];
}

/** The ids by_status_sharded lists under `status` for a dataset (every shard). */
async function idsByStatus(status: string, dataset: string) {
  const ids: string[] = [];
  for (const shard of shardedValues(status)) {
    const out = await dynamo.doc.send(
      new QueryCommand({
        TableName: dynamo.names.tables.exceptions,
        IndexName: 'by_status_sharded',
        KeyConditionExpression: 'gsi_status = :s',
        FilterExpression: 'dataset = :d',
        ExpressionAttributeValues: { ':s': shard, ':d': dataset },
      }),
    );
    ids.push(...(out.Items ?? []).map((item) => String(item.exception_id)));
  }
  return ids;
}

const position = (i: number, overrides: Partial<Finding> = {}) =>
  finding(i, { key: { position_id: `P${i}` }, keyText: `P${i}`, severity: 'HIGH', ...overrides });

describe('across-dates identity (positions)', () => {
  const workflow: WorkflowSettings = {
    identity: 'across_dates',
    resolutionTargets: { HIGH: { amount: 1, unit: 'bd' } },
  };

  it('keeps one exception for the same break on consecutive dates, aged from day 1, and resolves it when a later date no longer finds it', async () => {
    // Prepare: day 1 and day 2 find P1 (day 2 with other values); day 1 also finds P2.
    const day1 = '2026-11-30T08:00:00.000Z';
    await runDate('positions', '2026-11-27', [position(1), position(2)], day1, workflow);
    const r2 = await runDate(
      'positions',
      '2026-11-30',
      [position(1, { source: { position_id: 'P1', amount: '11.00' } })],
      '2026-12-01T08:00:00.000Z',
      workflow,
    );

    // Assess: one item for P1, first seen on day 1, now on day 2's date; P2 (gone on day 2) resolved.
    let items = await itemsOf('positions');
    const p1 = items.filter((e) => e.key.position_id === 'P1');
    expect(p1).toHaveLength(1);
    expect(p1[0]).toMatchObject({
      exception_id: exceptionIdFor('across_dates', 'positions', '2026-11-30', 'AMOUNT_MISMATCH', 'P1'),
      first_seen_at: day1,
      business_date: '2026-11-30',
      dataset_date: 'positions#2026-11-30',
      status: 'OPEN',
      // One business day from Monday 30 November: the end of Tuesday.
      due_at: '2026-12-02T00:00:00.000Z',
    });
    expect(r2.resolved).toBe(1);
    expect(items.find((e) => e.key.position_id === 'P2')).toMatchObject({
      status: 'RESOLVED',
      resolved_by_system: true,
    });
    // The id does not depend on the date: both dates give the same one.
    expect(exceptionIdFor('across_dates', 'positions', '2026-11-27', 'AMOUNT_MISMATCH', 'P1')).toBe(
      p1[0]?.exception_id,
    );

    // Act: a third date without P1.
    const r3 = await runDate('positions', '2026-12-01', [position(3)], '2026-12-02T08:00:00.000Z', workflow);

    // Assess
    items = await itemsOf('positions');
    expect(r3.resolved).toBe(1);
    expect(items.find((e) => e.key.position_id === 'P1')).toMatchObject({ status: 'RESOLVED', first_seen_at: day1 });
    expect(items.find((e) => e.key.position_id === 'P3')).toMatchObject({
      status: 'OPEN',
      business_date: '2026-12-01',
    });
  });

  it('leaves one last found on a later date alone when an earlier date is re-run', async () => {
    await runDate('positions-b', '2026-11-30', [position(7)], '2026-12-01T08:00:00.000Z', workflow);
    const rerun = await runDate('positions-b', '2026-11-27', [], '2026-12-01T09:00:00.000Z', workflow);
    expect(rerun.resolved).toBe(0);
    expect((await itemsOf('positions-b'))[0]).toMatchObject({ status: 'OPEN', business_date: '2026-11-30' });
  });
});

describe('per-date identity (the default)', () => {
  it('keeps a break of each date its own exception', async () => {
    await runDate('trades-a', '2026-11-27', [finding(1)], '2026-11-30T08:00:00.000Z', DEFAULT_WORKFLOW);
    await runDate('trades-a', '2026-11-30', [finding(1)], '2026-12-01T08:00:00.000Z', DEFAULT_WORKFLOW);
    const items = await itemsOf('trades-a');
    expect(items.map((e) => e.exception_id).sort()).toEqual(
      [
        exceptionId('trades-a', '2026-11-27', 'AMOUNT_MISMATCH', 'T1'),
        exceptionId('trades-a', '2026-11-30', 'AMOUNT_MISMATCH', 'T1'),
      ].sort(),
    );
    // No resolution targets: no due date.
    expect(
      items.every((e) => e.status === 'OPEN' && e.due_at === undefined && typeof e.first_seen_at === 'string'),
    ).toBe(true);
  });
});

describe('late arrivals', () => {
  const workflow: WorkflowSettings = {
    identity: 'per_date',
    resolutionTargets: { HIGH: { amount: 4, unit: 'h' } },
    lateArrival: { days: 1 },
  };
  const missing = (i: number) => finding(i, { type: 'MISSING_IN_TARGET', target: null, diffs: [], severity: 'HIGH' });

  it('stores a missing-in-target inside the window PENDING, with no deadline, and resolves it when a re-run finds the row', async () => {
    // Friday's file, run on Friday: the window ends with Monday.
    await runDate(
      'late',
      '2026-12-04',
      [missing(1), finding(2, { severity: 'HIGH' })],
      '2026-12-04T09:00:00.000Z',
      workflow,
    );
    let items = await itemsOf('late');
    const pending = items.find((e) => e.exception_type === 'MISSING_IN_TARGET');
    expect(pending).toMatchObject({ status: 'PENDING', pending_until: '2026-12-08T00:00:00.000Z' });
    expect(pending?.due_at).toBeUndefined();
    expect(pending?.history).toEqual([expect.objectContaining({ action: 'CREATED', to: 'PENDING' })]);
    // Not a missing row: OPEN, due four hours after it was found.
    expect(items.find((e) => e.exception_type === 'AMOUNT_MISMATCH')).toMatchObject({
      status: 'OPEN',
      due_at: '2026-12-04T13:00:00.000Z',
    });

    // The row arrives: the re-run no longer finds it.
    await runDate('late', '2026-12-04', [finding(2, { severity: 'HIGH' })], '2026-12-07T09:00:00.000Z', workflow);
    items = await itemsOf('late');
    expect(items.find((e) => e.exception_type === 'MISSING_IN_TARGET')).toMatchObject({ status: 'RESOLVED' });
  });

  it('reopens a resolved late arrival found missing again as PENDING inside its window, and OPEN with a deadline after it', async () => {
    await runDate('late-r', '2026-12-04', [missing(1)], '2026-12-04T09:00:00.000Z', workflow);
    // The row arrives (resolved), then a replaced target file lacks it again, inside the window.
    await runDate('late-r', '2026-12-04', [], '2026-12-07T09:00:00.000Z', workflow);
    expect((await itemsOf('late-r'))[0]).toMatchObject({ status: 'RESOLVED' });
    await runDate('late-r', '2026-12-04', [missing(1)], '2026-12-07T10:00:00.000Z', workflow);
    let [item] = await itemsOf('late-r');
    expect(item).toMatchObject({ status: 'PENDING', pending_until: '2026-12-08T00:00:00.000Z' });
    expect(item?.due_at).toBeUndefined();
    expect(item?.history.at(-1)).toMatchObject({ action: 'REOPENED', from: 'RESOLVED', to: 'PENDING' });
    // Still pending: listed by status as a late arrival, not as work.
    expect(await idsByStatus('PENDING', 'late-r')).toEqual([item?.exception_id]);

    // Resolved again; found missing once more after the window: OPEN, due four hours from then.
    await runDate('late-r', '2026-12-04', [], '2026-12-07T11:00:00.000Z', workflow);
    await runDate('late-r', '2026-12-04', [missing(1)], '2026-12-08T09:00:00.000Z', workflow);
    [item] = await itemsOf('late-r');
    expect(item).toMatchObject({ status: 'OPEN', due_at: '2026-12-08T13:00:00.000Z' });
    expect(item?.history.at(-1)).toMatchObject({ action: 'REOPENED', from: 'RESOLVED', to: 'OPEN' });
  });

  it('keeps the due date of a reopened exception that had one', async () => {
    const amount = finding(1, { severity: 'HIGH' });
    await runDate('late-d', '2026-12-04', [amount], '2026-12-04T09:00:00.000Z', workflow);
    await runDate('late-d', '2026-12-04', [], '2026-12-04T10:00:00.000Z', workflow);
    await runDate('late-d', '2026-12-04', [amount], '2026-12-04T11:00:00.000Z', workflow);
    expect((await itemsOf('late-d'))[0]).toMatchObject({ status: 'OPEN', due_at: '2026-12-04T13:00:00.000Z' });
  });

  it('opens a missing-in-target whose window has already passed', async () => {
    await runDate('late-b', '2026-12-01', [missing(1)], '2026-12-04T09:00:00.000Z', workflow);
    expect((await itemsOf('late-b'))[0]).toMatchObject({ status: 'OPEN', due_at: '2026-12-04T13:00:00.000Z' });
  });
});

describe('a run that no longer finds an exception waiting for approval', () => {
  it('resolves it and withdraws the request', async () => {
    const workflow: WorkflowSettings = { identity: 'per_date', resolutionTargets: {} };
    await runDate('approval', '2026-12-04', [finding(1)], '2026-12-04T09:00:00.000Z', workflow);
    const [item] = await itemsOf('approval');
    // An analyst asked for a false positive (query-api/workflow.ts), and it waits for an approver.
    await queryStoreOf(dynamo).patchException({
      exceptionId: String(item?.exception_id),
      expectedVersion: Number(item?.version),
      set: {
        status: 'AWAITING_APPROVAL',
        approval: { requested_status: 'FALSE_POSITIVE', requested_by: 'maker@x', previous_status: 'OPEN' },
      },
      remove: [],
      history: [],
    });
    expect(await idsByStatus('AWAITING_APPROVAL', 'approval')).toEqual([item?.exception_id]);

    const { resolved } = await runDate('approval', '2026-12-04', [], '2026-12-04T10:00:00.000Z', workflow);
    expect(resolved).toBe(1);
    const [after] = await itemsOf('approval');
    expect(after).toMatchObject({ status: 'RESOLVED', resolved_by_system: true });
    expect(after?.approval).toBeUndefined();
    expect(after?.history.at(-1)).toMatchObject({
      action: 'RESOLVED',
      from: 'AWAITING_APPROVAL',
      note: expect.stringContaining('withdrawn'),
    });
    expect(await idsByStatus('AWAITING_APPROVAL', 'approval')).toEqual([]);
  });
});

describe("triage's dispatch", () => {
  it('skips a PENDING late arrival of the run', async () => {
    const workflow: WorkflowSettings = { identity: 'per_date', resolutionTargets: {}, lateArrival: { days: 1 } };
    const { runId } = await runDate(
      'late-c',
      '2026-12-04',
      [finding(1, { type: 'MISSING_IN_TARGET', target: null, diffs: [] }), finding(2)],
      '2026-12-04T09:00:00.000Z',
      workflow,
    );
    const listing = new DynamoRunExceptionListing(dynamo.doc, dynamo.names.tables.exceptions);
    const page = await listing.needingTriage(runId, { limit: 100, currentPrompts: ['p1'] });
    const items = await itemsOf('late-c');
    const open = items.find((e) => e.status === 'OPEN');
    expect(items.map((e) => e.status).sort()).toEqual(['OPEN', 'PENDING']);
    expect(page.items.map((e) => e.exception_id)).toEqual([open?.exception_id]);
  });
});

describe('the deadline sweep', () => {
  const workflow: WorkflowSettings = {
    identity: 'per_date',
    resolutionTargets: { HIGH: { amount: 4, unit: 'h' }, MEDIUM: { amount: 1, unit: 'bd' } },
    lateArrival: { days: 0 },
  };
  const sweepAt = async (now: string) => {
    const queued: TriageRequest[] = [];
    const notified: BusinessEvent[] = [];
    const result = await sweepDeadlines({
      exceptions: new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions),
      triageQueue: { send: async (m) => void queued.push(...m) },
      notifier: { publish: async (e) => void notified.push(e) },
      workflows: async () => workflow,
      now: () => Date.parse(now),
    });
    return { result, queued, notified };
  };

  it('promotes an expired late arrival to OPEN with its deadline and queues its triage, then announces each overdue exception once', async () => {
    // Prepare: Friday's run; the missing row's window is Friday itself.
    await runDate(
      'swept',
      '2026-12-04',
      [
        finding(1, { type: 'MISSING_IN_TARGET', target: null, diffs: [], severity: 'HIGH' }),
        finding(2, { severity: 'MEDIUM' }),
      ],
      '2026-12-04T09:00:00.000Z',
      workflow,
    );
    const before = await itemsOf('swept');
    const pending = before.find((e) => e.status === 'PENDING');
    const open = before.find((e) => e.status === 'OPEN');
    expect(pending?.pending_until).toBe('2026-12-05T00:00:00.000Z');

    // Act: still inside the window — nothing to do.
    // (The table holds the other tests' datasets too: the sweep is table-wide, so look at this one's.)
    const mine = (ids: string[]) => ids.filter((id) => before.some((e) => e.exception_id === id)).sort();
    const early = await sweepAt('2026-12-04T20:00:00.000Z');
    expect(mine(early.result.promoted)).toEqual([]);
    expect(mine(early.result.overdue)).toEqual([]);

    // Act: the window has ended.
    const first = await sweepAt('2026-12-05T01:00:00.000Z');

    // Assess: promoted, due four hours after the window ended, its triage queued.
    expect(mine(first.result.promoted)).toEqual([pending?.exception_id]);
    expect(first.queued.filter((m) => mine([m.exception_id]).length > 0)).toEqual([
      {
        kind: 'exception',
        exception_id: pending?.exception_id,
        run_id: pending?.run_id,
        content_hash: pending?.content_hash,
      },
    ]);
    let items = await itemsOf('swept');
    const promoted = items.find((e) => e.exception_id === pending?.exception_id);
    expect(promoted).toMatchObject({ status: 'OPEN', due_at: '2026-12-05T04:00:00.000Z', version: 2 });
    expect(promoted?.history.at(-1)).toMatchObject({
      action: 'PROMOTED',
      from: 'PENDING',
      to: 'OPEN',
      by: 'system:deadlines',
    });
    // Not yet overdue: the MEDIUM one is due at the end of Monday.
    expect(mine(first.result.overdue)).toEqual([]);

    // Act: Tuesday — both are past due.
    const second = await sweepAt('2026-12-08T01:00:00.000Z');
    expect(mine(second.result.overdue)).toEqual([pending?.exception_id, open?.exception_id].sort());
    expect(second.notified).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'overdue',
          exception_id: open?.exception_id,
          due_at: '2026-12-08T00:00:00.000Z',
        }),
      ]),
    );
    items = await itemsOf('swept');
    // Bookkeeping only: the version an analyst's PATCH compares against is unchanged.
    expect(items.find((e) => e.exception_id === open?.exception_id)).toMatchObject({
      overdue_notified_at: '2026-12-08T01:00:00.000Z',
      version: 1,
    });

    // Act: the next sweep announces nothing again.
    expect(mine((await sweepAt('2026-12-08T02:00:00.000Z')).result.overdue)).toEqual([]);
  });
});

describe("the deadline sweep's read", () => {
  it('reads only the exceptions already due, not every open one', async () => {
    // Prepare: many open exceptions due long after the sweep, beside the other tests' (some due).
    const farWorkflow: WorkflowSettings = {
      ...DEFAULT_WORKFLOW,
      resolutionTargets: { MEDIUM: { amount: 20, unit: 'bd' } },
    };
    await runDate(
      'not-due-yet',
      '2026-12-07',
      Array.from({ length: 40 }, (_, i) => finding(i + 1, { severity: 'MEDIUM' })),
      '2026-12-07T09:00:00.000Z',
      farWorkflow,
    );
    const now = '2026-12-09T00:00:00.000Z';
    // What each of the sweep's queries read (ScannedCount: entries read before the filter).
    const scanned: number[] = [];
    const counting = {
      send: async (command: unknown) => {
        const out = await dynamo.doc.send(command as QueryCommand);
        if (command instanceof QueryCommand) scanned.push(out.ScannedCount ?? 0);
        return out;
      },
    } as unknown as DynamoDBDocumentClient;

    // Act
    await new DynamoExceptionStore(counting, dynamo.names.tables.exceptions).listOverdueUnannounced(now);

    // Assess: the entries read are the open (not PENDING) ones due by now, table-wide; the 40 not
    // yet due were never read.
    const all = (await dynamo.doc.send(new ScanCommand({ TableName: dynamo.names.tables.exceptions }))).Items ?? [];
    const open = all.filter((e) => OPEN_STATUSES.some((s) => s === e.status && s !== LATE_ARRIVAL_STATUS));
    const due = open.filter((e) => typeof e.due_at === 'string' && e.due_at <= now);
    expect(open.length - due.length).toBeGreaterThanOrEqual(40);
    expect(scanned.length).toBeGreaterThan(0);
    expect(scanned.reduce((sum, n) => sum + n, 0)).toBe(due.length);
  });
});

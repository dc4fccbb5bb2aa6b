/**
 * The store consumer against real DynamoDB semantics (dynalite): chunks written once however often
 * they are delivered, a failed chunk retried whole, the run's conditional chunk counter, and the
 * completion that resolves what the run no longer found — whoever sees the last chunk counted.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { writeChunks } from '../../functions/recon/chunks.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import type { DispatchRequest, StoreRequest } from '../../functions/shared/messages.ts';
import type { BusinessEvent } from '../../functions/shared/notifications.ts';
import type { ExceptionStore } from '../../functions/shared/tables/exceptions.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { EngineSummary, RunRecord, RunTriageState } from '../../functions/shared/tables/runs.ts';
import { completeRun, storeChunk, type StoreDeps, type StoreOutcome } from '../../functions/store/store.ts';
import { createHandler } from '../../functions/store/handler.ts';
import { finding, memoryChunks } from '../support/chunks.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

const SUMMARY: EngineSummary = {
  rows: { source: 12, target: 12 },
  matched: 0,
  exceptions: { AMOUNT_MISMATCH: 12 },
  rejected: { source: 0, target: 0 },
  duration_ms: 5,
};

let counter = 0;

/** A RUNNING run of its own date with current files, its findings written in chunks of 5. */
async function setup(findings = Array.from({ length: 12 }, (_, i) => finding(i))) {
  const n = ++counter;
  const date = `2025-03-${String(n).padStart(2, '0')}`;
  const runId = `run-${n}`;
  const refs = {
    source: { bucket: 'tally-data', key: `incoming/trades/${date}/source.csv`, etag: `s${n}` },
    target: { bucket: 'tally-data', key: `incoming/trades/${date}/target.csv`, etag: `t${n}` },
  };
  for (const side of ['source', 'target'] as const)
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.files,
        Item: {
          dataset_date: `trades#${date}`,
          side,
          dataset: 'trades',
          business_date: date,
          ...refs[side],
          status: 'ACCEPTED',
        },
      }),
    );
  const run: RunRecord = {
    run_id: runId,
    dataset: 'trades',
    business_date: date,
    ...refs,
    status: 'RUNNING',
    requested_at: '2025-03-01T00:00:00.000Z',
    requested_by: 'test',
    lease_owner: 'recon-1',
    lease_until: Date.now() + 60_000,
  };
  await dynamo.doc.send(
    new PutCommand({ TableName: dynamo.names.tables.runs, Item: { ...run, dataset_date: `trades#${date}` } }),
  );

  const chunks = memoryChunks();
  /** What the store queued on the triage queue: only completed runs' dispatch messages. */
  const triage: DispatchRequest[] = [];
  const notified: BusinessEvent[] = [];
  const notifier = { failNext: 0 };
  const mirrored: string[] = [];
  const runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  const writes = { puts: 0, updates: 0 };
  const real = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
  /** Counts the writes; `failUpdates` makes the next n updates throw (a throttled table). */
  const faults = { failUpdates: 0 };
  const exceptions: ExceptionStore = {
    getStates: (ids) => real.getStates(ids),
    listStatesForDate: (d, b) => real.listStatesForDate(d, b),
    listOpenStatesForDataset: (d) => real.listOpenStatesForDataset(d),
    putNew: async (records) => {
      writes.puts += records.length;
      await real.putNew(records);
    },
    update: async (change) => {
      if (faults.failUpdates > 0) {
        faults.failUpdates--;
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      }
      writes.updates++;
      return real.update(change);
    },
  };
  const deps: StoreDeps = {
    chunks,
    files: new DynamoFileStore(dynamo.doc, dynamo.names.tables.files),
    runs,
    exceptions,
    triageQueue: { send: async (m) => void triage.push(...m) },
    notifier: {
      publish: async (event) => {
        if (notifier.failNext > 0) {
          notifier.failNext--;
          throw Object.assign(new Error('topic unavailable'), { name: 'InternalErrorException' });
        }
        notified.push(event);
      },
    },
    exceptionsIndex: { updateFields: async (id) => void mirrored.push(id) },
    now: () => Date.parse('2025-03-02T00:00:00.000Z'),
  };
  const messages = await writeChunks(
    { objects: chunks, queue: { send: async () => undefined }, chunkFindings: 5 },
    { run_id: runId, dataset: 'trades', business_date: date, bucket: 'tally-data' },
    findings,
  );
  /** What recon does once every chunk is queued (with the runaway guard's decision). */
  const startStoring = (triage?: RunTriageState) =>
    runs.startStoring(runId, 'recon-1', {
      chunks_total: messages.length,
      engine_summary: SUMMARY,
      policy_version: 'v1',
      policy_hash: 'h1',
      ...(triage ? { triage } : {}),
    });
  const getRun = async () =>
    (await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: runId } })))
      .Item as RunRecord;
  const stored = async () =>
    (
      await dynamo.doc.send(
        // The base table itself (the indexes are sharded): every item of the dataset-day.
        new ScanCommand({
          TableName: dynamo.names.tables.exceptions,
          FilterExpression: 'dataset_date = :d',
          ExpressionAttributeValues: { ':d': `trades#${date}` },
          ConsistentRead: true,
        }),
      )
    ).Items ?? [];
  const store = (m: StoreRequest) => storeChunk(m, deps);
  return {
    runId,
    date,
    deps,
    messages,
    triage,
    notified,
    notifier,
    mirrored,
    writes,
    faults,
    startStoring,
    getRun,
    stored,
    store,
  };
}

const completed = (outcomes: StoreOutcome[]) =>
  outcomes.filter((o) => o.outcome !== 'SKIPPED' && o.completion?.outcome === 'COMPLETED');

describe('storing a findings chunk', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    env = await setup();
  });

  it('puts its new exceptions and counts the chunk and those needing triage on the run, queueing no triage', async () => {
    const outcome = await env.store(env.messages[0] as StoreRequest);

    expect(outcome).toEqual({
      outcome: 'STORED',
      chunk: 0,
      counts: { new: 5, changed: 0, unchanged: 0, triage_enqueued: 5, cut_for_storage: 0 },
    });
    const stored = await env.stored();
    expect(stored.map((e) => e.key.trade_id).sort()).toEqual(['T0', 'T1', 'T2', 'T3', 'T4']);
    expect(stored.every((e) => e.status === 'OPEN' && e.run_id === env.runId && e.version === 1)).toBe(true);
    // Triage starts from the completed run's dispatch, not per chunk.
    expect(env.triage).toEqual([]);
    expect(await env.getRun()).toMatchObject({ status: 'RUNNING', chunks_stored: 1, stored_new: 5, stored_triage: 5 });
  });

  it('writes nothing twice when the same chunk is delivered again', async () => {
    const chunk = env.messages[1] as StoreRequest;
    await env.store(chunk);
    const before = { ...env.writes };

    const again = await env.store(chunk);

    expect(again).toEqual({ outcome: 'ALREADY_STORED', chunk: 1 });
    expect(env.writes).toEqual(before);
    expect(env.triage).toEqual([]);
    expect(await env.stored()).toHaveLength(5);
    expect(await env.getRun()).toMatchObject({ chunks_stored: 1, stored_new: 5 });
  });

  it('counts a chunk delivered twice at once only once', async () => {
    const chunk = env.messages[0] as StoreRequest;

    const outcomes = await Promise.all([env.store(chunk), env.store(chunk)]);

    expect(outcomes.map((o) => o.outcome).sort()).toEqual(['ALREADY_STORED', 'STORED']);
    expect(await env.stored()).toHaveLength(5);
    expect(await env.getRun()).toMatchObject({ chunks_stored: 1, stored_new: 5 });
  });

  it('fails the whole chunk when a write fails part-way, and a retry converges without duplicates', async () => {
    // A first run found T0..T4 already: the chunk updates them (and puts nothing new).
    await env.store(env.messages[0] as StoreRequest);
    const rerun = await setup(Array.from({ length: 5 }, (_, i) => finding(i, { severity: 'HIGH' })));
    // Same date as the first run: the second run re-finds the same exceptions, changed.
    const chunk = { ...(rerun.messages[0] as StoreRequest) };
    const sameDate = { ...chunk, business_date: env.date, dataset: 'trades' };
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.runs,
        Key: { run_id: rerun.runId },
        UpdateExpression: 'SET business_date = :d',
        ExpressionAttributeValues: { ':d': env.date },
      }),
    );
    rerun.faults.failUpdates = 2;

    await expect(rerun.store(sameDate)).rejects.toThrow('Rate exceeded');
    expect((await rerun.getRun()).chunks_stored).toBeUndefined();

    const retried = await rerun.store(sameDate);

    expect(retried).toMatchObject({ outcome: 'STORED', counts: { new: 0, changed: 5, triage_enqueued: 5 } });
    const stored = await env.stored();
    expect(stored).toHaveLength(5);
    expect(stored.every((e) => e.run_id === rerun.runId && e.policy_severity === 'HIGH')).toBe(true);
    // One UPDATED entry each, though the first attempt applied some before it failed.
    for (const e of stored)
      expect(
        e.history.filter((h: { action: string }) => h.action === 'UPDATED'),
        e.key.trade_id,
      ).toHaveLength(1);
    expect(await rerun.getRun()).toMatchObject({ chunks_stored: 1, stored_changed: 5 });
  });

  it('writes nothing for a run that failed or was superseded', async () => {
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.runs,
        Key: { run_id: env.runId },
        UpdateExpression: 'SET #s = :f',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':f': 'FAILED' },
      }),
    );

    const outcome = await env.store(env.messages[0] as StoreRequest);

    expect(outcome).toEqual({ outcome: 'SKIPPED', chunk: 0, status: 'FAILED' });
    expect(await env.stored()).toHaveLength(0);
  });
});

describe('run completion', () => {
  let env: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    env = await setup();
  });

  it('is done by the consumer of the last chunk once recon has set the total', async () => {
    await env.startStoring();

    const outcomes = [];
    for (const m of env.messages) outcomes.push(await env.store(m));

    expect(outcomes.map((o) => (o.outcome === 'SKIPPED' ? o.status : o.completion?.outcome))).toEqual([
      undefined,
      undefined,
      'COMPLETED',
    ]);
    expect(await env.getRun()).toMatchObject({
      status: 'COMPLETED',
      chunks_total: 3,
      chunks_stored: 3,
      policy_version: 'v1',
      summary: { ...SUMMARY, new: 12, changed: 0, unchanged: 0, resolved: 0, triage_enqueued: 12 },
    });
  });

  it('waits for the total: chunks all stored while recon still runs do not complete the run', async () => {
    for (const m of env.messages) expect(await env.store(m)).not.toHaveProperty('completion');
    expect(await env.getRun()).toMatchObject({ status: 'RUNNING', chunks_stored: 3 });

    // Recon sets the total and sees every chunk stored: it re-queues the last chunk's message.
    const run = await env.startStoring();
    expect(run).toMatchObject({ status: 'STORING', chunks_total: 3, chunks_stored: 3 });
    const nudge = await env.store(env.messages.at(-1) as StoreRequest);

    expect(nudge).toMatchObject({ outcome: 'ALREADY_STORED', completion: { outcome: 'COMPLETED' } });
    expect(await env.getRun()).toMatchObject({ status: 'COMPLETED', summary: { new: 12 } });
  });

  it('happens exactly once when the last chunk races recon setting the total', async () => {
    for (const m of env.messages.slice(0, -1)) await env.store(m);

    const [last, run] = await Promise.all([env.store(env.messages.at(-1) as StoreRequest), env.startStoring()]);
    const outcomes = [last];
    // Recon re-queues the last chunk only when its update saw every chunk stored.
    if ((run.chunks_stored ?? 0) >= (run.chunks_total ?? Infinity))
      outcomes.push(await env.store(env.messages.at(-1) as StoreRequest));
    // A late redelivery changes nothing either.
    outcomes.push(await env.store(env.messages.at(-1) as StoreRequest));

    expect(completed(outcomes)).toHaveLength(1);
    expect(await env.getRun()).toMatchObject({ status: 'COMPLETED', summary: { new: 12, triage_enqueued: 12 } });
  });

  it('is idempotent: a second completion changes nothing and reports it', async () => {
    await env.startStoring();
    for (const m of env.messages) await env.store(m);
    const run = await env.getRun();

    // The run as a concurrent consumer read it, just before the other completion landed.
    const again = await completeRun({ ...run, status: 'STORING', engine_summary: SUMMARY }, env.deps);

    expect(again).toEqual({ outcome: 'ALREADY_COMPLETED', triage: 'NONE' });
    expect(await env.getRun()).toMatchObject({ status: 'COMPLETED', completed_at: run.completed_at });
    expect(run.engine_summary).toBeUndefined();
  });

  it('resolves the open exceptions of the date this run did not find, and mirrors that into the index', async () => {
    await env.startStoring();
    for (const m of env.messages) await env.store(m);
    // A second run of the date finds T0..T9 again (unchanged) but no longer T10, T11.
    const second = await setup(Array.from({ length: 10 }, (_, i) => finding(i)));
    for (const side of ['source', 'target'])
      await dynamo.doc.send(
        new UpdateCommand({
          TableName: dynamo.names.tables.files,
          Key: { dataset_date: `trades#${env.date}`, side },
          UpdateExpression: 'SET etag = :e',
          ExpressionAttributeValues: { ':e': side === 'source' ? `s${counter}` : `t${counter}` },
        }),
      );
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.runs,
        Key: { run_id: second.runId },
        UpdateExpression: 'SET business_date = :d',
        ExpressionAttributeValues: { ':d': env.date },
      }),
    );
    const messages = second.messages.map((m) => ({ ...m, business_date: env.date }));
    await second.startStoring();

    const outcomes = [];
    for (const m of messages) outcomes.push(await second.store(m));

    expect(outcomes.at(-1)).toMatchObject({ completion: { outcome: 'COMPLETED', resolved: 2 } });
    const byKey = Object.fromEntries((await env.stored()).map((e) => [e.key.trade_id, e]));
    for (const gone of ['T10', 'T11']) {
      expect(byKey[gone]).toMatchObject({ status: 'RESOLVED', resolved_by_system: true, version: 2 });
      expect(byKey[gone]?.history.at(-1)).toMatchObject({ action: 'RESOLVED', run_id: second.runId });
    }
    expect(byKey.T3).toMatchObject({ status: 'OPEN', run_id: second.runId, version: 1 });
    expect(second.mirrored.sort()).toEqual(
      ['T10', 'T11'].map((k) => exceptionId('trades', env.date, 'AMOUNT_MISMATCH', k)).sort(),
    );
    expect(await second.getRun()).toMatchObject({ summary: { new: 0, unchanged: 10, resolved: 2 } });
    // Unchanged exceptions are not counted as needing triage; the run's dispatch is queued as always.
    expect(second.triage).toEqual([{ kind: 'dispatch', run_id: second.runId }]);
    expect(await second.getRun()).toMatchObject({ summary: { triage_enqueued: 0 } });
  });

  it('leaves stale exceptions to the newer run when a newer upload superseded this one meanwhile', async () => {
    await env.startStoring();
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.files,
        Key: { dataset_date: `trades#${env.date}`, side: 'target' },
        UpdateExpression: 'SET etag = :e',
        ExpressionAttributeValues: { ':e': 'newer' },
      }),
    );

    const outcomes = [];
    for (const m of env.messages) outcomes.push(await env.store(m));

    expect(outcomes.at(-1)).toMatchObject({ completion: { outcome: 'SUPERSEDED' } });
    expect(await env.getRun()).toMatchObject({ status: 'SUPERSEDED' });
  });
});

describe("the start of a completed run's triage", () => {
  let env: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => {
    env = await setup();
  });

  it('queues one dispatch message when the run completes, and records it on the run', async () => {
    await env.startStoring({ state: 'PENDING', at: '2025-03-01T00:00:00.000Z' });

    const outcomes = [];
    for (const m of env.messages) outcomes.push(await env.store(m));

    expect(outcomes.at(-1)).toMatchObject({ completion: { outcome: 'COMPLETED', triage: 'DISPATCH_QUEUED' } });
    expect(env.triage).toEqual([{ kind: 'dispatch', run_id: env.runId }]);
    expect(env.notified).toEqual([]);
    expect(await env.getRun()).toMatchObject({ dispatch_queued_at: '2025-03-02T00:00:00.000Z' });
    // A redelivered last chunk finds the dispatch queued: nothing more.
    expect(await env.store(env.messages.at(-1) as StoreRequest)).toMatchObject({ outcome: 'SKIPPED', triage: 'NONE' });
    expect(env.triage).toHaveLength(1);
  });

  it('queues the dispatch from the redelivered last chunk when the completion died before queueing it', async () => {
    await env.startStoring();
    for (const m of env.messages.slice(0, -1)) await env.store(m);
    // The completion's process dies right after COMPLETED (crash point store:completed).
    const queue = env.deps.triageQueue;
    const died = { ...env.deps, triageQueue: { send: async () => Promise.reject(new Error('killed')) } };
    await expect(storeChunk(env.messages.at(-1) as StoreRequest, died)).rejects.toThrow('killed');
    expect(await env.getRun()).toMatchObject({ status: 'COMPLETED' });
    expect(await env.getRun()).not.toHaveProperty('dispatch_queued_at');

    const redelivered = await storeChunk(env.messages.at(-1) as StoreRequest, { ...env.deps, triageQueue: queue });

    expect(redelivered).toMatchObject({ outcome: 'SKIPPED', status: 'COMPLETED', triage: 'DISPATCH_QUEUED' });
    expect(env.triage).toEqual([{ kind: 'dispatch', run_id: env.runId }]);
  });

  it("sends a HELD run's business notification exactly once and queues no dispatch", async () => {
    await env.startStoring({ state: 'HELD', reason: 'break rate 0.9 is above 0.5', at: '2025-03-01T00:00:00.000Z' });

    const outcomes = [];
    for (const m of env.messages) outcomes.push(await env.store(m));
    // Two more deliveries of the last chunk, one of them concurrent with a third.
    outcomes.push(
      ...(await Promise.all([
        env.store(env.messages.at(-1) as StoreRequest),
        env.store(env.messages.at(-1) as StoreRequest),
      ])),
    );

    expect(outcomes.at(2)).toMatchObject({ completion: { outcome: 'COMPLETED', triage: 'HELD_NOTIFIED' } });
    expect(env.notified).toEqual([
      expect.objectContaining({
        type: 'RUN_TRIAGE_HELD',
        run_id: env.runId,
        dataset: 'trades',
        reason: 'break rate 0.9 is above 0.5',
        exceptions: 12,
        needing_triage: 12,
      }),
    ]);
    expect(env.triage).toEqual([]);
    expect(await env.getRun()).toMatchObject({ triage: { state: 'HELD', notified: true } });
  });

  it('gives the notification claim back when the topic fails, so the retry sends it', async () => {
    await env.startStoring({ state: 'HELD', reason: 'too many', at: '2025-03-01T00:00:00.000Z' });
    for (const m of env.messages.slice(0, -1)) await env.store(m);
    env.notifier.failNext = 1;

    await expect(env.store(env.messages.at(-1) as StoreRequest)).rejects.toThrow('topic unavailable');
    expect(await env.getRun()).toMatchObject({ status: 'COMPLETED', triage: { notified: false } });
    const retried = await env.store(env.messages.at(-1) as StoreRequest);

    expect(retried).toMatchObject({ outcome: 'SKIPPED', triage: 'HELD_NOTIFIED' });
    expect(env.notified).toHaveLength(1);
  });

  it('dispatches a run released while it was still storing, once it completes', async () => {
    await env.startStoring({ state: 'HELD', reason: 'too many', at: '2025-03-01T00:00:00.000Z' });
    await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).moveTriage(env.runId, ['HELD'], {
      state: 'RELEASED',
      at: '2025-03-01T01:00:00.000Z',
      by: 'analyst-1',
    });

    for (const m of env.messages) await env.store(m);

    expect(env.notified).toEqual([]);
    expect(env.triage).toEqual([{ kind: 'dispatch', run_id: env.runId }]);
  });
});

describe('the store handler', () => {
  it('moves a chunk that is not findings to the DLQ at once, and fails nothing else', async () => {
    const env = await setup();
    const dead: string[] = [];
    const handler = createHandler(() => ({
      ...env.deps,
      deadLetter: { send: async (m) => void dead.push(m.code) },
    }));
    await env.deps.chunks.put('tally-data', 'results/bad/part-00000.jsonl.gz', Buffer.from('not json\n'));

    const response = await handler(
      sqsEvent(sqsRecord({ ...env.messages[0], key: 'results/bad/part-00000.jsonl.gz' }), sqsRecord(env.messages[1])),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(dead).toEqual(['BAD_CHUNK']);
    expect(await env.getRun()).toMatchObject({ chunks_stored: 1 });
  });
});

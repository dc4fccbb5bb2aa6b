import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCommand, UpdateCommand, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { getItemsInOrder, queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { createHandler, defaultDeps } from '../../functions/recon/handler.ts';
import { createHandler as createStoreHandler, defaultDeps as storeDeps } from '../../functions/store/handler.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { mockS3Objects } from '../support/s3-objects.ts';
import { recordRunInputs } from '../support/run-inputs.ts';
import { mockSqsSends } from '../support/sqs-sends.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { sqlEngine } from '../../scripts/local/recon-handler.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8');
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8');

let dynamo: TestDynamo;
let dateCounter = 0;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

function setup() {
  const objects = mockS3Objects();
  const sqs = mockSqsSends();
  const handler = createHandler(defaultDeps);
  const storeHandler = createStoreHandler(storeDeps);
  const triage = () => sqs.bodiesTo('-triage');
  const date = `2025-02-${String(++dateCounter).padStart(2, '0')}`;

  /** Stores the pair as ingest would have (files + a REQUESTED run) and returns the recon request. */
  const requestRun = (runId: string, source: string, target: string) =>
    recordRunInputs(dynamo, objects, { runId, date, source, target });

  /** The dataset-day's exceptions as its index lists them (every shard). */
  async function exceptions() {
    const { items } = await queryAllShards(dynamo.doc, dynamo.names.tables.exceptions, 'by_dataset_date_sharded', {
      attribute: 'gsi_dataset_date',
      values: shardedValues(`trades#${date}`),
    });
    // The index carries what listings filter on; the items themselves by key.
    return (await getItemsInOrder(dynamo.doc, dynamo.names.tables.exceptions, ['exception_id'], items)) as NonNullable<
      QueryCommandOutput['Items']
    >;
  }

  /** Recon alone: the run's chunks are written and queued, not stored. */
  const invokeRecon = (...bodies: unknown[]) => handler(sqsEvent(...bodies.map((b) => sqsRecord(b))), lambdaContext);
  let delivered = 0;
  /** The store queue's messages not delivered yet, each to the store consumer (one a batch, as on AWS). */
  async function drainStore() {
    for (let sent = sqs.bodiesTo('-store'); delivered < sent.length; sent = sqs.bodiesTo('-store')) {
      const response = await storeHandler(sqsEvent(sqsRecord(sent[delivered++])), lambdaContext);
      expect(response.batchItemFailures).toEqual([]);
    }
  }
  /** Recon, then the store consumer on what it queued: the pipeline up to triage. */
  const invoke = async (...bodies: unknown[]) => {
    const response = await invokeRecon(...bodies);
    await drainStore();
    return response;
  };
  return {
    objects,
    invoke,
    invokeRecon,
    drainStore,
    stored: () => sqs.bodiesTo('-store'),
    triage,
    requestRun,
    exceptions,
  };
}

describe('recon handler', () => {
  let env: ReturnType<typeof setup>;
  beforeEach(() => {
    env = setup();
  });

  it('stores the sample exceptions under stable ids and, once the run completes, queues its dispatch', async () => {
    const request = await env.requestRun('run-a', SOURCE, TARGET);

    const response = await env.invoke(request);

    expect(response.batchItemFailures).toEqual([]);
    const stored = await env.exceptions();
    expect(stored.map((e) => `${e.exception_type}:${e.key.trade_id}`).sort()).toEqual([
      'AMOUNT_MISMATCH:T0005',
      'AMOUNT_MISMATCH:T0018',
      'DUPLICATE_IN_TARGET:T0012',
      'MISSING_IN_TARGET:T0007',
      'MISSING_IN_TARGET:T0014',
    ]);
    expect(stored.every((e) => e.status === 'OPEN' && e.version === 1 && e.run_id === 'run-a')).toBe(true);
    // One message for the whole run: its dispatch queues the triage by pattern (functions/triage/dispatch.ts).
    expect(env.triage()).toEqual([{ kind: 'dispatch', run_id: 'run-a' }]);
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-a' } }),
    );
    expect(run.Item).toMatchObject({
      status: 'COMPLETED',
      summary: { rows: { source: 20, target: 19 }, matched: 15, new: 5, triage_enqueued: 5 },
      triage: { state: 'PENDING' },
      dispatch_queued_at: expect.any(String),
      chunks_total: 1,
      chunks_stored: 1,
    });
  });

  it('writes the findings in chunks under results/ and leaves the run STORING until they are stored', async () => {
    const request = await env.requestRun('run-chunks', SOURCE, TARGET);

    const response = await env.invokeRecon(request);

    expect(response.batchItemFailures).toEqual([]);
    expect(env.stored()).toEqual([
      {
        run_id: 'run-chunks',
        dataset: 'trades',
        business_date: request.business_date,
        bucket: 'tally-data',
        key: 'results/run-chunks/part-00000.jsonl.gz',
        chunk: 0,
        findings: 5,
      },
    ]);
    expect(env.objects.text('results/run-chunks/part-00000.jsonl.gz')).toBeDefined();
    expect(await env.exceptions()).toHaveLength(0);
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-chunks' } }),
    );
    expect(run.Item).toMatchObject({ status: 'STORING', chunks_total: 1, lease_until: 0 });
    expect(run.Item?.summary).toBeUndefined();

    await env.drainStore();

    expect(await env.exceptions()).toHaveLength(5);
  });

  it('re-queues the last chunk when its request returns to a run stored but not completed (a lost nudge)', async () => {
    const request = await env.requestRun('run-nudge', SOURCE, TARGET);
    await env.invokeRecon(request);
    // Every chunk counted while the run was still RUNNING, and recon's own nudge never arrived.
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.runs,
        Key: { run_id: 'run-nudge' },
        UpdateExpression: 'SET chunks_stored = :one, stored_chunks = :chunks',
        ExpressionAttributeValues: { ':one': 1, ':chunks': new Set([0]) },
      }),
    );

    await env.invokeRecon(request);

    expect(env.stored().map((m) => m.key)).toEqual([
      'results/run-nudge/part-00000.jsonl.gz',
      'results/run-nudge/part-00000.jsonl.gz',
    ]);
    await env.drainStore();
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-nudge' } }),
    );
    expect(run.Item?.status).toBe('COMPLETED');
  });

  it('does nothing on redelivery of a completed run', async () => {
    const request = await env.requestRun('run-b', SOURCE, TARGET);
    await env.invoke(request);

    await env.invoke(request);

    expect(env.stored()).toHaveLength(1);
    expect(env.triage()).toHaveLength(1);
    expect(await env.exceptions()).toHaveLength(5);
  });

  it('resolves what a corrected re-run no longer finds, keeps the rest, and triages only what is new', async () => {
    await env.invoke(await env.requestRun('run-c1', SOURCE, TARGET));
    const corrected = TARGET.replace('T0005,ACCT1004,2025-12-03,475.00', 'T0005,ACCT1004,2025-12-03,450.00').replace(
      'T0018,ACCT1002,2025-12-09,295.00',
      'T0018,ACCT1009,2025-12-09,295.00',
    );

    await env.invoke(await env.requestRun('run-c2', SOURCE, corrected));

    const byKey = Object.fromEntries((await env.exceptions()).map((e) => [`${e.exception_type}:${e.key.trade_id}`, e]));
    expect(byKey['AMOUNT_MISMATCH:T0005']).toMatchObject({ status: 'RESOLVED', resolved_by_system: true, version: 2 });
    expect(byKey['AMOUNT_MISMATCH:T0005']?.history.at(-1)).toMatchObject({
      by: 'system:recon',
      action: 'RESOLVED',
      run_id: 'run-c2',
    });
    expect(byKey['FIELD_MISMATCH:T0018']).toMatchObject({ status: 'OPEN', run_id: 'run-c2' });
    expect(byKey['MISSING_IN_TARGET:T0007']).toMatchObject({ status: 'OPEN', run_id: 'run-c2', version: 1 });
    const secondRunTriage = env.triage().filter((t) => t.run_id === 'run-c2');
    expect(secondRunTriage).toEqual([{ kind: 'dispatch', run_id: 'run-c2' }]);
    // Only the new FIELD_MISMATCH needs triage: the unchanged ones keep theirs.
    const second = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-c2' } }),
    );
    expect(second.Item?.summary).toMatchObject({ new: 1, triage_enqueued: 1 });
  });

  it('keeps an analyst status and history when the same break is found again', async () => {
    await env.invoke(await env.requestRun('run-d1', SOURCE, TARGET));
    const missing = (await env.exceptions()).find((e) => e.key.trade_id === 'T0007');
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.exceptions,
        Key: { exception_id: missing?.exception_id },
        UpdateExpression: 'SET #s = :ack, version = :v, history = list_append(history, :h)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':ack': 'ACKNOWLEDGED',
          ':v': 2,
          ':h': [{ at: 'now', by: 'analyst@bank', action: 'STATUS', to: 'ACKNOWLEDGED' }],
        },
      }),
    );

    await env.invoke(await env.requestRun('run-d2', SOURCE, `${TARGET}T9999,ACCT1,2025-12-10,1.00\n`));

    const again = (await env.exceptions()).find((e) => e.key.trade_id === 'T0007');
    expect(again).toMatchObject({ status: 'ACKNOWLEDGED', run_id: 'run-d2', version: 2 });
    expect(again?.history.map((h: { by: string }) => h.by)).toEqual(['system:recon', 'analyst@bank']);
  });

  it('records an unreadable file as a failed run without retrying it', async () => {
    const request = await env.requestRun('run-e', SOURCE, 'trade_id;amount\nT1;1\n');

    const response = await env.invoke(request);

    expect(response.batchItemFailures).toEqual([]);
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-e' } }),
    );
    expect(run.Item).toMatchObject({ status: 'FAILED', error: { code: 'MISSING_COLUMNS' } });
    expect(run.Item?.error.message).toContain('target.csv');
    expect(await env.exceptions()).toHaveLength(0);
  });

  it("logs a side the SQL engine read with the in-memory engine's reader, and why", async () => {
    // Prepare: a pair above the policy's engine.large_above_bytes (as ingest records its size),
    // the local stack's DuckDB engine, and a source DuckDB's reader would misread.
    const logged: [string, Record<string, unknown>][] = [];
    const handler = createHandler(() => ({ ...defaultDeps(), sqlEngine, log: (m, d) => void logged.push([m, d]) }));
    const request = await recordRunInputs(dynamo, env.objects, {
      runId: 'run-sql',
      date: '2025-02-28',
      source: `\n${SOURCE}`,
      target: TARGET,
      size: 2 ** 40,
    });
    // Act
    const response = await handler(sqsEvent(sqsRecord(request)), lambdaContext);
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(logged).toContainEqual([
      "source read by the in-memory engine's reader, not DuckDB's (slower)",
      {
        side: 'source',
        file: 's3://tally-data/incoming/trades/2025-02-28/source.csv',
        why: 'blank lines before the header',
      },
    ]);
    expect(logged.filter(([m]) => m.includes('reader'))).toHaveLength(1);
  });

  it('stores an exception too large for one DynamoDB item cut to fit, and completes the run', async () => {
    // Prepare: a key on 120,000 rows (as many line numbers), and a 60,000-character key whose
    // 60,000-character accounts differ (420 KB with the diff); dynalite refuses an item over
    // 400 KB, as DynamoDB does.
    const long = `T${'k'.repeat(60_000)}`;
    const source = `${SOURCE}${'T9000,ACCT1,2025-12-01,1.00\n'.repeat(120_000)}${long},${'x'.repeat(60_000)},2025-12-01,1.00\n`;
    const target = `${TARGET}${long},${'y'.repeat(60_000)},2025-12-01,1.00\n`;
    const request = await env.requestRun('run-big', source, target);
    // Act
    const response = await env.invoke(request);
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-big' } }),
    );
    expect(run.Item?.status).toBe('COMPLETED');
    // Counted on the run: the Runs view and `npm start -- --once` say how many were cut.
    expect(run.Item?.summary.cut_for_storage).toBe(2);
    const stored = await env.exceptions();
    const duplicate = stored.find((e) => e.exception_type === 'DUPLICATE_IN_SOURCE' && e.key.trade_id === 'T9000');
    expect(duplicate?.lines.source).toHaveLength(1000);
    expect(duplicate?.source._omitted).toBe(
      "not stored (over DynamoDB's item size): line numbers after the first 1000 of 120000",
    );
    const wide = stored.find((e) => e.key.trade_id === long);
    expect(wide?.exception_type).toBe('FIELD_MISMATCH');
    expect(wide?.target).toEqual({
      trade_id: `${long.slice(0, 256)}…`,
      account_id: `${'y'.repeat(256)}…`,
      trade_date: '2025-12-01',
      amount: '1.00',
      _omitted: "not stored (over DynamoDB's item size): the text past 256 characters of 2 values",
    });
    expect(wide?.diffs[0].target).toBe(`${'y'.repeat(4096)}…`);
  }, 60_000);

  it('marks a run superseded when a newer upload replaced one of its files', async () => {
    const request = await env.requestRun('run-f', SOURCE, TARGET);
    env.objects.put(request.target.key, `${TARGET}T0100,ACCT1,2025-12-10,1.00\n`);

    await env.invoke(request);

    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-f' } }),
    );
    expect(run.Item?.status).toBe('SUPERSEDED');
    expect(await env.exceptions()).toHaveLength(0);
  });

  it('fails only the malformed request in a batch', async () => {
    const good = await env.requestRun('run-g', SOURCE, TARGET);

    const response = await env.invoke(good, { run_id: 'x' });

    expect(response.batchItemFailures).toHaveLength(1);
    expect(await env.exceptions()).toHaveLength(5);
  });
});

/**
 * Break patterns through the real recon and store consumers on dynalite: recon gives every finding
 * its pattern as it writes the chunks, saves the patterns that reach the policy's
 * triage.pattern_min_members before the run is STORING and records their numbers on the run; the
 * store writes each exception's pattern_id (and so its by_pattern_sharded entry). A run claimed
 * again after its worker died saves the same patterns.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteCommand, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler, defaultDeps } from '../../functions/recon/handler.ts';
import { createHandler as createStoreHandler, defaultDeps as storeDeps } from '../../functions/store/handler.ts';
import { policyInForceKey } from '../../functions/shared/keys.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { recordRunInputs } from '../support/run-inputs.ts';
import { mockS3Objects } from '../support/s3-objects.ts';
import { mockSqsSends } from '../support/sqs-sends.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8');
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8');
const TRADES_POLICY = readFileSync(new URL('../../policies/datasets/trades.md', import.meta.url), 'utf8');

let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

/** The trades policy in force with patterns of two members or more (the sample's two missing trades make one). */
function policyWithPatternsOfTwo(): string {
  const withTriage = TRADES_POLICY.replace(
    '"default_severity": "MEDIUM"\n}',
    '"default_severity": "MEDIUM",\n  "triage": { "pattern_min_members": 2 }\n}',
  );
  expect(withTriage).not.toBe(TRADES_POLICY);
  return withTriage;
}

async function runRecord(runId: string) {
  return (await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: runId } }))).Item;
}

async function patternsOf(runId: string) {
  const out = await dynamo.doc.send(
    new QueryCommand({
      TableName: dynamo.names.tables.patterns,
      KeyConditionExpression: 'run_id = :r',
      ExpressionAttributeValues: { ':r': runId },
    }),
  );
  return out.Items ?? [];
}

describe('recon saves a run’s break patterns', () => {
  it('gives every exception its pattern, saves those of at least pattern_min_members and counts them on the run', async () => {
    // Prepare
    const objects = mockS3Objects();
    const sqs = mockSqsSends();
    objects.put(policyInForceKey('trades'), policyWithPatternsOfTwo());
    const request = await recordRunInputs(dynamo, objects, {
      runId: 'run-p',
      date: '2025-03-01',
      source: SOURCE,
      target: TARGET,
    });
    // Act
    const recon = await createHandler(defaultDeps)(sqsEvent(sqsRecord(request)), lambdaContext);
    const storing = await runRecord('run-p');
    for (const body of sqs.bodiesTo('-store'))
      expect((await createStoreHandler(storeDeps)(sqsEvent(sqsRecord(body)), lambdaContext)).batchItemFailures).toEqual(
        [],
      );
    // Assess
    expect(recon.batchItemFailures).toEqual([]);
    // Recorded with STORING, before any chunk was stored.
    expect(storing).toMatchObject({ status: 'STORING', patterns: { patterns: 1, members: 2, singletons: 3 } });
    const patterns = await patternsOf('run-p');
    expect(patterns).toHaveLength(1);
    const missing = patterns[0] as Record<string, unknown>;
    expect(missing).toMatchObject({
      run_id: 'run-p',
      dataset: 'trades',
      business_date: '2025-03-01',
      exception_type: 'MISSING_IN_TARGET',
      description: 'MISSING_IN_TARGET',
      size: 2,
      signature: { type: 'MISSING_IN_TARGET', fields: [], shapes: {} },
    });
    expect(missing.pattern_id).toMatch(/^pat_[0-9a-f]{16}$/);

    const { items } = await queryAllShards(dynamo.doc, dynamo.names.tables.exceptions, 'by_dataset_date_sharded', {
      attribute: 'gsi_dataset_date',
      values: shardedValues('trades#2025-03-01'),
    });
    expect(items).toHaveLength(5);
    for (const e of items) expect(e.pattern_id).toMatch(/^pat_[0-9a-f]{16}$/);
    const members = items.filter((e) => e.pattern_id === missing.pattern_id);
    expect(members.map((e) => (e.key as { trade_id: string }).trade_id).sort()).toEqual(['T0007', 'T0014']);
    expect([...(missing.representatives as string[])]).toEqual(members.map((e) => e.exception_id).sort());
    // The two amount breaks differ in sign: two singletons, not one pattern.
    const amounts = items.filter((e) => e.exception_type === 'AMOUNT_MISMATCH');
    expect(new Set(amounts.map((e) => e.pattern_id)).size).toBe(2);
    // The pattern's members are its by_pattern_sharded partition.
    const indexed = await queryAllShards(dynamo.doc, dynamo.names.tables.exceptions, 'by_pattern_sharded', {
      attribute: 'gsi_pattern',
      values: shardedValues(missing.pattern_id as string),
    });
    expect(indexed.items.map((e) => e.exception_id).sort()).toEqual(members.map((e) => e.exception_id).sort());
    expect((await runRecord('run-p'))?.status).toBe('COMPLETED');
  });

  it('saves the same patterns when a run is claimed again after its worker died', async () => {
    // Prepare
    const objects = mockS3Objects();
    mockSqsSends();
    objects.put(policyInForceKey('trades'), policyWithPatternsOfTwo());
    const request = await recordRunInputs(dynamo, objects, {
      runId: 'run-q',
      date: '2025-03-02',
      source: SOURCE,
      target: TARGET,
    });
    const handler = createHandler(defaultDeps);
    await handler(sqsEvent(sqsRecord(request)), lambdaContext);
    const first = await patternsOf('run-q');
    // The worker died before it saved the patterns: the run is RUNNING again, its lease run out.
    for (const p of first)
      await dynamo.doc.send(
        new DeleteCommand({
          TableName: dynamo.names.tables.patterns,
          Key: { run_id: 'run-q', pattern_id: p.pattern_id },
        }),
      );
    expect(await patternsOf('run-q')).toEqual([]);
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: dynamo.names.tables.runs,
        Key: { run_id: 'run-q' },
        UpdateExpression: 'SET #s = :running, lease_until = :past, lease_owner = :dead REMOVE patterns',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':running': 'RUNNING', ':past': 1, ':dead': 'dead-worker' },
      }),
    );
    // Act
    const again = await handler(sqsEvent(sqsRecord(request)), lambdaContext);
    // Assess
    expect(again.batchItemFailures).toEqual([]);
    expect(first).toHaveLength(1);
    expect(await patternsOf('run-q')).toEqual(first);
    expect(await runRecord('run-q')).toMatchObject({
      status: 'STORING',
      patterns: { patterns: 1, members: 2, singletons: 3 },
    });
  });
});

/**
 * The whole pipeline on the local stack: real handlers, emulated S3/SQS/DynamoDB, the S3 event
 * router and SQS pollers, exactly as `npm start` runs them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { QueryCommand, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { getItemsInOrder, queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { objectCreated } from '../support/events.ts';
import { createEmbedder, createVectorIndex } from '../../functions/shared/search/factory.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`);
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`);
const SAMPLE_COUNTS = { AMOUNT_MISMATCH: 2, MISSING_IN_TARGET: 2, DUPLICATE_IN_TARGET: 1 };

let dataDir: string;
let stack: LocalStack;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-it-'));
  // A one-second visibility timeout lets a poison message reach its DLQ within the test. It is
  // also shorter than the hybrid embedder takes to index a policy on a loaded machine (its
  // heartbeats fall behind and a duplicate delivery ends in the DLQ), so this stack embeds with
  // hashing; the other local-stack tests run the default.
  stack = await startLocalStack({ dataDir, visibilityTimeoutSeconds: 1, embedder: 'hashing' });
  await stack.loadPolicies();
  await stack.waitForIdle();
});
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A dataset-day's exceptions as its index lists them (every shard). */
async function exceptionsFor(date: string, dataset = 'trades') {
  const { items } = await queryAllShards(stack.dynamo, stack.names.tables.exceptions, 'by_dataset_date_sharded', {
    attribute: 'gsi_dataset_date',
    values: shardedValues(`${dataset}#${date}`),
  });
  // The index carries what listings filter on; the items themselves by key.
  return (await getItemsInOrder(stack.dynamo, stack.names.tables.exceptions, ['exception_id'], items)) as NonNullable<
    QueryCommandOutput['Items']
  >;
}

describe('local stack', () => {
  it('runs two uploaded extracts through ingest and recon into stored exceptions', async () => {
    await stack.upload('incoming/trades/2025-12-10/source.csv', SOURCE);
    await stack.upload('incoming/trades/2025-12-10/target.csv', TARGET);
    await stack.waitForIdle();

    const counts = await stack.counts();

    expect(counts.exceptions).toEqual(SAMPLE_COUNTS);
    expect(counts.runs).toBe(1);
    expect(counts.files).toEqual({ accepted: 2, rejected: 0 });
    expect(counts.triaged).toBe(5);
    expect(counts.searchable).toBe(5);
  });

  it('warmed, each query API thread holds the search index before any search', async () => {
    // Each of the pool's two threads reports the documents its own index loaded; no other
    // function has anything to load.
    expect(await stack.warm()).toEqual({
      'query-api': [{ exceptionsIndexDocuments: 5 }, { exceptionsIndexDocuments: 5 }],
    });
  });

  it('triages every sample exception with citations of retrieved policy passages', async () => {
    const stored = await exceptionsFor('2025-12-10');

    for (const e of stored) {
      expect(e.triage.policy_citations.length).toBeGreaterThan(0);
      expect(
        e.triage.policy_citations.every(
          (c: { passage: string; document: string }) => c.passage.length > 0 && c.document.endsWith('.md'),
        ),
      ).toBe(true);
      expect(e.severity).toBe(e.triage.severity);
    }
    const amount = stored.find((e) => e.key.trade_id === 'T0005');
    expect(amount?.triage.policy_citations.map((c: { section: string }) => c.section).join(' | ')).toMatch(
      /Amount mismatch/,
    );
  });

  it.each([
    ['amount differs', ['T0005', 'T0018'], 'AMOUNT_MISMATCH'],
    ['T0012', ['T0012'], 'DUPLICATE_IN_TARGET'],
    ['trade missing from the target', ['T0007', 'T0014'], 'MISSING_IN_TARGET'],
  ])('search for "%s" ranks the right exceptions first', async (query, keys, type) => {
    const embedder = createEmbedder(stack.environments['query-api']);
    const [vector] = await embedder.embed([query]);

    const hits = await createVectorIndex('exceptions', stack.environments['query-api']).search(vector as number[], 5, {
      business_date: '2025-12-10',
    });

    const top = hits.slice(0, keys.length);
    expect(top.map((h) => JSON.parse(String(h.fields.key)).trade_id).sort()).toEqual(keys);
    expect(top.every((h) => h.fields.exception_type === type)).toBe(true);
  });

  it('uploading the same files again makes no new run and no duplicate exceptions', async () => {
    await stack.upload('incoming/trades/2025-12-10/source.csv', SOURCE);
    await stack.upload('incoming/trades/2025-12-10/target.csv', TARGET);
    await stack.waitForIdle();

    const counts = await stack.counts();

    expect(counts.exceptions).toEqual(SAMPLE_COUNTS);
    expect(counts.runs).toBe(1);
    expect(counts.triaged).toBe(5);
  });

  it('a corrected target makes a new run that resolves the corrected exceptions', async () => {
    const corrected = TARGET.toString().replace('T0005,ACCT1004,2025-12-03,475.00', 'T0005,ACCT1004,2025-12-03,450.00');
    await stack.upload('incoming/trades/2025-12-10/target.csv', corrected);
    await stack.waitForIdle();

    const stored = await exceptionsFor('2025-12-10');

    expect((await stack.counts()).runs).toBe(2);
    expect(stored.find((e) => e.key.trade_id === 'T0005')).toMatchObject({
      status: 'RESOLVED',
      resolved_by_system: true,
    });
    expect(stored.filter((e) => e.status === 'OPEN')).toHaveLength(4);
    const t0005 = stored.find((e) => e.key.trade_id === 'T0005');
    const [hit] = await createVectorIndex('exceptions', stack.environments['query-api']).search(
      new Array(1024).fill(0.01),
      1,
      {
        exception_id: t0005?.exception_id,
      },
    );
    expect(hit?.fields.status).toBe('RESOLVED');
  });

  it('a poison message ends in the DLQ with its body intact while the others are processed', async () => {
    const poison = JSON.stringify(objectCreated('incoming/not a valid key.csv', 'abc', { bucket: stack.names.bucket }));
    await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.ingest.main, MessageBody: poison }));
    await stack.upload('incoming/trades/2025-12-11/source.csv', SOURCE);
    await stack.upload('incoming/trades/2025-12-11/target.csv', TARGET);
    await stack.waitForIdle();

    const dlq = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queues.ingest.dlq, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );

    expect(dlq.Messages?.map((m) => m.Body)).toEqual([poison]);
    expect(await exceptionsFor('2025-12-11')).toHaveLength(5);
  });

  it('a rejected file is recorded with its error and never reconciled', async () => {
    await stack.upload('incoming/trades/2025-12-12/source.csv', SOURCE);
    await stack.upload(
      'incoming/trades/2025-12-12/target.csv',
      'trade_id;account_id;trade_date;amount\nT1;A;2025-12-12;1\n',
    );
    await stack.waitForIdle();

    const files = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.files,
        KeyConditionExpression: 'dataset_date = :d',
        ExpressionAttributeValues: { ':d': 'trades#2025-12-12' },
      }),
    );

    expect(files.Items?.find((f) => f.side === 'target')).toMatchObject({
      status: 'REJECTED',
      error: { code: 'MISSING_COLUMNS', line: 1 },
    });
    expect(await exceptionsFor('2025-12-12')).toHaveLength(0);
  });
});

describe('local stack: the payments sample beside trades', () => {
  const PAYMENTS_DIR = `${SAMPLE_DIR}payments/`;

  it('reconciles semicolon CSV against JSON Lines under the payments policy in force, and the run records that policy', async () => {
    const policy = parseReconPolicy(readFileSync(`${REPO_ROOT}policies/datasets/payments.md`, 'utf8'));
    await stack.upload('incoming/payments/2025-12-10/source.csv', readFileSync(`${PAYMENTS_DIR}source.csv`));
    await stack.upload('incoming/payments/2025-12-10/target.jsonl', readFileSync(`${PAYMENTS_DIR}target.jsonl`));
    await stack.waitForIdle();

    const stored = await exceptionsFor('2025-12-10', 'payments');
    const runs = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.runs,
        IndexName: 'by_dataset_date',
        KeyConditionExpression: 'dataset_date = :d',
        ExpressionAttributeValues: { ':d': 'payments#2025-12-10' },
      }),
    );

    // The breaks planted in the sample (test/unit/payments-sample.test.ts), one exception per payment.
    expect(
      stored
        .map((e) => `${e.exception_type} ${e.exception_type === 'INVALID_RECORD' ? '' : e.key.payment_id}`.trim())
        .sort(),
    ).toEqual([
      'AMOUNT_MISMATCH PAY-0006',
      'AMOUNT_MISMATCH PAY-0014',
      'DUPLICATE_IN_TARGET PAY-0012',
      'FIELD_MISMATCH PAY-0007',
      'FIELD_MISMATCH PAY-0008',
      'INVALID_RECORD',
      'MISSING_IN_SOURCE PAY-0010',
      'MISSING_IN_TARGET PAY-0009',
    ]);
    expect(runs.Items).toHaveLength(1);
    expect(runs.Items?.[0]).toMatchObject({
      status: 'COMPLETED',
      policy_version: policy.policyVersion,
      policy_hash: policy.hash,
      summary: { outcome: 'FAIL', matched: 6, rows: { source: 13, target: 14 } },
    });
  });

  it("serves the run's report as Markdown and as self-contained HTML", async () => {
    const runs = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.runs,
        IndexName: 'by_dataset_date',
        KeyConditionExpression: 'dataset_date = :d',
        ExpressionAttributeValues: { ':d': 'payments#2025-12-10' },
      }),
    );
    const runId = runs.Items?.[0]?.run_id as string;
    const url = `${stack.endpoints.api}/runs/${runId}/report`;

    const md = await fetch(`${url}?format=md`);
    const html = await fetch(url);
    const missing = await fetch(`${stack.endpoints.api}/runs/run-nope/report`);
    const badFormat = await fetch(`${url}?format=pdf`);

    expect(md.status).toBe(200);
    expect(md.headers.get('content-type')).toBe('text/markdown; charset=utf-8');
    const text = await md.text();
    expect(text).toContain('Outcome: FAIL');
    expect(text).toContain('PAY-0014');
    expect(html.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await html.text()).toMatch(/^<!doctype html>/i);
    expect(missing.status).toBe(404);
    expect(badFormat.status).toBe(400);
  });

  it('refuses an extract of a dataset with no policy and records why', async () => {
    await stack.upload('incoming/positions/2025-12-10/source.csv', SOURCE);
    await stack.waitForIdle();

    const files = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.files,
        KeyConditionExpression: 'dataset_date = :d',
        ExpressionAttributeValues: { ':d': 'positions#2025-12-10' },
      }),
    );

    expect(files.Items?.[0]).toMatchObject({ status: 'REJECTED', error: { code: 'NO_POLICY' } });
  });
});

describe('local stack: a start that fails part-way', () => {
  it('stops what it started, so the data directory opens again in the same process', async () => {
    const again = mkdtempSync(join(tmpdir(), 'tally-it-again-'));
    try {
      // Its API port is the running stack's: the last step of its start fails.
      const taken = Number(new URL(stack.endpoints.api).port);
      await expect(startLocalStack({ dataDir: again, apiPort: taken, embedder: 'hashing' })).rejects.toThrow(
        /EADDRINUSE/,
      );
      // Left running, its DynamoDB emulator would hold the directory's LevelDB lock.
      const second = await startLocalStack({ dataDir: again, embedder: 'hashing' });
      await second.stop();
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  }, 60_000);
});

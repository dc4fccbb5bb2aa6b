/**
 * On-call's DLQ tool against the local stack, end to end: a message that fails for a real,
 * fixable reason lands in the DLQ; `tally dlq list` shows it with that reason; once the cause is
 * fixed, `tally dlq redrive` brings it back and it is processed exactly once.
 *
 * The cause: the files table is missing — what a botched deploy, a table restored from a backup
 * under another name, or a region whose replica is not there yet looks like to ingest. Every
 * receive fails with ResourceNotFoundException until the table is back; no code change needed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { createTables } from '../../scripts/local/provision.ts';
import { runDlq } from '../../scripts/cli/dlq.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { ENV } from '../../functions/shared/resources.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`);
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`);
const KEY = 'incoming/trades/2025-12-20/source.csv';

let dataDir: string;
let stack: LocalStack;
let dynamo: DynamoDBClient;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-dlq-'));
  // One-second visibility: five failed receives reach the DLQ within seconds.
  stack = await startLocalStack({ dataDir, visibilityTimeoutSeconds: 1 });
  // The consumers record why a message failed where the tool can read it (as infra configures).
  process.env[ENV.failuresTable] = stack.names.tables.failures;
  dynamo = new DynamoDBClient({
    region: 'us-east-1',
    endpoint: stack.endpoints.dynamodb,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});
afterAll(async () => {
  delete process.env[ENV.failuresTable];
  dynamo?.destroy();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function tally(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runDlq([...argv, '--data-dir', dataDir], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

/** Straight from SQS: stack.counts() reads the files table, which is gone for part of this. */
async function ingestDlqDepth(): Promise<number> {
  const out = await stack.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.queues.ingest.dlq,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

async function waitForIngestDlq(depth: number, timeoutMs = 45_000) {
  const deadline = Date.now() + timeoutMs;
  while ((await ingestDlqDepth()) !== depth) {
    if (Date.now() > deadline) throw new Error(`the ingest DLQ never reached ${depth}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const sourceFile = async () =>
  (
    await stack.dynamo.send(
      new GetCommand({
        TableName: stack.names.tables.files,
        Key: { dataset_date: 'trades#2025-12-20', side: 'source' },
      }),
    )
  ).Item;

describe('tally dlq against the local stack', () => {
  let deadLettered: string;

  it('an upload that fails on every receive ends in the ingest DLQ, and list shows it with its reason', async () => {
    await dynamo.send(new DeleteTableCommand({ TableName: stack.names.tables.files }));
    await stack.upload(KEY, SOURCE);
    await waitForIngestDlq(1);

    const listed = await tally('list', '--json');
    const ingest = (
      JSON.parse(listed.stdout) as {
        queues: {
          queue: string;
          depth: number;
          messages: { body: string; receiveCount: number; failure?: { first_reason: string; failures: number } }[];
        }[];
      }
    ).queues.find((q) => q.queue === 'ingest');

    expect(listed.code).toBe(0);
    expect(ingest?.depth).toBe(1);
    expect(JSON.parse(ingest?.messages[0]?.body ?? '{}').detail.object.key).toBe(KEY);
    expect(ingest?.messages[0]?.receiveCount).toBeGreaterThanOrEqual(5);
    expect(ingest?.messages[0]?.failure?.first_reason).toMatch(/ResourceNotFoundException/);
    expect(ingest?.messages[0]?.failure?.failures).toBe(5);
    deadLettered = ingest?.messages[0]?.body ?? '';
  });

  it('the readable listing names the file and the first failure; peek shows the decoded body', async () => {
    const listed = await tally('list');
    const peeked = await tally('peek', '--queue', 'ingest');

    expect(listed.stdout).toMatch(/^ingest\s+1\s/m);
    expect(listed.stdout).toContain(`s3://${stack.names.bucket}/${KEY}`);
    expect(listed.stdout).toContain('ResourceNotFoundException');
    expect(peeked.code).toBe(0);
    expect(peeked.stdout).toContain('"key": "incoming/trades/2025-12-20/source.csv"');
    expect(peeked.stdout).toMatch(/first failure {2}\S+ {2}ResourceNotFoundException/);
  });

  it('looking does not consume: the message is still in the DLQ', async () => {
    expect(await ingestDlqDepth()).toBe(1);
  });

  it('after the table is restored, redrive brings the message back and it is ingested', async () => {
    await createTables(dynamo, stack.names);

    const redriven = await tally('redrive', '--queue', 'ingest');
    await stack.waitForIdle();

    expect(redriven).toMatchObject({ code: 0 });
    expect(redriven.stdout).toContain('moved 1 message(s)');
    expect((await stack.counts()).queues.ingest).toMatchObject({ visible: 0, inFlight: 0, dlq: 0 });
    expect(await sourceFile()).toMatchObject({ status: 'ACCEPTED', key: KEY, generation: 1 });
  });

  it('it is processed once: a second redrive and a duplicate delivery change nothing, and one run follows', async () => {
    const before = await sourceFile();

    const again = await tally('redrive', '--queue', 'ingest');
    await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.ingest.main, MessageBody: deadLettered }));
    await stack.waitForIdle();
    await stack.upload('incoming/trades/2025-12-20/target.csv', TARGET);
    await stack.waitForIdle();
    const runs = await stack.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.runs,
        IndexName: 'by_dataset_date',
        KeyConditionExpression: 'dataset_date = :d',
        ExpressionAttributeValues: { ':d': 'trades#2025-12-20' },
      }),
    );

    expect(again.stdout).toContain('moved 0 message(s)');
    expect(await sourceFile()).toEqual(before);
    expect(runs.Items).toHaveLength(1);
    expect((await stack.counts()).queues.ingest?.dlq).toBe(0);
  });

  it('a message its consumer cannot take is moved once by a redrive, not round and round', async () => {
    await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.ingest.main, MessageBody: 'not an event' }));
    await waitForIngestDlq(1);

    const redriven = await tally('redrive', '--queue', 'ingest');
    await waitForIngestDlq(1);

    expect(redriven.stdout).toContain('moved 1 message(s)');
    expect((await tally('list', '--json')).stdout).toContain('not an event');
  });

  it('bad usage exits 2 with the help; so does a missing local stack (as tally reindex), saying what to do', async () => {
    const noQueue = await tally('peek');
    let stderr = '';
    const noStack = await runDlq(['list', '--data-dir', join(dataDir, 'nope')], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (stderr += s) },
    });

    expect(noQueue.code).toBe(2);
    expect(noQueue.stderr).toContain('peek needs --queue');
    expect(noQueue.stderr).toContain('Usage: tally dlq');
    expect(noStack).toBe(2);
    expect(stderr).toMatch(/^tally dlq: no local stack state at \S*nope\/endpoints\.json: start it with "npm start"/);
    expect(stderr).toContain('Usage: tally dlq');
  });
});

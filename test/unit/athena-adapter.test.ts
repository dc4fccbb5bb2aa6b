/** The SQL engine's AWS adapters (functions/shared/adapters/athena.ts) against SDK mocks. */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { AwsAthena, SqsDelayedQueue } from '../../functions/shared/adapters/athena.ts';
import { S3ChunkObjects } from '../../functions/shared/adapters/s3-results.ts';

const athenaMock = mockClient(AthenaClient);
const sqsMock = mockClient(SQSClient);
const s3Mock = mockClient(S3Client);

beforeEach(() => {
  athenaMock.reset();
  sqsMock.reset();
  s3Mock.reset();
});

const cells = (...values: (string | undefined)[]) => ({
  Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })),
});

describe('AwsAthena', () => {
  it("starts a query in the workgroup, in the step's database, with the step's request token", async () => {
    // Prepare
    athenaMock.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-1' });
    const athena = new AwsAthena(new AthenaClient({ region: 'us-east-1' }), 'tally-recon');
    // Act
    const id = await athena.start('SELECT 1', 'tally_run_r1', 'a'.repeat(64));
    const noDatabase = await athena.start('CREATE DATABASE x', undefined);
    // Assess
    expect([id, noDatabase]).toEqual(['q-1', 'q-1']);
    const inputs = athenaMock.commandCalls(StartQueryExecutionCommand).map((c) => c.args[0].input);
    expect(inputs[0]).toEqual({
      QueryString: 'SELECT 1',
      WorkGroup: 'tally-recon',
      QueryExecutionContext: { Database: 'tally_run_r1' },
      ClientRequestToken: 'a'.repeat(64),
    });
    expect(inputs[1]).toEqual({ QueryString: 'CREATE DATABASE x', WorkGroup: 'tally-recon' });
  });

  it('reports the state and why a query failed', async () => {
    athenaMock
      .on(GetQueryExecutionCommand, { QueryExecutionId: 'q-ok' })
      .resolves({ QueryExecution: { Status: { State: 'SUCCEEDED' } } })
      .on(GetQueryExecutionCommand, { QueryExecutionId: 'q-bad' })
      .resolves({ QueryExecution: { Status: { State: 'FAILED', StateChangeReason: 'HIVE_BAD_DATA' } } });
    const athena = new AwsAthena(new AthenaClient({ region: 'us-east-1' }), 'wg');

    expect(await athena.status('q-ok')).toEqual({ state: 'SUCCEEDED' });
    expect(await athena.status('q-bad')).toEqual({ state: 'FAILED', reason: 'HIVE_BAD_DATA' });
  });

  it('reads every page of results, the first row naming the columns, a NULL cell as null', async () => {
    athenaMock
      .on(GetQueryResultsCommand, { QueryExecutionId: 'q', NextToken: undefined })
      .resolves({ ResultSet: { Rows: [cells('type', 'n'), cells('AMOUNT_MISMATCH', '2')] }, NextToken: 'p2' })
      .on(GetQueryResultsCommand, { QueryExecutionId: 'q', NextToken: 'p2' })
      .resolves({ ResultSet: { Rows: [cells('MISSING_IN_TARGET', undefined)] } });
    const athena = new AwsAthena(new AthenaClient({ region: 'us-east-1' }), 'wg');

    expect(await athena.rows('q')).toEqual([
      { type: 'AMOUNT_MISMATCH', n: '2' },
      { type: 'MISSING_IN_TARGET', n: null },
    ]);
    expect(athenaMock.commandCalls(GetQueryResultsCommand)).toHaveLength(2);
  });
});

describe('SqsDelayedQueue', () => {
  it('sends the message with its delay, capped at the 15 minutes SQS allows', async () => {
    sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm' });
    const queue = new SqsDelayedQueue(new SQSClient({ region: 'us-east-1' }), 'https://sqs/q/tally-recon');

    await queue.sendDelayed({ kind: 'athena-check', step: 3 }, 20);
    await queue.sendDelayed({ kind: 'athena-check', step: 4 }, 5000);

    expect(sqsMock.commandCalls(SendMessageCommand).map((c) => c.args[0].input)).toEqual([
      { QueueUrl: 'https://sqs/q/tally-recon', MessageBody: '{"kind":"athena-check","step":3}', DelaySeconds: 20 },
      { QueueUrl: 'https://sqs/q/tally-recon', MessageBody: '{"kind":"athena-check","step":4}', DelaySeconds: 900 },
    ]);
  });
});

describe('S3ChunkObjects.list', () => {
  it('lists every key under the prefix across pages, in key order', async () => {
    s3Mock
      .on(ListObjectsV2Command, { Bucket: 'b', Prefix: 'results/r1/', ContinuationToken: undefined })
      .resolves({ Contents: [{ Key: 'results/r1/b' }], IsTruncated: true, NextContinuationToken: 't' })
      .on(ListObjectsV2Command, { Bucket: 'b', Prefix: 'results/r1/', ContinuationToken: 't' })
      .resolves({ Contents: [{ Key: 'results/r1/a' }], IsTruncated: false });

    const keys = await new S3ChunkObjects(new S3Client({ region: 'us-east-1' })).list('b', 'results/r1/');

    expect(keys).toEqual(['results/r1/a', 'results/r1/b']);
  });
});

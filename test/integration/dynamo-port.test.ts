/**
 * The local functions' DynamoDB transport (scripts/local/dynamo-port.ts): requests the SDK
 * addresses to the local DynamoDB endpoint reach the real dynalite worker over a MessagePort,
 * with DynamoDB's answers and error shapes; requests to any other endpoint still go over HTTP;
 * and a stopped emulator fails the calls rather than leaving them waiting.
 *
 * The client points at a loopback port nothing listens on: a call can only succeed through the
 * port. (The test files run in processes of their own, so patching the SDK's transport here
 * reaches no other file.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { startEmulators, type Emulators } from '../../scripts/local/emulators.ts';
import { sendDynamoOverPort } from '../../scripts/local/dynamo-port.ts';

const dir = mkdtempSync(join(tmpdir(), 'tally-dynamo-port-'));
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
let emulators: Emulators;
let deadEndpoint: string;
let client: DynamoDBClient;
let stopped = false;

/** A loopback address with nothing listening (a port taken and given back). */
async function unusedEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  emulators = await startEmulators(dir);
  deadEndpoint = await unusedEndpoint();
  sendDynamoOverPort(emulators.connectDynamo(), deadEndpoint);
  client = new DynamoDBClient({ region: 'us-east-1', endpoint: deadEndpoint, credentials, maxAttempts: 2 });
});

afterAll(async () => {
  client.destroy();
  if (!stopped) await emulators.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('local DynamoDB over a MessagePort', () => {
  it('serves the SDK through the port: tables, writes, reads, queries', async () => {
    await client.send(
      new CreateTableCommand({
        TableName: 'port',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    // Non-ASCII text and a large item cross the port intact.
    const note = 'Überweisung — ¥ 1,000 '.repeat(2_000);
    for (const sk of ['a', 'b', 'c'])
      await client.send(
        new PutItemCommand({ TableName: 'port', Item: { pk: { S: 'p' }, sk: { S: sk }, note: { S: note } } }),
      );
    const got = await client.send(new GetItemCommand({ TableName: 'port', Key: { pk: { S: 'p' }, sk: { S: 'b' } } }));
    expect(got.Item?.note?.S).toBe(note);
    const queried = await client.send(
      new QueryCommand({
        TableName: 'port',
        KeyConditionExpression: 'pk = :p AND sk > :s',
        ExpressionAttributeValues: { ':p': { S: 'p' }, ':s': { S: 'a' } },
      }),
    );
    expect(queried.Items?.map((item) => item.sk?.S)).toEqual(['b', 'c']);
    expect((await client.send(new ListTablesCommand({}))).TableNames).toContain('port');
  });

  it("answers DynamoDB's errors with their names, as over HTTP", async () => {
    await expect(
      client.send(new GetItemCommand({ TableName: 'absent', Key: { pk: { S: 'p' } } })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 400 } });
    await expect(
      client.send(
        new PutItemCommand({
          TableName: 'port',
          Item: { pk: { S: 'p' }, sk: { S: 'a' } },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    await expect(
      client.send(new QueryCommand({ TableName: 'port', KeyConditionExpression: 'nonsense' })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('leaves every other endpoint on HTTP: S3 on the emulator, DynamoDB at its own address', async () => {
    const s3 = new S3Client({ region: 'us-east-1', endpoint: emulators.fauxqsUrl, forcePathStyle: true, credentials });
    const overHttp = new DynamoDBClient({ region: 'us-east-1', endpoint: emulators.dynamoUrl, credentials });
    try {
      await expect(s3.send(new ListBucketsCommand({}))).resolves.toBeDefined();
      expect((await overHttp.send(new ListTablesCommand({}))).TableNames).toContain('port');
    } finally {
      s3.destroy();
      overHttp.destroy();
    }
  });

  it('fails calls once the emulator has stopped, rather than leaving them waiting', async () => {
    stopped = true;
    await emulators.stop();
    await expect(client.send(new ListTablesCommand({}))).rejects.toThrow(/local DynamoDB .* is gone/);
  });
});

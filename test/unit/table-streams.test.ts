/**
 * The local table streams: each committed write of the DynamoDB emulator, captured on its write
 * path, becomes a DynamoDB Streams record (NEW_AND_OLD_IMAGES); a refused write is no record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { makeDynaliteWritesAtomic, type TableChange } from '../../scripts/local/dynalite-atomic.ts';
import { startTableStreams } from '../../scripts/local/table-streams.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

let dynamo: TestDynamo;
const seen: { record: DynamoDBRecord; change: TableChange }[] = [];
const consumed: DynamoDBRecord[][] = [];
let streams: ReturnType<typeof startTableStreams> | undefined;

beforeAll(async () => {
  makeDynaliteWritesAtomic((change) => streams?.capture(change));
  dynamo = await startTestDynamo();
  streams = startTableStreams({
    region: 'us-west-2',
    consumedTable: dynamo.names.tables.exceptions,
    handler: async (event) => void consumed.push(event.Records),
  });
  streams.subscribe((record, change) => seen.push({ record, change }));
});
afterAll(async () => {
  await streams?.stop();
  await dynamo.stop();
});

describe('local table streams', () => {
  it('INSERT, MODIFY and REMOVE with both images, in commit order; a refused write is no record', async () => {
    const table = dynamo.names.tables.exceptions;
    const key = { exception_id: 'exc_1' };

    await dynamo.doc.send(new PutCommand({ TableName: table, Item: { ...key, status: 'OPEN' } }));
    await dynamo.doc.send(
      new UpdateCommand({
        TableName: table,
        Key: key,
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': 'ACKNOWLEDGED' },
      }),
    );
    await expect(
      dynamo.doc.send(
        new PutCommand({ TableName: table, Item: key, ConditionExpression: 'attribute_not_exists(exception_id)' }),
      ),
    ).rejects.toThrow();
    await dynamo.doc.send(new DeleteCommand({ TableName: table, Key: key }));
    await new Promise((r) => setTimeout(r, 50));

    const records = seen.filter((s) => s.change.table === table).map((s) => s.record);
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY', 'REMOVE']);
    const [insert, modify, remove] = records as [DynamoDBRecord, DynamoDBRecord, DynamoDBRecord];
    expect(insert.dynamodb?.NewImage).toEqual({ exception_id: { S: 'exc_1' }, status: { S: 'OPEN' } });
    expect(insert.dynamodb?.OldImage).toBeUndefined();
    expect(modify.dynamodb?.OldImage?.status).toEqual({ S: 'OPEN' });
    expect(modify.dynamodb?.NewImage?.status).toEqual({ S: 'ACKNOWLEDGED' });
    expect(remove.dynamodb?.Keys).toEqual({ exception_id: { S: 'exc_1' } });
    expect(remove.dynamodb?.NewImage).toBeUndefined();
    expect(insert.dynamodb?.StreamViewType).toBe('NEW_AND_OLD_IMAGES');
    expect(insert.eventSourceARN).toBe(`arn:aws:dynamodb:us-west-2:000000000000:table/${table}/stream/local`);
    const sequence = records.map((r) => r.dynamodb?.SequenceNumber as string);
    expect([...sequence].sort()).toEqual(sequence);
    // The exceptions table's records went to its consumer too, in order.
    expect(consumed.flat().map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY', 'REMOVE']);
    expect(streams?.pending()).toBe(0);
  });

  it('other tables are streamed to the subscribers only', async () => {
    const before = consumed.flat().length;

    await dynamo.doc.send(new PutCommand({ TableName: dynamo.names.tables.usage, Item: { day: '2025-12-10' } }));
    await new Promise((r) => setTimeout(r, 50));

    expect(seen.some((s) => s.change.table === dynamo.names.tables.usage && s.record.eventName === 'INSERT')).toBe(
      true,
    );
    expect(consumed.flat().length).toBe(before);
  });
});

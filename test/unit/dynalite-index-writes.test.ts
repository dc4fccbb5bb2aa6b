/**
 * The local DynamoDB's index maintenance (scripts/local/dynalite-atomic.ts indexWrites): an
 * entry a write leaves as it was is not written again, and every entry a write does change is
 * written or deleted — checked on dynalite's own index computation, then through a GSI Query.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { indexWrites } from '../../scripts/local/dynalite-atomic.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

const db = createRequire(import.meta.url)('dynalite/db') as Parameters<typeof indexWrites>[0];

const S = (s: string) => ({ S: s });
const table = {
  TableName: 't',
  KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
  AttributeDefinitions: [
    { AttributeName: 'id', AttributeType: 'S' },
    { AttributeName: 'status', AttributeType: 'S' },
    { AttributeName: 'created', AttributeType: 'S' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'by_status',
      KeySchema: [
        { AttributeName: 'status', KeyType: 'HASH' },
        { AttributeName: 'created', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: ['severity'] },
    },
    {
      IndexName: 'everything',
      KeySchema: [{ AttributeName: 'created', KeyType: 'HASH' }],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
};
const item = { id: S('a'), status: S('OPEN'), created: S('2026-12-01'), severity: S('LOW'), note: S('x') };
const written = (ops: ReturnType<typeof indexWrites>) => ops.map((op) => `${op.type} ${op.key.split('~')[2]}`);

describe('the local DynamoDB writes only the index entries a write changes', () => {
  it('a new item: an entry in each index', () => {
    expect(written(indexWrites(db, table, undefined, item))).toEqual(['put by_status', 'put everything']);
  });

  it('an attribute no INCLUDE index projects: only the index projecting ALL is written', () => {
    expect(written(indexWrites(db, table, item, { ...item, note: S('y') }))).toEqual(['put everything']);
  });

  it('a projected attribute, a nested change, a key change, a removal', () => {
    expect(written(indexWrites(db, table, item, { ...item, severity: S('HIGH') }))).toEqual([
      'put by_status',
      'put everything',
    ]);
    const nested = { ...item, note: { M: { a: { L: [S('1'), S('2')] } } } };
    expect(written(indexWrites(db, table, nested, { ...item, note: { M: { a: { L: [S('1'), S('3')] } } } }))).toEqual([
      'put everything',
    ]);
    expect(written(indexWrites(db, table, nested, nested))).toEqual([]);
    expect(written(indexWrites(db, table, item, { ...item, status: S('RESOLVED') }))).toEqual([
      'del by_status',
      'put by_status',
      'put everything',
    ]);
    expect(written(indexWrites(db, table, item, { ...item, severity: undefined }))).toEqual([
      'put by_status',
      'put everything',
    ]);
    expect(written(indexWrites(db, table, item, undefined))).toEqual(['del by_status', 'del everything']);
  });
});

describe('through the API: an index read after writes that skip unchanged entries', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startTestDynamo();
  });
  afterAll(async () => dynamo.stop());

  it('the exceptions table: an unprojected change, then a projected one, then a key change', async () => {
    const name = dynamo.names.tables.exceptions;
    const id = 'exc_index_writes';
    const byStatus = async (status: string) =>
      (
        await dynamo.doc.send(
          new QueryCommand({
            TableName: name,
            IndexName: 'by_status_sharded',
            KeyConditionExpression: 'gsi_status = :s',
            ExpressionAttributeValues: { ':s': status },
          }),
        )
      ).Items ?? [];
    await dynamo.doc.send(
      new PutCommand({
        TableName: name,
        Item: { exception_id: id, gsi_status: 'OPEN#00', gsi_sort: '2026-12-01#1', status: 'OPEN', severity: 'LOW' },
      }),
    );
    const set = (expression: string, values: Record<string, unknown>, names?: Record<string, string>) =>
      dynamo.doc.send(
        new UpdateCommand({
          TableName: name,
          Key: { exception_id: id },
          UpdateExpression: expression,
          ExpressionAttributeValues: values,
          ...(names ? { ExpressionAttributeNames: names } : {}),
        }),
      );
    await set('SET triage = :t', { ':t': { summary: 'not in any index' } });
    expect(await byStatus('OPEN#00')).toMatchObject([{ exception_id: id, severity: 'LOW' }]);
    await set('SET severity = :v', { ':v': 'HIGH' });
    expect(await byStatus('OPEN#00')).toMatchObject([{ exception_id: id, severity: 'HIGH' }]);
    // `status` is a reserved word.
    await set('SET gsi_status = :g, #s = :s', { ':g': 'RESOLVED#00', ':s': 'RESOLVED' }, { '#s': 'status' });
    expect(await byStatus('OPEN#00')).toEqual([]);
    expect(await byStatus('RESOLVED#00')).toMatchObject([{ exception_id: id, severity: 'HIGH', status: 'RESOLVED' }]);
  });
});

/**
 * The local DynamoDB's LevelDB runs with Tally's options (scripts/local/dynalite-level.ts), through
 * the real dynalite worker the local stack starts: its tables are written uncompressed, which a
 * compressible item shows on disk once LevelDB has turned its log into a table. Stopping it waits
 * for the worker to close LevelDB.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { startEmulators, whenClosed } from '../../scripts/local/emulators.ts';

const dir = mkdtempSync(join(tmpdir(), 'tally-dynalite-level-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes in LevelDB's table files (not its log). */
function tableBytes(): number {
  const folder = join(dir, 'dynamodb');
  return readdirSync(folder)
    .filter((name) => name.endsWith('.ldb') || name.endsWith('.sst'))
    .reduce((sum, name) => sum + statSync(join(folder, name)).size, 0);
}

describe('local DynamoDB storage', () => {
  it('stores tables uncompressed (the options reach LevelDB through the worker)', async () => {
    const first = await startEmulators(dir);
    const client = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: first.dynamoUrl,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      await client.send(
        new CreateTableCommand({
          TableName: 'level',
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      // 1.5 MB of one letter: snappy would store it in a few tens of KB.
      for (let i = 0; i < 5; i++)
        await client.send(
          new PutItemCommand({
            TableName: 'level',
            Item: { id: { S: `item-${i}` }, body: { S: 'a'.repeat(300_000) } },
          }),
        );
    } finally {
      client.destroy();
      await first.stop();
    }
    // Reopened, LevelDB replays its log into a table file (written with the options).
    const second = await startEmulators(dir);
    await second.stop();
    expect(tableBytes()).toBeGreaterThan(1_400_000);
  });
});

describe('stopping the local DynamoDB', () => {
  it('waits for the worker to say it closed, not for whatever message comes next', async () => {
    const worker = new EventEmitter();
    let stopped = false;
    const closed = whenClosed(worker as never).then(() => (stopped = true));

    // A table change posted before the stop arrives first: LevelDB is still open.
    worker.emit('message', { change: { table: 'exceptions', keys: [] } });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);

    worker.emit('message', { closed: true });
    await closed;
    expect(stopped).toBe(true);
    expect(worker.listenerCount('message') + worker.listenerCount('exit')).toBe(0);
  });

  it('does not wait for a worker that is gone', async () => {
    const worker = new EventEmitter();
    const closed = whenClosed(worker as never);
    worker.emit('exit', 1);
    await closed;
    expect(worker.listenerCount('message')).toBe(0);
  });
});

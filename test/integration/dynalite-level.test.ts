/**
 * The local DynamoDB's LevelDB runs with Tally's options (scripts/local/dynalite-level.ts), through
 * the real dynalite worker the local stack starts: its tables are written uncompressed, which a
 * compressible item shows on disk once LevelDB has turned its log into a table. Stopping it waits
 * for the worker to close LevelDB.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CreateTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { startEmulators, whenClosed } from '../../scripts/local/emulators.ts';
import '../../scripts/local/dynalite-level.ts';

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

describe("dynalite's LevelDB reads", () => {
  interface Db {
    status: string;
    open(): Promise<void>;
    close(): Promise<void>;
    put(key: string, value: unknown): Promise<void>;
    get(key: string): Promise<unknown>;
    _get(...args: unknown[]): Promise<unknown>;
  }
  // `level` as dynalite loads it: the class dynalite-level.ts tuned.
  const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  const { Level } = fromDynalite('level') as { Level: new (location: string, options?: object) => Db };

  it('are served on the calling thread once open, with the answers of the queued read', async () => {
    const db = new Level(join(dir, 'reads'), { valueEncoding: 'json' });
    const queued: unknown[] = [];
    const original = db._get.bind(db);
    db._get = (...args: unknown[]) => {
      queued.push(args[0]);
      return original(...args);
    };
    // Not open yet: the read waits for the open, as dynalite's level does.
    const early = db.get('nothing');
    expect(db.status).not.toBe('open');
    await expect(early).resolves.toBeUndefined();

    await db.put('item-t~a', { id: { S: 'a' }, n: { N: '1' } });
    const before = queued.length;
    await expect(db.get('item-t~a')).resolves.toEqual({ id: { S: 'a' }, n: { N: '1' } });
    await expect(db.get('item-t~b')).resolves.toBeUndefined();
    // Neither went to the pool (the queued read, `_get`).
    expect(queued).toHaveLength(before);
    await expect(original('item-t~a', { valueEncoding: 'utf8', keyEncoding: 'utf8' })).resolves.toBe(
      '{"id":{"S":"a"},"n":{"N":"1"}}',
    );

    await db.close();
    await expect(db.get('item-t~a')).rejects.toMatchObject({ code: 'LEVEL_DATABASE_NOT_OPEN' });
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

/**
 * In-process AWS emulators, bound to 127.0.0.1 only: fauxqs (S3 + SQS, SQLite-persisted) and
 * dynalite (DynamoDB, LevelDB-persisted; each item written with its index entries in one batch,
 * so a kill cannot leave a listing out of step with its table: dynalite-atomic.ts). Wire-compatible: the functions talk to them through
 * the normal AWS SDK clients; SQS's query protocol (the `aws` CLI v2 of Debian, older SDKs) is
 * translated on fauxqs's own port (sqs-query-protocol.ts).
 */
import { mkdirSync } from 'node:fs';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { Server } from 'node:http';
import { join } from 'node:path';
import { startFauxqs } from 'fauxqs';
import dynalite from 'dynalite';
import { makeDynaliteWritesAtomic } from './dynalite-atomic.ts';
import { acceptSqsQueryProtocol } from './sqs-query-protocol.ts';

export interface Emulators {
  /** fauxqs: S3 and SQS on one port. */
  readonly fauxqsUrl: string;
  readonly dynamoUrl: string;
  stop(): Promise<void>;
}

/**
 * fauxqs 2.4 hard-codes `listen({ host: '0.0.0.0' })`. Rather than patch the package, rewrite the
 * host of listen calls made while it starts, then check the result: nothing of ours may be
 * reachable from another machine.
 */
async function withLoopbackListen<T>(start: () => Promise<T>, listened: net.Server[] = []): Promise<T> {
  const original = net.Server.prototype.listen;
  net.Server.prototype.listen = function patched(this: net.Server, ...args: unknown[]) {
    listened.push(this);
    const [first] = args;
    if (first && typeof first === 'object' && (first as { host?: string }).host === '0.0.0.0') {
      args[0] = { ...(first as object), host: '127.0.0.1' };
    }
    return (original as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof original;
  try {
    return await start();
  } finally {
    net.Server.prototype.listen = original;
  }
}

export async function startEmulators(dataDir: string): Promise<Emulators> {
  const sqsDir = join(dataDir, 'sqs');
  const s3Dir = join(dataDir, 's3');
  const dynamoDir = join(dataDir, 'dynamodb');
  for (const dir of [sqsDir, s3Dir, dynamoDir]) mkdirSync(dir, { recursive: true });

  const listened: net.Server[] = [];
  const fauxqs = await withLoopbackListen(
    () => startFauxqs({ port: 0, logger: false, dataDir: sqsDir, s3StorageDir: s3Dir, defaultRegion: 'us-east-1' }),
    listened,
  );
  const fauxqsUrl = new URL(fauxqs.address);
  if (fauxqsUrl.hostname !== '127.0.0.1') {
    await fauxqs.stop();
    throw new Error(`S3/SQS emulator bound to ${fauxqsUrl.hostname}, expected 127.0.0.1 only`);
  }

  // The `aws` CLI v2 of Debian and older SDKs speak SQS's query protocol, which fauxqs does not.
  const fauxqsServer = listened.find((s): s is Server => s instanceof Server);
  if (!fauxqsServer) {
    await fauxqs.stop();
    throw new Error('S3/SQS emulator: its HTTP server was not found, so the SQS query protocol cannot be added');
  }
  const sqsQuery = acceptSqsQueryProtocol(fauxqsServer, `http://127.0.0.1:${fauxqs.port}`);

  makeDynaliteWritesAtomic();
  const dynamo: Server = dynalite({ path: dynamoDir, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  dynamo.listen(0, '127.0.0.1');
  await once(dynamo, 'listening');
  const { port } = dynamo.address() as AddressInfo;

  return {
    fauxqsUrl: `http://127.0.0.1:${fauxqs.port}`,
    dynamoUrl: `http://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => dynamo.close(() => resolve()));
      await fauxqs.stop();
      sqsQuery.stop();
    },
  };
}

/**
 * In-process AWS emulators, bound to 127.0.0.1 only: fauxqs (S3 + SQS, SQLite-persisted) and
 * dynalite (DynamoDB, LevelDB-persisted; each item written with its index entries in one batch,
 * so a kill cannot leave a listing out of step with its table: dynalite-atomic.ts), the latter in
 * a worker thread of its own (dynalite-worker.ts). Wire-compatible: the functions talk to them
 * through the normal AWS SDK clients; SQS's query protocol (the `aws` CLI v2 of Debian, older
 * SDKs) is translated on fauxqs's own port (sqs-query-protocol.ts).
 */
import { mkdirSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { Server } from 'node:http';
import { join } from 'node:path';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { DatabaseSync } from 'node:sqlite';
import { startFauxqs } from 'fauxqs';
import { acceptSqsQueryProtocol } from './sqs-query-protocol.ts';
import type { DynaliteWorkerData, DynaliteWorkerMessage, DynaliteWorkerRequest } from './dynalite-worker.ts';
import type { TableChange } from './dynalite-atomic.ts';

export interface Emulators {
  /** fauxqs: S3 and SQS on one port. */
  readonly fauxqsUrl: string;
  readonly dynamoUrl: string;
  /** A port on which a function thread sends DynamoDB requests without HTTP (dynamo-port.ts). */
  connectDynamo(): MessagePort;
  stop(): Promise<void>;
}

/**
 * fauxqs 2.4 hard-codes `listen({ host: '0.0.0.0' })`. Rather than patch the package, rewrite the
 * host of listen calls made while it starts, then check the result: nothing of ours may be
 * reachable from another machine.
 *
 * Two stacks may start at once (the two-region drill): the patch is installed once while any start
 * runs, and each start's list then holds every server listened meanwhile, the other's too, so a
 * start finds its own by port. (Patching per start, the later one's patch called the earlier's, so
 * both lists held both servers, and the first start to end put back a function the other's end
 * then "restored" for good.)
 */
const listenedLists = new Set<net.Server[]>();
let unpatchedListen: typeof net.Server.prototype.listen | undefined;
async function withLoopbackListen<T>(start: () => Promise<T>, listened: net.Server[] = []): Promise<T> {
  if (unpatchedListen === undefined) {
    const original = net.Server.prototype.listen;
    unpatchedListen = original;
    net.Server.prototype.listen = function patched(this: net.Server, ...args: unknown[]) {
      for (const list of listenedLists) list.push(this);
      const [first] = args;
      if (first && typeof first === 'object' && (first as { host?: string }).host === '0.0.0.0') {
        args[0] = { ...(first as object), host: '127.0.0.1' };
      }
      return (original as (...a: unknown[]) => net.Server).apply(this, args);
    } as typeof original;
  }
  listenedLists.add(listened);
  try {
    return await start();
  } finally {
    listenedLists.delete(listened);
    if (listenedLists.size === 0 && unpatchedListen !== undefined) {
      net.Server.prototype.listen = unpatchedListen;
      unpatchedListen = undefined;
    }
  }
}

/**
 * fauxqs keeps its queues (and S3 metadata) in SQLite in WAL mode with SQLite's default
 * `synchronous = FULL`: every message sent, received or deleted is its own commit and waits for
 * an fsync, on the main thread. Measured under bench:pipeline, that was 64% of the main thread
 * while recon queued ~5,300 triage requests (5.6 ms a commit here against 0.17 ms with NORMAL),
 * and the API server and the pollers waited behind it. `NORMAL` in WAL mode still writes every
 * commit to the log before it returns, so a killed process (the crash test's `kill -9`) loses
 * nothing acknowledged; only a power cut or an OS crash could lose the last commits — as with
 * dynalite, whose LevelDB writes are not fsynced either. Set on the connection fauxqs opens
 * while it starts (it exposes none), and checked.
 */
async function withNormalSqliteSync<T>(start: () => Promise<T>): Promise<T> {
  const original = DatabaseSync.prototype.exec;
  const opened: DatabaseSync[] = [];
  DatabaseSync.prototype.exec = function patched(this: DatabaseSync, sql: string) {
    const result = original.call(this, sql);
    if (/^\s*PRAGMA\s+journal_mode\s*=\s*WAL\s*$/i.test(sql)) {
      original.call(this, 'PRAGMA synchronous = NORMAL');
      opened.push(this);
    }
    return result;
  };
  try {
    const started = await start();
    for (const db of opened) {
      const row = db.prepare('PRAGMA synchronous').get() as { synchronous?: number } | undefined;
      // 1 is NORMAL.
      if (row?.synchronous !== 1) throw new Error('could not set the S3/SQS emulator database to synchronous = NORMAL');
    }
    return started;
  } finally {
    DatabaseSync.prototype.exec = original;
  }
}

export interface EmulatorOptions {
  /** Every committed DynamoDB item write, in commit order (the local table streams). */
  readonly onTableChange?: (change: TableChange) => void;
}

export async function startEmulators(dataDir: string, options: EmulatorOptions = {}): Promise<Emulators> {
  const sqsDir = join(dataDir, 'sqs');
  const s3Dir = join(dataDir, 's3');
  const dynamoDir = join(dataDir, 'dynamodb');
  for (const dir of [sqsDir, s3Dir, dynamoDir]) mkdirSync(dir, { recursive: true });

  const listened: net.Server[] = [];
  const fauxqs = await withLoopbackListen(
    () =>
      withNormalSqliteSync(() =>
        startFauxqs({ port: 0, logger: false, dataDir: sqsDir, s3StorageDir: s3Dir, defaultRegion: 'us-east-1' }),
      ),
    listened,
  );
  const fauxqsUrl = new URL(fauxqs.address);
  if (fauxqsUrl.hostname !== '127.0.0.1') {
    await fauxqs.stop();
    throw new Error(`S3/SQS emulator bound to ${fauxqsUrl.hostname}, expected 127.0.0.1 only`);
  }

  // The `aws` CLI v2 of Debian and older SDKs speak SQS's query protocol, which fauxqs does not.
  const fauxqsServer = listened.find(
    (s): s is Server => s instanceof Server && (s.address() as net.AddressInfo | null)?.port === fauxqs.port,
  );
  if (!fauxqsServer) {
    await fauxqs.stop();
    throw new Error('S3/SQS emulator: its HTTP server was not found, so the SQS query protocol cannot be added');
  }
  const sqsQuery = acceptSqsQueryProtocol(fauxqsServer, `http://127.0.0.1:${fauxqs.port}`);

  let dynamo: Awaited<ReturnType<typeof startDynaliteWorker>>;
  try {
    dynamo = await startDynaliteWorker(dynamoDir, options.onTableChange);
  } catch (error) {
    sqsQuery.stop();
    await fauxqs.stop();
    throw error;
  }

  return {
    fauxqsUrl: `http://127.0.0.1:${fauxqs.port}`,
    dynamoUrl: `http://127.0.0.1:${dynamo.port}`,
    connectDynamo: () => dynamo.connect(),
    async stop() {
      await dynamo.stop();
      await fauxqs.stop();
      sqsQuery.stop();
    },
  };
}

/**
 * dynalite on its own event loop: measured under bench:pipeline, the main thread (fauxqs, the
 * front door, pollers, API server) was saturated and every DynamoDB request waited behind it.
 */
async function startDynaliteWorker(
  path: string,
  onTableChange?: (change: TableChange) => void,
): Promise<{ port: number; connect(): MessagePort; stop(): Promise<void> }> {
  const worker = new Worker(new URL('./dynalite-worker.ts', import.meta.url), {
    workerData: {
      path,
      captureChanges: onTableChange !== undefined,
      profileDir: process.env.TALLY_CPU_PROFILE_DIR,
    } satisfies DynaliteWorkerData,
  });
  // Rejects if the worker fails to start (events.once rejects on 'error').
  const [first] = (await once(worker, 'message')) as [DynaliteWorkerMessage];
  if (!('port' in first)) throw new Error('the dynalite worker did not report its port');
  if (onTableChange)
    worker.on('message', (message: DynaliteWorkerMessage) => {
      if ('change' in message) onTableChange(message.change);
    });
  // A worker that dies takes DynamoDB with it: say so rather than let every request time out.
  const onExit = (code: number) => process.stderr.write(`dynalite worker exited unexpectedly (code ${code})\n`);
  worker.on('exit', onExit);
  return {
    port: first.port,
    connect() {
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ connect: port1 } satisfies DynaliteWorkerRequest, [port1]);
      return port2;
    },
    async stop() {
      worker.off('exit', onExit);
      const closed = whenClosed(worker);
      worker.postMessage('stop');
      await closed;
      await worker.terminate();
    },
  };
}

/**
 * When the dynalite worker has closed (its LevelDB flushed and closed) or is gone. Only its
 * `closed` message counts: a table change it posted before the stop may still be on its way, and
 * taken for the answer it ended the thread while LevelDB was still open.
 */
export function whenClosed(worker: Pick<Worker, 'on' | 'off'>): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (message: DynaliteWorkerMessage) => {
      if ('closed' in message) done();
    };
    const done = () => {
      worker.off('message', onMessage);
      worker.off('exit', done);
      resolve();
    };
    worker.on('message', onMessage);
    worker.on('exit', done);
  });
}

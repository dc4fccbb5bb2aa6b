/**
 * dynalite in a thread of its own (scripts/local/emulators.ts starts it): every triage, listing
 * and store is a DynamoDB request, and in the main thread they queued behind fauxqs, the S3
 * front door, the pollers and the API server on one event loop. Here it gets its own loop, and
 * a core of its own when one is free. Same process, same LevelDB, the same atomic batches: a kill
 * of the process still leaves each item and its index entries written whole or not at all.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
// Before dynalite: it picks up the LevelDB options when it loads.
import './dynalite-level.ts';
import dynalite from 'dynalite';
import { makeDynaliteWritesAtomic, type TableChange } from './dynalite-atomic.ts';
import { makeDynaliteRefuseUnprojected } from './dynalite-projections.ts';
import { answerOverPort } from './dynamo-port.ts';
import { startThreadProfile } from './thread-profile.ts';

export interface DynaliteWorkerData {
  readonly path: string;
  /** Post every committed item write to the parent (the local table streams). */
  readonly captureChanges?: boolean;
  /** TALLY_CPU_PROFILE_DIR: write this thread's CPU profile there when it stops. */
  readonly profileDir?: string | undefined;
}

/** Parent to worker: stop, or answer a function thread's requests over this port (dynamo-port.ts). */
export type DynaliteWorkerRequest = 'stop' | { readonly connect: MessagePort };

/** Worker to parent: listening (with its port), closed after a `stop`, or a committed write. */
export type DynaliteWorkerMessage =
  { readonly port: number } | { readonly closed: true } | { readonly change: TableChange };

const port = parentPort;
if (port) {
  const { path, captureChanges, profileDir } = workerData as DynaliteWorkerData;
  const profiler = await startThreadProfile(profileDir, 'dynalite');
  makeDynaliteWritesAtomic(
    captureChanges ? (change) => port.postMessage({ change } satisfies DynaliteWorkerMessage) : undefined,
  );
  makeDynaliteRefuseUnprojected();
  const server: Server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const [listener] = server.listeners('request') as Parameters<typeof answerOverPort>[1][];
  if (!listener) throw new Error('dynalite: its HTTP server has no request listener to answer ports with');
  port.on('message', (message: DynaliteWorkerRequest) => {
    if (message !== 'stop') {
      answerOverPort(message.connect, listener);
      return;
    }
    // dynalite closes its LevelDB when its server closes.
    server.close(() => {
      void (profiler?.stop() ?? Promise.resolve()).then(() =>
        port.postMessage({ closed: true } satisfies DynaliteWorkerMessage),
      );
    });
    server.closeAllConnections();
  });
  port.postMessage({ port: (server.address() as AddressInfo).port } satisfies DynaliteWorkerMessage);
}

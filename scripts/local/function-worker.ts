/**
 * One function's handler in a worker thread of its own, so that its process.env is exactly the
 * environment the function is given (scripts/local/function-host.ts starts it): a variable only
 * another function receives is as absent here as it is on Lambda.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { FunctionName } from '../../functions/shared/resources.ts';
import { stopGraphMaintenance } from '../../functions/shared/search/ann-index.ts';
import { sendDynamoOverPort } from './dynamo-port.ts';
import { startThreadProfile } from './thread-profile.ts';

/** What function-host.ts gives the thread besides its environment. */
export interface FunctionWorkerData {
  readonly name: FunctionName;
  /** TALLY_CPU_PROFILE_DIR: write this thread's CPU profile there when it stops. */
  readonly profileDir?: string | undefined;
  /** The local DynamoDB's port for this thread (dynamo-port.ts); absent: over HTTP. */
  readonly dynamo?: MessagePort | undefined;
}

export interface Invocation {
  readonly id: number;
  readonly event: unknown;
  /** The Lambda context without its methods (they cannot cross threads). */
  readonly context: Record<string, unknown>;
  readonly deadline: number;
}

export type Outcome =
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: { name: string; message: string; stack?: string } };

const HANDLER_MODULES: Readonly<Record<FunctionName, string>> = {
  'ingest-worker': '../../functions/ingest-worker/handler.ts',
  // The Lambda's handler plus the SQL engine on DuckDB (not in the Lambda bundle).
  recon: './recon-handler.ts',
  triage: '../../functions/triage/handler.ts',
  store: '../../functions/store/handler.ts',
  'query-api': '../../functions/query-api/handler.ts',
  sweep: '../../functions/sweep/handler.ts',
  'stream-index': '../../functions/stream-index/handler.ts',
  deadlines: '../../functions/deadlines/handler.ts',
  notify: '../../functions/notify/handler.ts',
};

/** The thread's answer to `warm` (function-host.ts): what its module's `warm` reported, or null. */
export interface Warmed {
  readonly warmed: unknown;
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const port = parentPort;
if (port) {
  const { name, profileDir, dynamo } = workerData as FunctionWorkerData;
  const profiler = await startThreadProfile(profileDir, name);
  // Before the handler builds its clients' first request: DynamoDB over the port, not a socket.
  const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  if (dynamo && endpoint) sendDynamoOverPort(dynamo, endpoint);
  const { handler, warm } = (await import(HANDLER_MODULES[name])) as {
    handler: Handler;
    warm?: () => Promise<unknown>;
  };
  port.on('message', (invocation: Invocation | 'stop' | 'warm') => {
    if (invocation === 'warm') {
      // In slices between invocations. A configuration error is left to the first request,
      // which builds the same index and reports it.
      void Promise.resolve(warm?.())
        .catch(() => null)
        .then((warmed) => port.postMessage({ warmed: warmed ?? null } satisfies Warmed));
      return;
    }
    if (invocation === 'stop') {
      // Ends the thread between two tasks, never inside a native call (function-host.ts stop).
      stopGraphMaintenance();
      if (!profiler) process.exit(0);
      void profiler.stop().then(() => process.exit(0));
      return;
    }
    const context = {
      ...invocation.context,
      getRemainingTimeInMillis: () => Math.max(0, invocation.deadline - Date.now()),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
    handler(invocation.event, context).then(
      (result) => port.postMessage({ id: invocation.id, result } satisfies Outcome),
      (error: unknown) => {
        const e = error instanceof Error ? error : new Error(String(error));
        port.postMessage({
          id: invocation.id,
          error: { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) },
        } satisfies Outcome);
      },
    );
  });
  port.postMessage('ready');
}

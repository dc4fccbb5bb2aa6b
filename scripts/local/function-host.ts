/**
 * Runs a function's real handler in a worker thread whose environment is exactly the given one
 * (the environment infra/access.ts derives for it, plus endpoints and credentials), and invokes
 * it like Lambda does: one event at a time per call, the result or the thrown error back.
 */
import { type MessagePort, Worker } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import type { FunctionName } from '../../functions/shared/resources.ts';
import type { FunctionWorkerData, Invocation, Outcome, Warmed } from './function-worker.ts';

export interface HostedFunction {
  readonly name: FunctionName;
  invoke(event: unknown, context: Context): Promise<unknown>;
  /**
   * Loads now what the handler's first invocation would (its module's `warm`, if it has one: the
   * query API's local search index), in slices between invocations; resolves with what `warm`
   * reports (null: nothing to load, or it failed: the first request reports a configuration
   * error). A pool resolves with each instance's. The stack calls it once it has started, so the
   * load does not compete with the start.
   */
  warm(): Promise<unknown>;
  stop(): Promise<void>;
}

export interface HostOptions {
  /** A port to the local DynamoDB for each instance: its DynamoDB calls skip HTTP (dynamo-port.ts). */
  readonly connectDynamo?: () => MessagePort;
}

export async function hostFunction(
  name: FunctionName,
  env: Readonly<Record<string, string>>,
  options: HostOptions = {},
): Promise<HostedFunction> {
  const dynamo = options.connectDynamo?.();
  const worker = new Worker(new URL('./function-worker.ts', import.meta.url), {
    env: { ...env },
    // TALLY_CPU_PROFILE_DIR (the stack's own environment, not the function's): each thread writes
    // a V8 CPU profile of itself there when it stops (`--cpu-prof` of the whole stack crashes here).
    workerData: { name, profileDir: process.env.TALLY_CPU_PROFILE_DIR, dynamo } satisfies FunctionWorkerData,
    transferList: dynamo ? [dynamo] : [],
    // The handlers log to stdout as on Lambda; the worker shares the process's streams.
    stdout: false,
    stderr: false,
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failure: Error | undefined;
  const failAll = (error: Error) => {
    failure = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`${name} worker exited (code ${code})`)));
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (message !== 'ready') return;
      worker.off('message', onMessage);
      resolve();
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
  });
  worker.on('message', (outcome: Outcome) => {
    const waiter = pending.get(outcome.id);
    if (!waiter) return;
    pending.delete(outcome.id);
    if ('error' in outcome) waiter.reject(Object.assign(new Error(outcome.error.message), outcome.error));
    else waiter.resolve(outcome.result);
  });
  return {
    name,
    invoke(event, context) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      const { getRemainingTimeInMillis, done: _d, fail: _f, succeed: _s, ...plain } = context;
      const invocation: Invocation = {
        id,
        event,
        context: plain as unknown as Record<string, unknown>,
        deadline: Date.now() + getRemainingTimeInMillis(),
      };
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage(invocation);
      });
    },
    warm() {
      // A thread that has failed, or dies before it answers, has nothing loaded: null rather than
      // a promise left pending (a stop ends the stack: nobody waits then).
      if (failure) return Promise.resolve(null);
      return new Promise<unknown>((resolve) => {
        const done = (warmed: unknown) => {
          worker.off('message', onMessage);
          worker.off('exit', onExit);
          resolve(warmed);
        };
        const onMessage = (message: unknown) => {
          if (typeof message === 'object' && message !== null && 'warmed' in message) done((message as Warmed).warmed);
        };
        const onExit = () => done(null);
        worker.on('message', onMessage);
        worker.once('exit', onExit);
        worker.postMessage('warm');
      });
    },
    async stop() {
      worker.removeAllListeners('exit');
      // Asked to end itself first: terminate() can land inside a native call (hnswlib's addPoint
      // in a background fold), which is a fatal error for the whole process. Terminated only if it
      // has not ended within 2 s (a handler stuck in a long synchronous task).
      const exited = new Promise<boolean>((resolve) => {
        worker.once('exit', () => resolve(true));
        setTimeout(() => resolve(false), 2_000).unref();
      });
      worker.postMessage('stop');
      if (!(await exited)) await worker.terminate();
    },
  };
}

/**
 * Invocations one instance of a pool runs at once: one running and the next already handed over,
 * so an instance never idles between two while others wait, and the rest wait in the pool's one
 * queue for whichever instance frees first. Lambda gives a container one event at a time; two
 * keep a CPU-bound route (search) from idling on the round trip to the thread and let an I/O-bound
 * one (a listing's DynamoDB reads) overlap a little. bench:api at 100k, 50 callers, alternated:
 * p95 of GET /search 103-105 ms at 2, 113-134 ms at 4, 129-167 ms with no limit (an instance
 * given a slower share of the cores kept its half of the requests, waiting longer), 146 ms at 1
 * (each instance idle for every round trip: 505 requests a second against ~700); listings alike.
 */
export const POOL_INSTANCE_IN_FLIGHT = 2;

/**
 * Several instances of one function behind one `invoke`, as Lambda runs several containers when
 * requests overlap: each invocation goes to an instance with fewer than POOL_INSTANCE_IN_FLIGHT
 * in flight (the one with the fewest), or waits, first come first served, until one has.
 */
export async function hostFunctionPool(
  name: FunctionName,
  env: Readonly<Record<string, string>>,
  instances: number,
  options: HostOptions = {},
): Promise<HostedFunction> {
  const pool = await Promise.all(
    Array.from({ length: Math.max(1, instances) }, () => hostFunction(name, env, options)),
  );
  return poolOf(name, pool);
}

/** One `invoke` over running instances: hostFunctionPool's scheduling (apart, for its test). */
export function poolOf(name: FunctionName, pool: readonly HostedFunction[]): HostedFunction {
  const inFlight = pool.map(() => 0);
  // Each waiting invocation's resolve, given the instance whose slot it takes.
  const waiting: ((instance: number) => void)[] = [];
  const acquire = (): number | Promise<number> => {
    let chosen = 0;
    for (let i = 1; i < pool.length; i++) if ((inFlight[i] as number) < (inFlight[chosen] as number)) chosen = i;
    // Behind those already waiting, never ahead of them.
    if (waiting.length > 0 || (inFlight[chosen] as number) >= POOL_INSTANCE_IN_FLIGHT)
      return new Promise<number>((resolve) => waiting.push(resolve));
    inFlight[chosen] = (inFlight[chosen] as number) + 1;
    return chosen;
  };
  const release = (instance: number) => {
    const next = waiting.shift();
    // The slot passes straight to the longest waiting: the instance's count stays as it is.
    if (next) next(instance);
    else inFlight[instance] = (inFlight[instance] as number) - 1;
  };
  return {
    name,
    async invoke(event, context) {
      const chosen = await acquire();
      try {
        return await (pool[chosen] as HostedFunction).invoke(event, context);
      } finally {
        release(chosen);
      }
    },
    warm() {
      return Promise.all(pool.map((instance) => instance.warm()));
    },
    async stop() {
      await Promise.all(pool.map((instance) => instance.stop()));
    },
  };
}

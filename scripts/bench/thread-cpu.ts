/**
 * Per-thread CPU time for `npm run bench:pipeline`: preloaded (`node --import`) into the bench's
 * process, and so into every worker thread the local stack starts (workers inherit the preload),
 * each thread answers a sample request on a BroadcastChannel with its own CPU time
 * (`process.threadCpuUsage`). The bench asks at each phase and prints where the CPU went: which
 * function's thread, dynalite's, the main thread's (S3/SQS emulator, pollers, the bench itself),
 * and the rest of the process (LevelDB's and libuv's pool threads, V8's GC and compiler threads).
 *
 * CPU time rather than wall time: on a shared machine a thread that waits for a core is not
 * charged for the wait, so the split holds under load where wall times do not.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BroadcastChannel, isMainThread, threadId, workerData } from 'node:worker_threads';

const CHANNEL = 'tally-bench-thread-cpu';

export interface ThreadSample {
  /** The function's name, `dynalite`, `main`, or `worker`. */
  readonly name: string;
  readonly threadId: number;
  /** User + system CPU of the thread so far, in milliseconds. */
  readonly cpuMs: number;
}

type Request = { readonly sample: number };

/** The thread's name as the local stack gives it in workerData (function-host.ts, emulators.ts). */
function threadName(): string {
  if (isMainThread) return 'main';
  const data = workerData as { name?: unknown; path?: unknown } | undefined;
  if (typeof data?.name === 'string') return data.name;
  if (typeof data?.path === 'string') return 'dynalite';
  return 'worker';
}

function cpuMs(): number {
  const used = process.threadCpuUsage();
  return (used.user + used.system) / 1000;
}

/** Set once the preload ran in this thread: the bench re-runs itself with it when it is not. */
export const PRELOADED = Symbol.for('tally.bench.threadCpu');

/** Installs the responder in the current thread (the preload's body). */
function answerSamples(): void {
  const g = globalThis as Record<symbol, unknown>;
  if (g[PRELOADED]) return;
  g[PRELOADED] = true;
  const channel = new BroadcastChannel(CHANNEL);
  // Never the reason a thread stays alive.
  channel.unref();
  const name = threadName();
  channel.onmessage = (event) => {
    const request = (event as { data: Request | ThreadSample }).data;
    if ('sample' in request) channel.postMessage({ name, threadId, cpuMs: cpuMs() } satisfies ThreadSample);
  };
}

/** Every thread's CPU time now (the threads that answer within `waitMs`). */
export async function sampleThreads(waitMs = 200): Promise<ThreadSample[]> {
  const channel = new BroadcastChannel(CHANNEL);
  const samples = new Map<number, ThreadSample>();
  channel.onmessage = (event) => {
    const reply = (event as { data: Request | ThreadSample }).data;
    if ('cpuMs' in reply) samples.set(reply.threadId, reply);
  };
  channel.postMessage({ sample: Date.now() } satisfies Request);
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  channel.close();
  return [...samples.values()];
}

/**
 * The CPU each thread name used between two samples, busiest first, plus `other`: the process's
 * CPU (`process.cpuUsage` deltas, given) that no JavaScript thread accounts for.
 */
export function cpuBetween(
  before: readonly ThreadSample[],
  after: readonly ThreadSample[],
  processMs: number,
): { name: string; ms: number }[] {
  const start = new Map(before.map((s) => [s.threadId, s.cpuMs]));
  const byName = new Map<string, number>();
  for (const s of after) byName.set(s.name, (byName.get(s.name) ?? 0) + s.cpuMs - (start.get(s.threadId) ?? 0));
  const threads = [...byName.values()].reduce((a, ms) => a + ms, 0);
  return [
    ...[...byName].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms),
    { name: 'other (LevelDB/libuv pool, GC, compiler threads)', ms: Math.max(0, processMs - threads) },
  ];
}

/**
 * Runs a bench's `main` with every thread able to answer for its CPU: at once in a process started
 * with this module preloaded (`--import`; worker threads inherit it), otherwise by running the
 * bench's script (`scriptUrl`, its import.meta.url) again with it, passing on its exit code.
 */
export async function withThreadCpu(scriptUrl: string, main: () => Promise<void>): Promise<void> {
  if (process.execArgv.join(' ').includes('thread-cpu.ts')) return main();
  const child = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      '--import',
      fileURLToPath(import.meta.url),
      fileURLToPath(scriptUrl),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit' },
  );
  process.exitCode = child.status ?? 1;
}

answerSamples();

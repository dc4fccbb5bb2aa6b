/**
 * A V8 CPU profile of the calling thread, written when it stops: `TALLY_CPU_PROFILE_DIR=DIR` makes
 * each local function thread (function-worker.ts), the DynamoDB emulator's (dynalite-worker.ts) and
 * the stack's main thread (stack.ts) record one. `node --cpu-prof` of the whole stack crashes here,
 * so each thread profiles itself.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

export interface ThreadProfile {
  /** Stops the profiler and writes `<name>-<threadId>.cpuprofile` into the directory. */
  stop(): Promise<void>;
}

/** Starts profiling this thread when a directory is given; nothing otherwise. */
export async function startThreadProfile(dir: string | undefined, name: string): Promise<ThreadProfile | undefined> {
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(dir, `${name}-${threadId}.cpuprofile`), JSON.stringify(profile));
    },
  };
}

/**
 * Named moments where the crash test (test/integration/crash-recovery.test.ts) kills the local
 * stack: when TALLY_CRASH_AT names this point, the process sends itself SIGKILL — a real kill -9,
 * mid-work, no cleanup. Inert otherwise (one environment lookup); never set on AWS.
 */
export const CRASH_AT_ENV = 'TALLY_CRASH_AT';

export type CrashPoint =
  | 'upload:recorded'
  | 'ingest:indexing'
  | 'ingest:recorded'
  | 'recon:claimed'
  /** Recon has written and queued its first findings chunk. */
  | 'recon:storing'
  /** The store consumer has put a chunk's new exceptions, not yet its updates nor its count. */
  | 'store:chunk'
  /** The store consumer has completed a run, not yet queued its dispatch (or announced its hold). */
  | 'store:completed'
  | 'triage:handled';

export function crashPoint(point: CrashPoint): void {
  if (process.env[CRASH_AT_ENV] === point) process.kill(process.pid, 'SIGKILL');
}

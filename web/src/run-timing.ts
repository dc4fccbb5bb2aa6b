/**
 * How long a run took as the person who uploaded waits for it: from the request (both sides
 * accepted) to completion, split into waiting in the queue and processing. The engine's own
 * `summary.duration_ms` is only the reconciliation itself and hides time spent queued.
 */
export interface RunTimes {
  readonly requested_at: string;
  readonly started_at?: string | undefined;
  readonly completed_at?: string | undefined;
}

export interface RunTiming {
  /** requested_at to completed_at; null until the run has finished. */
  readonly totalMs: number | null;
  /** requested_at to started_at (the last attempt's start, so a retried run's failed tries count here). */
  readonly queuedMs: number | null;
  /** started_at to completed_at. */
  readonly processingMs: number | null;
}

function between(from: string | undefined, to: string | undefined): number | null {
  if (!from || !to) return null;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isNaN(ms) ? null : Math.max(0, ms);
}

export function runTiming(run: RunTimes): RunTiming {
  return {
    totalMs: between(run.requested_at, run.completed_at),
    queuedMs: between(run.requested_at, run.started_at),
    processingMs: between(run.started_at, run.completed_at),
  };
}

/** `850 ms`, `1.4 s`, `2 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** `1.4 s (queued 0.9 s, processing 0.5 s)`, or null before the run finishes. */
export function tookText(run: RunTimes): string | null {
  const t = runTiming(run);
  if (t.totalMs === null) return null;
  const parts = [
    t.queuedMs === null ? null : `queued ${formatDuration(t.queuedMs)}`,
    t.processingMs === null ? null : `processing ${formatDuration(t.processingMs)}`,
  ].filter((p) => p !== null);
  return `${formatDuration(t.totalMs)}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

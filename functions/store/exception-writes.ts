/**
 * A chunk of findings as exceptions (moved here from recon's run.ts when storing became its own
 * consumer): new ones put in batches and queued for triage, changed or reopened ones updated under
 * their version and queued, unchanged ones touched (run_id, last_seen_at) so that the run's
 * completion can tell what it found from what it did not.
 *
 * Safe to repeat: ids are stable and every write is conditional or idempotent. A chunk that died
 * half-way is written again from what is stored: what it already created is now "changed by this
 * run" and queued for triage again, which only re-indexes an unchanged exception.
 */
import { findingHash, toExceptionRecord } from '../recon/exception-record.ts';
import type { Finding } from '../recon/findings.ts';
import { crashPoint } from '../shared/crash-point.ts';
import { TransientError } from '../shared/errors.ts';
import { INITIAL_STATUS, reconReopens } from '../shared/exception-lifecycle.ts';
import { exceptionId } from '../shared/keys.ts';
import type { TriageRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { ExceptionChange, ExceptionStore, StoredExceptionState } from '../shared/tables/exceptions.ts';
import type { StoreCounts } from '../shared/tables/runs.ts';
import type { HistoryEntry } from '../shared/types.ts';

export const SYSTEM = 'system:recon';
/** Parallel conditional writes per chunk: enough to hide latency, well under on-demand limits. */
export const UPDATE_CONCURRENCY = 16;
/**
 * New exceptions are stored and queued for triage a slice at a time, a few slices at once: triage
 * starts on the first slice while the rest are written, instead of after the last BatchWriteItem.
 */
const FRESH_SLICE = 200;
const FRESH_SLICES_AT_ONCE = 3;

export interface WriteContext {
  readonly runId: string;
  readonly dataset: string;
  readonly businessDate: string;
  /** ISO time of the writes. */
  readonly now: string;
}

export interface WriteDeps {
  readonly exceptions: ExceptionStore;
  readonly triageQueue: MessageQueue<TriageRequest>;
}

export async function writeFindings(
  ctx: WriteContext,
  findings: readonly Finding[],
  deps: WriteDeps,
): Promise<StoreCounts> {
  const { runId, now } = ctx;
  const current = findings.map((f) => ({
    finding: f,
    id: exceptionId(ctx.dataset, ctx.businessDate, f.type, f.keyText),
    hash: findingHash(f),
  }));
  const stored = await deps.exceptions.getStates(current.map((c) => c.id));

  const fresh: Parameters<ExceptionStore['putNew']>[0] = [];
  const triage: TriageRequest[] = [];
  const updates: (() => Promise<unknown>)[] = [];
  let changed = 0;
  let unchanged = 0;
  for (const c of current) {
    const before = stored.get(c.id);
    if (before === undefined) {
      fresh.push({ ...toExceptionRecord(c.finding, ctx), content_hash: c.hash, last_changed_run_id: runId });
      continue;
    }
    const contentChanged = before.content_hash !== c.hash;
    const reopen = reconReopens(before.status, contentChanged);
    // Changed in this run by an attempt that died before finishing: still owes its triage message.
    if (contentChanged || reopen || before.last_changed_run_id === runId) {
      changed++;
      updates.push(() =>
        updateWithRetry(deps.exceptions, before, (state) => changeFor(c.finding, c.hash, state, runId, now, reopen)),
      );
      triage.push({ exception_id: c.id, run_id: runId, content_hash: c.hash });
    } else {
      unchanged++;
      // Already touched by this run (a chunk retried after a failure): nothing to write again.
      if (before.run_id === runId) continue;
      updates.push(() =>
        updateWithRetry(deps.exceptions, before, (state) => ({
          exceptionId: state.exception_id,
          expectedVersion: state.version,
          bumpVersion: false,
          history: [],
          set: { run_id: runId, last_seen_at: now, ...patternOf(c.finding) },
        })),
      );
    }
  }
  // Each slice's triage requests go out once that slice is stored (triage reads the exception). A
  // crash in between is safe: the retried chunk finds them stored, changed by this run, and queues
  // them again; triage of an unchanged exception only re-indexes it.
  const slices: (typeof fresh)[] = [];
  for (let i = 0; i < fresh.length; i += FRESH_SLICE) slices.push(fresh.slice(i, i + FRESH_SLICE));
  await runLimited(
    slices.map((slice) => async () => {
      await deps.exceptions.putNew(slice);
      await deps.triageQueue.send(
        slice.map((r) => ({ exception_id: r.exception_id, run_id: runId, content_hash: r.content_hash })),
      );
    }),
    FRESH_SLICES_AT_ONCE,
  );
  crashPoint('store:chunk');
  await runLimited(updates, UPDATE_CONCURRENCY);
  // Reopened ones are re-indexed by their triage.
  await deps.triageQueue.send(triage);
  return { new: fresh.length, changed, unchanged, triage_enqueued: fresh.length + triage.length };
}

function changeFor(
  finding: Finding,
  hash: string,
  state: StoredExceptionState,
  runId: string,
  now: string,
  reopen: boolean,
): ExceptionChange {
  const history: HistoryEntry[] = [];
  if (state.content_hash !== hash)
    history.push({
      at: now,
      by: SYSTEM,
      action: 'UPDATED',
      run_id: runId,
      note: 'reconciliation found different values',
    });
  if (reopen)
    history.push({
      at: now,
      by: SYSTEM,
      action: 'REOPENED',
      from: state.status,
      to: INITIAL_STATUS,
      run_id: runId,
      note: 'found again by reconciliation',
    });
  return {
    exceptionId: state.exception_id,
    expectedVersion: state.version,
    bumpVersion: history.length > 0,
    history,
    set: {
      run_id: runId,
      source: finding.source,
      target: finding.target,
      diffs: finding.diffs,
      lines: finding.lines,
      policy_severity: finding.severity,
      content_hash: hash,
      last_changed_run_id: runId,
      last_seen_at: now,
      updated_at: now,
      ...(finding.reason === undefined ? {} : { reason: finding.reason }),
      ...patternOf(finding),
      ...(reopen ? { status: INITIAL_STATUS, resolved_by_system: false } : {}),
    },
  };
}

/**
 * Optimistic update; on a concurrent change (an analyst's PATCH) re-read and re-apply, up to three
 * times. `build` may decide from the state it is given that nothing is to be done (undefined):
 * then false, else true once applied.
 */
export async function updateWithRetry(
  store: ExceptionStore,
  state: StoredExceptionState,
  build: (state: StoredExceptionState) => ExceptionChange | undefined,
): Promise<boolean> {
  let current = state;
  for (let attempt = 0; attempt < 3; attempt++) {
    const change = build(current);
    if (change === undefined) return false;
    if (await store.update(change)) return true;
    const reread = (await store.getStates([current.exception_id])).get(current.exception_id);
    if (reread === undefined) throw new TransientError(`exception ${current.exception_id} vanished during update`);
    current = reread;
  }
  throw new TransientError(`exception ${state.exception_id} kept changing under recon; will retry`);
}

export async function runLimited(tasks: (() => Promise<unknown>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await (tasks[next++] as () => Promise<unknown>)();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

/** The break pattern recon gave the finding in this run (its by_pattern_sharded key follows). */
function patternOf(finding: Finding): { pattern_id?: string } {
  return finding.patternId === undefined ? {} : { pattern_id: finding.patternId };
}

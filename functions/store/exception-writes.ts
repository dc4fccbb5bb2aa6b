/**
 * A chunk of findings as exceptions (moved here from recon's run.ts when storing became its own
 * consumer): new ones put in batches, changed or reopened ones updated under their version,
 * unchanged ones touched (run_id, last_seen_at) so that the run's completion can tell what it
 * found from what it did not. Nothing is queued for triage here: the completed run's dispatch
 * (functions/triage/dispatch.ts) queues it by pattern, once the runaway guard lets it; the
 * counts still say how many need it (new or changed).
 *
 * Safe to repeat: ids are stable and every write is conditional or idempotent. A chunk that died
 * half-way is written again from what is stored: what it already created is now "changed by this
 * run" and counted again.
 */
import { findingHash, sightingStatus, toExceptionRecord } from '../recon/exception-record.ts';
import type { Finding } from '../recon/findings.ts';
import { crashPoint } from '../shared/crash-point.ts';
import { fitForStorage } from './fit-for-storage.ts';
import { TransientError } from '../shared/errors.ts';
import { reconReopens } from '../shared/exception-lifecycle.ts';
import { datasetDateKey, exceptionIdFor } from '../shared/keys.ts';
import { DEFAULT_WORKFLOW, type WorkflowSettings } from '../shared/policy.ts';
import type { ExceptionChange, ExceptionStore, StoredExceptionState } from '../shared/tables/exceptions.ts';
import type { StoreCounts } from '../shared/tables/runs.ts';
import type { HistoryEntry } from '../shared/types.ts';

export const SYSTEM = 'system:recon';
/** Parallel conditional writes per chunk: enough to hide latency, well under on-demand limits. */
export const UPDATE_CONCURRENCY = 16;

export interface WriteContext {
  readonly runId: string;
  readonly dataset: string;
  readonly businessDate: string;
  /** ISO time of the writes. */
  readonly now: string;
  /** The dataset policy's identity, deadlines and late-arrival window (none: per date, no deadlines). */
  readonly workflow?: WorkflowSettings;
}

export interface WriteDeps {
  readonly exceptions: ExceptionStore;
}

/** How many cut exceptions' ids a chunk's outcome names (its count says how many in all). */
export const CUT_IDS_NAMED = 20;

export interface WriteOutcome extends StoreCounts {
  /** The first CUT_IDS_NAMED of the new and changed exceptions written cut to fit one item. */
  readonly cut_ids: readonly string[];
}

export async function writeFindings(
  ctx: WriteContext,
  findings: readonly Finding[],
  deps: WriteDeps,
): Promise<WriteOutcome> {
  const { runId, now } = ctx;
  const identity = (ctx.workflow ?? DEFAULT_WORKFLOW).identity;
  const current = findings.map((f) => {
    // Hashed whole, stored cut to one item's size if it must be (fit-for-storage.ts).
    const finding = fitForStorage(f);
    return {
      finding,
      cut: finding !== f,
      id: exceptionIdFor(identity, ctx.dataset, ctx.businessDate, f.type, f.keyText),
      hash: findingHash(f),
    };
  });
  const stored = await deps.exceptions.getStates(current.map((c) => c.id));

  const fresh: Parameters<ExceptionStore['putNew']>[0] = [];
  const updates: (() => Promise<unknown>)[] = [];
  let changed = 0;
  let unchanged = 0;
  const cut: string[] = [];
  for (const c of current) {
    const before = stored.get(c.id);
    if (before === undefined) {
      if (c.cut) cut.push(c.id);
      fresh.push({ ...toExceptionRecord(c.finding, ctx), content_hash: c.hash, last_changed_run_id: runId });
      continue;
    }
    const contentChanged = before.content_hash !== c.hash;
    const reopen = reconReopens(before.status, contentChanged, before.match !== undefined);
    // Changed in this run by an attempt that died before finishing: counted as changed again.
    if (contentChanged || reopen || before.last_changed_run_id === runId) {
      changed++;
      if (c.cut) cut.push(c.id);
      updates.push(() =>
        updateWithRetry(deps.exceptions, before, (state) => {
          const change = changeFor(c.finding, c.hash, state, ctx, reopen);
          return { ...change, set: { ...change.set, ...movedTo(state, ctx) } };
        }),
      );
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
          set: { run_id: runId, last_seen_at: now, ...patternOf(c.finding), ...movedTo(state, ctx) },
        })),
      );
    }
  }
  await deps.exceptions.putNew(fresh);
  crashPoint('store:chunk');
  await runLimited(updates, UPDATE_CONCURRENCY);
  // New and changed (reopened included) need triage: the run's dispatch queues it.
  return {
    new: fresh.length,
    changed,
    unchanged,
    triage_enqueued: fresh.length + changed,
    cut_for_storage: cut.length,
    cut_ids: cut.slice(0, CUT_IDS_NAMED),
  };
}

function changeFor(
  finding: Finding,
  hash: string,
  state: StoredExceptionState,
  ctx: WriteContext,
  reopen: boolean,
): ExceptionChange {
  const { runId, now } = ctx;
  const reopened = reopen ? reopenedAs(finding, state, ctx) : undefined;
  const history: HistoryEntry[] = [];
  if (state.content_hash !== hash)
    history.push({
      at: now,
      by: SYSTEM,
      action: 'UPDATED',
      run_id: runId,
      note: 'reconciliation found different values',
    });
  if (reopened)
    history.push({
      at: now,
      by: SYSTEM,
      action: 'REOPENED',
      from: state.status,
      to: reopened.status,
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
      ...reopened,
    },
  };
}

/**
 * What a reopened exception becomes: what a new sighting of the finding would be
 * (exception-record.ts sightingStatus) — PENDING while a late arrival's window is still open, else
 * OPEN — and, when it has no due date yet (a late arrival resolved inside its window never had
 * one), its due date from now. One that has a due date keeps it: the clock started at its first
 * sighting.
 */
function reopenedAs(finding: Finding, state: StoredExceptionState, ctx: WriteContext) {
  const sighting = sightingStatus(finding, ctx, ctx.workflow ?? DEFAULT_WORKFLOW);
  return {
    status: sighting.status,
    resolved_by_system: false,
    ...(sighting.pendingUntil === undefined ? {} : { pending_until: sighting.pendingUntil }),
    ...(state.due_at === undefined && sighting.due !== undefined ? { due_at: sighting.due } : {}),
  };
}

/**
 * Optimistic update; on a concurrent change (an analyst's PATCH) re-read and re-apply, up to three
 * times. `build` may decide from the state it is given that nothing is to be done (undefined):
 * then false, else true once applied.
 */
export async function updateWithRetry(
  store: Pick<ExceptionStore, 'getStates' | 'update'>,
  state: StoredExceptionState,
  build: (state: StoredExceptionState) => ExceptionChange | undefined,
): Promise<boolean> {
  let current = state;
  for (let attempt = 0; attempt < 3; attempt++) {
    const change = build(current);
    if (change === undefined) return false;
    if (await store.update({ ...change, before: current })) return true;
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

/**
 * An across-dates exception found by a run of a later date moves to that date (its by_dataset_date
 * entry follows), so listing the date shows it; its first_seen_at stays. A re-run of an earlier
 * date leaves it where it is.
 */
function movedTo(state: StoredExceptionState, ctx: WriteContext): Record<string, string> {
  if (state.business_date === undefined || state.business_date >= ctx.businessDate) return {};
  return { business_date: ctx.businessDate, dataset_date: datasetDateKey(ctx.dataset, ctx.businessDate) };
}

/** The break pattern recon gave the finding in this run (its by_pattern_sharded key follows). */
function patternOf(finding: Finding): { pattern_id?: string } {
  return finding.patternId === undefined ? {} : { pattern_id: finding.patternId };
}

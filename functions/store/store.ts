/**
 * Store core: one findings chunk in (functions/recon/chunks.ts); its exceptions written, the chunk
 * counted on the run once; and, when it was the run's last, the run completed and its triage
 * started: one dispatch message on the triage queue, or — a run the runaway guard HELD — one
 * business notification and nothing else.
 *
 * Counting: the run record carries the numbers of its stored chunks (a set) and the sum of their
 * counts, both moved by one conditional update that refuses a chunk already in the set, so a
 * redelivered chunk is never counted twice. Recon sets chunks_total (and STORING) once every chunk
 * is queued. Whoever makes stored == total visible — the consumer of the last chunk, or recon when
 * every chunk was stored before it set the total (it then re-queues the last chunk's message, whose
 * delivery finds the chunk counted and completes) — runs the completion, which is idempotent and
 * needs no lease: two completions resolve the same exceptions under versions, and only one moves
 * the run out of STORING.
 *
 * What follows completion is recorded on the run, so a crash between the two is finished by the
 * redelivered last chunk, which finds the run COMPLETED: `dispatch_queued_at` once the dispatch is
 * queued (a second one only re-lists: dispatch is idempotent), `triage.notified` claimed by a
 * conditional update before the notification goes out (given back if it cannot be sent).
 */
import { inputsAreCurrent } from '../recon/current-inputs.ts';
import { readChunk, type ChunkObjects } from '../recon/chunks.ts';
import { PermanentError } from '../shared/errors.ts';
import { reconResolves } from '../shared/exception-lifecycle.ts';
import type { DispatchRequest, StoreRequest } from '../shared/messages.ts';
import type { BusinessNotifier } from '../shared/notifications.ts';
import { DEFAULT_WORKFLOW, type WorkflowSettings } from '../shared/policy.ts';
import type { MessageQueue } from '../shared/ports.ts';
import { crashPoint } from '../shared/crash-point.ts';
import type { VectorIndex } from '../shared/search/ports.ts';
import type { FileStore } from '../shared/tables/files.ts';
import type { RunChunkStore, RunRecord, StoreCounts } from '../shared/tables/runs.ts';
import type { ExceptionType } from '../shared/types.ts';
import {
  runLimited,
  SYSTEM,
  UPDATE_CONCURRENCY,
  updateWithRetry,
  writeFindings,
  type WriteDeps,
} from './exception-writes.ts';

export interface StoreDeps extends WriteDeps {
  readonly chunks: ChunkObjects;
  readonly files: Pick<FileStore, 'get'>;
  readonly runs: RunChunkStore;
  /** The searchable copies: status changes made here are mirrored there. */
  readonly exceptionsIndex: Pick<VectorIndex, 'updateFields'>;
  /** The completed run's dispatch goes here (functions/triage/dispatch.ts consumes it). */
  readonly triageQueue: MessageQueue<DispatchRequest>;
  /** The business events topic: a HELD run is announced there once. */
  readonly notifier: BusinessNotifier;
  readonly now: () => number;
  /**
   * The dataset policy's workflow settings (identity, deadlines, late arrivals), read from the
   * policy in force; absent (tests of other rules): per date, no deadlines.
   */
  readonly workflows?: (dataset: string, bucket: string) => Promise<WorkflowSettings>;
}

/** What a completed run's triage got: its dispatch queued, its hold announced, or nothing (done before). */
export type TriageStart = 'DISPATCH_QUEUED' | 'HELD_NOTIFIED' | 'NONE';

export type CompletionOutcome =
  | {
      outcome: 'COMPLETED';
      exceptions: Partial<Record<ExceptionType, number>>;
      resolved: number;
      triage: TriageStart;
    }
  /** A newer upload replaced one of the run's files while it was stored: its own run resolves. */
  | { outcome: 'SUPERSEDED' }
  /** Another delivery completed it first (whatever it left of the triage start is done now). */
  | { outcome: 'ALREADY_COMPLETED'; triage?: TriageStart };

export type StoreOutcome =
  | {
      outcome: 'STORED';
      chunk: number;
      counts: StoreCounts;
      /** The first of the exceptions written cut to fit one item (counts.cut_for_storage has how many). */
      cut_ids?: readonly string[];
      completion?: CompletionOutcome;
    }
  /** Counted before (a redelivery, or recon's nudge after the last chunk). */
  | { outcome: 'ALREADY_STORED'; chunk: number; completion?: CompletionOutcome }
  /** The run is not storing (done, failed, superseded): nothing written; a completed run's triage start finished. */
  | { outcome: 'SKIPPED'; chunk: number; status: string; triage?: TriageStart };

export async function storeChunk(request: StoreRequest, deps: StoreDeps): Promise<StoreOutcome> {
  const { run_id: runId, chunk } = request;
  const run = await deps.runs.get(runId);
  // Chunks are queued only after the run is recorded and claimed: a missing run is not coming.
  if (run === undefined) throw new PermanentError('UNKNOWN_RUN', `run ${runId} is not recorded`);
  if (!isStoring(run)) {
    // A completion that died before starting the triage: its last chunk's redelivery finishes it.
    const triage = run.status === 'COMPLETED' ? await startTriage(run.run_id, deps) : undefined;
    return { outcome: 'SKIPPED', chunk, status: run.status, ...(triage ? { triage } : {}) };
  }
  if (run.stored_chunks?.has(chunk)) return { outcome: 'ALREADY_STORED', chunk, ...(await completeIfDone(run, deps)) };

  const findings = await readChunk(
    await deps.chunks.get(request.bucket, request.key),
    `s3://${request.bucket}/${request.key}`,
  );
  const ctx = {
    runId,
    dataset: request.dataset,
    businessDate: request.business_date,
    now: iso(deps.now()),
    workflow: await workflowOf(request.dataset, request.bucket, deps),
  };
  const { cut_ids: cutIds, ...counts } = await writeFindings(ctx, findings, deps);
  const counted = await deps.runs.markChunkStored(runId, chunk, counts);
  if (counted === undefined) {
    // Counted by a concurrent delivery of the same chunk, or the run moved on meanwhile.
    const now = await deps.runs.get(runId);
    return { outcome: 'ALREADY_STORED', chunk, ...(now && isStoring(now) ? await completeIfDone(now, deps) : {}) };
  }
  return {
    outcome: 'STORED',
    chunk,
    counts,
    ...(cutIds.length > 0 ? { cut_ids: cutIds } : {}),
    ...(await completeIfDone(counted, deps)),
  };
}

/** The dataset's workflow under the policy in force in `bucket` (the run's data bucket). */
function workflowOf(dataset: string, bucket: string, deps: Pick<StoreDeps, 'workflows'>): Promise<WorkflowSettings> {
  return deps.workflows?.(dataset, bucket) ?? Promise.resolve(DEFAULT_WORKFLOW);
}

function isStoring(run: RunRecord): boolean {
  return run.status === 'RUNNING' || run.status === 'STORING';
}

/** Every chunk queued (STORING) and counted. */
export function allChunksStored(run: RunRecord): boolean {
  return run.status === 'STORING' && run.chunks_total !== undefined && (run.chunks_stored ?? 0) >= run.chunks_total;
}

async function completeIfDone(run: RunRecord, deps: StoreDeps): Promise<{ completion?: CompletionOutcome }> {
  return allChunksStored(run) ? { completion: await completeRun(run, deps) } : {};
}

/**
 * The run's last step once every chunk is stored: the date's open exceptions this run did not find
 * (their run_id is another run's: every one it found carries its id) resolved by the system and
 * mirrored into the search index, then COMPLETED with the engine's summary and the chunks' counts.
 */
export async function completeRun(run: RunRecord, deps: StoreDeps): Promise<CompletionOutcome> {
  const now = iso(deps.now());
  if (!(await inputsAreCurrent(run, deps.files))) {
    const done = await deps.runs.complete(run.run_id, { status: 'SUPERSEDED', completed_at: now });
    return done ? { outcome: 'SUPERSEDED' } : { outcome: 'ALREADY_COMPLETED' };
  }
  const resolved = await resolveStale(run, now, deps);
  const engine = run.engine_summary;
  if (engine === undefined) throw new PermanentError('NO_SUMMARY', `run ${run.run_id} is STORING without a summary`);
  const done = await deps.runs.complete(run.run_id, {
    status: 'COMPLETED',
    completed_at: now,
    summary: {
      ...engine,
      new: run.stored_new ?? 0,
      changed: run.stored_changed ?? 0,
      unchanged: run.stored_unchanged ?? 0,
      resolved,
      triage_enqueued: run.stored_triage ?? 0,
      cut_for_storage: run.stored_cut ?? 0,
    },
  });
  if (!done) return { outcome: 'ALREADY_COMPLETED', triage: await startTriage(run.run_id, deps) };
  crashPoint('store:completed');
  return { outcome: 'COMPLETED', exceptions: engine.exceptions, resolved, triage: await startTriage(run.run_id, deps) };
}

/**
 * After COMPLETED: a HELD run's one notification, else its dispatch (PENDING, or RELEASED while it
 * was storing: the release route queues it only for a completed run). Read afresh: a release
 * that raced the completion is seen either here or by the route, which then sees COMPLETED.
 */
export async function startTriage(runId: string, deps: StoreDeps): Promise<TriageStart> {
  const run = await deps.runs.get(runId);
  if (run?.status !== 'COMPLETED') return 'NONE';
  const state = run.triage?.state ?? 'PENDING';
  if (state === 'HELD') {
    if (run.triage?.notified === true || !(await deps.runs.claimHeldNotification(runId))) return 'NONE';
    try {
      await deps.notifier.publish(heldEvent(run, iso(deps.now())));
    } catch (error) {
      await deps.runs.releaseHeldNotification(runId).catch(() => undefined);
      throw error;
    }
    return 'HELD_NOTIFIED';
  }
  if ((state !== 'PENDING' && state !== 'RELEASED') || run.dispatch_queued_at !== undefined) return 'NONE';
  await deps.triageQueue.send([{ kind: 'dispatch', run_id: runId }]);
  await deps.runs.markDispatchQueued(runId, iso(deps.now()));
  return 'DISPATCH_QUEUED';
}

function heldEvent(run: RunRecord, at: string) {
  const exceptions = Object.values(run.summary?.exceptions ?? {}).reduce<number>((a, n) => a + (n ?? 0), 0);
  return {
    type: 'RUN_TRIAGE_HELD' as const,
    kind: 'run_held' as const,
    text: `Run ${run.run_id} (${run.dataset} ${run.business_date}) held before triage: ${run.triage?.reason ?? 'held by the runaway guard'}`,
    run_id: run.run_id,
    dataset: run.dataset,
    business_date: run.business_date,
    reason: run.triage?.reason ?? 'held by the runaway guard',
    exceptions,
    needing_triage: run.summary?.triage_enqueued ?? 0,
    at,
    action: `check the run's files, then release it (npx tally runs triage ${run.run_id} --release) or abandon it (--abandon)`,
  };
}

async function resolveStale(run: RunRecord, now: string, deps: StoreDeps): Promise<number> {
  const acrossDates = (await workflowOf(run.dataset, run.source.bucket, deps)).identity === 'across_dates';
  // Across dates, an exception last found on a later date is not this (earlier) run's to resolve.
  const stale = (state: { run_id?: string; status: string; business_date?: string }) =>
    state.run_id !== run.run_id &&
    reconResolves(state.status) &&
    !(acrossDates && state.business_date !== undefined && state.business_date > run.business_date);
  const forDate = await deps.exceptions.listStatesForDate(run.dataset, run.business_date);
  // Across dates, an open exception sits on the last date that found it: any earlier one.
  const forDataset = acrossDates ? await deps.exceptions.listOpenStatesForDataset(run.dataset) : [];
  const listed = [...new Map([...forDate, ...forDataset].map((s) => [s.exception_id, s])).values()].filter(stale);
  // The index is eventually consistent: one this run touched a moment ago may show its old run there.
  const candidates = [...(await deps.exceptions.getStates(listed.map((s) => s.exception_id))).values()].filter(stale);
  const resolved: string[] = [];
  await runLimited(
    candidates.map((state) => async () => {
      const applied = await updateWithRetry(deps.exceptions, state, (s) =>
        stale(s)
          ? {
              exceptionId: s.exception_id,
              expectedVersion: s.version,
              bumpVersion: true,
              set: { status: 'RESOLVED', resolved_by_system: true, updated_at: now },
              // A change waiting for approval (a false positive, a manual match) is moot now:
              // withdrawn, so the record does not show a request nobody can decide.
              ...(s.status === 'AWAITING_APPROVAL' ? { remove: ['approval'] } : {}),
              history: [
                {
                  at: now,
                  by: SYSTEM,
                  action: 'RESOLVED',
                  from: s.status,
                  to: 'RESOLVED',
                  run_id: run.run_id,
                  note:
                    s.status === 'AWAITING_APPROVAL'
                      ? 'no longer found by reconciliation; the change waiting for approval is withdrawn'
                      : 'no longer found by reconciliation',
                },
              ],
            }
          : undefined,
      );
      if (applied) resolved.push(state.exception_id);
    }),
    UPDATE_CONCURRENCY,
  );
  // Resolved ones only change status in the index (reopened ones are re-indexed by their triage).
  for (const id of resolved) await deps.exceptionsIndex.updateFields(id, { status: 'RESOLVED' });
  return resolved.length;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Store core: one findings chunk in (functions/recon/chunks.ts); its exceptions written, their
 * triage queued, the chunk counted on the run once; and, when it was the run's last, the run
 * completed.
 *
 * Counting: the run record carries the numbers of its stored chunks (a set) and the sum of their
 * counts, both moved by one conditional update that refuses a chunk already in the set, so a
 * redelivered chunk is never counted twice. Recon sets chunks_total (and STORING) once every chunk
 * is queued. Whoever makes stored == total visible — the consumer of the last chunk, or recon when
 * every chunk was stored before it set the total (it then re-queues the last chunk's message, whose
 * delivery finds the chunk counted and completes) — runs the completion, which is idempotent and
 * needs no lease: two completions resolve the same exceptions under versions, and only one moves
 * the run out of STORING.
 */
import { inputsAreCurrent } from '../recon/current-inputs.ts';
import { readChunk, type ChunkObjects } from '../recon/chunks.ts';
import { PermanentError } from '../shared/errors.ts';
import { reconResolves } from '../shared/exception-lifecycle.ts';
import type { StoreRequest } from '../shared/messages.ts';
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
  readonly now: () => number;
}

export type CompletionOutcome =
  | { outcome: 'COMPLETED'; exceptions: Partial<Record<ExceptionType, number>>; resolved: number }
  /** A newer upload replaced one of the run's files while it was stored: its own run resolves. */
  | { outcome: 'SUPERSEDED' }
  /** Another delivery completed it first. */
  | { outcome: 'ALREADY_COMPLETED' };

export type StoreOutcome =
  | { outcome: 'STORED'; chunk: number; counts: StoreCounts; completion?: CompletionOutcome }
  /** Counted before (a redelivery, or recon's nudge after the last chunk). */
  | { outcome: 'ALREADY_STORED'; chunk: number; completion?: CompletionOutcome }
  /** The run is not storing (done, failed, superseded): nothing written. */
  | { outcome: 'SKIPPED'; chunk: number; status: string };

export async function storeChunk(request: StoreRequest, deps: StoreDeps): Promise<StoreOutcome> {
  const { run_id: runId, chunk } = request;
  const run = await deps.runs.get(runId);
  // Chunks are queued only after the run is recorded and claimed: a missing run is not coming.
  if (run === undefined) throw new PermanentError('UNKNOWN_RUN', `run ${runId} is not recorded`);
  if (!isStoring(run)) return { outcome: 'SKIPPED', chunk, status: run.status };
  if (run.stored_chunks?.has(chunk)) return { outcome: 'ALREADY_STORED', chunk, ...(await completeIfDone(run, deps)) };

  const findings = await readChunk(
    await deps.chunks.get(request.bucket, request.key),
    `s3://${request.bucket}/${request.key}`,
  );
  const ctx = { runId, dataset: request.dataset, businessDate: request.business_date, now: iso(deps.now()) };
  const counts = await writeFindings(ctx, findings, deps);
  const counted = await deps.runs.markChunkStored(runId, chunk, counts);
  if (counted === undefined) {
    // Counted by a concurrent delivery of the same chunk, or the run moved on meanwhile.
    const now = await deps.runs.get(runId);
    return { outcome: 'ALREADY_STORED', chunk, ...(now && isStoring(now) ? await completeIfDone(now, deps) : {}) };
  }
  return { outcome: 'STORED', chunk, counts, ...(await completeIfDone(counted, deps)) };
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
    },
  });
  return done ? { outcome: 'COMPLETED', exceptions: engine.exceptions, resolved } : { outcome: 'ALREADY_COMPLETED' };
}

async function resolveStale(run: RunRecord, now: string, deps: StoreDeps): Promise<number> {
  const stale = (state: { run_id?: string; status: string }) =>
    state.run_id !== run.run_id && reconResolves(state.status);
  const listed = (await deps.exceptions.listStatesForDate(run.dataset, run.business_date)).filter(stale);
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
              history: [
                {
                  at: now,
                  by: SYSTEM,
                  action: 'RESOLVED',
                  from: s.status,
                  to: 'RESOLVED',
                  run_id: run.run_id,
                  note: 'no longer found by reconciliation',
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

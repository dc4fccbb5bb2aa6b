/**
 * Recon run core: one recon request in; the findings written in chunks under results/{run_id}/ and
 * one store message queued per chunk (functions/recon/chunks.ts), then the run STORING with its
 * chunk count and the engine's summary. The store consumer (functions/store/) writes each chunk's
 * exceptions and completes the run once every chunk is stored.
 *
 * Safe to repeat: a run past RUNNING is skipped; a run that died half-way is claimed again after
 * its lease (short, renewed by a heartbeat while the engine and the chunk writes go on) and
 * rewrites the same chunks (the engine finds the same findings in the same order), which the store
 * consumer counts once each.
 */
import { ReconInputError, type ReconOptions } from './engine.ts';
import { chooseEngine, type Reconciler } from './engine-choice.ts';
import { startOnAthena, type AthenaRunDeps } from './athena-run.ts';
import { ChunkWriter, chunkKey, queueChunks, type ChunkObjects } from './chunks.ts';
import { currentInputs } from './current-inputs.ts';
import { runPatterns, savePatterns } from './run-patterns.ts';
import { TransientError } from '../shared/errors.ts';
import type { ReconRequest, StoreRequest } from '../shared/messages.ts';
import type { DatasetPolicyStore } from '../shared/dataset-policies.ts';
import { ObjectChangedError, ObjectMissingError, type MessageQueue, type ObjectStore } from '../shared/ports.ts';
import type { FileStore } from '../shared/tables/files.ts';
import type { PatternStore } from '../shared/tables/patterns.ts';
import type { RunRecord, RunStore } from '../shared/tables/runs.ts';
import type { ExceptionType } from '../shared/types.ts';
import { HeldElsewhereError, withHeartbeat } from '../shared/lease.ts';
import { crashPoint } from '../shared/crash-point.ts';
import { holdDecision, initialTriageState } from '../triage/guard.ts';

export interface ReconRunDeps {
  readonly objects: ObjectStore;
  /** Where the findings chunks go (results/ in the data bucket). */
  readonly chunks: ChunkObjects;
  readonly files: FileStore;
  readonly runs: RunStore;
  /** Where the run's break patterns go before it is STORING (functions/recon/run-patterns.ts). */
  readonly patterns: Pick<PatternStore, 'putAll'>;
  /** One message per findings chunk, for the store consumer. */
  readonly storeQueue: MessageQueue<StoreRequest>;
  /** Findings per chunk. */
  readonly chunkFindings: number;
  /** Each dataset's policy in force: read at the start of each run, so an upload applies from the next run. */
  readonly policies: DatasetPolicyStore;
  readonly now: () => number;
  /**
   * How long one worker owns a run without renewing it: a heartbeat renews it every third of
   * this while the run goes on, so a dead worker's run is claimed again within one lease.
   */
  readonly leaseMs: number;
  /** A fresh owner token for this worker's claim (shared/lease.ts newLeaseOwner). */
  readonly newLeaseOwner: () => string;
  /** Where a failed renewal is reported (it is retried at the next beat). */
  readonly onHeartbeatError?: (error: unknown) => void;
  /** The engine's memory budget and temp dir (functions/recon/config.ts). */
  readonly reconOptions?: ReconOptions;
  /** The SQL engine for runs above the policy's `engine.large_above_bytes` (engine-choice.ts). */
  readonly sqlEngine?: Reconciler;
  /**
   * Athena (AWS, TALLY_ATHENA_WORKGROUP set): runs above `engine.large_above_bytes` go there when
   * no in-process SQL engine is given, carried by delayed check messages (athena-run.ts).
   */
  readonly athena?: AthenaRunDeps;
  /** Where the engine choice is explained (the run's log). */
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export type ReconRunOutcome =
  | { outcome: 'ALREADY_DONE'; status: string }
  /** The run went on Athena: its check messages carry it on from this step (athena-run.ts). */
  | { outcome: 'DEFERRED'; step: number }
  /** An Athena check no longer the run's own (redelivered, or the run moved on): nothing done. */
  | { outcome: 'STALE'; reason: string }
  | { outcome: 'SUPERSEDED' }
  | { outcome: 'FAILED'; code: string; message: string }
  | {
      /** Every chunk written and queued: the store consumer completes the run. */
      outcome: 'STORING';
      exceptions: Partial<Record<ExceptionType, number>>;
      chunks: number;
      /** Chunks the store consumer had already stored when the count was set. */
      stored: number;
    };

export async function runRecon(request: ReconRequest, deps: ReconRunDeps): Promise<ReconRunOutcome> {
  const owner = deps.newLeaseOwner();
  const lease = () => ({ owner, now: deps.now(), leaseMs: deps.leaseMs });
  const claim = await deps.runs.claim(request.run_id, lease());
  if (!claim.claimed) {
    if (claim.run === undefined) throw new TransientError(`run ${request.run_id} is not recorded yet`);
    // On Athena, the run's check messages carry it (athena-run.ts); it is claimable once they stop.
    if (claim.run.status === 'RUNNING' && claim.run.engine === 'athena')
      return { outcome: 'ALREADY_DONE', status: 'RUNNING' };
    if (claim.run.status === 'RUNNING')
      throw new HeldElsewhereError(`run ${request.run_id} is running in another worker`);
    // The request came back after recon set the count (its nudge may have failed): nudge again.
    if (allStoredUncompleted(claim.run)) await queueChunks(deps.storeQueue, [lastChunk(claim.run)]);
    return { outcome: 'ALREADY_DONE', status: claim.run.status };
  }
  return withHeartbeat(
    () => deps.runs.renew(request.run_id, lease()),
    deps.leaseMs,
    async () => {
      try {
        return await runClaimed(request, owner, deps);
      } catch (error) {
        // A retry (this message's next delivery) need not wait for the lease to run out.
        await deps.runs.release(request.run_id, owner).catch(() => undefined);
        throw error;
      }
    },
    deps.onHeartbeatError,
  );
}

async function runClaimed(request: ReconRequest, owner: string, deps: ReconRunDeps): Promise<ReconRunOutcome> {
  crashPoint('recon:claimed');
  // A newer upload of either side makes this run moot: its own run will follow.
  const inputs = await currentInputs(request, deps.files);
  if (inputs === undefined) {
    await deps.runs.finish(request.run_id, owner, { status: 'SUPERSEDED', completed_at: iso(deps.now()) });
    return { outcome: 'SUPERSEDED' };
  }

  const policy = await deps.policies.current(request.source.bucket, request.dataset);
  if (policy === undefined) {
    // Ingest refuses such extracts; reached only if the policy went away in between.
    const message = `dataset "${request.dataset}" has no policy`;
    await deps.runs.finish(request.run_id, owner, {
      status: 'FAILED',
      completed_at: iso(deps.now()),
      error: { code: 'NO_POLICY', message, file: `s3://${request.source.bucket}/${request.source.key}` },
    });
    return { outcome: 'FAILED', code: 'NO_POLICY', message };
  }
  // As ingest recorded them (read above with the check that the inputs are current).
  const sizes = { source: inputs.source.size, target: inputs.target.size };
  const engine = chooseEngine(policy, sizes, { sqlEngine: deps.sqlEngine, athena: deps.athena !== undefined });
  if (engine.engine === 'athena' && deps.athena !== undefined) {
    const athena = deps.athena;
    const started = await endedOnInput(request, owner, deps, () =>
      startOnAthena(request, owner, policy, { ...deps, athena }),
    );
    if (!started.ok) return started.outcome;
    if (started.value !== undefined) return started.value;
  } else deps.log?.('engine chosen', { engine: engine.engine, reason: engine.reason });
  const patterns = runPatterns(policy, request);
  const writer = new ChunkWriter(
    { objects: deps.chunks, queue: deps.storeQueue, chunkFindings: deps.chunkFindings, patterns },
    {
      run_id: request.run_id,
      dataset: request.dataset,
      business_date: request.business_date,
      // The results live beside the run's extracts, in the data bucket.
      bucket: request.source.bucket,
    },
    () => crashPoint('recon:storing'),
  );
  const reconciled = await endedOnInput(request, owner, deps, async () =>
    engine.reconcile(
      { name: `s3://${request.source.bucket}/${request.source.key}`, stream: await deps.objects.read(request.source) },
      { name: `s3://${request.target.bucket}/${request.target.key}`, stream: await deps.objects.read(request.target) },
      policy,
      writer.add,
      { ...deps.reconOptions, note: deps.log },
    ),
  );
  if (!reconciled.ok) return reconciled.outcome;
  const summary = reconciled.value;
  const chunks = await writer.finish();

  const run = await deps.runs.startStoring(request.run_id, owner, {
    chunks_total: chunks.length,
    engine_summary: summary,
    policy_version: policy.policyVersion,
    policy_hash: policy.hash,
    patterns: await savePatterns(patterns, policy, deps.patterns),
    triage: initialTriageState(holdDecision(summary, policy), iso(deps.now())),
  });
  const stored = run.chunks_stored ?? 0;
  // Every chunk was stored before the count was set: no consumer saw the run complete, so the last
  // chunk's message goes out again; its delivery finds the chunk counted and completes the run.
  if (allStoredUncompleted(run)) await queueChunks(deps.storeQueue, chunks.slice(-1));
  return { outcome: 'STORING', exceptions: summary.exceptions, chunks: chunks.length, stored };
}

/**
 * Runs `work`; a changed or missing input supersedes the run, a bad one fails it (both recorded
 * on the run), as either engine meets them.
 */
async function endedOnInput<T>(
  request: ReconRequest,
  owner: string,
  deps: ReconRunDeps,
  work: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; outcome: ReconRunOutcome }> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    if (error instanceof ObjectChangedError || error instanceof ObjectMissingError) {
      await deps.runs.finish(request.run_id, owner, { status: 'SUPERSEDED', completed_at: iso(deps.now()) });
      return { ok: false, outcome: { outcome: 'SUPERSEDED' } };
    }
    if (error instanceof ReconInputError) {
      // Permanent: the file will not get better by retrying. Recorded on the run for the API.
      const failure = {
        code: error.code,
        message: error.message,
        file: error.file,
        ...(error.line === undefined ? {} : { line: error.line }),
      };
      await deps.runs.finish(request.run_id, owner, {
        status: 'FAILED',
        completed_at: iso(deps.now()),
        error: failure,
      });
      return { ok: false, outcome: { outcome: 'FAILED', code: error.code, message: error.message } };
    }
    throw error;
  }
}

/** STORING with every chunk counted: only a delivery of a chunk's message completes it now. */
function allStoredUncompleted(run: RunRecord): boolean {
  return run.status === 'STORING' && run.chunks_total !== undefined && (run.chunks_stored ?? 0) >= run.chunks_total;
}

/** The store message of the run's last chunk, from the run record (the consumer finds it counted). */
function lastChunk(run: RunRecord): StoreRequest {
  const chunk = (run.chunks_total ?? 1) - 1;
  return {
    run_id: run.run_id,
    dataset: run.dataset,
    business_date: run.business_date,
    bucket: run.source.bucket,
    key: chunkKey(run.run_id, chunk),
    chunk,
    findings: 0,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

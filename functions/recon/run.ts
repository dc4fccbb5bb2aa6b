/**
 * Recon run core: one recon request in; exceptions stored under stable ids, stale ones resolved
 * by the system, the run summary recorded, and one triage message per new or changed exception.
 *
 * Safe to repeat: a completed run is skipped; a run that died half-way is claimed again after
 * its lease (short, renewed by a heartbeat while the run goes on) and converges on the same
 * records (ids are stable, writes are conditional).
 */
import { ReconInputError, type Finding } from './engine.ts';
import { chooseEngine, fileSizes, type Reconciler } from './engine-choice.ts';
import { findingHash, toExceptionRecord } from './exception-record.ts';
import { exceptionId } from '../shared/keys.ts';
import { INITIAL_STATUS, reconReopens, reconResolves } from '../shared/exception-lifecycle.ts';
import { TransientError } from '../shared/errors.ts';
import type { ReconRequest, TriageRequest } from '../shared/messages.ts';
import type { DatasetPolicyStore } from '../shared/dataset-policies.ts';
import { ObjectChangedError, ObjectMissingError, type MessageQueue, type ObjectStore } from '../shared/ports.ts';
import type { ExceptionStore, StoredExceptionState } from '../shared/tables/exceptions.ts';
import type { FileStore } from '../shared/tables/files.ts';
import type { RunStore } from '../shared/tables/runs.ts';
import type { ExceptionType, HistoryEntry } from '../shared/types.ts';
import type { VectorIndex } from '../shared/search/ports.ts';
import { withHeartbeat } from '../shared/lease.ts';
import { crashPoint } from '../shared/crash-point.ts';

export interface ReconRunDeps {
  readonly objects: ObjectStore;
  readonly files: FileStore;
  readonly runs: RunStore;
  readonly exceptions: ExceptionStore;
  readonly triageQueue: MessageQueue<TriageRequest>;
  /** The searchable copies: status changes made here are mirrored there. */
  readonly exceptionsIndex: Pick<VectorIndex, 'updateFields'>;
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
  /** The SQL engine for runs above the policy's `engine.large_above_bytes` (engine-choice.ts). */
  readonly sqlEngine?: Reconciler;
}

export type ReconRunOutcome =
  | { outcome: 'ALREADY_DONE'; status: string }
  | { outcome: 'SUPERSEDED' }
  | { outcome: 'FAILED'; code: string; message: string }
  | {
      outcome: 'COMPLETED';
      exceptions: Partial<Record<ExceptionType, number>>;
      new: number;
      changed: number;
      unchanged: number;
      resolved: number;
    };

const SYSTEM = 'system:recon';
/** Parallel conditional writes per run: enough to hide latency, well under on-demand limits. */
const UPDATE_CONCURRENCY = 16;
/**
 * New exceptions are stored and queued for triage a slice at a time, a few slices at once: triage
 * starts on the first slice while the rest are written, instead of after the last BatchWriteItem.
 */
const FRESH_SLICE = 200;
const FRESH_SLICES_AT_ONCE = 3;

export async function runRecon(request: ReconRequest, deps: ReconRunDeps): Promise<ReconRunOutcome> {
  const owner = deps.newLeaseOwner();
  const lease = () => ({ owner, now: deps.now(), leaseMs: deps.leaseMs });
  const claim = await deps.runs.claim(request.run_id, lease());
  if (!claim.claimed) {
    if (claim.run === undefined) throw new TransientError(`run ${request.run_id} is not recorded yet`);
    if (claim.run.status === 'RUNNING') throw new TransientError(`run ${request.run_id} is running in another worker`);
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
  if (!(await isCurrent(request, deps.files))) {
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
  const engine = chooseEngine(
    policy,
    await fileSizes(deps.files, request.dataset, request.business_date),
    deps.sqlEngine,
  );
  let result;
  try {
    result = await engine.reconcile(
      { name: `s3://${request.source.bucket}/${request.source.key}`, stream: await deps.objects.read(request.source) },
      { name: `s3://${request.target.bucket}/${request.target.key}`, stream: await deps.objects.read(request.target) },
      policy,
    );
  } catch (error) {
    if (error instanceof ObjectChangedError || error instanceof ObjectMissingError) {
      await deps.runs.finish(request.run_id, owner, { status: 'SUPERSEDED', completed_at: iso(deps.now()) });
      return { outcome: 'SUPERSEDED' };
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
      return { outcome: 'FAILED', code: error.code, message: error.message };
    }
    throw error;
  }

  const counts = await storeFindings(request, result.findings, deps);
  await deps.runs.finish(request.run_id, owner, {
    status: 'COMPLETED',
    completed_at: iso(deps.now()),
    policy_version: policy.policyVersion,
    policy_hash: policy.hash,
    summary: { ...result.summary, ...counts },
  });
  return { outcome: 'COMPLETED', exceptions: result.summary.exceptions, ...counts };
}

async function isCurrent(request: ReconRequest, files: FileStore): Promise<boolean> {
  const [source, target] = await Promise.all([
    files.get(request.dataset, request.business_date, 'source'),
    files.get(request.dataset, request.business_date, 'target'),
  ]);
  return (
    source?.etag === request.source.etag &&
    target?.etag === request.target.etag &&
    source.status === 'ACCEPTED' &&
    target.status === 'ACCEPTED'
  );
}

async function storeFindings(request: ReconRequest, findings: Finding[], deps: ReconRunDeps) {
  const now = iso(deps.now());
  const ctx = { runId: request.run_id, dataset: request.dataset, businessDate: request.business_date, now };
  const current = findings.map((f) => ({
    finding: f,
    id: exceptionId(request.dataset, request.business_date, f.type, f.keyText),
    hash: findingHash(f),
  }));
  const stored = await deps.exceptions.getStates(current.map((c) => c.id));

  const fresh: Parameters<ExceptionStore['putNew']>[0] = [];
  const triage: TriageRequest[] = [];
  const updates: (() => Promise<void>)[] = [];
  let changed = 0;
  let unchanged = 0;
  for (const c of current) {
    const before = stored.get(c.id);
    if (before === undefined) {
      fresh.push({ ...toExceptionRecord(c.finding, ctx), content_hash: c.hash, last_changed_run_id: request.run_id });
      continue;
    }
    const contentChanged = before.content_hash !== c.hash;
    const reopen = reconReopens(before.status, contentChanged);
    // Changed in this run by an attempt that died before finishing: still owes its triage message.
    if (contentChanged || reopen || before.last_changed_run_id === request.run_id) {
      changed++;
      updates.push(() =>
        updateWithRetry(deps.exceptions, before, (state) =>
          changeFor(c.finding, c.hash, state, request.run_id, now, reopen),
        ),
      );
      triage.push({ exception_id: c.id, run_id: request.run_id, content_hash: c.hash });
    } else {
      unchanged++;
      updates.push(() =>
        updateWithRetry(deps.exceptions, before, (state) => ({
          exceptionId: state.exception_id,
          expectedVersion: state.version,
          bumpVersion: false,
          history: [],
          set: { run_id: request.run_id, last_seen_at: now },
        })),
      );
    }
  }
  // Each slice's triage requests go out once that slice is stored (triage reads the exception). A
  // crash in between is safe: the retried run finds them stored, changed by this run, and queues
  // them again; triage of an unchanged exception only re-indexes it.
  const slices = [];
  for (let i = 0; i < fresh.length; i += FRESH_SLICE) slices.push(fresh.slice(i, i + FRESH_SLICE));
  await runLimited(
    slices.map((slice) => async () => {
      await deps.exceptions.putNew(slice);
      await deps.triageQueue.send(
        slice.map((r) => ({ exception_id: r.exception_id, run_id: request.run_id, content_hash: r.content_hash })),
      );
    }),
    FRESH_SLICES_AT_ONCE,
  );
  crashPoint('recon:storing');
  await runLimited(updates, UPDATE_CONCURRENCY);

  // Anything still open for this date that the run no longer finds has been cleared.
  const seen = new Set(current.map((c) => c.id));
  const stale = (await deps.exceptions.listStatesForDate(request.dataset, request.business_date)).filter(
    (state) => !seen.has(state.exception_id) && reconResolves(state.status),
  );
  await runLimited(
    stale.map(
      (state) => () =>
        updateWithRetry(deps.exceptions, state, (s) => ({
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
              run_id: request.run_id,
              note: 'no longer found by reconciliation',
            },
          ],
        })),
    ),
    UPDATE_CONCURRENCY,
  );

  // Reopened ones are re-indexed by their triage; resolved ones only change status.
  for (const state of stale) await deps.exceptionsIndex.updateFields(state.exception_id, { status: 'RESOLVED' });
  await deps.triageQueue.send(triage);
  return {
    new: fresh.length,
    changed,
    unchanged,
    resolved: stale.length,
    triage_enqueued: fresh.length + triage.length,
  };
}

function changeFor(
  finding: Finding,
  hash: string,
  state: StoredExceptionState,
  runId: string,
  now: string,
  reopen: boolean,
) {
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
      ...(reopen ? { status: INITIAL_STATUS, resolved_by_system: false } : {}),
    },
  };
}

/** Optimistic update; on a concurrent change (an analyst's PATCH) re-read and re-apply once more. */
async function updateWithRetry(
  store: ExceptionStore,
  state: StoredExceptionState,
  build: (state: StoredExceptionState) => Parameters<ExceptionStore['update']>[0],
): Promise<void> {
  let current = state;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await store.update(build(current))) return;
    const reread = (await store.getStates([current.exception_id])).get(current.exception_id);
    if (reread === undefined) throw new TransientError(`exception ${current.exception_id} vanished during update`);
    current = reread;
  }
  throw new TransientError(`exception ${state.exception_id} kept changing under recon; will retry`);
}

async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await (tasks[next++] as () => Promise<void>)();
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

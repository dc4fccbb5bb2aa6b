/**
 * A run on Amazon Athena, carried by delayed check messages on the recon queue instead of a Lambda
 * waiting for its queries (functions/recon/sql/athena.ts has the statements).
 *
 * Ownership: the run stays RUNNING; its lease owner becomes the token of the one check message
 * that may advance it (`checkToken`), its lease runs until a little after that check is due, and
 * `engine: 'athena'` with the step marks it. A check advances the run only if the run still holds
 * its token, then hands the lease to the next check's token (a conditional update) before sending
 * that check, so a redelivered or stale check finds another token and is dropped; a query is
 * started with a ClientRequestToken of (run, attempt, step), so even a check advanced twice
 * gets the same query back. A recon request redelivered meanwhile leaves the run to its checks.
 * If the chain breaks (a crash between the hand-over and the send, a check dead-lettered), the
 * lease runs out and the run is claimable again: the next recon request for it restarts the run
 * as a new attempt (its own database, scratch tables and results folder, so nothing needs
 * deleting; the store consumer only reads the keys it is sent).
 */
import { ChunkWriter, chunkKey, encodeChunk, queueChunks, readChunk, type ChunkObjects } from './chunks.ts';
import { runPatterns, savePatterns } from './run-patterns.ts';
import type { ReconSummary } from './engine.ts';
import {
  AthenaQueryError,
  AthenaUnsupportedError,
  advanceAthenaRun,
  checkToken,
  firstCheck,
  planAthenaRun,
  type AthenaCheck,
  type AthenaPort,
  type DelayedQueue,
} from './sql/athena.ts';
import { probeHeader } from './sql/probe.ts';
import type { ReconRequest, StoreRequest } from '../shared/messages.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { DatasetPolicyStore } from '../shared/dataset-policies.ts';
import type { MessageQueue, ObjectStore } from '../shared/ports.ts';
import type { RunStore } from '../shared/tables/runs.ts';
import type { PatternStore } from '../shared/tables/patterns.ts';
import { withHeartbeat } from '../shared/lease.ts';
import { holdDecision, initialTriageState } from '../triage/guard.ts';

/** What recon needs to run on Athena (AWS only: TALLY_ATHENA_WORKGROUP set). */
export interface AthenaRunDeps {
  readonly athena: AthenaPort;
  /** The recon queue itself: the run's next check, delayed. */
  readonly checks: DelayedQueue<AthenaCheck>;
  /** Every key under a prefix, in key order (the UNLOADed findings). */
  readonly listResults: (bucket: string, prefix: string) => Promise<string[]>;
}

export interface AthenaContext {
  readonly objects: ObjectStore;
  readonly chunks: ChunkObjects;
  readonly runs: RunStore;
  readonly storeQueue: MessageQueue<StoreRequest>;
  /** Where the run's break patterns go before it is STORING (run-patterns.ts). */
  readonly patterns: Pick<PatternStore, 'putAll'>;
  readonly policies: DatasetPolicyStore;
  readonly now: () => number;
  readonly leaseMs: number;
  readonly athena: AthenaRunDeps;
  readonly log?: (message: string, details: Record<string, unknown>) => void;
}

export type AthenaRunOutcome =
  | { outcome: 'DEFERRED'; step: number }
  | { outcome: 'STALE'; reason: string }
  | { outcome: 'FAILED'; code: string; message: string }
  | {
      outcome: 'STORING';
      exceptions: ReconSummary['exceptions'];
      chunks: number;
      stored: number;
    };

/**
 * Starts a claimed run on Athena: reads both headers, plans it, starts its first statement and
 * hands the run to its first check. Undefined when Athena cannot run this policy (the caller keeps
 * the in-memory engine); ReconInputError from the headers as the in-memory engine would throw it.
 */
export async function startOnAthena(
  request: ReconRequest,
  owner: string,
  policy: ReconPolicy,
  ctx: AthenaContext,
): Promise<AthenaRunOutcome | undefined> {
  const header = async (side: 'source' | 'target') =>
    probeHeader(
      await ctx.objects.read(request[side]),
      `s3://${request[side].bucket}/${request[side].key}`,
      policy,
      side,
    );
  const headers = { source: await header('source'), target: await header('target') };
  const check = firstCheck(request, headers, ctx.now());
  try {
    planAthenaRun({
      runId: request.run_id,
      policy,
      layouts: { source: { header: headers.source }, target: { header: headers.target } },
      source: request.source,
      target: request.target,
      bucket: request.source.bucket,
      attempt: String(check.started_at),
    });
  } catch (error) {
    if (!(error instanceof AthenaUnsupportedError)) throw error;
    ctx.log?.('Athena cannot run this policy: the in-memory engine runs it', { reason: error.message });
    return undefined;
  }
  // The first check runs now, in this invocation (it starts statement 0); from then on, checks.
  return advance(check, owner, policy, ctx);
}

/** One delivery of a run's check message. */
export async function runAthenaCheck(check: AthenaCheck, ctx: AthenaContext): Promise<AthenaRunOutcome> {
  const run = await ctx.runs.get(check.run_id);
  const token = checkToken(check);
  if (run === undefined || run.status !== 'RUNNING' || run.lease_owner !== token)
    return { outcome: 'STALE', reason: `run is ${run?.status ?? 'not recorded'} and not held by this check` };
  const policy = await ctx.policies.current(check.source.bucket, check.dataset);
  // The run's policy may have gone since it started: nothing the check can do but fail the run.
  if (policy === undefined) return fail(check, token, 'NO_POLICY', `dataset "${check.dataset}" has no policy`, ctx);
  return advance(check, token, policy, ctx);
}

async function advance(
  check: AthenaCheck,
  owner: string,
  policy: ReconPolicy,
  ctx: AthenaContext,
): Promise<AthenaRunOutcome> {
  const bucket = check.source.bucket;
  let next;
  try {
    next = await advanceAthenaRun(check, policy, bucket, ctx.athena.athena, ctx.now);
  } catch (error) {
    if (error instanceof AthenaQueryError) return fail(check, owner, 'ATHENA_QUERY_FAILED', error.message, ctx);
    throw error;
  }
  if (next.action === 'waiting') {
    const passed = await ctx.runs.passLease(
      check.run_id,
      owner,
      // Held until a little after the next check is due; then claimable again (see the header).
      { owner: checkToken(next.check), now: ctx.now(), leaseMs: next.delaySeconds * 1000 + 2 * ctx.leaseMs },
      {
        engine: 'athena',
        athena_step: next.check.step,
        ...(next.check.query_id === undefined ? {} : { athena_query_id: next.check.query_id }),
      },
    );
    if (!passed) return { outcome: 'STALE', reason: 'another check advanced the run first' };
    await ctx.athena.checks.sendDelayed(next.check, next.delaySeconds);
    return { outcome: 'DEFERRED', step: next.check.step };
  }

  // Done: one store message per UNLOADed object, in key order; none written = one empty chunk.
  const run = { run_id: check.run_id, dataset: check.dataset, business_date: check.business_date, bucket };
  const keys = await ctx.athena.listResults(bucket, next.resultsPrefix);
  const patterns = runPatterns(policy, run);
  let messages: StoreRequest[];
  if (keys.length === 0) {
    messages = await new ChunkWriter({ objects: ctx.chunks, queue: ctx.storeQueue, chunkFindings: 1 }, run).finish();
  } else {
    messages = await withHeartbeat(
      () => ctx.runs.renew(check.run_id, { owner, now: ctx.now(), leaseMs: ctx.leaseMs }),
      ctx.leaseMs,
      () => withPatterns(keys, run, patterns, ctx),
    );
    await queueChunks(ctx.storeQueue, messages);
  }
  const stored = await ctx.runs.startStoring(check.run_id, owner, {
    chunks_total: messages.length,
    engine_summary: next.summary,
    policy_version: policy.policyVersion,
    policy_hash: policy.hash,
    patterns: await savePatterns(patterns, policy, ctx.patterns),
    triage: initialTriageState(holdDecision(next.summary, policy), new Date(ctx.now()).toISOString()),
  });
  // Every chunk stored before the count was set (as run.ts): the last one's message goes out again.
  if (stored.status === 'STORING' && (stored.chunks_stored ?? 0) >= messages.length)
    await queueChunks(ctx.storeQueue, messages.slice(-1));
  return {
    outcome: 'STORING',
    exceptions: next.summary.exceptions,
    chunks: messages.length,
    stored: stored.chunks_stored ?? 0,
  };
}

/**
 * Athena's findings never pass recon's ChunkWriter: each UNLOADed object is read, its findings
 * counted in their break patterns and written again with their `patternId` as the run's chunk of
 * the same number (results/{run_id}/part-NNNNN, outside the attempt's UNLOAD folder), so the store
 * consumer writes every exception's pattern as it does for the other engines. One object in memory
 * at a time, as the store consumer holds it; the same objects in the same order give the same
 * chunks, so a repeated done step rewrites them unchanged.
 */
async function withPatterns(
  keys: readonly string[],
  run: Pick<StoreRequest, 'run_id' | 'dataset' | 'business_date' | 'bucket'>,
  patterns: ReturnType<typeof runPatterns>,
  ctx: Pick<AthenaContext, 'chunks'>,
): Promise<StoreRequest[]> {
  const messages: StoreRequest[] = [];
  for (const [chunk, key] of keys.entries()) {
    const findings = await readChunk(await ctx.chunks.get(run.bucket, key), `s3://${run.bucket}/${key}`);
    const stamped = findings.map((finding) => ({ ...finding, patternId: patterns.add(finding) }));
    const message: StoreRequest = { ...run, key: chunkKey(run.run_id, chunk), chunk, findings: stamped.length };
    await ctx.chunks.put(run.bucket, message.key, await encodeChunk(stamped));
    messages.push(message);
  }
  return messages;
}

async function fail(
  check: AthenaCheck,
  owner: string,
  code: string,
  message: string,
  ctx: AthenaContext,
): Promise<AthenaRunOutcome> {
  await ctx.runs.finish(check.run_id, owner, {
    status: 'FAILED',
    completed_at: new Date(ctx.now()).toISOString(),
    error: { code, message },
  });
  return { outcome: 'FAILED', code, message };
}

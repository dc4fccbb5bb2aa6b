/** The runs table: one item per reconciliation run. */
import type { ObjectRef } from '../ports.ts';
import type { RunSummary } from '../types.ts';
import type { LeaseTerms } from './idempotency.ts';
import type { UsageCounts } from './usage.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';

/**
 * REQUESTED -> RUNNING (recon holds the lease: the engine, chunks written and queued) -> STORING
 * (every chunk queued, no lease: the store consumer writes them) -> COMPLETED once every chunk is
 * stored. FAILED and SUPERSEDED end a run early.
 */
export type RunStatus = 'REQUESTED' | 'RUNNING' | 'STORING' | 'COMPLETED' | 'FAILED' | 'SUPERSEDED';

/** What storing the findings did, summed over a run's chunks. */
export interface StoreCounts {
  readonly new: number;
  readonly changed: number;
  readonly unchanged: number;
  /** New and changed: the exceptions that need triage (queued by the run's dispatch, not here, since #12). */
  readonly triage_enqueued: number;
  /** Of the new and changed, those written cut to fit one DynamoDB item (store/fit-for-storage.ts). */
  readonly cut_for_storage: number;
}

/**
 * Where a run's triage is (functions/triage/guard.ts): PENDING until the run completes and its
 * dispatch runs (DISPATCHED); HELD by the runaway guard until an analyst releases (RELEASED, then
 * DISPATCHED) or abandons it (ABANDONED: its exceptions stay stored, untriaged).
 */
export const RUN_TRIAGE_STATES = ['PENDING', 'HELD', 'RELEASED', 'ABANDONED', 'DISPATCHED'] as const;
export type RunTriageStateName = (typeof RUN_TRIAGE_STATES)[number];

export interface RunTriageState {
  readonly state: RunTriageStateName;
  /** Why the run is held (the guard's limit and the run's figure). */
  readonly reason?: string;
  readonly at: string;
  /** Who released or abandoned it. */
  readonly by?: string;
  /** The business notification of a HELD run went out (claimed by one completion only). */
  readonly notified?: boolean;
}

/** What a run's dispatch queued: model calls = patterns + singletons. */
export interface TriagePlan {
  readonly patterns: number;
  readonly singletons: number;
  /** Exceptions that take a pattern's triage. */
  readonly members: number;
}

/** The triages a plan asks for: one a pattern, one a singleton (each a model call unless the rules answer it). */
export function triagesPlanned(plan: TriagePlan): number {
  return plan.patterns + plan.singletons;
}

/** The engine's summary of a run, kept on the run while its chunks are stored. */
export type EngineSummary = RunSummary;

export interface RunRecord {
  readonly run_id: string;
  readonly dataset: string;
  readonly business_date: string;
  readonly source: ObjectRef;
  readonly target: ObjectRef;
  readonly status: RunStatus;
  readonly requested_at: string;
  /** Which ingest (idempotency key) asked for the run: only it (or its retry) sends the request. */
  readonly requested_by: string;
  readonly started_at?: string;
  readonly lease_until?: number;
  /** The owner token of the worker holding a RUNNING run's lease (shared/lease.ts). */
  readonly lease_owner?: string;
  readonly completed_at?: string;
  readonly summary?: RunSummary & {
    new: number;
    changed: number;
    unchanged: number;
    resolved: number;
    triage_enqueued: number;
    /** Exceptions written cut to fit one DynamoDB item, their rows saying what they lost (absent before it was counted). */
    cut_for_storage?: number;
  };
  readonly policy_version?: string;
  readonly policy_hash?: string;
  readonly error?: { code: string; message: string; line?: number; file?: string };
  /** How many findings chunks the run has: set by recon once every chunk is written and queued. */
  readonly chunks_total?: number;
  /** How many of them are stored (each counted once: `stored_chunks`). */
  readonly chunks_stored?: number;
  /** The numbers of the stored chunks: a redelivered chunk is not counted twice. */
  readonly stored_chunks?: Set<number>;
  /** Per-chunk store counts, summed atomically as each chunk is marked stored. */
  readonly stored_new?: number;
  readonly stored_changed?: number;
  readonly stored_unchanged?: number;
  readonly stored_triage?: number;
  readonly stored_cut?: number;
  /** The engine's summary while the chunks are stored; `summary` once the run completes. */
  readonly engine_summary?: EngineSummary;
  /** Set while the run goes on Athena (RUNNING, carried by delayed check messages, no Lambda holding it). */
  readonly engine?: 'athena';
  /** The Athena statement running (or to start) and its query (functions/recon/sql/athena.ts). */
  readonly athena_step?: number;
  readonly athena_query_id?: string;
  /** What the run's triage model calls cost, summed per call (triage: ADD). */
  readonly cost?: { micro_usd: number; input_tokens: number; output_tokens: number; calls: number };
  /** The runaway guard's decision and what became of it (absent on runs recorded before it: PENDING). */
  readonly triage?: RunTriageState;
  /** What the run's dispatch queued, recorded once its last page is listed. */
  readonly triage_plan?: TriagePlan;
  /**
   * When the completed run's dispatch message was queued: a completion that died before queueing
   * it leaves this unset, and the redelivered last chunk queues it.
   */
  readonly dispatch_queued_at?: string;
  /**
   * Its break patterns (functions/shared/patterns/): how many were saved (at least the policy's
   * triage.pattern_min_members members each), their members, and the exceptions in none of them.
   */
  readonly patterns?: RunPatterns;
}

/** A run's break patterns in numbers: model calls for its triage = patterns + singletons. */
export interface RunPatterns {
  readonly patterns: number;
  readonly members: number;
  readonly singletons: number;
}

/** What a run on Athena records at each check: where it is. */
export interface AthenaMarker {
  readonly engine: 'athena';
  readonly athena_step: number;
  readonly athena_query_id?: string;
}

/** What recon records when its last chunk is queued: the run is STORING from then on. */
export interface StoringUpdate {
  readonly chunks_total: number;
  readonly engine_summary: EngineSummary;
  readonly policy_version: string;
  readonly policy_hash: string;
  /** Recorded with the patterns saved just before (functions/recon/patterns.ts). */
  readonly patterns?: RunPatterns;
  /** The runaway guard's decision (functions/triage/guard.ts): PENDING, or HELD with the reason. */
  readonly triage?: RunTriageState;
}

/** What ingest (request) and recon (claim, finish) do with a run. */
export interface RunStore {
  /** Creates the run if absent; returns the stored run either way and whether this call created it. */
  request(run: RunRecord): Promise<{ created: boolean; run: RunRecord }>;
  get(runId: string): Promise<RunRecord | undefined>;
  /** REQUESTED/FAILED (or RUNNING with an expired lease) -> RUNNING. Returns the run as it was when the claim failed. */
  claim(runId: string, lease: LeaseTerms): Promise<{ claimed: true } | { claimed: false; run: RunRecord | undefined }>;
  /** Extends the owner's lease on its RUNNING run; false when the run is no longer its own. */
  renew(runId: string, lease: LeaseTerms): Promise<boolean>;
  /**
   * Hands the owner's RUNNING run to `lease.owner` (until `lease.now + lease.leaseMs`), recording
   * the marker: a run on Athena passes it from one check message to the next. False when the run
   * is not RUNNING under `from` (a stale or redelivered check).
   */
  passLease(runId: string, from: string, lease: LeaseTerms, marker: AthenaMarker): Promise<boolean>;
  /** Gives the owner's lease back after a failure (the run stays RUNNING, claimable at once). */
  release(runId: string, owner: string): Promise<void>;
  /** Records the outcome; throws LeaseLostError when another worker has taken the run over. */
  finish(runId: string, owner: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void>;
  /**
   * RUNNING (the owner's) -> STORING with the chunk count, lease given up: from here the store
   * consumer completes the run. Returns the run as it is now (chunks already stored included);
   * throws LeaseLostError when another worker has taken the run over.
   */
  startStoring(runId: string, owner: string, update: StoringUpdate): Promise<RunRecord>;
}

/** What the store consumer does with a run: count its chunks, complete it. */
export interface RunChunkStore {
  get(runId: string): Promise<RunRecord | undefined>;
  /**
   * Counts the chunk stored and adds its counts, once: returns the run as it is now, or undefined
   * when the chunk was already counted or the run is no longer RUNNING or STORING.
   */
  markChunkStored(runId: string, chunk: number, counts: StoreCounts): Promise<RunRecord | undefined>;
  /** STORING with every chunk stored -> `update.status`; false when the run is not (or no longer) that. */
  complete(runId: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<boolean>;
  /** Claims the HELD run's one business notification: true for the one caller that set `notified`. */
  claimHeldNotification(runId: string): Promise<boolean>;
  /** Gives the claim back when the notification could not be sent (the retry claims it again). */
  releaseHeldNotification(runId: string): Promise<void>;
  /** Records that the completed run's dispatch message is queued. */
  markDispatchQueued(runId: string, at: string): Promise<void>;
}

/** What triage's dispatch and the query API's release/abandon do with a run's triage state. */
export interface RunTriageStore {
  get(runId: string): Promise<RunRecord | undefined>;
  /**
   * Moves the run's triage to `next` when its state is one of `from` (a run recorded before the
   * guard has none: PENDING); the run as written, or undefined when it was not in one of them.
   */
  moveTriage(runId: string, from: readonly RunTriageStateName[], next: RunTriageState): Promise<RunRecord | undefined>;
  /** Records the plan of the run's first complete dispatch (a later one leaves it). */
  recordTriagePlan(runId: string, plan: TriagePlan): Promise<void>;
}

/** What triage adds to a run: each model call's cost. */
export interface RunCostStore {
  /** Adds the counts to the run's `cost` (atomic); false when there is no such run. */
  addCost(runId: string, counts: UsageCounts): Promise<boolean>;
}

/** What the query API reads of runs. */
export interface RunQueries {
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** One page of a runs-table GSI query, newest first. */
  queryRuns(query: IndexQuery): Promise<IndexPage>;
}

/** What a completed run stored, as the Runs view, `tally runs show` and `npm start -- --once` say it. */
export function storedText(s: Pick<NonNullable<RunRecord['summary']>, 'new' | 'changed' | 'unchanged' | 'resolved'>) {
  return `${s.new} new, ${s.changed} changed, ${s.unchanged} unchanged, ${s.resolved} resolved`;
}

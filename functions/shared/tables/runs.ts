/** The runs table: one item per reconciliation run. */
import type { ObjectRef } from '../ports.ts';
import type { RunSummary } from '../types.ts';
import type { LeaseTerms } from './idempotency.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';

export type RunStatus = 'REQUESTED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'SUPERSEDED';

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
  };
  readonly policy_version?: string;
  readonly policy_hash?: string;
  readonly error?: { code: string; message: string; line?: number; file?: string };
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
  /** Gives the owner's lease back after a failure (the run stays RUNNING, claimable at once). */
  release(runId: string, owner: string): Promise<void>;
  /** Records the outcome; throws LeaseLostError when another worker has taken the run over. */
  finish(runId: string, owner: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void>;
}

/** What the query API reads of runs. */
export interface RunQueries {
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** One page of a runs-table GSI query, newest first. */
  queryRuns(query: IndexQuery): Promise<IndexPage>;
}

/**
 * The storage and messaging the cores depend on, as small interfaces. Cores import these,
 * never the AWS SDK; adapters/ implements them on DynamoDB, S3 and SQS.
 */
import type { ExceptionRecord, ExceptionStatus, HistoryEntry, RunSummary, Side } from './types.ts';

export interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
  readonly etag: string;
}

export interface ObjectStore {
  /** Streams the object's bytes; fails with ObjectChangedError if its ETag is no longer `etag`. */
  read(ref: ObjectRef): Promise<AsyncIterable<Uint8Array>>;
}

export class ObjectChangedError extends Error {
  constructor(ref: ObjectRef) {
    super(`s3://${ref.bucket}/${ref.key} no longer has ETag ${ref.etag}`);
    this.name = 'ObjectChangedError';
  }
}

export class ObjectMissingError extends Error {
  constructor(ref: ObjectRef) {
    super(`s3://${ref.bucket}/${ref.key} does not exist`);
    this.name = 'ObjectMissingError';
  }
}

export type FileStatus = 'ACCEPTED' | 'REJECTED';

export interface FileRecord extends ObjectRef {
  readonly dataset: string;
  readonly business_date: string;
  readonly side: Side;
  readonly sequencer: string;
  readonly size: number;
  /** Data rows (header excluded); 0 when rejected before counting. */
  readonly rows: number;
  readonly status: FileStatus;
  readonly error?: { code: string; message: string; line?: number };
  readonly ingested_at: string;
  /** Increases each time this side's current file changes; part of the run id. */
  readonly generation: number;
}

export interface FileStore {
  get(dataset: string, businessDate: string, side: Side): Promise<FileRecord | undefined>;
  /**
   * Records `file` as the current one for its side unless a newer upload (greater sequencer) is
   * already recorded. Returns false when the write lost to a newer upload.
   */
  putIfNewer(file: FileRecord): Promise<boolean>;
}

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

export interface RunStore {
  /** Creates the run if absent; returns the stored run either way and whether this call created it. */
  request(run: RunRecord): Promise<{ created: boolean; run: RunRecord }>;
  get(runId: string): Promise<RunRecord | undefined>;
  /** REQUESTED/FAILED (or RUNNING with an expired lease) -> RUNNING. Returns the run as it was when the claim failed. */
  claim(
    runId: string,
    now: number,
    leaseMs: number,
  ): Promise<{ claimed: true } | { claimed: false; run: RunRecord | undefined }>;
  finish(runId: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void>;
}

/** What recon needs to know about an exception already stored. */
export interface StoredExceptionState {
  readonly exception_id: string;
  readonly status: ExceptionStatus;
  readonly content_hash: string;
  readonly version: number;
  readonly resolved_by_system?: boolean;
  readonly last_changed_run_id?: string;
}

export interface ExceptionChange {
  readonly exceptionId: string;
  readonly expectedVersion: number;
  readonly set: Record<string, unknown>;
  readonly history: HistoryEntry[];
  readonly bumpVersion: boolean;
}

export interface ExceptionStore {
  /** Consistent reads of the given ids. */
  getStates(ids: string[]): Promise<Map<string, StoredExceptionState>>;
  /** Every exception ever stored for (dataset, date), any status. */
  listStatesForDate(dataset: string, businessDate: string): Promise<StoredExceptionState[]>;
  /** Batch-writes brand-new records. */
  putNew(records: (ExceptionRecord & { content_hash: string; last_changed_run_id: string })[]): Promise<void>;
  /** Applies a change if the version still matches; returns false on a concurrent change. */
  update(change: ExceptionChange): Promise<boolean>;
}

export interface IdempotencyStore {
  /**
   * Starts work under `id`. 'acquired': go ahead; 'completed': done before (with the sequencer
   * recorded then); 'in_progress': another worker holds a live lease.
   */
  begin(
    id: string,
    sequencer: string,
    now: number,
    leaseMs: number,
  ): Promise<{ state: 'acquired' } | { state: 'completed'; sequencer: string } | { state: 'in_progress' }>;
  /** Takes over a completed record for a later upload of the same bytes. */
  reopen(id: string, sequencer: string, previousSequencer: string, now: number, leaseMs: number): Promise<boolean>;
  complete(id: string, outcome: string, now: number): Promise<void>;
  /** Gives the lease back after a failure so a retry can start at once. */
  release(id: string): Promise<void>;
}

export interface MessageQueue<T> {
  send(messages: T[]): Promise<void>;
}

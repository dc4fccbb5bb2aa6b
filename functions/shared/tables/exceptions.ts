/**
 * The exceptions table: one item per exception under its stable id. Three consumers, three
 * views: recon writes findings (ExceptionStore), triage adds its answer (TriageStore), the query
 * API lists and patches (ExceptionQueries).
 */
import type { ExceptionRecord, ExceptionStatus, HistoryEntry, MatchLink, Triage } from '../types.ts';
import type { IndexPage, IndexQuery, StoredItem } from './index-query.ts';
import type { StoredEmbedding } from '../search/stored-embedding.ts';
import type { IndexedBefore } from './exceptions-index-keys.ts';

/** Recon's change detection: what it last wrote, and from which run. */
export interface ExceptionBookkeeping {
  /** Hash of what the engine found; triage answers are kept only for the content they saw. */
  readonly content_hash: string;
  readonly last_changed_run_id: string;
}

/**
 * An item as stored: the API form, recon's bookkeeping, and the index keys. Which of these a
 * caller sees is decided in one place, query-api/records.ts.
 */
export interface StoredException extends ExceptionRecord, ExceptionBookkeeping, ExceptionIndexKeys {
  /** What by_created_sharded shards: every exception. */
  readonly record_type: string;
  /** What by_dataset_date_sharded shards. */
  readonly dataset_date: string;
  /** When a run last found this exception (changed or not). */
  readonly last_seen_at: string;
  /** True when recon resolved it (no longer found), false once an analyst or recon moved it since. */
  readonly resolved_by_system?: boolean;
}

/**
 * The GSI keys (exceptions-index-keys.ts derives them): `<value>#<shard>` partitions and the
 * `<created_at>#<exception_id>` sort key. Severity's is absent until triage sets severity.
 */
export interface ExceptionIndexKeys {
  readonly gsi_status: string;
  readonly gsi_type: string;
  readonly gsi_run: string;
  readonly gsi_dataset_date: string;
  readonly gsi_severity?: string;
  readonly gsi_created: string;
  readonly gsi_pattern?: string;
  /** The owner queues': only on an assigned exception, or one in a team's queue. */
  readonly gsi_assignee?: string;
  readonly gsi_team?: string;
  readonly gsi_sort: string;
}

/** What recon needs to know about an exception already stored. */
export interface StoredExceptionState {
  readonly exception_id: string;
  readonly status: ExceptionStatus;
  readonly content_hash: string;
  readonly version: number;
  readonly resolved_by_system?: boolean;
  readonly last_changed_run_id?: string;
  /** The last run that found it (changed or not): a run's completion resolves the open ones it did not find. */
  readonly run_id?: string;
  /** Set once an approver accepted a manual match: recon does not reopen it for the same finding. */
  readonly match?: MatchLink;
  /** The date it was last found on (an across-dates exception moves to each later date that finds it). */
  readonly business_date?: string;
  /** Its deadline, if one runs: a reopened exception without one gets one (store/exception-writes.ts). */
  readonly due_at?: string;
}

export interface ExceptionChange {
  readonly exceptionId: string;
  readonly expectedVersion: number;
  readonly set: Record<string, unknown>;
  /** Attributes removed (a withdrawn approval request). */
  readonly remove?: readonly string[];
  readonly history: HistoryEntry[];
  readonly bumpVersion: boolean;
  /** The item as read (its status, at least): what its index keys follow when the change closes or reopens it. */
  readonly before?: IndexedBefore;
}

/** Recon's view. */
export interface ExceptionStore {
  /** Consistent reads of the given ids. */
  getStates(ids: string[]): Promise<Map<string, StoredExceptionState>>;
  /** Every exception ever stored for (dataset, date), any status, in no particular order. */
  listStatesForDate(dataset: string, businessDate: string): Promise<StoredExceptionState[]>;
  /**
   * The dataset's exceptions in an open status, whatever their date: an across-dates dataset's
   * run resolves those it no longer finds (functions/store/store.ts).
   */
  listOpenStatesForDataset(dataset: string): Promise<StoredExceptionState[]>;
  /** Batch-writes brand-new records, with their index keys. */
  putNew(records: (ExceptionRecord & ExceptionBookkeeping)[]): Promise<void>;
  /**
   * Applies a change if the version still matches; returns false on a concurrent change. The index
   * keys of any indexed attribute it sets (status, run_id) follow.
   */
  update(change: ExceptionChange): Promise<boolean>;
}

/** The deadline sweep's view (functions/deadlines/): what is due for promotion or an overdue notice. */
export interface DeadlineStore extends Pick<ExceptionStore, 'getStates'> {
  /** PENDING exceptions whose late-arrival window ended at or before `now` (ISO). */
  listExpiredPending(now: string): Promise<StoredException[]>;
  /** Open exceptions past their due date at `now` whose overdue notice has not gone out. */
  listOverdueUnannounced(now: string): Promise<StoredException[]>;
  /** As ExceptionStore.update: the change applied if the version still matches. */
  update(change: ExceptionChange): Promise<boolean>;
}

/** Triage's view. */
export interface TriageStore {
  get(exceptionId: string): Promise<(ExceptionRecord & { content_hash: string }) | undefined>;
  /**
   * Stores the triage unless the exception's content changed since it was read; `also`: other
   * attributes its severity decides (a due date, functions/triage/deadline.ts); `embedding`: the
   * vector of what will be indexed, kept in the same write (as saveEmbedding would, one write later);
   * `status`: the exception's as read, so that a closed one is not put back in by_uncited_sharded
   * (absent: written as if open).
   */
  saveTriage(
    exceptionId: string,
    triage: Triage,
    contentHash: string,
    also?: Readonly<Record<string, string>>,
    embedding?: StoredEmbedding,
    status?: string,
  ): Promise<boolean>;
  /** Keeps the indexed vector on the item (search/stored-embedding.ts): the stream consumer reuses it. */
  saveEmbedding?(exceptionId: string, vector: readonly number[], model: string): Promise<void>;
}

export interface ExceptionPatch {
  readonly exceptionId: string;
  readonly expectedVersion: number;
  readonly set: Readonly<Record<string, unknown>>;
  readonly remove: readonly string[];
  readonly history: readonly HistoryEntry[];
  /** The item as read: what its index keys follow when the change closes or reopens it. */
  readonly before?: IndexedBefore;
}

/** The query API's view. */
export interface ExceptionQueries {
  getException(id: string): Promise<StoredItem | undefined>;
  /** One page of an index's logical partition, newest first (every shard read and merged), whole items. */
  queryExceptions(query: IndexQuery): Promise<IndexPage>;
  /**
   * The same page as the index holds it: each entry's keys and listing attributes (resources.ts
   * EXCEPTION_LISTING_ATTRIBUTES; the one the partition fixes filled in from the query), not the
   * triage, history or stored embedding. A listing that keeps a few of a read's entries reads
   * only those whole (wholeExceptions).
   */
  queryExceptionEntries(query: IndexQuery): Promise<IndexPage>;
  /**
   * The whole items of index entries, in the entries' order; an entry whose item is gone is left
   * out. `attributes`: only these (and the key) of each item, as a listing shows them, not its
   * stored embedding or bookkeeping.
   */
  wholeExceptions(entries: readonly StoredItem[], attributes?: readonly string[]): Promise<StoredItem[]>;
  /**
   * The `limit` entries of these statuses due soonest, at or before `dueAtMost` (an ISO time),
   * soonest first (ties by id): each entry's `exception_id`, `status` and `due_at`. Read from
   * by_status_due_sharded, which holds only exceptions with a due date: the first `limit` of each
   * shard, not the statuses' every exception.
   */
  soonestDue(statuses: readonly string[], dueAtMost: string, limit: number): Promise<StoredItem[]>;
  /** Applies the patch and bumps the version if the version still matches; undefined on a conflict or a missing item. */
  patchException(patch: ExceptionPatch): Promise<StoredItem | undefined>;
}

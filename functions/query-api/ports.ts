/**
 * What the query API's cores depend on, as small interfaces: the DynamoDB store, the upload
 * signer, health probes, the embedder and the exceptions vector index. No AWS SDK here.
 */
import type { QueueReport } from '../shared/api-types.ts';
import type { RunRecord } from '../shared/ports.ts';
import type { Embedder, VectorIndex } from '../shared/search/ports.ts';
import type { HistoryEntry } from '../shared/types.ts';

/** An exceptions-table item as stored: the API form plus internal attributes (record_type, ...). */
export type StoredItem = Readonly<Record<string, unknown>>;

/** One page of a GSI query, newest first. */
export interface IndexQuery {
  readonly index: string;
  readonly partition: { readonly attribute: string; readonly value: string };
  /** Equality conditions on other attributes, applied as a FilterExpression. */
  readonly filters: readonly { readonly attribute: string; readonly value: string }[];
  /** Items DynamoDB evaluates (before the filter) in this call. */
  readonly limit: number;
  readonly startKey?: Readonly<Record<string, unknown>>;
}

export interface ExceptionPatch {
  readonly exceptionId: string;
  readonly expectedVersion: number;
  readonly set: Readonly<Record<string, unknown>>;
  readonly remove: readonly string[];
  readonly history: readonly HistoryEntry[];
}

export interface QueryStore {
  getException(id: string): Promise<StoredItem | undefined>;
  queryExceptions(query: IndexQuery): Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }>;
  /** Applies the patch and bumps the version if the version still matches; undefined on a conflict or a missing item. */
  patchException(patch: ExceptionPatch): Promise<StoredItem | undefined>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** One page of a runs-table GSI query, newest first. */
  queryRuns(query: IndexQuery): Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }>;
}

// GET /queues's shapes are part of the API contract (shared/api-types.ts).
export type { QueueDepth, QueueReport } from '../shared/api-types.ts';

/** Reads the depth of each main queue and its DLQ. */
export interface QueueMonitor {
  depths(): Promise<QueueReport[]>;
}

export interface UploadSigner {
  /** A pre-signed PUT URL for `key` with the content type and length signed. */
  presignPut(request: {
    key: string;
    contentType: string;
    contentLength: number;
    expiresInSeconds: number;
  }): Promise<string>;
}

/** A cheap probe of one dependency; throws when it is unavailable. */
export interface HealthCheck {
  readonly name: string;
  check(): Promise<void>;
}

export interface QueryApiDeps {
  readonly store: QueryStore;
  readonly uploads: UploadSigner;
  readonly healthChecks: readonly HealthCheck[];
  readonly embedder: Embedder;
  readonly exceptionsIndex: VectorIndex;
  readonly queues: QueueMonitor;
  readonly paginationSecret: string;
  /** Allowed CORS origins; `*` allows any. */
  readonly corsOrigins: readonly string[];
  /** Recorded in history when a request carries no JWT claims; undefined on AWS. */
  readonly localIdentity: string | undefined;
  readonly now: () => number;
}

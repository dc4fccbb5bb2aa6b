/**
 * What the query API's cores depend on, as small interfaces: the DynamoDB store, the upload
 * signer, health probes, the embedder and the exceptions vector index. No AWS SDK here.
 */
import type { RegionRoleReader } from '../shared/region-role.ts';
import type { BusinessNotifier } from '../shared/notifications.ts';
import type { QueueReport } from '../shared/api-types.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { Embedder, VectorIndex } from '../shared/search/ports.ts';
import type { ExceptionQueries } from '../shared/tables/exceptions.ts';
import type { FileQueries } from '../shared/tables/files.ts';
import type { PatternQueries } from '../shared/tables/patterns.ts';
import type { RunQueries } from '../shared/tables/runs.ts';
import type { RunTriageDeps } from './run-triage.ts';
import type { RetriageDeps } from './retriage.ts';
import type { TriagePolicies } from '../triage/dataset-policy.ts';
import type { UsageQueries } from '../shared/tables/usage.ts';
import type { PolicyDocumentsDeps } from './policy-documents.ts';
import type { AccessSettings } from './access.ts';

/** The exceptions, runs, files and patterns tables as the query API reads and patches them (ports in shared/tables/). */
export type QueryStore = ExceptionQueries & RunQueries & FileQueries & PatternQueries;

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
  /**
   * The datasets that have a policy: POST /uploads refuses any other. Absent only in tests that
   * do not exercise uploads.
   */
  readonly datasets?: {
    known(): Promise<string[]>;
    /** The dataset's policy in force (its tolerances score suggested matches); undefined when it has none. */
    policy?(dataset: string): Promise<ReconPolicy | undefined>;
  };
  /**
   * Releasing or abandoning a held run (POST /runs/{id}/triage): its triage state and the triage
   * queue a release dispatches on. Absent only in tests that do not exercise it.
   */
  readonly runTriage?: RunTriageDeps;
  /** An analyst's request to triage an exception again (POST /exceptions/{id}/triage). Absent only in tests that do not exercise it. */
  readonly retriage?: RetriageDeps;
  /** GET /policies: the policy documents. Absent only in tests that do not exercise it. */
  readonly policyDocuments?: PolicyDocumentsDeps;
  readonly healthChecks: readonly HealthCheck[];
  /** This region's role: writes are refused (503 REGION_NOT_ACTIVE) unless it is active. Absent: always active. */
  readonly regionRole?: RegionRoleReader;
  readonly embedder: Embedder;
  readonly exceptionsIndex: VectorIndex;
  readonly queues: QueueMonitor;
  /**
   * The per-day cost of triage's model calls and the daily budget (micro-dollars, undefined: none)
   * for GET /usage. Absent only in tests that do not exercise it.
   */
  readonly usage?: { readonly queries: UsageQueries; readonly dailyBudgetMicroUsd: number | undefined };
  readonly paginationSecret: string;
  /** The masking key: search words are also looked up as the tokens the index holds for sensitive values. */
  readonly maskingSecret?: string;
  /** Each dataset's sensitive-value masker (triage's, cached): what a viewer sees in place of values. */
  readonly datasetPolicies?: Pick<TriagePolicies, 'forDataset'>;
  /** Allowed CORS origins; `*` allows any. */
  readonly corsOrigins: readonly string[];
  /** Recorded in history when a request carries no JWT claims; undefined on AWS. */
  readonly localIdentity: string | undefined;
  /** Which claims carry roles and datasets (access.ts); absent: the defaults. */
  readonly access?: AccessSettings;
  /** The business events topic: an assignment is announced there (absent: not announced). */
  readonly notifier?: BusinessNotifier;
  readonly now: () => number;
}

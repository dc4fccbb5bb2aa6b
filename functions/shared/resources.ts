/**
 * One definition of every name the system uses: buckets, queues, tables and their keys,
 * environment variables and the EventBridge pattern. The local stack creates exactly these;
 * infra/ declares exactly these. Changing a name here changes it everywhere.
 */

export const DEFAULT_PREFIX = 'tally';

export const QUEUES = {
  ingest: { consumer: 'ingest-worker', batchSize: 10, consumerTimeoutSeconds: 120, maxReceiveCount: 5 },
  recon: { consumer: 'recon', batchSize: 1, consumerTimeoutSeconds: 900, maxReceiveCount: 5 },
  triage: { consumer: 'triage', batchSize: 5, consumerTimeoutSeconds: 300, maxReceiveCount: 5 },
} as const;
export type QueueName = keyof typeof QUEUES;
export const QUEUE_NAMES = Object.keys(QUEUES) as QueueName[];

/** AWS guidance: a queue's visibility timeout should be at least 6x its consumer's timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
/** DLQ messages outlive the source queue's retention so nothing expires before on-call sees it. */
export const QUEUE_RETENTION_SECONDS = 4 * 24 * 3600;
export const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;

export interface KeyDef {
  readonly name: string;
  readonly type: 'S' | 'N';
}

export interface TableDef {
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  readonly indexes: Readonly<Record<string, { partitionKey: KeyDef; sortKey?: KeyDef }>>;
  readonly ttlAttribute?: string;
}

const S = (name: string): KeyDef => ({ name, type: 'S' });

export const TABLES = {
  /** One item per exception, under its stable id. GSIs serve every listing; nothing scans. */
  exceptions: {
    partitionKey: S('exception_id'),
    indexes: {
      by_status: { partitionKey: S('status'), sortKey: S('created_at') },
      by_type: { partitionKey: S('exception_type'), sortKey: S('created_at') },
      by_run: { partitionKey: S('run_id'), sortKey: S('created_at') },
      by_dataset_date: { partitionKey: S('dataset_date'), sortKey: S('created_at') },
    },
  },
  /** The current file per (dataset, date) and side, accepted or rejected. */
  files: {
    partitionKey: S('dataset_date'),
    sortKey: S('side'),
    indexes: {},
  },
  /** One item per reconciliation run. */
  runs: {
    partitionKey: S('run_id'),
    indexes: {
      by_dataset_date: { partitionKey: S('dataset_date'), sortKey: S('requested_at') },
    },
  },
  /** Ingest idempotency records keyed by bucket/key/ETag; expire by TTL. */
  idempotency: {
    partitionKey: S('id'),
    indexes: {},
    ttlAttribute: 'expires_at',
  },
} as const satisfies Record<string, TableDef>;
export type TableName = keyof typeof TABLES;

export interface ResourceNames {
  readonly bucket: string;
  readonly queues: Readonly<Record<QueueName, { main: string; dlq: string }>>;
  readonly tables: Readonly<Record<TableName, string>>;
}

export function resourceNames(prefix: string = DEFAULT_PREFIX): ResourceNames {
  const queues = Object.fromEntries(QUEUE_NAMES.map((q) => [q, { main: `${prefix}-${q}`, dlq: `${prefix}-${q}-dlq` }]));
  const tables = Object.fromEntries(Object.keys(TABLES).map((t) => [t, `${prefix}-${t}`]));
  return { bucket: `${prefix}-data`, queues, tables } as ResourceNames;
}

/** Object key prefixes and their meaning. */
export const PREFIXES = {
  incoming: 'incoming/',
  policies: 'policies/',
} as const;

/** The EventBridge rule that feeds the ingest queue (S3 "Object Created" under our prefixes). */
export function objectCreatedPattern(bucket: string) {
  return {
    source: ['aws.s3'],
    'detail-type': ['Object Created'],
    detail: {
      bucket: { name: [bucket] },
      object: { key: [{ prefix: PREFIXES.incoming }, { prefix: PREFIXES.policies }] },
    },
  };
}

/** Environment variables the functions read. */
export const ENV = {
  bucket: 'TALLY_BUCKET',
  reconQueueUrl: 'TALLY_RECON_QUEUE_URL',
  triageQueueUrl: 'TALLY_TRIAGE_QUEUE_URL',
  exceptionsTable: 'TALLY_EXCEPTIONS_TABLE',
  filesTable: 'TALLY_FILES_TABLE',
  runsTable: 'TALLY_RUNS_TABLE',
  idempotencyTable: 'TALLY_IDEMPOTENCY_TABLE',
  reconPolicyPath: 'TALLY_RECON_POLICY_PATH',
  s3ForcePathStyle: 'TALLY_S3_FORCE_PATH_STYLE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;

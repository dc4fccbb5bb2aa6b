/**
 * One definition of every name the system uses: buckets, queues, tables and their keys,
 * environment variables and the EventBridge pattern. The local stack creates exactly these;
 * infra/ declares exactly these. Changing a name here changes it everywhere.
 */

export const DEFAULT_PREFIX = 'tally';

export const QUEUES = {
  ingest: { consumer: 'ingest-worker', batchSize: 10, consumerTimeoutSeconds: 120, maxReceiveCount: 5 },
  recon: { consumer: 'recon', batchSize: 1, consumerTimeoutSeconds: 900, maxReceiveCount: 5 },
  // One findings chunk a message: a chunk is thousands of writes, retried whole when it fails.
  store: { consumer: 'store', batchSize: 1, consumerTimeoutSeconds: 300, maxReceiveCount: 5 },
  triage: { consumer: 'triage', batchSize: 5, consumerTimeoutSeconds: 300, maxReceiveCount: 5 },
  // Business events to webhooks, one at a time: each delivery retries with backoff inside it,
  // SQS redelivers a failed one (visibility timeout apart) up to maxReceiveCount, then the DLQ.
  notifications: { consumer: 'notify', batchSize: 1, consumerTimeoutSeconds: 60, maxReceiveCount: 5 },
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

export interface IndexDef {
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  /**
   * A sharded index: its partition key holds `<value of this attribute>#<shard>` (two digits,
   * functions/shared/tables/exceptions-index-keys.ts), so one logical partition is spread over
   * EXCEPTION_INDEX_SHARDS physical ones and a listing queries them all and merges.
   */
  readonly shardedFrom?: string;
  /**
   * The non-key attributes the index carries (projection INCLUDE; the table's and the index's
   * keys always come along). Absent: the whole item (ALL). A query on an index sees only what it
   * projects, so a filter on any other attribute never matches: every attribute a reader filters
   * on or reads from the index must be here. DynamoDB allows 100 of them over all of a table's
   * indexes.
   */
  readonly projection?: readonly string[];
  /**
   * An entry only while the exception is open (exception-lifecycle.ts OPEN_STATUSES): closing it
   * removes its key, reopening writes it again from the source attribute, which the item keeps.
   */
  readonly whileOpen?: boolean;
}

export interface TableDef {
  readonly partitionKey: KeyDef;
  readonly sortKey?: KeyDef;
  readonly indexes: Readonly<Record<string, IndexDef>>;
  readonly ttlAttribute?: string;
}

/** The projection DynamoDB is given for an index: infra/ and the local stack both take it from here. */
export function indexProjection(index: IndexDef): { type: 'ALL' } | { type: 'INCLUDE'; nonKeyAttributes: string[] } {
  return index.projection ? { type: 'INCLUDE', nonKeyAttributes: [...index.projection] } : { type: 'ALL' };
}

const S = (name: string): KeyDef => ({ name, type: 'S' });

/**
 * Shards of each partition of the exceptions table's GSIs. A run stores all its exceptions at
 * once, and they share one run_id, one status (OPEN), the constant record_type and one created_at:
 * unsharded, a run of a million breaks wrote a million entries into one partition value of each
 * index. One partition value sustains about 1,000 WCU/s on AWS, and a GSI that cannot keep up
 * throttles the table's writes. Sixteen shards take ~16,000 writes/s per index value (above what
 * the store's concurrency produces) for 16 parallel queries per listing page, each reading a few
 * items. Changing it re-keys every item: run scripts/tools/backfill-exception-keys.ts afterwards.
 */
export const EXCEPTION_INDEX_SHARDS = 16;

/**
 * What every listing of exceptions may filter on (query-api/listing.ts planQuery: the listing's
 * filters, `overdue`'s due_at and status, `field`/`value`'s key and rows, the caller's datasets).
 * Not the triage (~4 KB), the stored embedding, history or diffs: with projection ALL every
 * write of them (a triage, an embedding, an analyst's change) stored the ~5 KB item once per
 * index, eight times in all.
 */
const EXCEPTION_LISTING_ATTRIBUTES = [
  'status',
  'exception_type',
  'severity',
  'dataset',
  'business_date',
  'run_id',
  'pattern_id',
  'assignee',
  'team',
  'due_at',
  'key',
  'source',
  'target',
] as const;

/**
 * Triage's top-level record of what it answered for (triage.content_hash, triage.prompt_version):
 * the dispatch listing's "needs triage" filter reads these from by_run_sharded and
 * by_pattern_sharded, which do not carry the triage itself.
 */
export const TRIAGE_STAMP = {
  contentHash: 'triaged_content_hash',
  promptVersion: 'triaged_prompt_version',
  /**
   * UNCITED_TRIAGE while the exception's triage cites no policy passage (made before the corpus
   * held what it should cite), DEGRADED_TRIAGE while the rules gave it because every model failed;
   * absent once a triage is neither: by_uncited_sharded's source, read when the corpus gains a
   * document (UNCITED_TRIAGE) or a model answers again after its circuit breaker opened
   * (DEGRADED_TRIAGE; functions/triage/uncited.ts).
   */
  uncited: 'triaged_uncited',
} as const;

/** TRIAGE_STAMP.uncited for a triage citing no policy passage: all share one (sharded) partition. */
export const UNCITED_TRIAGE = 'UNCITED';
/** TRIAGE_STAMP.uncited for a triage the rules gave because every model failed (not for a spent budget). */
export const DEGRADED_TRIAGE = 'DEGRADED';

/**
 * An index's projection: the listing attributes but the one its partition already fixes (a
 * by_type_sharded page never filters on exception_type: listing.ts reads a type from that index
 * only as its partition), plus what the index's other readers need.
 */
function listingProjection(without: (typeof EXCEPTION_LISTING_ATTRIBUTES)[number] | undefined, ...also: string[]) {
  return [...EXCEPTION_LISTING_ATTRIBUTES.filter((a) => a !== without), ...also];
}

/** Sort key of every exceptions GSI: `<created_at>#<exception_id>`, unique, so ties on created_at have one order. */
const EXCEPTION_INDEX_SORT = S('gsi_sort');

export const TABLES = {
  /**
   * One item per exception, under its stable id. GSIs serve every listing; nothing scans. Each is
   * sharded (EXCEPTION_INDEX_SHARDS) and sorted by created_at, then exception_id (but the deadline
   * sweep's, by due date). The names carry
   * `_sharded` because the unsharded indexes they replace (by_status, ...) had other keys: new
   * names let a deployment create them beside the old ones (docs in scripts/tools/backfill-exception-keys.ts).
   */
  exceptions: {
    partitionKey: S('exception_id'),
    indexes: {
      // The late arrivals' window filter; recon's open states of an across-dates dataset are read by key.
      by_status_sharded: {
        partitionKey: S('gsi_status'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'status',
        // status stays: `overdue` filters on it in every index. (overdue_notified_at is no longer
        // read here, since the sweep reads by_status_due_sharded; taking it out of the projection
        // would make DynamoDB rebuild this index, and the status listings fail until it is built.)
        projection: listingProjection(undefined, 'pending_until', 'overdue_notified_at'),
      },
      /**
       * The deadline sweep's overdue notices: a status's exceptions by due date, sparse (an item
       * without due_at is not in it). The sweep reads only what is due (`due_at <= now`, a key
       * condition) instead of filtering every open exception at each sweep (every 15 minutes on
       * AWS, each minute locally): at 100k stored (60k open), that read held the local DynamoDB's
       * thread for ~3 s a minute and, on AWS, cost every open item's read units each sweep. The
       * same partition key as by_status_sharded; its own sort. Its one projected attribute makes
       * the table's 100, DynamoDB's limit over all of a table's indexes.
       */
      by_status_due_sharded: {
        partitionKey: S('gsi_status'),
        sortKey: S('due_at'),
        shardedFrom: 'status',
        projection: ['overdue_notified_at'],
      },
      by_type_sharded: {
        partitionKey: S('gsi_type'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'exception_type',
        projection: listingProjection('exception_type'),
      },
      // Triage's dispatch listing: what needs triage, by content and prompt.
      by_run_sharded: {
        partitionKey: S('gsi_run'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'run_id',
        projection: listingProjection('run_id', 'content_hash', TRIAGE_STAMP.contentHash, TRIAGE_STAMP.promptVersion),
      },
      // Recon's states of a date (a run's completion reads them all: exceptions-dynamo.ts STATE_ATTRIBUTES).
      by_dataset_date_sharded: {
        partitionKey: S('gsi_dataset_date'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'dataset_date',
        projection: listingProjection(
          'dataset',
          'content_hash',
          'version',
          'resolved_by_system',
          'last_changed_run_id',
          'match',
        ),
      },
      // Severity is written by triage; exceptions without it are simply absent from this index.
      by_severity_sharded: {
        partitionKey: S('gsi_severity'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'severity',
        projection: listingProjection('severity'),
      },
      // Unfiltered listing, newest first: the constant record_type, sharded like the others.
      by_created_sharded: {
        partitionKey: S('gsi_created'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'record_type',
        projection: listingProjection(undefined),
      },
      // A break pattern's members (functions/shared/patterns/): sparse, only exceptions recon gave
      // a pattern. Triage's member listing filters them by run and need of triage.
      by_pattern_sharded: {
        partitionKey: S('gsi_pattern'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'pattern_id',
        projection: listingProjection(
          'pattern_id',
          'content_hash',
          TRIAGE_STAMP.contentHash,
          TRIAGE_STAMP.promptVersion,
        ),
      },
      /**
       * An analyst's queue and a team's (`assignee=`, `team=`): sparse, only exceptions someone
       * assigned. Through by_created_sharded a queue of a few exceptions at 100k stored read ~40
       * pages (a listing page reads at most 25 calls of an index) before it found them. These two
       * project whole items (ALL, which DynamoDB's limit of 100 projected attributes, reached
       * above, does not count), so the listing's other filters apply in the query as on every
       * index; the cost is each write of an assigned exception written again into each of them,
       * and only assigned exceptions are in them.
       */
      by_assignee_sharded: {
        partitionKey: S('gsi_assignee'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'assignee',
      },
      by_team_sharded: {
        partitionKey: S('gsi_team'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: 'team',
      },
      /**
       * The exceptions whose triage cites no policy passage, and those the rules triaged because
       * every model failed, each a logical partition: sparse, only those (triage sets and clears
       * TRIAGE_STAMP.uncited with each triage it saves). A policy document indexed asks the first
       * to be triaged again, a model answering after its breaker opened the second
       * (functions/triage/uncited.ts). Whole items (ALL, as the owner queues: the 100 projected
       * attributes are spent), written only while so, and only while the exception is open: the
       * sweeps ask open ones only, and pay for every entry they read.
       */
      by_uncited_sharded: {
        partitionKey: S('gsi_uncited'),
        sortKey: EXCEPTION_INDEX_SORT,
        shardedFrom: TRIAGE_STAMP.uncited,
        whileOpen: true,
      },
    },
  },
  /** The current file per (dataset, date) and side, accepted or rejected. */
  files: {
    partitionKey: S('dataset_date'),
    sortKey: S('side'),
    // GET /files, newest ingest first. A business date holds at most two files per dataset, so a
    // dataset filter inside by_business_date reads little; a dataset alone has its own partition.
    indexes: {
      by_ingested: { partitionKey: S('record_type'), sortKey: S('ingested_at') },
      by_dataset: { partitionKey: S('dataset'), sortKey: S('ingested_at') },
      by_business_date: { partitionKey: S('business_date'), sortKey: S('ingested_at') },
    },
  },
  /** One item per reconciliation run. */
  runs: {
    partitionKey: S('run_id'),
    indexes: {
      by_dataset_date: { partitionKey: S('dataset_date'), sortKey: S('requested_at') },
      // Recent runs across datasets, newest first (the dashboard's run list). One partition: a few
      // runs per dataset and day.
      by_requested: { partitionKey: S('record_type'), sortKey: S('requested_at') },
    },
  },
  /**
   * A run's break patterns (functions/shared/patterns/): those with at least the policy's
   * triage.pattern_min_members members, written by recon before the run is STORING; triage adds
   * the pattern's triage. A run's patterns are one partition: a few dozen items at most.
   */
  patterns: {
    partitionKey: S('run_id'),
    sortKey: S('pattern_id'),
    indexes: {},
  },
  /** Ingest idempotency records keyed by bucket/key/ETag; expire by TTL. */
  idempotency: {
    partitionKey: S('id'),
    indexes: {},
    ttlAttribute: 'expires_at',
  },
  /** Per-provider AI circuit-breaker state (triage); an open breaker expires by TTL. */
  circuit_breaker: {
    partitionKey: S('provider'),
    indexes: {},
    ttlAttribute: 'expires_at',
  },
  /**
   * Why an SQS message failed, keyed by a hash of (source queue ARN, body): the message id
   * changes when a message is redriven, the body does not. Read by `tally dlq`; expires by TTL.
   */
  failures: {
    partitionKey: S('id'),
    indexes: {},
    ttlAttribute: 'expires_at',
  },
  /**
   * What triage's model calls cost, one item per UTC day (`YYYY-MM-DD`), summed with ADD: the
   * daily budget is checked against it and GET /usage lists it. A few items a year; no TTL.
   */
  usage: {
    partitionKey: S('day'),
    indexes: {},
  },
} as const satisfies Record<string, TableDef>;
export type TableName = keyof typeof TABLES;

/** The constant partition of runs' by_requested index, written on every run. */
export const RUN_RECORD_TYPE = 'RUN';
/** The constant partition of files' by_ingested index, written on every file record. */
export const FILE_RECORD_TYPE = 'FILE';

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
  /** Each dataset's policy, `{dataset}.md` (a part of policies/: the same Object Created rule). */
  datasetPolicies: 'policies/datasets/',
  /**
   * The accepted version of each dataset's policy (`{dataset}.md`), written by ingest once an
   * upload under policies/datasets/ validates: an upload that does not validate leaves the version
   * in force untouched. Outside the Object Created rule, so writing here triggers nothing.
   */
  policiesInForce: 'policies-in-force/',
  /** Lifecycle rules in infra/ tier objects written here down, then expire them. */
  processed: 'processed/',
  rejected: 'rejected/',
  /**
   * A run's findings, `{run_id}/part-NNNNN.jsonl.gz` (functions/recon/chunks.ts): written by recon
   * (or the SQL engine), read by the store consumer, expired by a lifecycle rule in infra/.
   * Outside the Object Created rule, so writing here triggers nothing.
   */
  results: 'results/',
  /** The SQL engine's per-run tables on Athena (CTAS), `{run_id}/{stage}/`; expired after a day. */
  athenaScratch: 'athena/',
  /** The Athena workgroup's query result files; expired after a day. */
  athenaResults: 'athena-results/',
} as const;

/** The Glue database of one SQL-engine run on Athena starts with this (the grants are scoped to it). */
export const ATHENA_DATABASE_PREFIX = 'tally_run_';

/** The regional Athena workgroup the SQL engine runs its queries in. */
export const athenaWorkgroupName = (prefix: string = DEFAULT_PREFIX): string => `${prefix}-recon`;

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
  /** The sweep re-sends missed "Object Created" events here. */
  ingestQueueUrl: 'TALLY_INGEST_QUEUE_URL',
  reconQueueUrl: 'TALLY_RECON_QUEUE_URL',
  triageQueueUrl: 'TALLY_TRIAGE_QUEUE_URL',
  /** Recon queues one message per findings chunk here (the store consumer). */
  storeQueueUrl: 'TALLY_STORE_QUEUE_URL',
  /** Findings per chunk recon writes under results/ (default 5000). */
  chunkFindings: 'TALLY_CHUNK_FINDINGS',
  exceptionsTable: 'TALLY_EXCEPTIONS_TABLE',
  filesTable: 'TALLY_FILES_TABLE',
  runsTable: 'TALLY_RUNS_TABLE',
  patternsTable: 'TALLY_PATTERNS_TABLE',
  idempotencyTable: 'TALLY_IDEMPOTENCY_TABLE',
  reconPolicyPath: 'TALLY_RECON_POLICY_PATH',
  s3ForcePathStyle: 'TALLY_S3_FORCE_PATH_STYLE',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
  /** `hashing` (offline default), `bedrock-titan`, or `openai`. */
  embedder: 'TALLY_EMBEDDER',
  embeddingModelId: 'TALLY_EMBEDDING_MODEL_ID',
  /** Vector size the `openai` and `hashing` embedders produce (default 1024). */
  embeddingDimensions: 'EMBEDDING_DIMENSIONS',
  /** `local` (embedded store under TALLY_VECTOR_DIR) or `opensearch`. */
  vectorStore: 'TALLY_VECTOR_STORE',
  vectorDir: 'TALLY_VECTOR_DIR',
  opensearchEndpoint: 'TALLY_OPENSEARCH_ENDPOINT',
  exceptionsIndex: 'TALLY_EXCEPTIONS_INDEX',
  policiesIndex: 'TALLY_POLICIES_INDEX',
  /** Comma-separated provider chain, e.g. `bedrock:<model>,bedrock:<fallback>,rules`. */
  triageProviders: 'TALLY_TRIAGE_PROVIDERS',
  /** `<guardrail id>:<version>`: the Bedrock Guardrail triage's Converse calls go through (optional). */
  bedrockGuardrail: 'TALLY_BEDROCK_GUARDRAIL',
  openaiBaseUrl: 'TALLY_OPENAI_BASE_URL',
  openaiApiKey: 'TALLY_OPENAI_API_KEY',
  circuitBreakerTable: 'TALLY_CIRCUIT_BREAKER_TABLE',
  /** Per-day cost of triage's model calls (triage adds, the query API reads). */
  usageTable: 'TALLY_USAGE_TABLE',
  /** JSON routing rules: dataset / exception_type / policy_severity -> a provider chain (functions/triage/routing.ts). */
  triageRoutes: 'TALLY_TRIAGE_ROUTES',
  /** JSON prices per model id, USD per million tokens, over the defaults (functions/triage/cost.ts). */
  triagePrices: 'TALLY_TRIAGE_PRICES',
  /** USD a UTC day's model calls may cost; past it triage answers with rules (unset: no budget). */
  triageDailyBudgetUsd: 'TALLY_TRIAGE_DAILY_BUDGET_USD',
  /** Consecutive failures that open a provider's circuit breaker (triage; default 3). */
  breakerThreshold: 'TALLY_BREAKER_THRESHOLD',
  /** How long an open breaker skips its provider (triage; default 60). */
  breakerCooldownSeconds: 'TALLY_BREAKER_COOLDOWN_SECONDS',
  /** HMAC key for opaque pagination tokens. */
  paginationSecret: 'TALLY_PAGINATION_SECRET',
  /** HMAC key of the tokens that stand for sensitive values in prompts and the index (shared/masking.ts). */
  maskingSecret: 'TALLY_MASKING_SECRET',
  corsOrigins: 'TALLY_CORS_ORIGINS',
  /** Identity recorded in history when no JWT authorizer is in front (local mode only). */
  localIdentity: 'TALLY_LOCAL_IDENTITY',
  /** The JWT claim carrying the caller's roles: `cognito:groups` (default) or `scope` (query-api/access.ts). */
  roleClaim: 'TALLY_ROLE_CLAIM',
  /** Stripped from each role claim value, e.g. `tally/` for Cognito resource-server scopes. */
  rolePrefix: 'TALLY_ROLE_PREFIX',
  /** The JWT claim carrying the caller's datasets (names, or `*`; default `tally:datasets`). */
  datasetsClaim: 'TALLY_DATASETS_CLAIM',
  /** The DLQ of the queue a consumer reads: permanently bad messages are moved there at once. */
  deadLetterQueueUrl: 'TALLY_DEAD_LETTER_QUEUE_URL',
  /** The queue a consumer reads: its heartbeat extends the visibility of the message in hand there. */
  consumedQueueUrl: 'TALLY_CONSUMED_QUEUE_URL',
  /** That queue's visibility timeout: what the heartbeat extends to, and the bound of a lease. */
  visibilityTimeoutSeconds: 'TALLY_VISIBILITY_TIMEOUT_SECONDS',
  /** Powertools Metrics: `true` turns EMF output off (the local stack and tests). */
  metricsDisabled: 'POWERTOOLS_METRICS_DISABLED',
  /** Table where the SQS handler wrapper records why a message failed (optional). */
  failuresTable: 'TALLY_FAILURES_TABLE',
  /** JSON `{"ingest":{"main":URL,"dlq":URL},...}`: the queues GET /queues reports on (query-api). */
  monitoredQueues: 'TALLY_MONITORED_QUEUES',
  /** `cloudwatch` (AWS: age of the oldest message from CloudWatch) or `none` (local mode). */
  queueMetrics: 'TALLY_QUEUE_METRICS',
  /** Sweep: how old an upload with no file record must be to count as missed (default 300). */
  sweepMinAgeSeconds: 'TALLY_SWEEP_MIN_AGE_SECONDS',
  /**
   * Triage: how long after a policy document is indexed its uncited exceptions are asked again
   * (functions/triage/uncited.ts; default 60): the documents of one push are all in by then.
   */
  uncitedSettleSeconds: 'TALLY_UNCITED_SETTLE_SECONDS',
  /** Recon: bytes of rows the engine holds before it partitions to disk (default from the heap limit). */
  reconMemoryBudgetBytes: 'TALLY_RECON_MEMORY_BUDGET_BYTES',
  /** Recon: where partition files go (default the OS temp dir: Lambda's ephemeral /tmp). */
  reconTmpDir: 'TALLY_RECON_TMP_DIR',
  /** The Athena workgroup of the SQL engine (recon, AWS only). */
  athenaWorkgroup: 'TALLY_ATHENA_WORKGROUP',
  /** The business events topic (SNS): held runs (store), CRITICAL ratings (triage), overdue exceptions (deadlines), assignments (query-api). */
  businessEventsTopicArn: 'TALLY_BUSINESS_EVENTS_TOPIC_ARN',
  /** SSM String parameter holding this region's role: active, standby or fenced (functions/shared/region-role.ts). */
  regionRoleParameter: 'TALLY_REGION_ROLE_PARAMETER',
  /** Local stack only: the file holding this region's role (in place of the SSM parameter). */
  regionRoleFile: 'TALLY_REGION_ROLE_FILE',
  /** The other region of a two-region deployment: its role is read too, and the later-promoted active region wins. */
  peerRegion: 'TALLY_PEER_REGION',
  /** Local stack only: the file holding the peer region's role. */
  peerRegionRoleFile: 'TALLY_PEER_REGION_ROLE_FILE',
  /** Comma-separated webhook URLs the notify function posts business events to (Slack-compatible JSON). */
  webhookUrls: 'TALLY_WEBHOOK_URLS',
} as const;

/**
 * SNS topics the functions publish to. The on-call topic (alarms) is infra's alone; this one is
 * for the people who own the data: separate, so a held run never pages on-call.
 */
export const TOPICS = {
  // The notifications queue is subscribed to it (raw delivery): the notify function posts each event to the webhooks.
  businessEvents: { env: ENV.businessEventsTopicArn, subscribers: ['notifications'] },
} as const satisfies Record<string, { env: string; subscribers: readonly QueueName[] }>;
export type TopicName = keyof typeof TOPICS;
export const TOPIC_NAMES = Object.keys(TOPICS) as TopicName[];

/** `${prefix}-business-events`: the topic's name in each region, and in the emulator. */
export function topicName(topic: TopicName, prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}-${topic.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The SSM parameter holding a region's role (one per region, same name in each): see functions/shared/region-role.ts. */
export function regionRoleParameterName(prefix: string = DEFAULT_PREFIX): string {
  return `/${prefix}/region-role`;
}

/** Index names in the vector store. */
export function indexNames(prefix: string = DEFAULT_PREFIX) {
  return { exceptions: `${prefix}-exceptions`, policies: `${prefix}-policies` };
}

/**
 * Every function: one folder functions/<name>/handler.ts, bundled to dist/<name>/. Queue
 * consumers take their timeout from QUEUES so the visibility timeout (6x) cannot drift from it.
 * `maxConcurrency` caps the SQS event source (Lambda minimum 2) to protect downstream services.
 */
export const FUNCTIONS = {
  'ingest-worker': {
    memoryMb: 1024,
    timeoutSeconds: QUEUES.ingest.consumerTimeoutSeconds,
    consumes: 'ingest',
    maxConcurrency: 10,
  },
  recon: {
    memoryMb: 2048,
    // /tmp holds the partition files of a run larger than its memory budget: about the decoded
    // size of both extracts (20M trade rows a side: ~1.9 GB). Lambda's maximum.
    ephemeralStorageMb: 10240,
    timeoutSeconds: QUEUES.recon.consumerTimeoutSeconds,
    consumes: 'recon',
    maxConcurrency: 5,
  },
  triage: {
    memoryMb: 1024,
    timeoutSeconds: QUEUES.triage.consumerTimeoutSeconds,
    consumes: 'triage',
    maxConcurrency: 5,
  },
  // Writes a run's findings chunk by chunk: its concurrency is how many chunks are stored at once
  // (a setting: infra config functions.store.maxConcurrency; locally, the store pollers).
  store: {
    memoryMb: 1024,
    timeoutSeconds: QUEUES.store.consumerTimeoutSeconds,
    consumes: 'store',
    maxConcurrency: 4,
  },
  // HTTP API integrations time out at 30 s; answer (or fail) before the gateway does.
  'query-api': { memoryMb: 1024, timeoutSeconds: 29 },
  // A safety net for S3 events that never arrived: re-sends the event of uploads nothing recorded.
  sweep: { memoryMb: 512, timeoutSeconds: 120, scheduleMinutes: 5 },
  // The exceptions table's stream -> this region's exceptions index (no model call: the vector is on the item).
  'stream-index': { memoryMb: 512, timeoutSeconds: 60 },
  notify: {
    memoryMb: 256,
    timeoutSeconds: QUEUES.notifications.consumerTimeoutSeconds,
    consumes: 'notifications',
    maxConcurrency: 2,
  },
  // Promotes PENDING late arrivals whose window ended and announces overdue exceptions once.
  deadlines: { memoryMb: 512, timeoutSeconds: 120, scheduleMinutes: 15 },
} as const satisfies Record<
  string,
  {
    memoryMb: number;
    /** /tmp size (Lambda default 512 MB). */
    ephemeralStorageMb?: number;
    timeoutSeconds: number;
    consumes?: QueueName;
    maxConcurrency?: number;
    scheduleMinutes?: number;
  }
>;
export type FunctionName = keyof typeof FUNCTIONS;
export const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];

/** S3 bucket names are global: on AWS each regional stack's data bucket carries its region. */
export function awsBucketName(prefix: string, region: string): string {
  return `${resourceNames(prefix).bucket}-${region}`;
}

/** The OpenSearch Serverless collection (names: 3-32 characters, lowercase). */
export function searchCollectionName(prefix: string = DEFAULT_PREFIX): string {
  return `${prefix}-search`;
}

/**
 * Business metrics (CloudWatch embedded metric format, through Powertools Metrics): the one
 * registry the emitters (functions/shared/metrics.ts), the dashboard and the alarms read. Every
 * metric also carries the `service` dimension, the emitting function's name; `dimension`, where
 * given, is the one other. test/handlers/dead-letters-and-metrics.test.ts fails when a metric here is emitted nowhere,
 * test/infra/alarms.test.ts when the dashboard plots one that is not here.
 */
export const METRICS = {
  namespace: 'Tally',
  /** Extract files ingested, by `status` ACCEPTED or REJECTED (ingest-worker). */
  filesIngested: { name: 'FilesIngested', dimension: 'status' },
  /** Data rows of accepted files (ingest-worker). */
  rowsAccepted: { name: 'RowsAccepted' },
  /** Rows recon could not read (INVALID_RECORD), counted when the run completes (store). */
  rowsRejected: { name: 'RowsRejected' },
  /** Deliveries of an object already ingested: redrives, duplicate events (ingest-worker). */
  duplicatesSuppressed: { name: 'DuplicatesSuppressed' },
  /** Exceptions found by a completed run, by `exception_type` (store, which completes runs). */
  exceptions: { name: 'Exceptions', dimension: 'exception_type' },
  /** Exceptions written cut to fit one DynamoDB item, their rows saying what they lost (store). */
  exceptionsCut: { name: 'ExceptionsCutForStorage' },
  /** Runs completed: every chunk stored (store). */
  runsCompleted: { name: 'RunsCompleted' },
  /** Runs failed on their input (recon). */
  runsFailed: { name: 'RunsFailed' },
  /** Triages stored, by the `provider` that answered (triage). */
  triage: { name: 'TriageCompleted', dimension: 'provider' },
  /** Triages stored, all providers together: the degraded rate's denominator (triage). */
  triages: { name: 'Triages' },
  /** Triages that fell back to rules after a model failed (triage). */
  triageDegraded: { name: 'TriageDegraded' },
  /** Triages answered by rules because the day's model budget was spent (triage; the budget alarm watches it). */
  triageBudgetExceeded: { name: 'TriageBudgetExceeded' },
  /** What triage's model calls cost, in micro-dollars (triage). */
  triageCost: { name: 'TriageCostMicroUsd' },
  /** Records a consumer failed and left to SQS to retry (every queue consumer). */
  failedRecords: { name: 'FailedRecords' },
  /** Records a consumer moved to its DLQ at once as permanently bad (every queue consumer). */
  deadLettered: { name: 'DeadLettered' },
  /**
   * Object Created events of replicas (S3 replication from the active region) that a region not
   * active acknowledged instead of holding: the source region ingests them (ingest-worker).
   */
  replicaEventsReleased: { name: 'ReplicaEventsReleased' },
  /** Uploads the sweep found with no file record: their event went missing (sweep; alarm on > 0). */
  unrecordedUploads: { name: 'UnrecordedUploadsFound' },
  /** Runs the runaway guard held before triage, counted when their notification goes out (store). */
  runsHeld: { name: 'RunsHeldBeforeTriage' },
  /** PENDING late arrivals the deadline sweep promoted to OPEN (deadlines). */
  lateArrivalsPromoted: { name: 'LateArrivalsPromoted' },
  /** Exceptions the deadline sweep announced overdue, once each (deadlines). */
  exceptionsOverdue: { name: 'ExceptionsOverdue' },
} as const;
export type MetricKey = Exclude<keyof typeof METRICS, 'namespace'>;
export const METRIC_KEYS = Object.keys(METRICS).filter((k) => k !== 'namespace') as MetricKey[];

/** The vector indexes: passages of the policy corpus, and one document per triaged exception. */
export const INDEX_KINDS = ['exceptions', 'policies'] as const;
export type IndexKind = (typeof INDEX_KINDS)[number];

/**
 * Variables the Lambda runtime sets (never the stacks): read by the functions, named here so that
 * the deployment-parity test and the local stack set them the way Lambda does.
 */
export const LAMBDA_ENV = {
  /** Present only on Lambda: configuration then refuses local-only defaults and adapters. */
  functionName: 'AWS_LAMBDA_FUNCTION_NAME',
  /** The bundle's directory (/var/task): policies shipped with the bundle are read from here. */
  taskRoot: 'LAMBDA_TASK_ROOT',
  region: 'AWS_REGION',
  /** Powertools' service name; the stacks set it to the function's name. */
  serviceName: 'POWERTOOLS_SERVICE_NAME',
} as const;

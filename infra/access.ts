/**
 * What each function touches, declared once. Its IAM statements (only these actions on only these
 * resources, and the KMS use they imply) and its environment (only the names it needs) are both
 * derived from this, so a function cannot be configured with a resource it has no permission for,
 * or the reverse. The regional stack and the local stack both build environments here; the
 * deployment-parity test (test/parity/) checks every grant against the calls the built bundles make.
 *
 * Plain data and functions: no cdktf import, so scripts/local/ uses it too.
 */
import {
  ATHENA_DATABASE_PREFIX,
  ENV,
  FUNCTIONS,
  INDEX_KINDS,
  VISIBILITY_TIMEOUT_FACTOR,
  LAMBDA_ENV,
  PREFIXES,
  TOPICS,
  type FunctionName,
  type TopicName,
  type IndexKind,
  type QueueName,
  type TableName,
} from '../functions/shared/resources.ts';
import type { AccessSettings } from '../functions/query-api/access.ts';
import { defaultMemoryBudgetBytes } from '../functions/recon/partition.ts';
import { sid, type Condition, type Statement } from './statement.ts';

export type ModelRole = 'triage' | 'fallback' | 'embedding';

/** The DynamoDB actions a function calls, by API name (dynamodb:<action>). */
export type TableAction =
  'GetItem' | 'BatchGetItem' | 'Query' | 'Scan' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'BatchWriteItem';

const TABLE_READS: ReadonlySet<TableAction> = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan']);

/**
 * What a function does with a vector index (the OpenSearch Serverless data access policy):
 * `search` reads; `update` also rewrites documents (find + delete + index: AOSS has no upsert);
 * `own` also creates the index at first use (#3: index creation stays in code).
 */
export type IndexAccess = 'search' | 'update' | 'own';

export interface FunctionAccess {
  readonly objects?: {
    readonly read?: readonly (keyof typeof PREFIXES)[];
    readonly write?: readonly (keyof typeof PREFIXES)[];
    /** ListObjectsV2 under these prefixes (s3:ListBucket with an s3:prefix condition). */
    readonly list?: readonly (keyof typeof PREFIXES)[];
    /** HeadBucket (a health probe), which IAM authorises as s3:ListBucket on the bucket. */
    readonly probeBucket?: boolean;
  };
  /** Per table, exactly the actions the function's code calls. */
  readonly tables?: Partial<Record<TableName, readonly TableAction[]>>;
  readonly sendsTo?: readonly QueueName[];
  /** SNS topics it publishes to (functions/shared/notifications.ts). */
  readonly publishesTo?: readonly TopicName[];
  readonly models?: readonly ModelRole[];
  readonly search?: Partial<Record<IndexKind, IndexAccess>>;
  /** Reads every queue's and DLQ's depth (GetQueueAttributes) and their age metrics (GET /queues). */
  readonly monitorsQueues?: boolean;
  /** Posts to the deployment's webhook URLs (their list is its environment). */
  readonly webhooks?: boolean;
  /**
   * Runs the SQL engine on Athena (recon above a dataset's engine.large_above_bytes): queries in
   * the regional workgroup, a Glue database per run, the run's tables under athena/, findings
   * UNLOADed under results/.
   */
  readonly athena?: boolean;
  /**
   * Consumes this table's DynamoDB stream (the global table's replica stream outside the primary):
   * the event source mapping reads it with the function's role, bisects a failing batch, takes
   * partial batch responses, and after `maxRetries` sends the batch's description to the
   * function's failure queue (streamFailureQueueName).
   */
  readonly stream?: { readonly table: TableName; readonly batchSize: number; readonly maxRetries: number };
}

export const FUNCTION_ACCESS: Readonly<Record<FunctionName, FunctionAccess>> = {
  // Extracts under incoming/; policy documents under policies/ are chunked, embedded and indexed;
  // a dataset's policy that validates is put in force (policies-in-force/), which extracts are checked against.
  'ingest-worker': {
    objects: { read: ['incoming', 'policies', 'policiesInForce'], write: ['policiesInForce'] },
    tables: {
      files: ['GetItem', 'PutItem'],
      runs: ['GetItem', 'PutItem'],
      // Claim (conditional put), read the claim of a redelivered event, complete, release on failure.
      idempotency: ['PutItem', 'GetItem', 'UpdateItem', 'DeleteItem'],
    },
    // recon: both sides in; triage: a policy document indexed asks uncited triages again.
    sendsTo: ['recon', 'triage'],
    models: ['embedding'],
    search: { policies: 'own' },
  },
  // Reads the dataset's policy in force at the start of each run; writes the run's findings in
  // chunks under results/ and queues one store message per chunk.
  recon: {
    // Lists results/ when a run on Athena is done: one store message per UNLOADed object.
    objects: { read: ['incoming', 'policiesInForce'], write: ['results'], list: ['results'] },
    tables: {
      files: ['GetItem'],
      // Claim, renew, release, finish a run and set it STORING; read it when the claim fails (done, or held elsewhere).
      runs: ['UpdateItem', 'GetItem'],
      // The run's break patterns, put before it is STORING.
      patterns: ['BatchWriteItem'],
    },
    // recon: a run on Athena re-enqueues its own check message with a delay (athena.ts).
    sendsTo: ['store', 'recon'],
    athena: true,
  },
  // Writes one findings chunk's exceptions; counts the chunk on the run and, after the last,
  // resolves the date's exceptions the run no longer found, mirroring that into the exceptions
  // index (issue 9, defect 1), and completes the run. Checks the run's files are still the current
  // ones before resolving. Then starts its triage: the dispatch message, or — a run the runaway
  // guard held — the business notification.
  // Reads the dataset's policy in force for its identity, deadlines and late-arrival window.
  store: {
    objects: { read: ['results', 'policiesInForce'] },
    tables: {
      files: ['GetItem'],
      runs: ['GetItem', 'UpdateItem'],
      exceptions: ['BatchGetItem', 'Query', 'BatchWriteItem', 'UpdateItem'],
    },
    sendsTo: ['triage'],
    publishesTo: ['businessEvents'],
    search: { exceptions: 'update' },
  },
  // Dispatches a completed run (lists its exceptions by run, records its triage state and plan,
  // queues singletons, patterns and member pages on its own queue), then triages them; after a
  // policy document is indexed, lists the triages citing nothing (by_uncited_sharded) and queues
  // them again the same way; adds each
  // model call's cost to its run and to the day's usage, which it reads against the daily budget.
  triage: {
    // The dataset's policy in force names its sensitive fields (masked in prompts and the index).
    objects: { read: ['policiesInForce'] },
    tables: {
      // A pattern's member page is read by key after its index query (the indexes project only
      // what listings filter on).
      exceptions: ['GetItem', 'BatchGetItem', 'UpdateItem', 'Query'],
      runs: ['GetItem', 'UpdateItem'],
      // Dispatch lists the run's saved patterns; pattern triage reads one and saves its triage.
      patterns: ['GetItem', 'Query', 'UpdateItem'],
      circuit_breaker: ['GetItem', 'UpdateItem'],
      usage: ['GetItem', 'UpdateItem'],
    },
    sendsTo: ['triage'],
    // A new CRITICAL rating is announced on the business events topic.
    publishesTo: ['businessEvents'],
    models: ['triage', 'fallback', 'embedding'],
    search: { policies: 'search', exceptions: 'own' },
  },
  // Signs upload URLs (the signer's role must be allowed the PUT) for datasets with a policy, lists/updates exceptions,
  // searches, and mirrors PATCHed statuses into the exceptions index (issue 9, defect 2).
  'query-api': {
    // Lists the policies in force: POST /uploads refuses a dataset without one.
    // Signs `tally policy push` uploads of one dataset's policy (POST /policies).
    // Reads a dataset's policy in force: its tolerances score suggested matches.
    // GET /policies lists and reads the policy documents (governance documents and those in force).
    objects: {
      read: ['policies', 'policiesInForce'],
      write: ['incoming', 'datasetPolicies'],
      list: ['policiesInForce', 'policies'],
      probeBucket: true,
    },
    tables: {
      // A listing page's items are read by key after its index query (the indexes project only
      // what listings filter on).
      exceptions: ['GetItem', 'BatchGetItem', 'Query', 'UpdateItem'],
      // POST /runs/{id}/triage releases or abandons a held run.
      runs: ['GetItem', 'Query', 'UpdateItem'],
      // GET /files lists them; a run shows its sides' latest uploads.
      files: ['Query'],
      // GET /runs/{id}/patterns lists a run's patterns; a pattern action reads its one.
      patterns: ['Query', 'GetItem'],
      // GET /usage: the days asked for, one BatchGetItem.
      usage: ['BatchGetItem'],
    },
    // A released run's dispatch; an analyst's request to triage an exception again.
    sendsTo: ['triage'],
    // An assignment (PATCH /exceptions/{id} with an assignee) is announced on the business events topic.
    publishesTo: ['businessEvents'],
    models: ['embedding'],
    search: { exceptions: 'update' },
    monitorsQueues: true,
  },
  // Posts each business event from its queue to the configured webhooks; touches no AWS resource
  // but its queue (the event source mapping) and the failures table every consumer writes.
  notify: { webhooks: true },
  // Promotes PENDING late arrivals whose window ended (their triage queued) and announces overdue
  // exceptions on the business events topic; reads each dataset's policy in force for its targets.
  // While a model's circuit breaker waits for a trial call, asks one degraded triage again.
  deadlines: {
    objects: { read: ['policiesInForce'] },
    tables: {
      // Lists the PENDING partitions of by_status_sharded and the due entries of the open ones on
      // by_status_due_sharded, and a few degraded triages on by_uncited_sharded; re-reads and
      // updates under versions.
      exceptions: ['Query', 'BatchGetItem', 'UpdateItem'],
      // The breakers past their cool-down (one item a provider: a Scan of a few items), and each
      // probe recorded on its breaker (spacing the next).
      circuit_breaker: ['Scan', 'UpdateItem'],
    },
    sendsTo: ['triage'],
    publishesTo: ['businessEvents'],
  },
  // Lists incoming/, looks each old enough object up in the files table, re-sends missed events.
  sweep: {
    objects: { list: ['incoming'] },
    tables: { files: ['GetItem'] },
    sendsTo: ['ingest'],
  },
  // Each region's exceptions index is a projection of the exceptions table: every change on the
  // table's stream (replicated ones too) is mirrored into it without calling a model — documents
  // rebuilt from the item's stored vector, masked with the dataset's policy in force. It creates
  // the index in a region whose index is still empty: 'own'.
  'stream-index': {
    stream: { table: 'exceptions', batchSize: 100, maxRetries: 5 },
    objects: { read: ['policiesInForce'] },
    search: { exceptions: 'own' },
  },
};

/** Where a stream consumer's event source mapping sends the description of a batch it gave up on. */
export function streamFailureQueueName(prefix: string, name: FunctionName): string {
  return `${prefix}-${name}-failures`;
}

/** The stream actions the event source mapping calls with the consumer's role (AWS documents all four). */
export const STREAM_ACTIONS = [
  'dynamodb:DescribeStream',
  'dynamodb:GetRecords',
  'dynamodb:GetShardIterator',
  'dynamodb:ListStreams',
] as const;

/** Athena API calls of the SQL engine's runner, on the regional workgroup only. */
export const ATHENA_ACTIONS = [
  'athena:StartQueryExecution',
  'athena:GetQueryExecution',
  'athena:GetQueryResults',
] as const;

/** Glue Data Catalog calls Athena makes for the run's DDL, CTAS and DROP, with the caller's rights. */
export const GLUE_ACTIONS = [
  'glue:CreateDatabase',
  'glue:GetDatabase',
  'glue:DeleteDatabase',
  'glue:CreateTable',
  'glue:GetTable',
  'glue:GetTables',
  'glue:DeleteTable',
  'glue:GetPartitions',
] as const;

/**
 * S3 calls Athena makes with the caller's rights: reading the run's tables and query results,
 * writing them and the UNLOADed findings (multipart, so an abort too), and listing the locations
 * (a CTAS or UNLOAD location must be empty; an external table lists its folder).
 */
export const ATHENA_OBJECT_ACTIONS = [
  's3:GetObject',
  's3:PutObject',
  's3:AbortMultipartUpload',
  's3:ListBucket',
  's3:GetBucketLocation',
] as const;

/** The bucket's key, used through S3 by Athena for the run's reads and (encrypted) writes. */
export const ATHENA_KEY_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'] as const;

/**
 * Granted although the parity run never sees the function call them, and why. Everything else a
 * role holds is called by its bundle in test/parity/deployment-parity.test.ts.
 */
export const UNOBSERVED_GRANTS: readonly {
  readonly actions: readonly string[];
  /** Only for this function (and this table, or the statements whose sid matches), when given. */
  readonly function?: FunctionName;
  readonly table?: TableName;
  readonly statement?: RegExp;
  readonly reason: string;
}[] = [
  {
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    reason: 'the Lambda runtime writes the function log on its behalf; the bundle only writes to stdout',
  },
  {
    actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
    reason: 'active tracing: the Lambda runtime sends the segments, not the bundle',
  },
  {
    actions: ['sqs:GetQueueAttributes'],
    reason:
      'the SQS event source mapping reads the queue attributes with the consumer role (AWS lists it as required); it receives and deletes with it too, which the test plays through the proxy',
  },
  {
    actions: [...STREAM_ACTIONS],
    statement: /^ReadStreamOf/,
    reason:
      "the DynamoDB stream event source mapping reads the stream with the consumer's role; the test plays its delivery (a stream event) directly",
  },
  {
    actions: ['sqs:SendMessage', 'kms:GenerateDataKey', 'kms:Decrypt'],
    statement: /^(SendStreamFailuresTo|UseDataKeyThroughSqs)/,
    function: 'stream-index',
    reason:
      "the event source mapping, not the bundle, sends a batch it gave up on to the failure queue (with the function's role): after maxRetries, which the parity inputs never reach",
  },
  {
    actions: ['kms:Decrypt', 'kms:DescribeKey'],
    statement: /^UseTablesKeyThroughDynamodb$/,
    function: 'stream-index',
    reason: "the event source mapping reads the encrypted table's stream with the consumer's role, not the bundle",
  },
  {
    actions: ['sqs:ChangeMessageVisibility'],
    reason:
      "the heartbeat extends a message's visibility only when its work outlasts a third of the visibility timeout (minutes on AWS); the parity inputs take well under a second. test/unit/lease.test.ts and the crash test (test/integration/crash-recovery.test.ts) exercise it",
  },
  {
    actions: [...ATHENA_ACTIONS, ...GLUE_ACTIONS, ...ATHENA_OBJECT_ACTIONS, ...ATHENA_KEY_ACTIONS],
    function: 'recon',
    statement: /^Athena/,
    reason:
      "the SQL engine runs on Athena only for runs above a dataset's engine.large_above_bytes (512 MiB by default): the parity inputs are kilobytes, and Athena has no emulator. test/unit/recon-sql-athena.test.ts plays a run's statements through a fake port",
  },
  {
    actions: ['s3:ListBucket'],
    function: 'recon',
    statement: /^ListResultsObjects$/,
    reason:
      "recon lists results/{run_id}/ only when a run on Athena is done (above a dataset's engine.large_above_bytes); the parity inputs are kilobytes. test/handlers/recon-athena.test.ts lists a mocked bucket",
  },
  {
    actions: ['sqs:SendMessage'],
    function: 'recon',
    statement: /^SendToReconQueue$/,
    reason:
      'a run on Athena re-enqueues its check message on the recon queue with a delay; the parity inputs are far below engine.large_above_bytes',
  },
  {
    actions: ['dynamodb:GetItem'],
    function: 'recon',
    table: 'runs',
    reason:
      'read only when a claim fails (a redelivered request of a run another worker holds or has finished): a sequential run never redelivers',
  },
  {
    actions: ['sns:Publish', 'kms:Decrypt', 'kms:GenerateDataKey'],
    function: 'triage',
    statement: /^(PublishToBusinessEventsTopic|UseDataKeyThroughSns)$/,
    reason:
      'triage announces a first CRITICAL rating; the parity sample has none (its largest difference is below the CRITICAL threshold). test/unit/triage-deadline.test.ts covers the announcement',
  },
  {
    actions: ['dynamodb:BatchGetItem'],
    function: 'deadlines',
    table: 'exceptions',
    reason:
      'the deadline sweep re-reads an exception only when an analyst changed it between its listing and its update: a sequential run makes no such race',
  },
  {
    actions: ['dynamodb:GetItem'],
    function: 'ingest-worker',
    table: 'runs',
    reason:
      'read only when two workers ingest the two sides of one (dataset, date) at once and both request the run: a race a sequential run cannot make happen on demand',
  },
];

/** The environment variable carrying each table's name. */
export const TABLE_ENV: Readonly<Record<TableName, string>> = {
  exceptions: ENV.exceptionsTable,
  files: ENV.filesTable,
  runs: ENV.runsTable,
  patterns: ENV.patternsTable,
  idempotency: ENV.idempotencyTable,
  circuit_breaker: ENV.circuitBreakerTable,
  failures: ENV.failuresTable,
  usage: ENV.usageTable,
};

export const QUEUE_URL_ENV: Readonly<Partial<Record<QueueName, string>>> = {
  ingest: ENV.ingestQueueUrl,
  recon: ENV.reconQueueUrl,
  triage: ENV.triageQueueUrl,
  store: ENV.storeQueueUrl,
};

export const INDEX_ENV: Readonly<Record<IndexKind, string>> = {
  exceptions: ENV.exceptionsIndex,
  policies: ENV.policiesIndex,
};

/** OpenSearch Serverless data-plane permissions per access level (data access policy, per index). */
export const SEARCH_PERMISSIONS: Readonly<Record<IndexAccess, readonly string[]>> = {
  search: ['aoss:ReadDocument'],
  update: ['aoss:ReadDocument', 'aoss:WriteDocument'],
  // ensure(): HEAD (DescribeIndex), then PUT (CreateIndex) when absent.
  own: ['aoss:DescribeIndex', 'aoss:CreateIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'],
};

/** The tables a function uses: its declared ones, plus the failures table for a queue consumer. */
export function tableActionsOf(name: FunctionName): Partial<Record<TableName, readonly TableAction[]>> {
  const tables = { ...FUNCTION_ACCESS[name].tables };
  // Why a message failed, for `tally dlq` (functions/shared/message-failures.ts records it).
  if (consumesOf(name)) tables.failures = ['UpdateItem'];
  return tables;
}

export function consumesOf(name: FunctionName): QueueName | undefined {
  const fn: { timeoutSeconds: number; consumes?: QueueName } = FUNCTIONS[name];
  return fn.consumes;
}

/**
 * The values a function's environment is made of, for one deployment. On AWS they are the
 * regional stack's resources; locally, the emulators' — and, for the three services with no
 * emulator, their offline stand-ins: the embedded vector store, the hashing embedder, the rules.
 */
export interface Deployment {
  readonly logLevel: string;
  readonly bucket: string;
  readonly tables: Readonly<Record<TableName, string>>;
  /** Queue URLs. */
  readonly queues: Readonly<Record<QueueName, { readonly main: string; readonly dlq: string }>>;
  /** Topic ARNs. */
  readonly topics: Readonly<Record<TopicName, string>>;
  readonly indexes: Readonly<Record<IndexKind, string>>;
  /** The OpenSearch Serverless collection on AWS; the embedded store's directory locally. */
  readonly vectors: { readonly opensearchEndpoint: string } | { readonly localDir: string };
  /** Bedrock model ids on AWS; `offline` locally (hashing embedder, rules-only triage). */
  readonly models: Readonly<Record<ModelRole, string>> | 'offline';
  /** GET /queues: the age of the oldest message comes from CloudWatch on AWS, from nowhere locally. */
  readonly queueMetrics: 'cloudwatch' | 'none';
  /** The query API's allowed browser origins ("none" matches no browser: CORS fails closed). */
  readonly corsOrigins: string;
  /** Which JWT claims carry the caller's roles and datasets (query-api/access.ts); unset: its defaults. */
  readonly access?: AccessSettings;
  readonly paginationSecret?: string;
  /** The masking key (triage masks with it; the query API hashes search words with it). */
  readonly maskingSecret?: string;
  /** This region's Bedrock Guardrail, when configured (triage's model calls go through it). */
  readonly guardrail?: { readonly id: string; readonly version: string };
  /** How old an unrecorded upload must be before the sweep re-sends its event. */
  readonly sweepMinAgeSeconds: number;
  /** How long after a policy document is indexed triage asks its uncited exceptions again (functions/triage/uncited.ts). */
  readonly uncitedSettleSeconds: number;
  /** Where business events are posted (infra config `notifications.webhookUrls`; locally TALLY_WEBHOOK_URLS). */
  readonly webhookUrls?: readonly string[];
  /** The SQL engine's Athena workgroup (AWS); locally the SQL engine is DuckDB and there is none. */
  readonly athenaWorkgroup?: string;
  /**
   * The consumed queues' visibility timeout when it is not the AWS rule's (6x the consumer's
   * timeout): the local stack's is seconds, so a dead worker's message comes back soon.
   */
  readonly visibilityTimeoutSeconds?: number;
  /** Recon's memory budget (bytes of rows held before it partitions to disk); unset: the engine's default. */
  readonly reconMemoryBudgetBytes?: number;
  /**
   * Triage's routing rules and price table (JSON, as TALLY_TRIAGE_ROUTES and TALLY_TRIAGE_PRICES
   * take them) and the daily budget in USD (triage enforces it, the query API reports against it).
   */
  readonly triage?: { readonly routes?: string; readonly prices?: string; readonly dailyBudgetUsd?: number };
  /** The SSM parameter naming this region's role (AWS); every function reads it. Locally unset. */
  readonly regionRoleParameter?: string;
  /**
   * The other region of the deployment: the functions that read this region's role read the
   * peer's parameter (same name) too, and yield to a peer made active later (region-role.ts).
   */
  readonly peerRegion?: string;
}

/**
 * Recon's memory budget on Lambda: the engine's rule (`defaultMemoryBudgetBytes`) applied to the
 * heap Lambda's Node runtime gives a function of `memoryMb` (about 90% of it), written out so
 * the deployed value follows the configured memory and can be read in the function's settings.
 */
export function reconMemoryBudgetFor(memoryMb: number): number {
  return defaultMemoryBudgetBytes(Math.floor(memoryMb * 2 ** 20 * 0.9));
}

/** The visibility timeout of the queue a function consumes, in this deployment. */
export function visibilityTimeoutOf(name: FunctionName, d: Pick<Deployment, 'visibilityTimeoutSeconds'>): number {
  return d.visibilityTimeoutSeconds ?? VISIBILITY_TIMEOUT_FACTOR * FUNCTIONS[name].timeoutSeconds;
}

/** Only the names the function needs; never AWS_ENDPOINT_URL_* (endpoints are the caller's doing). */
export function environmentFor(name: FunctionName, d: Deployment): Record<string, string> {
  const access = FUNCTION_ACCESS[name];
  const env: Record<string, string> = { [ENV.logLevel]: d.logLevel, [LAMBDA_ENV.serviceName]: name };
  if (access.objects) env[ENV.bucket] = d.bucket;
  for (const table of Object.keys(tableActionsOf(name)) as TableName[]) env[TABLE_ENV[table]] = d.tables[table];
  for (const queue of access.sendsTo ?? []) {
    const variable = QUEUE_URL_ENV[queue];
    if (variable) env[variable] = d.queues[queue].main;
  }
  for (const topic of access.publishesTo ?? []) env[TOPICS[topic].env] = d.topics[topic];
  // A consumer moves a permanently bad message to its own queue's DLQ at once (shared/sqs-batch.ts).
  const consumes = consumesOf(name);
  if (consumes) {
    env[ENV.deadLetterQueueUrl] = d.queues[consumes].dlq;
    // Its heartbeat keeps the message in hand invisible while the work goes on (shared/sqs-batch.ts).
    env[ENV.consumedQueueUrl] = d.queues[consumes].main;
    env[ENV.visibilityTimeoutSeconds] = String(visibilityTimeoutOf(name, d));
  }
  const models = new Set<ModelRole>(access.models ?? []);
  if (models.has('triage')) {
    // Primary model, then the fallback model, then the deterministic rules.
    env[ENV.triageProviders] =
      d.models === 'offline'
        ? 'rules'
        : [
            `bedrock:${d.models.triage}`,
            ...(models.has('fallback') ? [`bedrock:${d.models.fallback}`] : []),
            'rules',
          ].join(',');
  }
  if (models.has('triage')) {
    if (d.triage?.routes) env[ENV.triageRoutes] = d.triage.routes;
    if (d.triage?.prices) env[ENV.triagePrices] = d.triage.prices;
  }
  // Whoever reads the usage table reads it against the budget.
  if (tableActionsOf(name).usage && d.triage?.dailyBudgetUsd !== undefined)
    env[ENV.triageDailyBudgetUsd] = String(d.triage.dailyBudgetUsd);
  if (models.has('triage') && d.models !== 'offline' && d.guardrail)
    env[ENV.bedrockGuardrail] = `${d.guardrail.id}:${d.guardrail.version}`;
  // stream-index calls no model, but must know which embedder the stored vectors come from (it
  // reuses only those): the same identity as the embedding functions, without the model grant.
  if (models.has('embedding') || name === 'stream-index') {
    if (d.models === 'offline') env[ENV.embedder] = 'hashing';
    else {
      env[ENV.embedder] = 'bedrock-titan';
      env[ENV.embeddingModelId] = d.models.embedding;
    }
  }
  const indexes = INDEX_KINDS.filter((kind) => access.search?.[kind]);
  if (indexes.length > 0) {
    if ('opensearchEndpoint' in d.vectors) {
      env[ENV.vectorStore] = 'opensearch';
      env[ENV.opensearchEndpoint] = d.vectors.opensearchEndpoint;
    } else {
      env[ENV.vectorStore] = 'local';
      env[ENV.vectorDir] = d.vectors.localDir;
    }
    for (const kind of indexes) env[INDEX_ENV[kind]] = d.indexes[kind];
  }
  if (access.monitorsQueues) {
    env[ENV.monitoredQueues] = JSON.stringify(
      Object.fromEntries(Object.entries(d.queues).map(([q, urls]) => [q, { main: urls.main, dlq: urls.dlq }])),
    );
    env[ENV.queueMetrics] = d.queueMetrics;
  }
  if (name === 'sweep') env[ENV.sweepMinAgeSeconds] = String(d.sweepMinAgeSeconds);
  if (name === 'triage') env[ENV.uncitedSettleSeconds] = String(d.uncitedSettleSeconds);
  if (access.webhooks) env[ENV.webhookUrls] = (d.webhookUrls ?? []).join(',');
  if (name === 'recon' && d.reconMemoryBudgetBytes !== undefined)
    env[ENV.reconMemoryBudgetBytes] = String(d.reconMemoryBudgetBytes);
  if (access.athena && d.athenaWorkgroup !== undefined) env[ENV.athenaWorkgroup] = d.athenaWorkgroup;
  if (name === 'query-api') {
    env[ENV.corsOrigins] = d.corsOrigins;
    if (d.access) {
      env[ENV.roleClaim] = d.access.roleClaim;
      env[ENV.rolePrefix] = d.access.rolePrefix;
      env[ENV.datasetsClaim] = d.access.datasetsClaim;
    }
    if (d.paginationSecret) env[ENV.paginationSecret] = d.paginationSecret;
  }
  if ((name === 'triage' || name === 'query-api' || name === 'stream-index') && d.maskingSecret)
    env[ENV.maskingSecret] = d.maskingSecret;
  // Every function acts only while its region is active (issue 15): /health, the API's writes, the
  // consumers. All but stream-index, which keeps a standby region's index up to date for its turn.
  if (d.regionRoleParameter && readsRegionRole(name)) {
    env[ENV.regionRoleParameter] = d.regionRoleParameter;
    if (d.peerRegion) env[ENV.peerRegion] = d.peerRegion;
  }
  return env;
}

/** ARNs (or Terraform references to them) of what one regional stack's functions use. */
export interface Resources {
  readonly region: string;
  readonly bucketArn: string;
  /** The regional key: bucket, queues, logs. */
  readonly dataKeyArn: string;
  /** The key of the tables in this region: the data key in the primary, the replica key elsewhere. */
  readonly tablesKeyArn: string;
  readonly tableArns: Readonly<Record<TableName, string>>;
  readonly queueArns: Readonly<Record<QueueName, { readonly main: string; readonly dlq: string }>>;
  /** The topics, encrypted with the data key. */
  readonly topicArns: Readonly<Record<TopicName, string>>;
  readonly collectionArn: string;
  /** The SQL engine's Athena workgroup. */
  readonly athenaWorkgroupArn: string;
  readonly models: Readonly<Record<ModelRole, string>>;
  /** Bedrock models the triage routes name beyond the triage and fallback models (functions/triage/routing.ts). */
  readonly routeModels?: readonly string[];
  /** This region's guardrail id, when one is configured. */
  readonly guardrailId?: string;
  readonly arnContext: { readonly partition: string; readonly region: string; readonly account: string };
  /** This region's role parameter (SSM), which every function reads. */
  readonly regionRoleParameterArn?: string;
  /** The peer region's role parameter, read beside this region's own (region-role.ts PeerAwareRegionRole). */
  readonly peerRegionRoleParameterArn?: string;
  /** The failure queue of a stream consumer's event source mapping. */
  readonly streamFailureQueueArns?: Partial<Record<FunctionName, string>>;
}

/** KMS actions DynamoDB performs with the caller's permissions on a table with a customer-managed key. */
export const TABLE_KEY_ACTIONS = {
  // As AWS CDK's grantReadData / grantWriteData, without wildcards.
  read: ['kms:Decrypt', 'kms:DescribeKey'],
  write: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
} as const;

const viaService = (service: string, region: string): Condition => ({
  test: 'StringEquals',
  variable: 'kms:ViaService',
  values: [`${service}.${region}.amazonaws.com`],
});

/** The function's own statements: each names the actions it uses on the resources it uses. */
/**
 * Whether a function acts only in the active region. stream-index does not: a standby region's
 * exceptions index must follow its table (replicated writes included) so search works there the
 * moment it is promoted.
 */
export function readsRegionRole(name: FunctionName): boolean {
  return name !== 'stream-index';
}

export function statementsFor(name: FunctionName, r: Resources): Statement[] {
  const access = FUNCTION_ACCESS[name];
  const statements: Statement[] = [];
  const dataKeyUse = { s3: new Set<string>(), sqs: new Set<string>(), sns: new Set<string>() };
  for (const prefix of access.objects?.read ?? []) {
    statements.push({
      sid: sid('Read', prefix, 'objects'),
      actions: ['s3:GetObject'],
      resources: [`${r.bucketArn}/${PREFIXES[prefix]}*`],
    });
    dataKeyUse.s3.add('kms:Decrypt');
  }
  for (const prefix of access.objects?.write ?? []) {
    statements.push({
      sid: sid('Write', prefix, 'objects'),
      actions: ['s3:PutObject'],
      resources: [`${r.bucketArn}/${PREFIXES[prefix]}*`],
    });
    dataKeyUse.s3.add('kms:GenerateDataKey');
  }
  const listed = access.objects?.list ?? [];
  if (listed.length > 0)
    statements.push({
      sid: sid('List', ...listed, 'objects'),
      actions: ['s3:ListBucket'],
      resources: [r.bucketArn],
      conditions: [{ test: 'StringLike', variable: 's3:prefix', values: listed.map((p) => `${PREFIXES[p]}*`) }],
    });
  if (access.objects?.probeBucket)
    statements.push({ sid: 'ProbeBucket', actions: ['s3:ListBucket'], resources: [r.bucketArn] });

  let tablesRead = false;
  let tablesWritten = false;
  if (access.stream) {
    const arn = r.tableArns[access.stream.table];
    statements.push({
      sid: sid('ReadStreamOf', access.stream.table, 'table'),
      actions: [...STREAM_ACTIONS],
      resources: [`${arn}/stream/*`],
    });
    // The stream's records are encrypted with the table's key.
    tablesRead = true;
    const failures = r.streamFailureQueueArns?.[name];
    if (!failures) throw new Error(`${name} consumes a stream but the stack gave it no failure queue`);
    statements.push({
      sid: sid('SendStreamFailuresTo', name, 'queue'),
      actions: ['sqs:SendMessage'],
      resources: [failures],
    });
    dataKeyUse.sqs.add('kms:GenerateDataKey').add('kms:Decrypt');
  }
  for (const [table, actions] of Object.entries(tableActionsOf(name)) as [TableName, readonly TableAction[]][]) {
    const arn = r.tableArns[table];
    statements.push({
      sid: sid('Use', table, 'table'),
      actions: actions.map((a) => `dynamodb:${a}`),
      resources: actions.includes('Query') ? [arn, `${arn}/index/*`] : [arn],
    });
    if (actions.some((a) => TABLE_READS.has(a))) tablesRead = true;
    if (actions.some((a) => !TABLE_READS.has(a))) tablesWritten = true;
  }
  if (tablesRead || tablesWritten) {
    statements.push({
      sid: 'UseTablesKeyThroughDynamodb',
      actions: [...(tablesWritten ? TABLE_KEY_ACTIONS.write : TABLE_KEY_ACTIONS.read)].sort(),
      resources: [r.tablesKeyArn],
      conditions: [viaService('dynamodb', r.region)],
    });
  }

  for (const queue of access.sendsTo ?? []) {
    statements.push({
      sid: sid('SendTo', queue, 'queue'),
      actions: ['sqs:SendMessage'],
      resources: [r.queueArns[queue].main],
    });
    dataKeyUse.sqs.add('kms:GenerateDataKey').add('kms:Decrypt');
  }
  for (const topic of access.publishesTo ?? []) {
    statements.push({
      sid: sid('PublishTo', topic, 'topic'),
      actions: ['sns:Publish'],
      resources: [r.topicArns[topic]],
    });
    // SNS encrypts the message with the topic's key, with the publisher's permissions.
    dataKeyUse.sns.add('kms:GenerateDataKey').add('kms:Decrypt');
  }
  const consumes = consumesOf(name);
  if (consumes) {
    // The event source mapping receives with this role: SQS decrypts the messages for it.
    dataKeyUse.sqs.add('kms:Decrypt');
    // Permanently bad messages go to the consumed queue's DLQ at once, with their reason.
    statements.push({
      sid: sid('DeadLetterTo', consumes, 'dlq'),
      actions: ['sqs:SendMessage'],
      resources: [r.queueArns[consumes].dlq],
    });
    // The heartbeat of long work extends the visibility of the message in hand.
    statements.push({
      sid: sid('ExtendVisibilityOn', consumes, 'queue'),
      actions: ['sqs:ChangeMessageVisibility'],
      resources: [r.queueArns[consumes].main],
    });
    dataKeyUse.sqs.add('kms:GenerateDataKey');
  }
  for (const service of ['s3', 'sqs', 'sns'] as const) {
    if (dataKeyUse[service].size > 0)
      statements.push({
        sid: sid('UseDataKeyThrough', service),
        actions: [...dataKeyUse[service]].sort(),
        resources: [r.dataKeyArn],
        conditions: [viaService(service, r.region)],
      });
  }

  if (access.athena) statements.push(...athenaStatements(r));

  const modelIds = [
    ...new Set([
      ...(access.models ?? []).map((role) => r.models[role]),
      ...(access.models?.includes('triage') ? (r.routeModels ?? []) : []),
    ]),
  ];
  if (modelIds.length > 0) {
    statements.push({
      sid: 'InvokeConfiguredModels',
      actions: ['bedrock:InvokeModel'],
      resources: modelIds.flatMap((id) => bedrockModelArns(id, r.arnContext)),
    });
  }
  // Converse with a guardrail is authorised as ApplyGuardrail on it too.
  if (access.models?.includes('triage') && r.guardrailId !== undefined) {
    const { partition, region, account } = r.arnContext;
    statements.push({
      sid: 'ApplyConfiguredGuardrail',
      actions: ['bedrock:ApplyGuardrail'],
      resources: [`arn:${partition}:bedrock:${region}:${account}:guardrail/${r.guardrailId}`],
    });
  }
  if (access.monitorsQueues) {
    const arns = Object.values(r.queueArns).flatMap((q) => [q.main, q.dlq]);
    statements.push({ sid: 'ReadQueueDepths', actions: ['sqs:GetQueueAttributes'], resources: arns });
    // GetMetricData has no resource-level permissions: "*" is the only resource IAM accepts.
    statements.push({ sid: 'ReadQueueAgeMetrics', actions: ['cloudwatch:GetMetricData'], resources: ['*'] });
  }
  if (r.regionRoleParameterArn && readsRegionRole(name))
    statements.push({
      sid: 'ReadRegionRole',
      actions: ['ssm:GetParameter'],
      resources: [r.regionRoleParameterArn, ...(r.peerRegionRoleParameterArn ? [r.peerRegionRoleParameterArn] : [])],
    });
  if (access.search && Object.keys(access.search).length > 0) {
    // IAM admits the call to the collection; the data access policy decides what it may do there.
    statements.push({ sid: 'CallSearchCollection', actions: ['aoss:APIAccessAll'], resources: [r.collectionArn] });
  }
  return statements;
}

/** The SQL engine's grants on Athena, Glue and the bucket: its workgroup, its run databases, its prefixes. */
function athenaStatements(r: Resources): Statement[] {
  const { partition, region, account } = r.arnContext;
  const glue = `arn:${partition}:glue:${region}:${account}`;
  const objects = (...prefixes: (keyof typeof PREFIXES)[]) => prefixes.map((p) => `${r.bucketArn}/${PREFIXES[p]}*`);
  return [
    { sid: 'AthenaQueriesInWorkgroup', actions: [...ATHENA_ACTIONS], resources: [r.athenaWorkgroupArn] },
    {
      sid: 'AthenaRunCatalog',
      actions: [...GLUE_ACTIONS],
      resources: [
        `${glue}:catalog`,
        `${glue}:database/${ATHENA_DATABASE_PREFIX}*`,
        `${glue}:table/${ATHENA_DATABASE_PREFIX}*/*`,
      ],
    },
    {
      sid: 'AthenaReadRunObjects',
      actions: ['s3:GetObject'],
      resources: objects('incoming', 'athenaScratch', 'athenaResults'),
    },
    {
      sid: 'AthenaWriteRunObjects',
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resources: objects('athenaScratch', 'athenaResults', 'results'),
    },
    {
      sid: 'AthenaListRunLocations',
      actions: ['s3:ListBucket', 's3:GetBucketLocation'],
      resources: [r.bucketArn],
    },
    {
      sid: 'AthenaUseDataKeyThroughS3',
      actions: [...ATHENA_KEY_ACTIONS],
      resources: [r.dataKeyArn],
      conditions: [viaService('s3', r.region)],
    },
  ];
}

/** One data access rule per function: its permissions on each index it uses, and nothing else. */
export function searchRulesFor(
  name: FunctionName,
  collection: string,
  indexes: Readonly<Record<IndexKind, string>>,
): { index: string; resource: string; permissions: readonly string[] }[] {
  return INDEX_KINDS.flatMap((kind) => {
    const level = FUNCTION_ACCESS[name].search?.[kind];
    return level
      ? [
          {
            index: indexes[kind],
            resource: `index/${collection}/${indexes[kind]}`,
            permissions: SEARCH_PERMISSIONS[level],
          },
        ]
      : [];
  });
}

const PROFILE_PREFIX = /^(us|eu|apac|us-gov|global)\./;

/**
 * Bedrock resources for one model id. A cross-region inference profile (eu.anthropic...) routes
 * to the foundation model in any of its regions, so it needs the profile plus the model in every
 * region; a plain model id needs only the model in this region.
 */
export function bedrockModelArns(
  modelId: string,
  ctx: { partition: string; region: string; account: string },
): string[] {
  if (PROFILE_PREFIX.test(modelId)) {
    const base = modelId.replace(PROFILE_PREFIX, '');
    return [
      `arn:${ctx.partition}:bedrock:${ctx.region}:${ctx.account}:inference-profile/${modelId}`,
      `arn:${ctx.partition}:bedrock:*::foundation-model/${base}`,
    ];
  }
  return [`arn:${ctx.partition}:bedrock:${ctx.region}::foundation-model/${modelId}`];
}

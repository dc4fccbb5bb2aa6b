/**
 * The whole pipeline on a laptop, in one process: emulators, resources, the S3 event router and
 * one poller per queue consumer, each invoking the real middy handler — every function in a worker
 * thread under its own derived environment, as each Lambda has its own.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
import { SQSClient, GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startEmulators } from './emulators.ts';
import { startApiServer, type HttpApiHandler } from './api-server.ts';
import { LOCAL_DATASETS_CLAIM, LOCAL_ROLE_CLAIM } from './oidc.ts';
import type { AccessSettings } from '../../functions/query-api/access.ts';
import { SDK_LOGGER } from '../../functions/shared/adapters/clients.ts';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import { policyDocuments } from '../../functions/shared/policy-corpus.ts';
import { startS3EventRouter } from './s3-events.ts';
import { provision, provisionTopics, type QueueUrls, type TopicUrls } from './provision.ts';
import { startPoller, type Poller, type SqsLambdaHandler } from './poller.ts';
import { environmentFor, type Deployment } from '../../infra/access.ts';
import { hostFunction, hostFunctionPool, type HostedFunction } from './function-host.ts';
import { startThreadProfile } from './thread-profile.ts';
import { startLocalSweep } from './sweep-timer.ts';
import { CRASH_AT_ENV } from '../../functions/shared/crash-point.ts';
import {
  DEFAULT_PREFIX,
  ENV,
  FUNCTION_NAMES,
  indexNames,
  PREFIXES,
  QUEUE_NAMES,
  FUNCTIONS,
  QUEUES,
  awsBucketName,
  resourceNames,
  TOPIC_NAMES,
  type FunctionName,
  type QueueName,
  type ResourceNames,
  type TopicName,
} from '../../functions/shared/resources.ts';
import {
  countLocalIndex,
  embedderOfLocalIndexes,
  OFFLINE_DEFAULT_EMBEDDER,
} from '../../functions/shared/search/factory.ts';
import { EXCEPTION_TYPES, type ExceptionType } from '../../functions/shared/types.ts';
import { countExceptionPartition, TRIAGED_FILTER } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { FileRegionRole, type RegionRole } from '../../functions/shared/region-role.ts';
import type { ObjectCreatedMessage } from '../../functions/shared/object-created.ts';
import { startTableStreams, type StreamHandler, type TableStreams } from './table-streams.ts';

/** The region role's file in a region's data dir (multi-region mode). */
export const REGION_ROLE_FILE = 'region-role.json';

export interface LocalStackOptions {
  /** The offline embedder (hashing, semantic, hybrid); else TALLY_EMBEDDER, the data directory's, or the default. */
  readonly embedder?: string;
  readonly dataDir: string;
  readonly prefix?: string;
  /** Seconds before a failed message is delivered again (AWS uses 6x the function timeout). */
  readonly visibilityTimeoutSeconds?: number;
  readonly region?: string;
  readonly onInvocation?: (info: { name: string; received: number; failed: number; error?: Error }) => void;
  readonly onRouterError?: (error: Error) => void;
  /** Long work before the stack is up (a table rebuilt for new indexes); default: stderr. */
  readonly onProgress?: (line: string) => void;
  /** Port of the query API on 127.0.0.1; 0 picks a free one. */
  readonly apiPort?: number;
  /** Built dashboard assets to serve at `/` on the API's origin (npm start: dist/web). */
  readonly webDir?: string;
  /**
   * Query API instances (worker threads) serving requests side by side, as Lambda runs several
   * containers under overlapping requests. Each holds its own copy of the search index.
   */
  readonly apiInstances?: number;
  /**
   * Pollers per consumed queue, where not the event source's maximum concurrency on AWS
   * (FUNCTIONS[...].maxConcurrency): e.g. `{ store: 8 }` stores eight findings chunks at once.
   */
  readonly consumerConcurrency?: Partial<Record<QueueName, number>>;
  /**
   * Triage's provider chain instead of the offline `rules`: e.g. `openai:<model>,rules` with the
   * base URL of an OpenAI-compatible server (a model on this machine; the acceptance test's
   * recording server).
   */
  readonly triageProviders?: { readonly chain: string; readonly openaiBaseUrl?: string };
  /**
   * Sign-in (`npm start -- --auth`): the API accepts only bearer tokens of this issuer and
   * audience, verified as API Gateway's JWT authorizer does, and the dashboard signs in there.
   * Absent: no sign-in, every request is the local admin.
   */
  readonly auth?: { readonly issuer: string; readonly audience: string; readonly dashboardClientId: string };
  /**
   * One region of a two-region deployment (scripts/local/regions.ts): its role at first start
   * (kept in `<dataDir>/region-role.json` afterwards, as the SSM parameter keeps an operator's
   * change), a bucket named for its region as on AWS, and the exceptions table's stream feeding
   * the stream-index function. Absent: one region, always active, no streams (as before).
   */
  readonly multiRegion?: {
    readonly initialRole: RegionRole;
    /** The other region and its data dir: its role file is read too (a later-promoted active peer wins). */
    readonly peer?: { readonly region: string; readonly dataDir: string };
  };
  /** Where business events are posted (default: TALLY_WEBHOOK_URLS, comma-separated; none when unset). */
  readonly webhookUrls?: readonly string[];
}

/** The claims the local OpenID provider (oidc.ts) issues roles and datasets in. */
export const LOCAL_ACCESS: AccessSettings = Object.freeze({
  roleClaim: LOCAL_ROLE_CLAIM,
  rolePrefix: '',
  datasetsClaim: LOCAL_DATASETS_CLAIM,
});

/** Two: one query-api thread saturates a core under 50 callers, and this machine class has two. */
const DEFAULT_API_INSTANCES = 2;

export interface LocalStack {
  readonly names: ResourceNames;
  readonly queues: Record<QueueName, QueueUrls>;
  /** Each topic's ARN and the queue subscribed to it (the business events a held run sends). */
  readonly topics: Record<TopicName, TopicUrls>;
  readonly endpoints: { s3: string; sqs: string; dynamodb: string; sns: string; api: string };
  /** The offline embedder every function uses, and why: TALLY_EMBEDDER, the data directory's indexes, or the default. */
  readonly embedder: { readonly name: string; readonly from: 'TALLY_EMBEDDER' | 'data directory' | 'default' };
  /** The environment each function runs under (infra/access.ts's derivation, local endpoints). */
  readonly environments: Readonly<Record<FunctionName, Readonly<Record<string, string>>>>;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBDocumentClient;
  readonly region: string;
  /** Multi-region mode: this region's role, its table streams, its S3 straight (no events), its raw DynamoDB client. */
  readonly multiRegion?: {
    readonly role: FileRegionRole;
    readonly streams: TableStreams;
    readonly s3Direct: S3Client;
    readonly dynamoDirect: DynamoDBClient;
    onObjectCreated(listener: (event: ObjectCreatedMessage) => void): void;
  };
  upload(key: string, body: string | Uint8Array): Promise<string>;
  /** Uploads every policies/*.md and policies/datasets/*.md (the triage corpus; each dataset's policy). */
  loadPolicies(): Promise<string[]>;
  /** Resolves once nothing is queued, in flight or being routed for the consumed queues. */
  waitForIdle(timeoutMs?: number): Promise<void>;
  counts(): Promise<StoredCounts>;
  /**
   * Each function loads now, in slices between its invocations, what its first invocation would:
   * the query API's threads their local search index (at 100k exceptions ~20 s a thread, which a
   * first search waited for, past the 29 s timeout when both loaded at once). Resolves, once all
   * have, with what each function's threads report (`query-api`: each thread's documents held).
   * `npm start` calls it once the stack is up (not during its start, which it slowed by ~10 s at
   * 100k) and does not wait for it.
   */
  warm(): Promise<Partial<Record<FunctionName, unknown>>>;
  stop(): Promise<void>;
}

export interface StoredCounts {
  exceptions: Partial<Record<ExceptionType, number>>;
  open: number;
  /** Exceptions carrying a triage. */
  triaged: number;
  /** Exceptions in the exceptions vector index. */
  searchable: number;
  /** Passages in the policy index. */
  policy_passages: number;
  runs: number;
  files: { accepted: number; rejected: number };
  queues: Record<string, { visible: number; inFlight: number; dlq: number }>;
}

/** Every queue has its consumer locally, as on AWS. */
const CONSUMED: readonly QueueName[] = QUEUE_NAMES;

/**
 * The values the local functions' environments are made of: the emulators' resources, and the
 * offline stand-ins where AWS has a service with no emulator here.
 */
export function localDeployment(local: {
  names: ResourceNames;
  queues: Readonly<Record<QueueName, { main: string; dlq: string }>>;
  topics: Readonly<Record<TopicName, { arn: string }>>;
  prefix: string;
  dataDir: string;
  visibilityTimeoutSeconds: number;
  webhookUrls?: readonly string[];
}): Deployment {
  return {
    logLevel: process.env[ENV.logLevel] ?? 'WARN',
    bucket: local.names.bucket,
    tables: local.names.tables,
    queues: Object.fromEntries(
      QUEUE_NAMES.map((q) => [q, { main: local.queues[q].main, dlq: local.queues[q].dlq }]),
    ) as Record<QueueName, { main: string; dlq: string }>,
    topics: Object.fromEntries(TOPIC_NAMES.map((t) => [t, local.topics[t].arn])) as Record<TopicName, string>,
    indexes: indexNames(local.prefix),
    vectors: { localDir: join(local.dataDir, 'vectors') },
    models: 'offline',
    // No CloudWatch locally, so GET /queues reports no age of the oldest message.
    queueMetrics: 'none',
    // Locally a missed event is found sooner: the sweep also runs at every start.
    sweepMinAgeSeconds: Number(process.env[ENV.sweepMinAgeSeconds] ?? 120),
    // Seconds, not AWS's minute: a runbook pushed on a laptop is cited in its exceptions soon.
    uncitedSettleSeconds: Number(process.env[ENV.uncitedSettleSeconds] ?? 10),
    // Same origin only: the dashboard is served by the API's own origin; "none" matches no browser.
    corsOrigins: 'none',
    // The claims the local OpenID provider (npm start -- --auth) puts its users' roles and datasets in.
    access: LOCAL_ACCESS,
    // Seconds, not AWS's minutes: the heartbeat keeps long work invisible, and a killed stack's
    // messages (and, with leases bounded by it, their claims) come back soon after a restart.
    visibilityTimeoutSeconds: local.visibilityTimeoutSeconds,
    // Business events go to the caller's webhooks: none by default (they still reach the topic's inbox).
    webhookUrls:
      local.webhookUrls ??
      (process.env[ENV.webhookUrls] ?? '')
        .split(',')
        .map((u) => u.trim())
        .filter((u) => u !== ''),
    // Triage's routes, prices and budget come from the caller's environment: none by default.
    triage: {
      ...(process.env[ENV.triageRoutes] ? { routes: process.env[ENV.triageRoutes] } : {}),
      ...(process.env[ENV.triagePrices] ? { prices: process.env[ENV.triagePrices] } : {}),
      ...(process.env[ENV.triageDailyBudgetUsd]
        ? { dailyBudgetUsd: Number(process.env[ENV.triageDailyBudgetUsd]) }
        : {}),
    },
  };
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const region = options.region ?? 'us-east-1';
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // TALLY_CPU_PROFILE_DIR: the thread running the stack (HTTP servers, S3 and SQS emulators,
  // pollers, timers) profiles itself too, as the function and dynalite threads do.
  const mainProfile = await startThreadProfile(process.env.TALLY_CPU_PROFILE_DIR, `main-${region}`);
  const names = options.multiRegion
    ? { ...resourceNames(prefix), bucket: awsBucketName(prefix, region) }
    : resourceNames(prefix);
  const streams = options.multiRegion
    ? startTableStreams({
        region,
        consumedTable: names.tables.exceptions,
        ...(options.onRouterError ? { onError: options.onRouterError } : {}),
      })
    : undefined;
  const roleFile = join(options.dataDir, REGION_ROLE_FILE);
  const role = new FileRegionRole(region, roleFile);
  if (options.multiRegion && !existsSync(roleFile)) await role.write(options.multiRegion.initialRole);
  const emulators = await startEmulators(options.dataDir, streams ? { onTableChange: streams.capture } : {});
  // What a start failing part-way has started is stopped, newest first, before its error goes on:
  // its threads and servers kept the process alive (a failed drill hung until its test's timeout).
  const started: (() => unknown)[] = [() => streams?.stop(), () => emulators.stop(), () => mainProfile?.stop()];
  const stopStarted = async () => {
    for (const stop of started) await Promise.resolve(stop()).catch(() => undefined);
  };
  const orStopStarted = async <T>(step: Promise<T>): Promise<T> => {
    try {
      return await step;
    } catch (error) {
      await stopStarted();
      throw error;
    }
  };
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  // The pollers' and the front door's clients: no logger for the SDK to copy each call's messages for.
  const direct = {
    s3: new S3Client({
      logger: SDK_LOGGER,
      region,
      endpoint: emulators.fauxqsUrl,
      forcePathStyle: true,
      credentials,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    sqs: new SQSClient({
      logger: SDK_LOGGER,
      region,
      endpoint: emulators.fauxqsUrl,
      credentials,
      useQueueUrlAsEndpoint: false,
    }),
    dynamo: new DynamoDBClient({ logger: SDK_LOGGER, region, endpoint: emulators.dynamoUrl, credentials }),
  };
  const visibilityTimeoutSeconds = options.visibilityTimeoutSeconds ?? 10;
  const queues = await orStopStarted(
    provision(names, direct, {
      visibilityTimeoutSeconds,
      // The items of a table being rebuilt wait here, so a start killed meanwhile loses none.
      rebuildDir: join(options.dataDir, 'dynamodb-rebuild'),
      onProgress: options.onProgress ?? ((line) => process.stderr.write(`${line}\n`)),
    }),
  );
  const sns = new SNSClient({ region, endpoint: emulators.fauxqsUrl, credentials });
  const topics = await orStopStarted(provisionTopics(options.prefix ?? DEFAULT_PREFIX, { sns, sqs: direct.sqs }));
  sns.destroy();
  const objectCreatedListeners: ((event: ObjectCreatedMessage) => void)[] = [];
  const router = await orStopStarted(
    startS3EventRouter({
      upstream: emulators.fauxqsUrl,
      bucket: names.bucket,
      s3: direct.s3,
      sqs: direct.sqs,
      ingestQueueUrl: queues.ingest.main,
      region,
      outboxDir: join(options.dataDir, 's3-outbox'),
      ...(options.onRouterError ? { onError: options.onRouterError } : {}),
      onObjectCreated: (event) => objectCreatedListeners.forEach((l) => l(event)),
    }),
  );
  started.unshift(() => router.stop());
  const endpoints = {
    s3: router.url,
    sqs: emulators.fauxqsUrl,
    dynamodb: emulators.dynamoUrl,
    sns: emulators.fauxqsUrl,
  };

  // Each function runs in a worker of its own under the environment infra/access.ts derives for it,
  // the one the regional stack gives its Lambda: same names, and the same values but for the
  // endpoints and credentials below and the offline stand-ins for the services with no emulator.
  const deployment = localDeployment({
    names,
    queues,
    topics,
    prefix: options.prefix ?? DEFAULT_PREFIX,
    dataDir: options.dataDir,
    visibilityTimeoutSeconds,
    ...(options.webhookUrls ? { webhookUrls: options.webhookUrls } : {}),
  });
  const kept = embedderOfLocalIndexes(join(options.dataDir, 'vectors'), deployment.indexes);
  const chosen = options.embedder ?? process.env[ENV.embedder];
  const embedder = chosen ?? kept ?? OFFLINE_DEFAULT_EMBEDDER;
  const local: Record<string, string> = {
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SNS: endpoints.sns,
    [ENV.s3ForcePathStyle]: 'true',
    // EMF documents become metrics only in CloudWatch Logs; locally they would flood the console.
    [ENV.metricsDisabled]: 'true',
    // Every function the same offline embedder (the store too, which opens the index without one):
    // TALLY_EMBEDDER when set; else the one this data directory's indexes were built with (a
    // .tally/ from before the hybrid default keeps hashing: its vectors would not compare with
    // new ones); else the default, the hybrid, which no Lambda bundle carries.
    [ENV.embedder]: embedder,
    // The crash test's kill point (functions/shared/crash-point.ts); absent unless a test sets it.
    ...(process.env[CRASH_AT_ENV] ? { [CRASH_AT_ENV]: process.env[CRASH_AT_ENV] } : {}),
    // The region role, from the file in place of the SSM parameter (functions/shared/region-role.ts).
    ...(options.multiRegion ? { [ENV.regionRoleFile]: roleFile } : {}),
    ...(options.multiRegion?.peer
      ? {
          [ENV.peerRegion]: options.multiRegion.peer.region,
          [ENV.peerRegionRoleFile]: join(options.multiRegion.peer.dataDir, REGION_ROLE_FILE),
        }
      : {}),
  };
  const triage = options.triageProviders;
  const providers: Record<string, string> = triage
    ? {
        [ENV.triageProviders]: triage.chain,
        ...(triage.openaiBaseUrl ? { [ENV.openaiBaseUrl]: triage.openaiBaseUrl } : {}),
      }
    : {};
  const environments = Object.fromEntries(
    FUNCTION_NAMES.map((name) => [
      name,
      { ...environmentFor(name, deployment), ...local, ...(name === 'triage' ? providers : {}) },
    ]),
  ) as Record<FunctionName, Record<string, string>>;
  // The stream consumer runs where there is a stream to read.
  const hostedNames = FUNCTION_NAMES.filter((name) => name !== 'stream-index' || streams);
  // The functions' DynamoDB calls go to dynalite's thread over a port each (dynamo-port.ts).
  const host = { connectDynamo: () => emulators.connectDynamo() };
  const hosting = await Promise.allSettled(
    hostedNames.map((name) =>
      name === 'query-api'
        ? hostFunctionPool(name, environments[name], options.apiInstances ?? DEFAULT_API_INSTANCES, host)
        : hostFunction(name, environments[name], host),
    ),
  );
  const hosted = hosting.flatMap((h) => (h.status === 'fulfilled' ? [h.value] : []));
  started.unshift(() => Promise.all(hosted.map((h) => h.stop())));
  const notHosted = hosting.find((h) => h.status === 'rejected');
  if (notHosted) {
    await stopStarted();
    throw notHosted.reason;
  }
  const invoke = (name: FunctionName) => (hosted.find((h) => h.name === name) as HostedFunction).invoke;
  streams?.setHandler(invoke('stream-index') as StreamHandler);

  const pollers: Poller[] = [];
  // As many pollers per queue as its event source mapping's maximum concurrency: a queue drains
  // locally at the parallelism it gets on AWS, not one batch at a time.
  const pollersOf = (q: QueueName) => options.consumerConcurrency?.[q] ?? FUNCTIONS[QUEUES[q].consumer].maxConcurrency;
  for (const queue of CONSUMED.flatMap((q) => Array<QueueName>(pollersOf(q)).fill(q))) {
    const consumer = QUEUES[queue].consumer;
    pollers.push(
      startPoller({
        name: consumer,
        sqs: direct.sqs,
        queueUrl: queues[queue].main,
        queueArn: queues[queue].mainArn,
        region,
        batchSize: QUEUES[queue].batchSize,
        timeoutSeconds: QUEUES[queue].consumerTimeoutSeconds,
        handler: invoke(consumer) as SqsLambdaHandler,
        ...(options.onInvocation ? { onInvocation: options.onInvocation } : {}),
      }),
    );
  }
  started.unshift(() => Promise.all(pollers.map((p) => p.stop())));

  // What the EventBridge schedule does on AWS: re-send events of uploads nothing recorded.
  const sweep = startLocalSweep({ invoke: invoke('sweep'), intervalMs: 60_000 });
  // What the deadlines schedule does on AWS: promote expired late arrivals, announce overdue ones.
  const deadlines = startLocalSweep({ name: 'deadlines', invoke: invoke('deadlines'), intervalMs: 60_000 });
  started.unshift(
    () => sweep.stop(),
    () => deadlines.stop(),
  );

  // The query API, served from the same handler API Gateway invokes.
  const api = await orStopStarted(
    startApiServer({
      handler: invoke('query-api') as HttpApiHandler,
      host: '127.0.0.1',
      port: options.apiPort ?? 0,
      ...(options.webDir ? { staticDir: options.webDir } : {}),
      ...(options.auth
        ? {
            jwt: { issuer: options.auth.issuer, audience: [options.auth.audience] },
            // What the deployed site's config.json says: sign in at the issuer, as a public client.
            siteConfig: {
              apiUrl: '',
              auth: { issuer: options.auth.issuer, clientId: options.auth.dashboardClientId, scope: 'openid email' },
            },
          }
        : {}),
    }),
  );
  const allEndpoints = { ...endpoints, api: api.url };
  writeFileSync(
    join(options.dataDir, 'endpoints.json'),
    `${JSON.stringify({ region, endpoints: allEndpoints, names, queues, topics, ...(options.multiRegion ? { region_role_file: roleFile } : {}) }, null, 2)}\n`,
  );

  const s3 = new S3Client({
    region,
    endpoint: endpoints.s3,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const dynamo = DynamoDBDocumentClient.from(direct.dynamo);

  const depth = async (url: string) => {
    const out = await direct.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: [
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
          'ApproximateNumberOfMessagesDelayed',
        ],
      }),
    );
    const a = out.Attributes ?? {};
    return {
      visible: Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
      inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  };

  const upload = async (key: string, body: string | Uint8Array, contentType = 'text/csv') => {
    const out = await s3.send(
      new PutObjectCommand({ Bucket: names.bucket, Key: key, Body: body, ContentType: contentType }),
    );
    return (out.ETag ?? '').replaceAll('"', '');
  };

  return {
    embedder: {
      name: embedder,
      from: chosen ? 'TALLY_EMBEDDER' : kept ? 'data directory' : 'default',
    },
    names,
    queues,
    topics,
    endpoints: allEndpoints,
    environments,
    s3,
    sqs: direct.sqs,
    dynamo,
    region,
    ...(streams
      ? {
          multiRegion: {
            role,
            streams,
            s3Direct: direct.s3,
            dynamoDirect: direct.dynamo,
            onObjectCreated: (listener: (event: ObjectCreatedMessage) => void) => objectCreatedListeners.push(listener),
          },
        }
      : {}),
    upload: (key, body) => upload(key, body),
    async loadPolicies() {
      const files = policyDocuments(POLICIES_DIR);
      for (const file of files)
        await upload(`${PREFIXES.policies}${file}`, readFileSync(join(POLICIES_DIR, file)), 'text/markdown');
      return files;
    },
    async waitForIdle(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let quietChecks = 0;
      while (quietChecks < 3) {
        if (Date.now() > deadline) throw new Error(`pipeline still busy after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 150));
        const depths = await Promise.all(CONSUMED.map((q) => depth(queues[q].main)));
        const quiet =
          router.pending() === 0 &&
          (streams?.pending() ?? 0) === 0 &&
          !sweep.busy() &&
          !deadlines.busy() &&
          pollers.every((p) => !p.busy()) &&
          depths.every((d) => d.visible === 0 && d.inFlight === 0);
        quietChecks = quiet ? quietChecks + 1 : 0;
      }
    },
    async counts() {
      const exceptions: Partial<Record<ExceptionType, number>> = {};
      // Each count reads its 16 shards; the types' counts go at once too.
      const byType = await Promise.all(
        EXCEPTION_TYPES.map((type) =>
          countExceptionPartition(dynamo, names.tables.exceptions, 'by_type_sharded', type),
        ),
      );
      EXCEPTION_TYPES.forEach((type, i) => {
        if ((byType[i] as number) > 0) exceptions[type] = byType[i] as number;
      });
      const open = await countExceptionPartition(dynamo, names.tables.exceptions, 'by_status_sharded', 'OPEN');
      // Local diagnostics only: the runs and files tables are tiny here; the API never scans.
      // Triaged: by run, the index that carries triage's stamp (the narrow indexes carry no triage).
      const runIds = (
        (
          await dynamo.send(
            new ScanCommand({
              TableName: names.tables.runs,
              ProjectionExpression: '#r',
              ExpressionAttributeNames: { '#r': 'run_id' },
            }),
          )
        ).Items ?? []
      ).map((r) => String(r.run_id));
      const triaged = (
        await Promise.all(
          runIds.map((runId) =>
            countExceptionPartition(dynamo, names.tables.exceptions, 'by_run_sharded', runId, TRIAGED_FILTER),
          ),
        )
      ).reduce((sum, n) => sum + n, 0);
      // From the logs, not indexes built on this thread (it serves the API and the emulators).
      const searchable = (await countLocalIndex('exceptions', environments.triage)) ?? 0;
      const policyPassages = (await countLocalIndex('policies', environments['ingest-worker'])) ?? 0;
      const runs = runIds.length;
      const files =
        (
          await dynamo.send(
            new ScanCommand({
              TableName: names.tables.files,
              ProjectionExpression: '#s',
              ExpressionAttributeNames: { '#s': 'status' },
            }),
          )
        ).Items ?? [];
      const queueCounts: StoredCounts['queues'] = {};
      for (const q of Object.keys(queues) as QueueName[]) {
        const main = await depth(queues[q].main);
        const dlq = await depth(queues[q].dlq);
        queueCounts[q] = { visible: main.visible, inFlight: main.inFlight, dlq: dlq.visible + dlq.inFlight };
      }
      return {
        exceptions,
        open,
        triaged,
        searchable,
        policy_passages: policyPassages,
        runs,
        files: {
          accepted: files.filter((f) => f.status === 'ACCEPTED').length,
          rejected: files.filter((f) => f.status === 'REJECTED').length,
        },
        queues: queueCounts,
      };
    },
    async warm() {
      const reports = await Promise.all(hosted.map(async (h) => [h.name, await h.warm()] as const));
      return Object.fromEntries(reports.filter(([, report]) => report !== null));
    },
    async stop() {
      await api.stop();
      await sweep.stop();
      await deadlines.stop();
      await Promise.all(pollers.map((p) => p.stop()));
      await streams?.stop();
      await Promise.all(hosted.map((h) => h.stop()));
      await router.stop();
      await emulators.stop();
      await mainProfile?.stop();
    },
  };
}

/** Query API Lambda (API Gateway HTTP API, payload v2): uploads, exceptions, search, runs, files, queues, health. */
import { SNSClient } from '@aws-sdk/client-sns';
import { SnsBusinessNotifier } from '../shared/adapters/sns-notifier.ts';
import middy from '@middy/core';
import httpCors from '@middy/http-cors';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { createLogger } from '../shared/logger.ts';
import { createEmbedder, createVectorIndex, prepareLocalIndex } from '../shared/search/factory.ts';
import { queryApiConfig } from './config.ts';
import { DynamoQueryStore } from './dynamo-store.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import type { TriageQueueMessage } from '../shared/messages.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { DynamoUsageStore } from '../shared/tables/usage-dynamo.ts';
import { correlationId, errorResponses, type HttpEvent, type HttpResult } from './http.ts';
import { dispatch } from './routes.ts';
import { S3PolicyObjects, S3UploadSigner } from './s3.ts';
import { SqsQueueMonitor } from './sqs-monitor.ts';
import type { QueryApiDeps } from './ports.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { datasetTriagePolicies } from '../triage/dataset-policy.ts';
import { regionRoleFromEnv, RegionNotActiveError, type RegionRoleReader } from '../shared/region-role.ts';
import { ApiError } from './errors.ts';

const logger = createLogger('query-api');

export function defaultDeps(): QueryApiDeps {
  const config = queryApiConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config.s3ForcePathStyle });
  const store = new DynamoQueryStore(aws.dynamo, {
    exceptions: config.exceptionsTable,
    runs: config.runsTable,
    files: config.filesTable,
    patterns: config.patternsTable,
  });
  const uploads = new S3UploadSigner(aws.s3, config.bucket);
  const embedder = createEmbedder();
  const policies = withBundledPolicies(new S3DatasetPolicies(aws.s3));
  const regionRole = regionRoleFromEnv();
  const triageQueue = new SqsQueue<TriageQueueMessage>(aws.sqs, config.triageQueueUrl);
  return {
    regionRole,
    store,
    uploads,
    datasets: {
      known: () => policies.known(config.bucket),
      policy: (dataset) => policies.current(config.bucket, dataset),
    },
    policyDocuments: { objects: new S3PolicyObjects(aws.s3, config.bucket) },
    // The triage queue takes a released run's dispatch and an analyst's request to triage one again.
    runTriage: { runs: new DynamoRunStore(aws.dynamo, config.runsTable), triageQueue },
    retriage: { triageQueue },
    // A standby or fenced region answers unhealthy: Route 53 sends nobody there.
    healthChecks: [regionRoleHealthCheck(regionRole), store.healthCheck(), uploads.healthCheck()],
    embedder,
    exceptionsIndex: createVectorIndex('exceptions', process.env, embedder.dimensions),
    queues: new SqsQueueMonitor(
      aws.sqs,
      config.monitoredQueues,
      config.queueMetrics === 'cloudwatch' ? { cloudwatch: new CloudWatchClient({}) } : {},
    ),
    usage: {
      queries: new DynamoUsageStore(aws.dynamo, config.usageTable),
      dailyBudgetMicroUsd: config.dailyBudgetMicroUsd,
    },
    paginationSecret: config.paginationSecret,
    maskingSecret: config.maskingSecret,
    // Each dataset's masker, read once a minute per container (not once per request).
    datasetPolicies: datasetTriagePolicies(policies, config.bucket, config.maskingSecret),
    corsOrigins: config.corsOrigins,
    localIdentity: config.localIdentity,
    access: config.access,
    ...(config.businessEventsTopicArn
      ? { notifier: new SnsBusinessNotifier(new SNSClient({}), config.businessEventsTopicArn) }
      : {}),
    now: Date.now,
  };
}

/** Dependencies are built once, on the first request, and reused by the warm container. */
export function createHandler(makeDeps: () => QueryApiDeps | Promise<QueryApiDeps> = defaultDeps) {
  let pending: Promise<QueryApiDeps> | undefined;
  let ready: QueryApiDeps | undefined;
  const loadDeps = async () => {
    pending ??= Promise.resolve()
      .then(makeDeps)
      .catch((error: unknown) => {
        pending = undefined; // a later request tries again (and logs again) rather than caching the failure
        throw error;
      });
    ready = await pending;
    return ready;
  };

  return middy<HttpEvent, HttpResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      // First, so that the CORS middleware below can read the configured origins.
      before: async (request) => {
        logger.appendKeys({ correlationId: correlationId(request.event, request.context) });
        await loadDeps();
      },
    })
    .use(
      httpCors({
        // Origins come from the validated configuration, loaded by the middleware above.
        getOrigin: (origin) => {
          const allowed = ready?.corsOrigins ?? [];
          if (allowed.includes('*')) return '*';
          return origin && allowed.includes(origin) ? origin : null;
        },
        methods: 'GET,POST,PATCH,OPTIONS',
        headers: 'authorization,content-type',
        exposeHeaders: 'x-correlation-id',
        vary: 'Origin',
        maxAge: 600,
        disableBeforePreflightResponse: false,
      }),
    )
    .use(errorResponses(logger))
    .handler(async (event, context) => {
      const deps = ready ?? (await loadDeps());
      const method = event.requestContext.http.method;
      if (!READ_METHODS.has(method)) await refuseUnlessActive(deps.regionRole);
      const result = await dispatch(event, deps, logger);
      return { ...result, headers: { ...result.headers, 'x-correlation-id': correlationId(event, context) } };
    });
}

/** What a region that is not active still serves: every read (listing, search, health). */
const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** 503 REGION_NOT_ACTIVE for a write to a standby or fenced region (one writer at a time). */
export async function refuseUnlessActive(role: RegionRoleReader | undefined): Promise<void> {
  if (!role) return;
  const current = await role.read();
  if (current === 'active') return;
  const refused = new RegionNotActiveError(role.region, current, role.reason);
  throw new ApiError(503, refused.code, refused.message, {
    region: role.region,
    role: current,
    ...(role.reason ? { reason: role.reason } : {}),
  });
}

/** The health probe of the region role: fails unless this region is the active one. */
export function regionRoleHealthCheck(role: RegionRoleReader) {
  return {
    name: 'region_role',
    async check() {
      const current = await role.read();
      if (current !== 'active') throw new RegionNotActiveError(role.region, current, role.reason);
    },
  };
}

export const handler = createHandler();

/**
 * Called by the local stack once this function's thread is up (scripts/local/function-worker.ts),
 * never by Lambda: the local index loads before the first search instead of inside it, in slices
 * between the thread's requests (health checks and listings are not held up). At 100k hybrid
 * exceptions the load takes ~20 s a thread: inside a first search it made that search wait as
 * long, and with both query-api threads loading at once the first searches after a start ran
 * past the 29 s timeout. The local embedding model loads too (a first query waited ~1 s for it).
 * OpenSearch loads nothing.
 */
export async function warm(): Promise<{ exceptionsIndexDocuments: number | null }> {
  createEmbedder().prepare?.();
  return { exceptionsIndexDocuments: await prepareLocalIndex('exceptions') };
}

/**
 * Everything Tally runs on in one region. The primary region's stack also owns the DynamoDB
 * global tables (with replicas, and their replica key, in the secondary region); the secondary's
 * stack deploys the same pipeline against those replicas, so it can take over on failover.
 */
import { join } from 'node:path';
import type { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsKmsAlias } from '@cdktf/provider-aws/lib/data-aws-kms-alias/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter/index.js';
import {
  DLQ_RETENTION_SECONDS,
  FUNCTIONS,
  PREFIXES,
  QUEUE_NAMES,
  QUEUE_RETENTION_SECONDS,
  QUEUES,
  TOPICS,
  VISIBILITY_TIMEOUT_FACTOR,
  athenaWorkgroupName,
  awsBucketName,
  indexNames,
  regionRoleParameterName,
  resourceNames,
  searchCollectionName,
  topicName,
  type FunctionName,
  type QueueName,
} from '../../functions/shared/resources.ts';
import {
  FUNCTION_ACCESS,
  environmentFor,
  reconMemoryBudgetFor,
  streamFailureQueueName,
  searchRulesFor,
  statementsFor,
  type Deployment,
  type Resources,
} from '../access.ts';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import { stateBackend } from '../backend.ts';
import type { Bundles } from '../bundles.ts';
import { corsOriginsFor, functionSettingsFor, triageRoutesFor, type InfraConfig } from '../config.ts';
import { BusinessEventsTopic, subscribeQueue } from '../constructs/business-events.ts';
import { DataKey } from '../constructs/data-key.ts';
import { AthenaWorkgroup } from '../constructs/athena-workgroup.ts';
import { DataTables } from '../constructs/data-tables.ts';
import { EncryptedBucket } from '../constructs/encrypted-bucket.ts';
import { HttpApi } from '../constructs/http-api.ts';
import { IngestEvents } from '../constructs/ingest-events.ts';
import { PolicyCorpus } from '../constructs/policy-corpus.ts';
import { RandomSecret, replicaSecretValue } from '../constructs/random-secret.ts';
import { FailureQueue } from '../constructs/failure-queue.ts';
import { policyDocument } from '../iam.ts';
import { OnCallTopic, functionAlarms, pipelineDashboard } from '../constructs/observability.ts';
import {
  apiAlarms,
  consumerFailureAlarm,
  tableReplicationAlarm,
  triageBudgetAlarm,
  triageDegradedAlarm,
  unrecordedUploadsAlarm,
} from '../constructs/alarms.ts';
import { bedrockModelsOf } from '../../functions/triage/routing.ts';
import { DEFAULT_UNCITED_SETTLE_SECONDS } from '../../functions/triage/config.ts';
import { scheduleFunction } from '../constructs/schedule.ts';
import { QueueWithDlq } from '../constructs/queue-with-dlq.ts';
import { SearchCollection } from '../constructs/search-collection.ts';
import { FailoverSiteBucket, StaticSite } from '../constructs/static-site.ts';
import { TallyFunction } from '../constructs/tally-function.ts';

export type RegionRole = 'primary' | 'secondary';

/** The regional data key's alias (the same name in each region: S3 replication names the secondary's by it). */
export const dataKeyAlias = (prefix: string): string => `alias/${prefix}-data`;
/** The regional on-call topic (the replication stack's alarms notify the primary's by name). */
export const onCallTopicName = (prefix: string): string => `${prefix}-on-call`;

/**
 * The region role a regional stack starts its parameter with (functions/shared/region-role.ts):
 * the primary serves, the secondary waits to be promoted. Only the first apply sets it; after
 * that only an operator does (`npx tally region promote|fence`), which apply never reverts.
 */
export const INITIAL_REGION_ROLE: Readonly<Record<RegionRole, 'active' | 'standby'>> = {
  primary: 'active',
  secondary: 'standby',
};

export interface RegionalStackProps {
  readonly config: InfraConfig;
  readonly role: RegionRole;
  readonly bundles: Bundles;
}

export class RegionalStack extends TerraformStack {
  readonly region: string;
  readonly functions: Partial<Record<FunctionName, TallyFunction>>;
  readonly queues: Record<QueueName, QueueWithDlq>;
  readonly api?: HttpApi;
  readonly site?: StaticSite;

  constructor(scope: Construct, id: string, props: RegionalStackProps) {
    super(scope, id);
    const { config, role } = props;
    const region = config.regions[role];
    this.region = region;
    const prefix = config.prefix;
    const names = resourceNames(prefix);
    const tags = { app: 'tally', stack: id, region_role: role };

    new AwsProvider(this, 'aws', { region, defaultTags: [{ tags }] });
    stateBackend(this, config, id);
    const account = new DataAwsCallerIdentity(this, 'account').accountId;
    const partition = new DataAwsPartition(this, 'partition').partition;
    const arnContext = { partition, region, account };

    const dataKey = new DataKey(this, 'data-key', {
      aliasName: dataKeyAlias(prefix),
      region,
      accountId: account,
      partition,
      multiRegion: role === 'primary',
    });
    const kmsKeyArn = dataKey.key.arn;

    // Global tables: created here in the primary, with their replicas (and replica key) in the secondary.
    let owner: { replicas: { regionName: string; kmsKeyArn: string }[] } | undefined;
    // The secondary's multi-region replica of the data key: the tables' replicas there, and the
    // pagination secret's replica (created by this stack, so it can name no key of the secondary's stack).
    let secondaryReplicaKeyArn: string | undefined;
    let secondaryProvider: AwsProvider | undefined;
    // The key DynamoDB encrypts this region's tables with: the data key where they are created,
    // the replica key (created by the primary's stack, so deployed first) where they are replicas.
    let tablesKeyArn = kmsKeyArn;
    const tablesKeyAlias = `alias/${prefix}-tables`;
    if (role === 'primary') {
      const secondaryRegion = config.regions.secondary;
      const secondary = new AwsProvider(this, 'aws-secondary', {
        region: secondaryRegion,
        alias: 'secondary',
        defaultTags: [{ tags }],
      });
      const replicaKey = dataKey.replicate('tables-replica-key', secondary, {
        region: secondaryRegion,
        aliasName: tablesKeyAlias,
        accountId: account,
        partition,
      });
      owner = { replicas: [{ regionName: secondaryRegion, kmsKeyArn: replicaKey.arn }] };
      secondaryReplicaKeyArn = replicaKey.arn;
      secondaryProvider = secondary;
    } else {
      tablesKeyArn = new DataAwsKmsAlias(this, 'tables-key', { name: tablesKeyAlias }).targetKeyArn;
    }
    const dataTables = new DataTables(this, 'tables', {
      names: names.tables,
      kmsKeyArn,
      arnPrefix: `arn:${partition}:dynamodb:${region}:${account}`,
      ...(owner ? { owner } : {}),
    });
    const tables = dataTables.tables;

    const onCall = new OnCallTopic(this, 'on-call', {
      topicName: onCallTopicName(prefix),
      kmsKeyArn,
      email: config.alarmEmail,
    });
    const alarmTopicArn = onCall.topic.arn;
    // Each region's writes replicate to the other (the active one writes): the RPO of table data.
    const otherRegion = config.regions[role === 'primary' ? 'secondary' : 'primary'];
    for (const [table, ref] of Object.entries(tables))
      tableReplicationAlarm(this, `${table}-replication`, {
        prefix,
        tableName: ref.name,
        receivingRegion: otherRegion,
        topicArn: alarmTopicArn,
      });
    const businessEvents = new BusinessEventsTopic(this, 'business-events', {
      topicName: topicName('businessEvents', prefix),
      kmsKeyArn,
    }).topic;

    const bucketName = awsBucketName(prefix, region);
    const dataBucket = new EncryptedBucket(this, 'data-bucket', {
      bucketName,
      kmsKeyArn,
      expiries: [
        { prefix: PREFIXES.processed, infrequentAccessAfterDays: 30, expireAfterDays: config.retention.processedDays },
        { prefix: PREFIXES.rejected, expireAfterDays: config.retention.rejectedDays },
        { prefix: PREFIXES.results, expireAfterDays: config.retention.resultsDays },
        // The SQL engine's per-run tables and Athena's query results are read once, within the run.
        { prefix: PREFIXES.athenaScratch, expireAfterDays: 1 },
        { prefix: PREFIXES.athenaResults, expireAfterDays: 1 },
      ],
      noncurrentVersionDays: config.retention.noncurrentVersionDays,
      corsOrigins: corsOriginsFor(config),
    });
    const bucket = dataBucket.bucket;

    this.queues = {} as Record<QueueName, QueueWithDlq>;
    for (const queue of QUEUE_NAMES) {
      const consumerTimeout = functionSettingsFor(config, QUEUES[queue].consumer).timeoutSeconds;
      this.queues[queue] = new QueueWithDlq(this, `${queue}-queue`, {
        names: names.queues[queue],
        kmsKeyArn,
        // AWS guidance: >= 6x the consumer's timeout, so retries by the event source don't overlap.
        visibilityTimeoutSeconds: VISIBILITY_TIMEOUT_FACTOR * consumerTimeout,
        maxReceiveCount: QUEUES[queue].maxReceiveCount,
        retentionSeconds: QUEUE_RETENTION_SECONDS,
        dlqRetentionSeconds: DLQ_RETENTION_SECONDS,
        // A healthy consumer drains its queue well within two of its own timeouts.
        oldestMessageAlarmSeconds: Math.max(900, 2 * consumerTimeout),
        alarmTopicArn,
      });
    }
    // Each queue TOPICS names as a subscriber of the business events topic (the webhooks' consumer).
    for (const queue of TOPICS.businessEvents.subscribers)
      subscribeQueue(this, `business-events-${queue}`, { topic: businessEvents, queue: this.queues[queue] });
    const ingestEvents = new IngestEvents(this, 'ingest-events', {
      ruleName: `${prefix}-object-created`,
      bucketName,
      queue: this.queues.ingest.main,
      deadLetterQueue: this.queues.ingest.dlq,
    });
    // The triage corpus, in every region: its Object Created events reach ingest like any upload.
    new PolicyCorpus(this, 'policy-corpus', {
      bucket: bucket.id,
      kmsKeyArn,
      sourceDir: POLICIES_DIR,
      after: [dataBucket.notification, ingestEvents.target],
    });

    const athena = new AthenaWorkgroup(this, 'recon-athena', {
      name: athenaWorkgroupName(prefix),
      bucketName,
      resultsPrefix: PREFIXES.athenaResults,
      kmsKeyArn,
      // 1 TiB: far above two extracts of any size a run reads (its stages scan them a few times).
      bytesScannedCutoffPerQuery: 1024 ** 4,
    }).workgroup;

    const search = new SearchCollection(this, 'search', { collectionName: searchCollectionName(prefix), kmsKeyArn });

    // The query API signs its pagination cursors with one random key for both regions: drawn in the
    // primary, replicated by Secrets Manager to the secondary, whose stack reads the replica by name
    // (so cursors a client holds survive failover).
    const paginationSecretName = `${prefix}/query-api/pagination`;
    const paginationSecret = !props.bundles.deployed.includes('query-api')
      ? undefined
      : role === 'primary'
        ? new RandomSecret(this, 'pagination-secret', {
            name: paginationSecretName,
            kmsKeyArn,
            replicas: [{ region: config.regions.secondary, kmsKeyArn: secondaryReplicaKeyArn as string }],
          }).value
        : replicaSecretValue(this, 'pagination-secret-replica', paginationSecretName);
    // Sensitive values become tokens under this key in prompts and the index (shared/masking.ts).
    const maskingSecret = props.bundles.deployed.some((f) => f === 'triage' || f === 'query-api')
      ? new RandomSecret(this, 'masking-secret', { name: `${prefix}/masking`, kmsKeyArn }).value
      : undefined;

    // This region's role (active, standby or fenced): every function reads it; apply sets only the first value.
    const regionRole = new SsmParameter(this, 'region-role', {
      name: regionRoleParameterName(prefix),
      type: 'String',
      value: INITIAL_REGION_ROLE[role],
      description: `Tally: the role of ${region} (active, standby, fenced); changed by "npx tally region promote|fence"`,
      lifecycle: { ignoreChanges: ['value'] },
    });
    // What an operator (or the CLI's role) needs to promote or fence either region: both parameters.
    const parameterArn = (r: string) =>
      `arn:${partition}:ssm:${r}:${account}:parameter${regionRoleParameterName(prefix)}`;
    const operatorPolicy = policyDocument(this, 'region-operator-policy', [
      {
        sid: 'PromoteOrFenceRegions',
        actions: ['ssm:GetParameter', 'ssm:PutParameter'],
        resources: [parameterArn(config.regions.primary), parameterArn(config.regions.secondary)],
      },
    ]);
    new TerraformOutput(this, 'region_role_parameter', { value: regionRole.name });
    new TerraformOutput(this, 'region_operator_policy', { value: operatorPolicy.json });

    // Stream consumers' event source failure queues (a DLQ each, paging on-call like every DLQ).
    const streamFailures: Partial<Record<FunctionName, FailureQueue>> = {};
    for (const name of props.bundles.deployed) {
      if (!FUNCTION_ACCESS[name].stream) continue;
      streamFailures[name] = new FailureQueue(this, `${name}-stream-failures`, {
        name: streamFailureQueueName(prefix, name),
        kmsKeyArn,
        retentionSeconds: DLQ_RETENTION_SECONDS,
        alarmTopicArn,
        what: `stream batches ${name} failed past its retries`,
      });
    }

    const indexes = indexNames(prefix);
    const deployment: Deployment = {
      logLevel: config.logLevel,
      bucket: bucketName,
      tables: Object.fromEntries(Object.entries(tables).map(([t, ref]) => [t, ref.name])) as Deployment['tables'],
      queues: Object.fromEntries(
        QUEUE_NAMES.map((q) => [q, { main: this.queues[q].main.url, dlq: this.queues[q].dlq.url }]),
      ) as Deployment['queues'],
      topics: { businessEvents: businessEvents.arn },
      indexes,
      vectors: { opensearchEndpoint: search.collection.collectionEndpoint },
      models: config.models,
      queueMetrics: 'cloudwatch',
      // Five minutes for an upload's own event to arrive before the sweep counts it as missed.
      sweepMinAgeSeconds: 300,
      // A minute for the rest of a push of policy documents to be indexed before their uncited
      // exceptions are asked again: one model call each, with every document of the push.
      uncitedSettleSeconds: DEFAULT_UNCITED_SETTLE_SECONDS,
      webhookUrls: config.notifications.webhookUrls,
      athenaWorkgroup: athena.name,
      // Required on Lambda. With no origin configured, "none" matches no browser: CORS fails closed.
      corsOrigins: corsOriginsFor(config).length > 0 ? corsOriginsFor(config).join(',') : 'none',
      access: {
        roleClaim: config.auth.roleClaim,
        rolePrefix: config.auth.rolePrefix,
        datasetsClaim: config.auth.datasetsClaim,
      },
      ...(paginationSecret ? { paginationSecret } : {}),
      ...(maskingSecret ? { maskingSecret } : {}),
      ...(config.guardrails[region] ? { guardrail: config.guardrails[region] } : {}),
      reconMemoryBudgetBytes: reconMemoryBudgetFor(functionSettingsFor(config, 'recon').memoryMb),
      triage: {
        dailyBudgetUsd: config.triage.dailyBudgetUsd,
        ...(config.triage.routes ? { routes: JSON.stringify(config.triage.routes) } : {}),
        ...(config.triage.prices ? { prices: JSON.stringify(config.triage.prices) } : {}),
      },
      regionRoleParameter: regionRole.name,
      peerRegion: otherRegion,
    };
    const resources: Resources = {
      region,
      bucketArn: bucket.arn,
      dataKeyArn: kmsKeyArn,
      tablesKeyArn,
      tableArns: Object.fromEntries(Object.entries(tables).map(([t, ref]) => [t, ref.arn])) as Resources['tableArns'],
      queueArns: Object.fromEntries(
        QUEUE_NAMES.map((q) => [q, { main: this.queues[q].main.arn, dlq: this.queues[q].dlq.arn }]),
      ) as Resources['queueArns'],
      topicArns: { businessEvents: businessEvents.arn },
      collectionArn: search.collection.arn,
      athenaWorkgroupArn: athena.arn,
      models: config.models,
      // InvokeModel on the models the triage routes name, beside the triage and fallback models.
      routeModels: bedrockModelsOf(triageRoutesFor(config)),
      ...(config.guardrails[region] ? { guardrailId: config.guardrails[region].id } : {}),
      arnContext,
      regionRoleParameterArn: regionRole.arn,
      peerRegionRoleParameterArn: parameterArn(otherRegion),
      streamFailureQueueArns: Object.fromEntries(
        Object.entries(streamFailures).map(([name, q]) => [name, q.queue.arn]),
      ),
    };

    this.functions = {};
    for (const name of props.bundles.deployed) {
      const settings = functionSettingsFor(config, name);
      const { consumes, scheduleMinutes }: { timeoutSeconds: number; consumes?: QueueName; scheduleMinutes?: number } =
        FUNCTIONS[name];
      const functionName = `${prefix}-${name}`;
      const fn = new TallyFunction(this, name, {
        functionName,
        region,
        bundleDir: join(props.bundles.distDir, name),
        memoryMb: settings.memoryMb,
        ephemeralStorageMb: settings.ephemeralStorageMb,
        timeoutSeconds: settings.timeoutSeconds,
        environment: environmentFor(name, deployment),
        logRetentionDays: config.retention.logDays,
        kmsKeyArn,
        accountId: account,
        statements: statementsFor(name, resources),
        ...(consumes
          ? {
              source: {
                queueArn: this.queues[consumes].main.arn,
                batchSize: QUEUES[consumes].batchSize,
                maxConcurrency: settings.maxConcurrency ?? 2,
              },
            }
          : {}),
        ...(FUNCTION_ACCESS[name].stream && streamFailures[name]
          ? {
              stream: {
                streamArn: dataTables.streamArn(FUNCTION_ACCESS[name].stream.table),
                batchSize: FUNCTION_ACCESS[name].stream.batchSize,
                maxRetries: FUNCTION_ACCESS[name].stream.maxRetries,
                onFailureQueueArn: streamFailures[name].queue.arn,
              },
            }
          : {}),
      });
      functionAlarms(this, `${name}-alarms`, functionName, alarmTopicArn);
      // With partial batch responses a consumer failing every record reports no Lambda error.
      if (consumes)
        consumerFailureAlarm(this, `${name}-failed-records`, { prefix, queue: consumes, topicArn: alarmTopicArn });
      if (scheduleMinutes !== undefined)
        scheduleFunction(this, `${name}-schedule`, {
          name: `${prefix}-${name}`,
          fn: fn.function,
          everyMinutes: scheduleMinutes,
        });
      if (name === 'sweep') unrecordedUploadsAlarm(this, 'unrecorded-uploads', { prefix, topicArn: alarmTopicArn });
      this.functions[name] = fn;
    }
    search.grantDataAccess(
      props.bundles.deployed.map((name) => ({
        principal: (this.functions[name] as TallyFunction).role.arn,
        description: name,
        indexes: searchRulesFor(name, searchCollectionName(prefix), indexes),
      })),
    );

    const queryApi = this.functions['query-api'];
    if (queryApi) {
      this.api = new HttpApi(this, 'http-api', {
        apiName: `${prefix}-api`,
        handler: queryApi.function,
        jwt: { issuer: config.auth.issuer, audience: config.auth.audience },
        roles: { claim: config.auth.roleClaim, prefix: config.auth.rolePrefix },
        throttle: { ratePerSecond: config.api.throttleRatePerSecond, burst: config.api.throttleBurst },
        corsOrigins: corsOriginsFor(config),
        logRetentionDays: config.retention.logDays,
        kmsKeyArn,
        ...(config.domain
          ? { domain: { name: config.domain.apiDomainName, hostedZoneId: config.domain.hostedZoneId } }
          : {}),
      });
      new TerraformOutput(this, 'api_endpoint', { value: this.api.api.apiEndpoint });
      apiAlarms(this, 'api-alarms', { prefix, apiId: this.api.api.id, topicArn: alarmTopicArn });
    }
    if (this.functions.triage) {
      triageDegradedAlarm(this, 'triage-degraded', { prefix, topicArn: alarmTopicArn });
      triageBudgetAlarm(this, 'triage-budget', {
        prefix,
        topicArn: alarmTopicArn,
        dailyBudgetUsd: config.triage.dailyBudgetUsd,
      });
    }

    // The dashboard's static site lives once, beside the primary (CloudFront is global anyway).
    if (role === 'primary' && config.web.enabled && config.web.domainName && config.web.oidcClientId && config.domain) {
      const usEast1 = new AwsProvider(this, 'aws-us-east-1', {
        region: 'us-east-1',
        alias: 'us-east-1',
        defaultTags: [{ tags }],
      });
      const siteConfig = {
        apiUrl: `https://${config.domain.apiDomainName}`,
        auth: {
          issuer: config.auth.issuer,
          clientId: config.web.oidcClientId,
          scope: config.web.oidcScope,
          ...(config.auth.audience[0] ? { audience: config.auth.audience[0] } : {}),
        },
      };
      // The same build in the secondary region: the distribution's failover origin.
      const failover = new FailoverSiteBucket(this, 'web-secondary', {
        bucketName: `${prefix}-web-${config.regions.secondary}`,
        provider: secondaryProvider as AwsProvider,
        webDir: join(props.bundles.distDir, 'web'),
        site: siteConfig,
      });
      this.site = new StaticSite(this, 'web', {
        bucketName: `${prefix}-web-${region}`,
        domainName: config.web.domainName,
        hostedZoneId: config.domain.hostedZoneId,
        usEast1,
        webDir: join(props.bundles.distDir, 'web'),
        site: siteConfig,
        failover,
      });
      new TerraformOutput(this, 'web_url', { value: `https://${config.web.domainName}/` });
      new TerraformOutput(this, 'web_distribution_domain', { value: this.site.distribution.domainName });
    }

    pipelineDashboard(this, 'dashboard', {
      dashboardName: `${prefix}-pipeline-${region}`,
      region,
      queues: QUEUE_NAMES.map((q) => names.queues[q]),
      functions: props.bundles.deployed.map((name) => `${prefix}-${name}`),
    });

    new TerraformOutput(this, 'bucket', { value: bucketName });
    new TerraformOutput(this, 'on_call_topic_arn', { value: alarmTopicArn });
    new TerraformOutput(this, 'search_endpoint', { value: search.collection.collectionEndpoint });
  }
}

/**
 * Everything Tally runs on in one region. The primary region's stack also owns the DynamoDB
 * global tables (with replicas, and their replica key, in the secondary region); the secondary's
 * stack deploys the same pipeline against those replicas, so it can take over on failover.
 */
import { join } from 'node:path';
import type { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import {
  DLQ_RETENTION_SECONDS,
  ENV,
  FUNCTIONS,
  PREFIXES,
  QUEUE_NAMES,
  QUEUE_RETENTION_SECONDS,
  QUEUES,
  VISIBILITY_TIMEOUT_FACTOR,
  awsBucketName,
  indexNames,
  resourceNames,
  searchCollectionName,
  type FunctionName,
  type QueueName,
  type TableName,
} from '../../functions/shared/resources.ts';
import {
  FUNCTION_ACCESS,
  QUEUE_URL_ENV,
  TABLE_ACTIONS,
  TABLE_ENV,
  bedrockModelArns,
  type ModelRole,
} from '../access.ts';
import { stateBackend } from '../backend.ts';
import type { Bundles } from '../bundles.ts';
import { corsOriginsFor, functionSettingsFor, type InfraConfig } from '../config.ts';
import { sid, type Statement } from '../iam.ts';
import { DataKey } from '../constructs/data-key.ts';
import { DataTables, type TableRef } from '../constructs/data-tables.ts';
import { EncryptedBucket } from '../constructs/encrypted-bucket.ts';
import { HttpApi } from '../constructs/http-api.ts';
import { IngestEvents } from '../constructs/ingest-events.ts';
import { PaginationSecret } from '../constructs/pagination-secret.ts';
import { OnCallTopic, functionAlarms, pipelineDashboard } from '../constructs/observability.ts';
import { apiAlarms, consumerFailureAlarm, triageDegradedAlarm } from '../constructs/alarms.ts';
import { QueueWithDlq } from '../constructs/queue-with-dlq.ts';
import { SearchCollection } from '../constructs/search-collection.ts';
import { StaticSite } from '../constructs/static-site.ts';
import { TallyFunction } from '../constructs/tally-function.ts';

export type RegionRole = 'primary' | 'secondary';

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
      aliasName: `alias/${prefix}-data`,
      region,
      accountId: account,
      partition,
      multiRegion: role === 'primary',
    });
    const kmsKeyArn = dataKey.key.arn;

    // Global tables: created here in the primary, with their replicas (and replica key) in the secondary.
    let owner: { replicas: { regionName: string; kmsKeyArn: string }[] } | undefined;
    if (role === 'primary') {
      const secondaryRegion = config.regions.secondary;
      const secondary = new AwsProvider(this, 'aws-secondary', {
        region: secondaryRegion,
        alias: 'secondary',
        defaultTags: [{ tags }],
      });
      const replicaKey = dataKey.replicate('tables-replica-key', secondary, {
        region: secondaryRegion,
        aliasName: `alias/${prefix}-tables`,
        accountId: account,
        partition,
      });
      owner = { replicas: [{ regionName: secondaryRegion, kmsKeyArn: replicaKey.arn }] };
    }
    const tables = new DataTables(this, 'tables', {
      names: names.tables,
      kmsKeyArn,
      arnPrefix: `arn:${partition}:dynamodb:${region}:${account}`,
      ...(owner ? { owner } : {}),
    }).tables;

    const onCall = new OnCallTopic(this, 'on-call', {
      topicName: `${prefix}-on-call`,
      kmsKeyArn,
      email: config.alarmEmail,
    });
    const alarmTopicArn = onCall.topic.arn;

    const bucketName = awsBucketName(prefix, region);
    const bucket = new EncryptedBucket(this, 'data-bucket', {
      bucketName,
      kmsKeyArn,
      expiries: [
        { prefix: PREFIXES.processed, infrequentAccessAfterDays: 30, expireAfterDays: config.retention.processedDays },
        { prefix: PREFIXES.rejected, expireAfterDays: config.retention.rejectedDays },
      ],
      noncurrentVersionDays: config.retention.noncurrentVersionDays,
      corsOrigins: corsOriginsFor(config),
    }).bucket;

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
    new IngestEvents(this, 'ingest-events', {
      ruleName: `${prefix}-object-created`,
      bucketName,
      queue: this.queues.ingest.main,
      deadLetterQueue: this.queues.ingest.dlq,
    });

    const search = new SearchCollection(this, 'search', { collectionName: searchCollectionName(prefix), kmsKeyArn });

    // The query API signs its pagination cursors with a per-region random key.
    const paginationSecret = props.bundles.deployed.includes('query-api')
      ? new PaginationSecret(this, 'pagination-secret', { name: `${prefix}/query-api/pagination`, kmsKeyArn }).value
      : undefined;

    this.functions = {};
    for (const name of props.bundles.deployed) {
      const settings = functionSettingsFor(config, name);
      const { consumes, maxConcurrency }: { timeoutSeconds: number; consumes?: QueueName; maxConcurrency?: number } =
        FUNCTIONS[name];
      const wiring = {
        bucketName,
        bucketArn: bucket.arn,
        kmsKeyArn,
        tables,
        queues: this.queues,
        collectionArn: search.collection.arn,
        collectionEndpoint: search.collection.collectionEndpoint,
        arnContext,
        config,
        ...(paginationSecret ? { paginationSecret } : {}),
      };
      const functionName = `${prefix}-${name}`;
      const fn = new TallyFunction(this, name, {
        functionName,
        region,
        bundleDir: join(props.bundles.distDir, name),
        memoryMb: settings.memoryMb,
        timeoutSeconds: settings.timeoutSeconds,
        environment: environmentFor(name, consumes, wiring),
        logRetentionDays: config.retention.logDays,
        kmsKeyArn,
        accountId: account,
        statements: statementsFor(name, consumes, wiring),
        ...(consumes
          ? {
              source: {
                queueArn: this.queues[consumes].main.arn,
                batchSize: QUEUES[consumes].batchSize,
                maxConcurrency: maxConcurrency ?? 2,
              },
            }
          : {}),
      });
      functionAlarms(this, `${name}-alarms`, functionName, alarmTopicArn);
      // With partial batch responses a consumer failing every record reports no Lambda error.
      if (consumes)
        consumerFailureAlarm(this, `${name}-failed-records`, { prefix, queue: consumes, topicArn: alarmTopicArn });
      this.functions[name] = fn;
    }
    const rolesWith = (level: 'read' | 'readWrite') =>
      props.bundles.deployed
        .filter((name) => FUNCTION_ACCESS[name].search === level)
        .map((name) => (this.functions[name] as TallyFunction).role.arn);
    search.grantDataAccess({ readers: rolesWith('read'), writers: rolesWith('readWrite') });

    const queryApi = this.functions['query-api'];
    if (queryApi) {
      this.api = new HttpApi(this, 'http-api', {
        apiName: `${prefix}-api`,
        handler: queryApi.function,
        jwt: config.auth,
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
    if (this.functions.triage) triageDegradedAlarm(this, 'triage-degraded', { prefix, topicArn: alarmTopicArn });

    // The dashboard's static site lives once, beside the primary (CloudFront is global anyway).
    if (role === 'primary' && config.web.enabled && config.web.domainName && config.web.oidcClientId && config.domain) {
      const usEast1 = new AwsProvider(this, 'aws-us-east-1', {
        region: 'us-east-1',
        alias: 'us-east-1',
        defaultTags: [{ tags }],
      });
      this.site = new StaticSite(this, 'web', {
        bucketName: `${prefix}-web-${region}`,
        domainName: config.web.domainName,
        hostedZoneId: config.domain.hostedZoneId,
        usEast1,
        webDir: join(props.bundles.distDir, 'web'),
        site: {
          apiUrl: `https://${config.domain.apiDomainName}`,
          auth: {
            issuer: config.auth.issuer,
            clientId: config.web.oidcClientId,
            scope: config.web.oidcScope,
            ...(config.auth.audience[0] ? { audience: config.auth.audience[0] } : {}),
          },
        },
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

interface Wiring {
  readonly bucketName: string;
  readonly bucketArn: string;
  readonly kmsKeyArn: string;
  readonly tables: Readonly<Record<TableName, TableRef>>;
  readonly queues: Readonly<Record<QueueName, QueueWithDlq>>;
  readonly collectionArn: string;
  readonly collectionEndpoint: string;
  readonly arnContext: { partition: string; region: string; account: string };
  readonly config: InfraConfig;
  readonly paginationSecret?: string;
}

/** Only the names the function needs; never AWS_ENDPOINT_URL_* (that is local mode's doing). */
export function environmentFor(name: FunctionName, consumes: QueueName | undefined, w: Wiring): Record<string, string> {
  const access = FUNCTION_ACCESS[name];
  const env: Record<string, string> = { [ENV.logLevel]: w.config.logLevel, POWERTOOLS_SERVICE_NAME: name };
  if (access.objects) env[ENV.bucket] = w.bucketName;
  for (const table of Object.keys(access.tables ?? {}) as TableName[]) env[TABLE_ENV[table]] = w.tables[table].name;
  for (const queue of access.sendsTo ?? []) {
    const variable = QUEUE_URL_ENV[queue];
    if (variable) env[variable] = w.queues[queue].main.url;
  }
  const models = new Set<ModelRole>(access.models ?? []);
  if (models.has('triage')) {
    // Primary model, then the fallback model, then the deterministic rules.
    env[ENV.triageProviders] = [
      `bedrock:${w.config.models.triage}`,
      ...(models.has('fallback') ? [`bedrock:${w.config.models.fallback}`] : []),
      'rules',
    ].join(',');
  }
  if (models.has('embedding')) {
    env[ENV.embedder] = 'bedrock-titan';
    env[ENV.embeddingModelId] = w.config.models.embedding;
  }
  if (access.search) {
    const indexes = indexNames(w.config.prefix);
    env[ENV.vectorStore] = 'opensearch';
    env[ENV.opensearchEndpoint] = w.collectionEndpoint;
    env[ENV.exceptionsIndex] = indexes.exceptions;
    env[ENV.policiesIndex] = indexes.policies;
  }
  if (consumes) env[ENV.failuresTable] = w.tables.failures.name;
  if (access.monitorsQueues) {
    env[ENV.monitoredQueues] = JSON.stringify(
      Object.fromEntries(
        Object.entries(w.queues).map(([q, queue]) => [q, { main: queue.main.url, dlq: queue.dlq.url }]),
      ),
    );
    env[ENV.queueMetrics] = 'cloudwatch';
  }
  if (name === 'query-api') {
    // Required on Lambda. With no origin configured, "none" matches no browser: CORS fails closed.
    const origins = corsOriginsFor(w.config);
    env[ENV.corsOrigins] = origins.length > 0 ? origins.join(',') : 'none';
    if (w.paginationSecret) env[ENV.paginationSecret] = w.paginationSecret;
  }
  return env;
}

/** The function's own statements: each names the actions it uses on the resources it uses. */
export function statementsFor(name: FunctionName, consumes: QueueName | undefined, w: Wiring): Statement[] {
  const access = FUNCTION_ACCESS[name];
  const statements: Statement[] = [];
  const keyActions = new Set<string>();
  for (const prefix of access.objects?.read ?? []) {
    statements.push({
      sid: sid('Read', prefix, 'objects'),
      actions: ['s3:GetObject'],
      resources: [`${w.bucketArn}/${PREFIXES[prefix]}*`],
    });
    keyActions.add('kms:Decrypt');
  }
  for (const prefix of access.objects?.write ?? []) {
    statements.push({
      sid: sid('Write', prefix, 'objects'),
      actions: ['s3:PutObject'],
      resources: [`${w.bucketArn}/${PREFIXES[prefix]}*`],
    });
    keyActions.add('kms:GenerateDataKey');
  }
  if (access.objects?.probeBucket)
    statements.push({ sid: 'ProbeBucket', actions: ['s3:ListBucket'], resources: [w.bucketArn] });
  for (const [table, level] of Object.entries(access.tables ?? {}) as [TableName, 'read' | 'readWrite'][]) {
    const ref = w.tables[table];
    statements.push({
      sid: sid(level === 'read' ? 'Read' : 'ReadWrite', table, 'table'),
      actions: [...TABLE_ACTIONS[level]],
      resources: [ref.arn, `${ref.arn}/index/*`],
    });
  }
  for (const queue of access.sendsTo ?? []) {
    statements.push({
      sid: sid('SendTo', queue, 'queue'),
      actions: ['sqs:SendMessage'],
      resources: [w.queues[queue].main.arn],
    });
    keyActions.add('kms:GenerateDataKey').add('kms:Decrypt');
  }
  if (consumes) {
    keyActions.add('kms:Decrypt');
    // Why a message failed, for `tally dlq` (functions/shared/sqs-batch.ts records it).
    statements.push({
      sid: 'RecordMessageFailures',
      actions: ['dynamodb:UpdateItem'],
      resources: [w.tables.failures.arn],
    });
  }
  if (keyActions.size > 0)
    statements.push({ sid: 'UseDataKey', actions: [...keyActions].sort(), resources: [w.kmsKeyArn] });
  const modelIds = [...new Set((access.models ?? []).map((role) => w.config.models[role]))];
  if (modelIds.length > 0) {
    statements.push({
      sid: 'InvokeConfiguredModels',
      actions: ['bedrock:InvokeModel'],
      resources: modelIds.flatMap((id) => bedrockModelArns(id, w.arnContext)),
    });
  }
  if (access.monitorsQueues) {
    const arns = Object.values(w.queues).flatMap((q) => [q.main.arn, q.dlq.arn]);
    statements.push({ sid: 'ReadQueueDepths', actions: ['sqs:GetQueueAttributes'], resources: arns });
    // GetMetricData has no resource-level permissions: "*" is the only resource IAM accepts.
    statements.push({ sid: 'ReadQueueAgeMetrics', actions: ['cloudwatch:GetMetricData'], resources: ['*'] });
  }
  if (access.search) {
    // IAM admits the call to the collection; the data access policy decides what it may do there.
    statements.push({ sid: 'CallSearchCollection', actions: ['aoss:APIAccessAll'], resources: [w.collectionArn] });
  }
  return statements;
}

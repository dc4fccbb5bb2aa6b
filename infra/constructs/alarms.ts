/**
 * Alarms that see failures the Lambda `Errors` metric cannot: with partial batch responses a
 * consumer whose every record fails still reports no error, so each consumer alarms on its own
 * FailedRecords count; the API on 5xx answers and p95 latency; triage on the share of degraded
 * answers and on a spent daily budget; the failover health check on its status. Every alarm's description names its runbook.
 */
import type { Construct } from 'constructs';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { METRICS, QUEUES, type QueueName } from '../../functions/shared/resources.ts';

/** One runbook page per alarm kind (docs/runbooks/); test/infra checks each exists. */
export const RUNBOOKS = {
  dlqDepth: 'docs/runbooks/dlq-depth.md',
  queueAge: 'docs/runbooks/queue-age.md',
  functionErrors: 'docs/runbooks/function-errors.md',
  consumerFailures: 'docs/runbooks/consumer-failures.md',
  apiErrors: 'docs/runbooks/api-errors.md',
  triageDegraded: 'docs/runbooks/triage-degraded.md',
  triageBudget: 'docs/runbooks/triage-budget.md',
  healthCheck: 'docs/runbooks/health-check.md',
  unrecordedUploads: 'docs/runbooks/unrecorded-uploads.md',
  replication: 'docs/runbooks/replication.md',
} as const;
export type RunbookKind = keyof typeof RUNBOOKS;

/** "<what>: see <runbook>": the one form of every alarm description. */
export function describeAlarm(what: string, runbook: RunbookKind): string {
  return `${what}: see ${RUNBOOKS[runbook]}`;
}

function notify(topicArn: string) {
  return { alarmActions: [topicArn], okActions: [topicArn] };
}

/** Any record a consumer failed in five minutes (it will be retried; a pattern needs a person). */
export function consumerFailureAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; queue: QueueName; topicArn: string },
): CloudwatchMetricAlarm {
  const service = QUEUES[props.queue].consumer;
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.prefix}-${service}-failed-records`,
    alarmDescription: describeAlarm(
      `${service}: records failed (partial batch failures) in 5 minutes`,
      'consumerFailures',
    ),
    namespace: METRICS.namespace,
    metricName: METRICS.failedRecords.name,
    // Powertools adds `service` (the emitting function) to every metric.
    dimensions: { service },
    statistic: 'Sum',
    period: 300,
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: 0,
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  });
}

/** API Gateway HTTP API: any 5xx in five minutes, and p95 latency above 3 s for 15 minutes. */
export function apiAlarms(
  scope: Construct,
  id: string,
  props: { prefix: string; apiId: string; topicArn: string; p95LatencyMs?: number },
): CloudwatchMetricAlarm[] {
  const common = {
    namespace: 'AWS/ApiGateway',
    dimensions: { ApiId: props.apiId },
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  };
  const latency = props.p95LatencyMs ?? 3000;
  return [
    new CloudwatchMetricAlarm(scope, `${id}-5xx`, {
      alarmName: `${props.prefix}-api-5xx`,
      alarmDescription: describeAlarm('query API answered 5xx in 5 minutes', 'apiErrors'),
      metricName: '5xx',
      statistic: 'Sum',
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: 0,
      ...common,
    }),
    new CloudwatchMetricAlarm(scope, `${id}-latency`, {
      alarmName: `${props.prefix}-api-latency-p95`,
      alarmDescription: describeAlarm(`query API p95 latency above ${latency} ms for 15 minutes`, 'apiErrors'),
      metricName: 'Latency',
      extendedStatistic: 'p95',
      period: 300,
      evaluationPeriods: 3,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: latency,
      ...common,
    }),
  ];
}

/**
 * More than `share` of the triages in 15 minutes fell back to rules after a model failed (models
 * unreachable, throttled for long, or answering outside the schema). Quiet when nothing is triaged.
 */
export function triageDegradedAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; topicArn: string; share?: number },
): CloudwatchMetricAlarm {
  const share = props.share ?? 0.2;
  const metric = (name: string) => ({
    metric: {
      namespace: METRICS.namespace,
      metricName: name,
      dimensions: { service: QUEUES.triage.consumer },
      period: 900,
      stat: 'Sum',
    },
  });
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.prefix}-triage-degraded`,
    alarmDescription: describeAlarm(
      `more than ${share * 100}% of triages degraded to rules in 15 minutes`,
      'triageDegraded',
    ),
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: share,
    treatMissingData: 'notBreaching',
    metricQuery: [
      { id: 'degraded', returnData: false, ...metric(METRICS.triageDegraded.name) },
      { id: 'total', returnData: false, ...metric(METRICS.triages.name) },
      { id: 'share', expression: 'IF(total > 0, degraded / total, 0)', label: 'degraded share', returnData: true },
    ],
    ...notify(props.topicArn),
  });
}

/**
 * The day's triage budget is spent: triage answered with the rules (degraded, reason "budget")
 * at least once in five minutes. It stays in alarm while new exceptions arrive that day, and
 * clears at the next UTC day or when the budget is raised.
 */
export function triageBudgetAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; topicArn: string; dailyBudgetUsd: number },
): CloudwatchMetricAlarm {
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.prefix}-triage-budget`,
    alarmDescription: describeAlarm(
      `the daily triage budget (${props.dailyBudgetUsd} USD) is spent: triage answers with the rules`,
      'triageBudget',
    ),
    namespace: METRICS.namespace,
    metricName: METRICS.triageBudgetExceeded.name,
    dimensions: { service: QUEUES.triage.consumer },
    statistic: 'Sum',
    period: 300,
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: 0,
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  });
}

/** Route 53 health check of the primary's /health (its metrics exist only in us-east-1). */
export function healthCheckAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; healthCheckId: string; topicArn: string },
): CloudwatchMetricAlarm {
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.prefix}-primary-health-check`,
    alarmDescription: describeAlarm(
      'the primary region failed its Route 53 health check: traffic is failing over',
      'healthCheck',
    ),
    namespace: 'AWS/Route53',
    metricName: 'HealthCheckStatus',
    dimensions: { HealthCheckId: props.healthCheckId },
    statistic: 'Minimum',
    period: 60,
    evaluationPeriods: 2,
    comparisonOperator: 'LessThanThreshold',
    threshold: 1,
    // No data from the health checkers is itself a failure to see.
    treatMissingData: 'breaching',
    ...notify(props.topicArn),
  });
}

/** The sweep found uploads whose Object Created event never reached ingest (it re-sent them). */
export function unrecordedUploadsAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; topicArn: string },
): CloudwatchMetricAlarm {
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.prefix}-unrecorded-uploads`,
    alarmDescription: describeAlarm('the sweep found uploads whose event never reached ingest', 'unrecordedUploads'),
    namespace: METRICS.namespace,
    metricName: METRICS.unrecordedUploads.name,
    dimensions: { service: 'sweep' },
    statistic: 'Sum',
    period: 900,
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanThreshold',
    threshold: 0,
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  });
}

/**
 * S3 replication of one rule (a prefix) to the secondary: an object waiting longer than the
 * Replication Time Control threshold (15 minutes: what the secondary holds is that far behind, and
 * the RPO of uploads with it), and any replication that failed (a key or role problem: the object
 * will not arrive by itself). The metrics live in the source bucket's region.
 */
export function replicationAlarms(
  scope: Construct,
  id: string,
  props: {
    prefix: string;
    sourceBucket: string;
    destinationBucket: string;
    ruleId: string;
    thresholdSeconds: number;
    topicArn: string;
  },
): CloudwatchMetricAlarm[] {
  const common = {
    namespace: 'AWS/S3',
    dimensions: { SourceBucket: props.sourceBucket, DestinationBucket: props.destinationBucket, RuleId: props.ruleId },
    period: 300,
    comparisonOperator: 'GreaterThanThreshold',
    // No metric: nothing was uploaded to replicate.
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  };
  return [
    new CloudwatchMetricAlarm(scope, `${id}-latency`, {
      alarmName: `${props.prefix}-${props.ruleId}-latency`,
      alarmDescription: describeAlarm(
        `${props.ruleId}: objects took over ${props.thresholdSeconds} s to reach ${props.destinationBucket}`,
        'replication',
      ),
      metricName: 'ReplicationLatency',
      statistic: 'Maximum',
      evaluationPeriods: 1,
      threshold: props.thresholdSeconds,
      ...common,
    }),
    new CloudwatchMetricAlarm(scope, `${id}-failed`, {
      alarmName: `${props.prefix}-${props.ruleId}-failed`,
      alarmDescription: describeAlarm(
        `${props.ruleId}: objects failed to replicate to ${props.destinationBucket}`,
        'replication',
      ),
      metricName: 'OperationsFailedReplication',
      statistic: 'Sum',
      evaluationPeriods: 1,
      threshold: 0,
      ...common,
    }),
  ];
}

/**
 * DynamoDB global tables: changes of this region's replica take over a minute to reach the other
 * region (`ReplicationLatency`, published where the change was made): the RPO of table data
 * (docs/failover.md) no longer holds. Quiet while nothing is written.
 */
export function tableReplicationAlarm(
  scope: Construct,
  id: string,
  props: { prefix: string; tableName: string; receivingRegion: string; topicArn: string; thresholdMs?: number },
): CloudwatchMetricAlarm {
  const threshold = props.thresholdMs ?? 60_000;
  return new CloudwatchMetricAlarm(scope, id, {
    alarmName: `${props.tableName}-replication-to-${props.receivingRegion}`,
    alarmDescription: describeAlarm(
      `${props.tableName}: changes take over ${threshold / 1000} s to replicate to ${props.receivingRegion}`,
      'replication',
    ),
    namespace: 'AWS/DynamoDB',
    metricName: 'ReplicationLatency',
    dimensions: { TableName: props.tableName, ReceivingRegion: props.receivingRegion },
    statistic: 'Average',
    period: 300,
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanThreshold',
    threshold,
    treatMissingData: 'notBreaching',
    ...notify(props.topicArn),
  });
}

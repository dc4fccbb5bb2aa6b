/**
 * On-call: one encrypted SNS topic every alarm notifies (e-mail subscription from config),
 * error and throttle alarms per function, and one dashboard for the pipeline's health.
 */
import { Construct } from 'constructs';
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { METRICS, QUEUES, type MetricKey } from '../../functions/shared/resources.ts';

const CONSUMERS = Object.values(QUEUES).map((q) => q.consumer);
import { describeAlarm } from './alarms.ts';

export class OnCallTopic extends Construct {
  readonly topic: SnsTopic;

  constructor(
    scope: Construct,
    id: string,
    props: { topicName: string; kmsKeyArn: string; email?: string | undefined },
  ) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'topic', { name: props.topicName, kmsMasterKeyId: props.kmsKeyArn });
    if (props.email) {
      // The recipient confirms the subscription from the e-mail AWS sends.
      new SnsTopicSubscription(this, 'email', { topicArn: this.topic.arn, protocol: 'email', endpoint: props.email });
    }
  }
}

/** Any error or throttle in five minutes pages: the pipeline retries, but someone should know. */
export function functionAlarms(scope: Construct, id: string, functionName: string, topicArn: string): void {
  for (const metric of ['Errors', 'Throttles'] as const) {
    new CloudwatchMetricAlarm(scope, `${id}-${metric.toLowerCase()}`, {
      alarmName: `${functionName}-${metric.toLowerCase()}`,
      alarmDescription: describeAlarm(`${functionName}: ${metric} > 0 in 5 minutes`, 'functionErrors'),
      namespace: 'AWS/Lambda',
      metricName: metric,
      dimensions: { FunctionName: functionName },
      statistic: 'Sum',
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: 0,
      treatMissingData: 'notBreaching',
      alarmActions: [topicArn],
      okActions: [topicArn],
    });
  }
}

export interface DashboardProps {
  readonly dashboardName: string;
  readonly region: string;
  readonly queues: readonly { main: string; dlq: string }[];
  readonly functions: readonly string[];
}

export function pipelineDashboard(scope: Construct, id: string, props: DashboardProps): CloudwatchDashboard {
  const graph = (title: string, metrics: unknown[], stat: string, x: number, y: number) => ({
    type: 'metric',
    x,
    y,
    width: 12,
    height: 6,
    properties: { title, region: props.region, view: 'timeSeries', stat, period: 300, metrics },
  });
  /** Every value of a metric's one dimension (plus `service`, which Powertools adds). */
  const byDimension = (key: 'exceptions' | 'triage' | 'filesIngested') => {
    const { name, dimension } = METRICS[key];
    const expression = `SEARCH('{${METRICS.namespace},${dimension},service} MetricName="${name}"', 'Sum', 300)`;
    // A dashboard metric entry is an array; an expression is an object inside one.
    return [[{ expression, label: name, id: name.toLowerCase() }]];
  };
  const plain = (service: string, key: MetricKey) => [METRICS.namespace, METRICS[key].name, 'service', service];
  const widgets = [
    graph(
      'Queue depth',
      props.queues.map((q) => ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', q.main]),
      'Maximum',
      0,
      0,
    ),
    graph(
      'DLQ depth (page when > 0)',
      props.queues.map((q) => ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', q.dlq]),
      'Maximum',
      12,
      0,
    ),
    graph(
      'Function errors',
      props.functions.map((f) => ['AWS/Lambda', 'Errors', 'FunctionName', f]),
      'Sum',
      0,
      6,
    ),
    graph(
      'Function duration p95 (ms)',
      props.functions.map((f) => ['AWS/Lambda', 'Duration', 'FunctionName', f]),
      'p95',
      12,
      6,
    ),
    graph('Exceptions by type', byDimension('exceptions'), 'Sum', 0, 12),
    graph('Triage by provider', byDimension('triage'), 'Sum', 12, 12),
    graph('Files ingested by status', byDimension('filesIngested'), 'Sum', 0, 18),
    // A run completes (and its exceptions are counted) in the store consumer that stores its last chunk.
    graph(
      'Rows; exceptions stored cut to fit one item',
      [plain('ingest-worker', 'rowsAccepted'), plain('store', 'rowsRejected'), plain('store', 'exceptionsCut')],
      'Sum',
      12,
      18,
    ),
    graph(
      'Runs',
      [plain('store', 'runsCompleted'), plain('recon', 'runsFailed'), plain('store', 'runsHeld')],
      'Sum',
      0,
      24,
    ),
    graph(
      'Triage: all and degraded to rules',
      [plain('triage', 'triages'), plain('triage', 'triageDegraded')],
      'Sum',
      12,
      24,
    ),
    graph(
      'Failed and dead-lettered records (per consumer)',
      CONSUMERS.flatMap((service) => [plain(service, 'failedRecords'), plain(service, 'deadLettered')]),
      'Sum',
      0,
      30,
    ),
    graph(
      'Duplicate deliveries suppressed; replica events a standby released',
      [plain('ingest-worker', 'duplicatesSuppressed'), plain('ingest-worker', 'replicaEventsReleased')],
      'Sum',
      12,
      30,
    ),
    graph('Unrecorded uploads found by the sweep', [plain('sweep', 'unrecordedUploads')], 'Sum', 0, 36),
    graph(
      'Triage cost (micro-USD) and answers for a spent budget',
      [plain('triage', 'triageCost'), plain('triage', 'triageBudgetExceeded')],
      'Sum',
      12,
      36,
    ),
    graph(
      'Late arrivals promoted and exceptions overdue',
      [plain('deadlines', 'lateArrivalsPromoted'), plain('deadlines', 'exceptionsOverdue')],
      'Sum',
      0,
      42,
    ),
  ];
  return new CloudwatchDashboard(scope, id, {
    dashboardName: props.dashboardName,
    dashboardBody: JSON.stringify({ widgets }),
  });
}

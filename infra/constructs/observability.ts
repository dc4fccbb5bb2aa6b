/**
 * On-call: one encrypted SNS topic every alarm notifies (e-mail subscription from config),
 * error and throttle alarms per function, and one dashboard for the pipeline's health.
 */
import { Construct } from 'constructs';
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { METRICS } from '../../functions/shared/resources.ts';

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
      alarmDescription: `${functionName}: ${metric} > 0 in 5 minutes`,
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
  const search = (expression: string, label: string) => [
    { expression, label, id: label.toLowerCase().replace(/\W+/g, '_') },
  ];
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
    graph(
      'Exceptions by type',
      search(
        `SEARCH('{${METRICS.namespace},${METRICS.exceptions.dimension}} MetricName="${METRICS.exceptions.name}"', 'Sum', 300)`,
        'Exceptions',
      ),
      'Sum',
      0,
      12,
    ),
    graph(
      'Triage by provider',
      search(
        `SEARCH('{${METRICS.namespace},${METRICS.triage.dimension}} MetricName="${METRICS.triage.name}"', 'Sum', 300)`,
        'Triage',
      ),
      'Sum',
      12,
      12,
    ),
  ];
  return new CloudwatchDashboard(scope, id, {
    dashboardName: props.dashboardName,
    dashboardBody: JSON.stringify({ widgets }),
  });
}

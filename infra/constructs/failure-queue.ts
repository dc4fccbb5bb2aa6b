/**
 * A dead-letter queue with no source queue: where a stream event source mapping sends the
 * description of a batch it gave up on (shard, sequence numbers, not the records). Encrypted,
 * kept as long as every DLQ, and paging on-call as soon as it holds a message, like every DLQ.
 */
import { Construct } from 'constructs';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue/index.js';
import { describeAlarm } from './alarms.ts';

export interface FailureQueueProps {
  readonly name: string;
  readonly kmsKeyArn: string;
  readonly retentionSeconds: number;
  readonly alarmTopicArn: string;
  /** What the alarm says arrived, e.g. "stream-index batches it gave up on". */
  readonly what: string;
}

export class FailureQueue extends Construct {
  readonly queue: SqsQueue;

  constructor(scope: Construct, id: string, props: FailureQueueProps) {
    super(scope, id);
    this.queue = new SqsQueue(this, 'queue', {
      name: props.name,
      messageRetentionSeconds: props.retentionSeconds,
      kmsMasterKeyId: props.kmsKeyArn,
      kmsDataKeyReusePeriodSeconds: 300,
    });
    new CloudwatchMetricAlarm(this, 'depth', {
      alarmName: `${props.name}-not-empty`,
      alarmDescription: describeAlarm(`Messages in ${props.name} (${props.what})`, 'dlqDepth'),
      namespace: 'AWS/SQS',
      metricName: 'ApproximateNumberOfMessagesVisible',
      dimensions: { QueueName: props.name },
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 1,
      comparisonOperator: 'GreaterThanThreshold',
      threshold: 0,
      treatMissingData: 'notBreaching',
      alarmActions: [props.alarmTopicArn],
      okActions: [props.alarmTopicArn],
    });
  }
}

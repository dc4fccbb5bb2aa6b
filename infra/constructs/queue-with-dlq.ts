/**
 * The house queue: an encrypted main queue whose failures go, after maxReceiveCount receives,
 * to an encrypted DLQ that keeps them longer than the source would, and two alarms to on-call —
 * anything in the DLQ, and a main queue whose oldest message is getting old (a stuck consumer).
 */
import { Construct } from 'constructs';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { describeAlarm } from './alarms.ts';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue/index.js';
import { SqsQueueRedriveAllowPolicy } from '@cdktf/provider-aws/lib/sqs-queue-redrive-allow-policy/index.js';

export interface QueueWithDlqProps {
  readonly names: { readonly main: string; readonly dlq: string };
  readonly kmsKeyArn: string;
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly retentionSeconds: number;
  readonly dlqRetentionSeconds: number;
  readonly oldestMessageAlarmSeconds: number;
  readonly alarmTopicArn: string;
}

export class QueueWithDlq extends Construct {
  readonly main: SqsQueue;
  readonly dlq: SqsQueue;

  constructor(scope: Construct, id: string, props: QueueWithDlqProps) {
    super(scope, id);
    if (props.maxReceiveCount < 5)
      throw new Error(
        `${props.names.main}: maxReceiveCount ${props.maxReceiveCount} < 5 would dead-letter messages on brief throttling`,
      );
    if (props.dlqRetentionSeconds <= props.retentionSeconds)
      throw new Error(`${props.names.dlq}: DLQ retention must outlast the source queue's`);
    const encryption = {
      kmsMasterKeyId: props.kmsKeyArn,
      // Fewer KMS calls (and cost) per message; five minutes is the AWS default reuse period.
      kmsDataKeyReusePeriodSeconds: 300,
    };
    this.dlq = new SqsQueue(this, 'dlq', {
      name: props.names.dlq,
      messageRetentionSeconds: props.dlqRetentionSeconds,
      ...encryption,
    });
    this.main = new SqsQueue(this, 'main', {
      name: props.names.main,
      visibilityTimeoutSeconds: props.visibilityTimeoutSeconds,
      messageRetentionSeconds: props.retentionSeconds,
      // Long polling: fewer empty receives from the event source mapping.
      receiveWaitTimeSeconds: 20,
      redrivePolicy: JSON.stringify({ deadLetterTargetArn: this.dlq.arn, maxReceiveCount: props.maxReceiveCount }),
      ...encryption,
    });
    // Only this queue may dead-letter into this DLQ (a separate resource: the DLQ exists first).
    new SqsQueueRedriveAllowPolicy(this, 'dlq-allow', {
      queueUrl: this.dlq.url,
      redriveAllowPolicy: JSON.stringify({ redrivePermission: 'byQueue', sourceQueueArns: [this.main.arn] }),
    });

    const alarm = {
      alarmActions: [props.alarmTopicArn],
      okActions: [props.alarmTopicArn],
      treatMissingData: 'notBreaching',
      namespace: 'AWS/SQS',
      period: 60,
    };
    new CloudwatchMetricAlarm(this, 'dlq-depth', {
      alarmName: `${props.names.dlq}-not-empty`,
      alarmDescription: describeAlarm(`Messages in ${props.names.dlq}`, 'dlqDepth'),
      metricName: 'ApproximateNumberOfMessagesVisible',
      dimensions: { QueueName: props.names.dlq },
      statistic: 'Maximum',
      comparisonOperator: 'GreaterThanThreshold',
      threshold: 0,
      evaluationPeriods: 1,
      ...alarm,
    });
    new CloudwatchMetricAlarm(this, 'oldest-message', {
      alarmName: `${props.names.main}-oldest-message`,
      alarmDescription: describeAlarm(
        `The oldest message in ${props.names.main} is older than ${props.oldestMessageAlarmSeconds} s: its consumer is failing, throttled or stopped`,
        'queueAge',
      ),
      metricName: 'ApproximateAgeOfOldestMessage',
      dimensions: { QueueName: props.names.main },
      statistic: 'Maximum',
      comparisonOperator: 'GreaterThanThreshold',
      threshold: props.oldestMessageAlarmSeconds,
      evaluationPeriods: 5,
      ...alarm,
    });
  }
}

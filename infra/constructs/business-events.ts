/**
 * The business events topic: what the people who own the data are told (a run held by the
 * runaway guard, functions/shared/notifications.ts). Separate from the on-call topic, so a held
 * run never pages on-call and an alarm never reaches an analyst's inbox; encrypted with the
 * regional data key, which the publishing function's role may use through SNS (infra/access.ts).
 */
import { Construct } from 'constructs';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { SqsQueuePolicy } from '@cdktf/provider-aws/lib/sqs-queue-policy/index.js';
import { policyDocument } from '../iam.ts';
import type { QueueWithDlq } from './queue-with-dlq.ts';

export class BusinessEventsTopic extends Construct {
  readonly topic: SnsTopic;

  constructor(scope: Construct, id: string, props: { topicName: string; kmsKeyArn: string }) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'topic', { name: props.topicName, kmsMasterKeyId: props.kmsKeyArn });
  }
}

/**
 * A queue subscribed to the topic with raw delivery (each message is the event's JSON), and the
 * queue policy that lets only this topic send to it. The queue is encrypted with the data key,
 * whose policy lets SNS use it for this account's topics (infra/constructs/data-key.ts).
 */
export function subscribeQueue(scope: Construct, id: string, props: { topic: SnsTopic; queue: QueueWithDlq }): void {
  const doc = policyDocument(scope, `${id}-policy-document`, [
    {
      sid: 'OnlyTheBusinessEventsTopic',
      actions: ['sqs:SendMessage'],
      resources: [props.queue.main.arn],
      principals: [{ type: 'Service', identifiers: ['sns.amazonaws.com'] }],
      conditions: [{ test: 'ArnEquals', variable: 'aws:SourceArn', values: [props.topic.arn] }],
    },
  ]);
  new SqsQueuePolicy(scope, `${id}-queue-policy`, { queueUrl: props.queue.main.url, policy: doc.json });
  new SnsTopicSubscription(scope, `${id}-subscription`, {
    topicArn: props.topic.arn,
    protocol: 'sqs',
    endpoint: props.queue.main.arn,
    rawMessageDelivery: true,
  });
}

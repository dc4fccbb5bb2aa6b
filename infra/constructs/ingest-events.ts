/**
 * S3 "Object Created" under incoming/ and policies/ -> EventBridge rule -> SQS ingest queue.
 * The pattern is the one the local stack's S3 router matches. A delivery EventBridge gives up on
 * goes to the ingest DLQ: its body is the same event, so on-call redrives it with the same tool.
 * Both queue policies admit only this rule.
 */
import { Construct } from 'constructs';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import { SqsQueuePolicy } from '@cdktf/provider-aws/lib/sqs-queue-policy/index.js';
import type { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue/index.js';
import { objectCreatedPattern } from '../../functions/shared/resources.ts';
import { policyDocument } from '../iam.ts';

export interface IngestEventsProps {
  readonly ruleName: string;
  readonly bucketName: string;
  readonly queue: SqsQueue;
  readonly deadLetterQueue: SqsQueue;
}

export class IngestEvents extends Construct {
  readonly rule: CloudwatchEventRule;
  /** Exists once events reach the queue: objects written before it would go unnoticed. */
  readonly target: CloudwatchEventTarget;

  constructor(scope: Construct, id: string, props: IngestEventsProps) {
    super(scope, id);
    this.rule = new CloudwatchEventRule(this, 'rule', {
      name: props.ruleName,
      description: 'Extracts and policy documents written to the data bucket',
      eventPattern: JSON.stringify(objectCreatedPattern(props.bucketName)),
    });
    for (const [queueId, queue] of [
      ['queue', props.queue],
      ['dead-letter', props.deadLetterQueue],
    ] as const) {
      const doc = policyDocument(this, `${queueId}-policy-document`, [
        {
          sid: 'OnlyTheObjectCreatedRule',
          actions: ['sqs:SendMessage'],
          resources: [queue.arn],
          principals: [{ type: 'Service', identifiers: ['events.amazonaws.com'] }],
          conditions: [{ test: 'ArnEquals', variable: 'aws:SourceArn', values: [this.rule.arn] }],
        },
      ]);
      new SqsQueuePolicy(this, `${queueId}-policy`, { queueUrl: queue.url, policy: doc.json });
    }
    this.target = new CloudwatchEventTarget(this, 'target', {
      rule: this.rule.name,
      arn: props.queue.arn,
      // A day of retries covers a regional SQS or KMS hiccup; then the event is dead-lettered.
      retryPolicy: { maximumEventAgeInSeconds: 24 * 3600, maximumRetryAttempts: 185 },
      deadLetterConfig: { arn: props.deadLetterQueue.arn },
    });
  }
}

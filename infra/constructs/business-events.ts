/**
 * The business events topic: what the people who own the data are told (a run held by the
 * runaway guard, functions/shared/notifications.ts). Separate from the on-call topic, so a held
 * run never pages on-call and an alarm never reaches an analyst's inbox; encrypted with the
 * regional data key, which the publishing function's role may use through SNS (infra/access.ts).
 */
import { Construct } from 'constructs';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';

export class BusinessEventsTopic extends Construct {
  readonly topic: SnsTopic;

  constructor(scope: Construct, id: string, props: { topicName: string; kmsKeyArn: string }) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'topic', { name: props.topicName, kmsMasterKeyId: props.kmsKeyArn });
  }
}

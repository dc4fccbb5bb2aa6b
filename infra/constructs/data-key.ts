/**
 * The regional KMS key (rotation on) behind the bucket, queues, tables, logs, topic and search
 * collection. Its policy delegates to IAM for the account (so function roles grant use, key by
 * key) and lets exactly the AWS services that encrypt on our behalf use it: CloudWatch Logs for
 * our log groups, EventBridge to send to the encrypted ingest queues, CloudWatch alarms to
 * publish to the encrypted topic.
 */
import { Construct } from 'constructs';
import { KmsAlias } from '@cdktf/provider-aws/lib/kms-alias/index.js';
import { KmsKey } from '@cdktf/provider-aws/lib/kms-key/index.js';
import { KmsReplicaKey } from '@cdktf/provider-aws/lib/kms-replica-key/index.js';
import type { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { policyDocument, type Statement } from '../iam.ts';

export interface DataKeyProps {
  readonly aliasName: string;
  readonly region: string;
  readonly accountId: string;
  readonly partition: string;
  /** A multi-region key can be replicated, which the global tables' replicas need. */
  readonly multiRegion: boolean;
}

export function keyPolicyStatements(p: { region: string; accountId: string; partition: string }): Statement[] {
  const use = ['kms:Decrypt', 'kms:GenerateDataKey'];
  const sameAccount = { test: 'StringEquals', variable: 'aws:SourceAccount', values: [p.accountId] };
  return [
    {
      // Standard root statement: without it the key becomes unmanageable, and IAM policies
      // (the function roles) could not grant its use at all.
      sid: 'AccountAdministersAndDelegatesToIam',
      actions: ['kms:*'],
      resources: ['*'],
      principals: [{ type: 'AWS', identifiers: [`arn:${p.partition}:iam::${p.accountId}:root`] }],
    },
    {
      sid: 'CloudWatchLogsEncryptOurLogGroups',
      actions: [
        'kms:Encrypt',
        'kms:Decrypt',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
        'kms:GenerateDataKey',
        'kms:GenerateDataKeyWithoutPlaintext',
        'kms:DescribeKey',
      ],
      resources: ['*'],
      principals: [{ type: 'Service', identifiers: [`logs.${p.region}.amazonaws.com`] }],
      conditions: [
        {
          test: 'ArnLike',
          variable: 'kms:EncryptionContext:aws:logs:arn',
          values: [`arn:${p.partition}:logs:${p.region}:${p.accountId}:log-group:*`],
        },
      ],
    },
    {
      sid: 'EventBridgeSendsToEncryptedQueues',
      actions: use,
      resources: ['*'],
      principals: [{ type: 'Service', identifiers: ['events.amazonaws.com'] }],
      conditions: [sameAccount],
    },
    {
      // The business events topic delivers to the (encrypted) notifications queue.
      sid: 'TopicsSendToEncryptedQueues',
      actions: use,
      resources: ['*'],
      principals: [{ type: 'Service', identifiers: ['sns.amazonaws.com'] }],
      conditions: [sameAccount],
    },
    {
      sid: 'AlarmsPublishToEncryptedTopic',
      actions: use,
      resources: ['*'],
      principals: [{ type: 'Service', identifiers: ['cloudwatch.amazonaws.com'] }],
      conditions: [sameAccount],
    },
  ];
}

export class DataKey extends Construct {
  readonly key: KmsKey;

  constructor(scope: Construct, id: string, props: DataKeyProps) {
    super(scope, id);
    this.key = new KmsKey(this, 'key', {
      description: `Tally data in ${props.region}: bucket, queues, tables, logs, search`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      multiRegion: props.multiRegion,
      // A key policy's "*" resource means "this key".
      policy: policyDocument(this, 'policy', keyPolicyStatements(props)).json,
    });
    new KmsAlias(this, 'alias', { name: props.aliasName, targetKeyId: this.key.keyId });
  }

  /** A replica of this (multi-region) key in another region, for the tables' replicas there. */
  replicate(
    id: string,
    provider: AwsProvider,
    props: { region: string; aliasName: string; accountId: string; partition: string },
  ): KmsReplicaKey {
    const replica = new KmsReplicaKey(this, id, {
      provider,
      primaryKeyArn: this.key.arn,
      description: `Tally global tables' replicas in ${props.region}`,
      deletionWindowInDays: 30,
      policy: policyDocument(this, `${id}-policy`, keyPolicyStatements(props)).json,
    });
    new KmsAlias(this, `${id}-alias`, { provider, name: props.aliasName, targetKeyId: replica.keyId });
    return replica;
  }
}

/**
 * S3 replication of the data bucket's `incoming/` and `policies/` to the secondary region's bucket
 * (issue 15): the extracts and policy documents the secondary needs to reconcile and triage after
 * failover. Replicas are re-encrypted with the secondary's data key; deletes (delete markers)
 * replicate; Replication Time Control gives the 15-minute SLA and its metrics, which the alarms
 * (alarms.ts replicationAlarms) watch.
 *
 * Both keys are named by alias, not by key id: the primary and secondary keys are created by
 * their own regional stacks, so neither ARN is known to the other without a cyclic dependency.
 * S3 accepts an alias ARN as the replica key, and IAM matches the key by its alias with the
 * kms:ResourceAliases condition, scoped further to S3 in that region and to that bucket.
 */
import { Construct } from 'constructs';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { S3BucketReplicationConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-replication-configuration/index.js';
import { policyDocument, type Statement } from '../iam.ts';

/** Replication Time Control's SLA: 99.99% of objects within 15 minutes (the only value S3 takes). */
export const REPLICATION_TIME_MINUTES = 15;

export interface ReplicatedBucket {
  readonly region: string;
  readonly bucketName: string;
  /** The alias of the bucket's KMS key in its region, e.g. alias/tally-data. */
  readonly keyAlias: string;
}

export interface BucketReplicationProps {
  readonly roleName: string;
  readonly source: ReplicatedBucket;
  readonly destination: ReplicatedBucket;
  /** Key prefixes to replicate, each a rule of its own (its own metrics and alarms). */
  readonly prefixes: readonly string[];
  readonly arnContext: { readonly partition: string; readonly account: string };
}

/** The rule id of one replicated prefix (the RuleId dimension of its metrics). */
export function replicationRuleId(prefix: string): string {
  return `replicate-${prefix.replace(/\/$/, '')}`;
}

/** The replication role's statements: read the source versions, write replicas, both keys through S3 only. */
export function replicationStatements(p: BucketReplicationProps): Statement[] {
  const { partition, account } = p.arnContext;
  const bucketArn = (b: ReplicatedBucket) => `arn:${partition}:s3:::${b.bucketName}`;
  const objects = (b: ReplicatedBucket) => p.prefixes.map((prefix) => `${bucketArn(b)}/${prefix}*`);
  // The bucket key makes the bucket ARN the encryption context; without it, the object's ARN.
  const keyUse = (b: ReplicatedBucket) => ({
    resources: [`arn:${partition}:kms:${b.region}:${account}:key/*`],
    conditions: [
      { test: 'ForAnyValue:StringEquals', variable: 'kms:ResourceAliases', values: [b.keyAlias] },
      { test: 'StringEquals', variable: 'kms:ViaService', values: [`s3.${b.region}.amazonaws.com`] },
      {
        test: 'StringLike',
        variable: 'kms:EncryptionContext:aws:s3:arn',
        values: [bucketArn(b), `${bucketArn(b)}/*`],
      },
    ],
  });
  return [
    {
      sid: 'ReadReplicationConfiguration',
      actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
      resources: [bucketArn(p.source)],
    },
    {
      sid: 'ReadSourceVersions',
      actions: ['s3:GetObjectVersionForReplication', 's3:GetObjectVersionAcl', 's3:GetObjectVersionTagging'],
      resources: objects(p.source),
    },
    {
      sid: 'WriteReplicas',
      actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
      resources: objects(p.destination),
    },
    { sid: 'DecryptWithSourceKeyThroughS3', actions: ['kms:Decrypt'], ...keyUse(p.source) },
    {
      sid: 'EncryptWithDestinationKeyThroughS3',
      actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
      ...keyUse(p.destination),
    },
  ];
}

export class BucketReplication extends Construct {
  readonly role: IamRole;
  readonly configuration: S3BucketReplicationConfigurationA;

  constructor(scope: Construct, id: string, props: BucketReplicationProps) {
    super(scope, id);
    const { partition, account } = props.arnContext;
    const assume = policyDocument(this, 'assume-role', [
      {
        sid: 'S3AssumesRole',
        actions: ['sts:AssumeRole'],
        resources: [],
        principals: [{ type: 'Service', identifiers: ['s3.amazonaws.com'] }],
        // Confused-deputy guard: only S3 replicating this account's source bucket.
        conditions: [
          { test: 'StringEquals', variable: 'aws:SourceAccount', values: [account] },
          { test: 'ArnLike', variable: 'aws:SourceArn', values: [`arn:${partition}:s3:::${props.source.bucketName}`] },
        ],
      },
    ]);
    this.role = new IamRole(this, 'role', { name: props.roleName, assumeRolePolicy: assume.json });
    const policy = new IamRolePolicy(this, 'policy', {
      name: `${props.roleName}-access`,
      role: this.role.id,
      policy: policyDocument(this, 'access', replicationStatements(props)).json,
    });

    this.configuration = new S3BucketReplicationConfigurationA(this, 'configuration', {
      bucket: props.source.bucketName,
      role: this.role.arn,
      rule: props.prefixes.map((prefix, i) => ({
        id: replicationRuleId(prefix),
        priority: i + 1,
        status: 'Enabled',
        filter: { prefix },
        // An object deleted in the primary is deleted (a delete marker) in the secondary too.
        deleteMarkerReplication: { status: 'Enabled' },
        sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
        destination: {
          bucket: `arn:${partition}:s3:::${props.destination.bucketName}`,
          storageClass: 'STANDARD',
          encryptionConfiguration: {
            replicaKmsKeyId: `arn:${partition}:kms:${props.destination.region}:${account}:${props.destination.keyAlias}`,
          },
          replicationTime: { status: 'Enabled', time: { minutes: REPLICATION_TIME_MINUTES } },
          metrics: { status: 'Enabled', eventThreshold: { minutes: REPLICATION_TIME_MINUTES } },
        },
      })),
      dependsOn: [policy],
    });
  }
}

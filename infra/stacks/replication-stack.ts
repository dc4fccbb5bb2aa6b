/**
 * S3 replication from the primary region's data bucket to the secondary's (issue 15), a stack of
 * its own in the primary region. Why not in the primary's stack: S3 refuses a replication
 * configuration whose destination bucket does not exist (with versioning on), and the secondary's
 * bucket is created by the secondary's stack, which itself needs the primary's (the global
 * tables and their replica key). Order of applies, on a first deployment and ever after:
 *
 *   primary  ->  secondary  ->  replication  ->  global
 *
 * Nothing here is read by the regional stacks: every name and ARN is derived (bucket names are
 * deterministic, keys are named by alias, the on-call topic by name), so no stack depends on
 * this one's outputs, and while the primary region is down the secondary's stack plans and
 * applies without it.
 */
import type { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { PREFIXES, awsBucketName } from '../../functions/shared/resources.ts';
import { stateBackend } from '../backend.ts';
import type { InfraConfig } from '../config.ts';
import { replicationAlarms } from '../constructs/alarms.ts';
import { BucketReplication, REPLICATION_TIME_MINUTES, replicationRuleId } from '../constructs/bucket-replication.ts';
import { dataKeyAlias, onCallTopicName } from './regional-stack.ts';

/** What the secondary needs to take over: the extracts, and the policies (triage's corpus and the datasets'). */
export const REPLICATED_PREFIXES = [PREFIXES.incoming, PREFIXES.policies] as const;

export class ReplicationStack extends TerraformStack {
  readonly replication: BucketReplication;

  constructor(scope: Construct, id: string, props: { config: InfraConfig }) {
    super(scope, id);
    const { config } = props;
    const { primary, secondary } = config.regions;
    new AwsProvider(this, 'aws', { region: primary, defaultTags: [{ tags: { app: 'tally', stack: id } }] });
    stateBackend(this, config, id);
    const account = new DataAwsCallerIdentity(this, 'account').accountId;
    const partition = new DataAwsPartition(this, 'partition').partition;

    const source = {
      region: primary,
      bucketName: awsBucketName(config.prefix, primary),
      keyAlias: dataKeyAlias(config.prefix),
    };
    const destination = {
      region: secondary,
      bucketName: awsBucketName(config.prefix, secondary),
      keyAlias: dataKeyAlias(config.prefix),
    };
    this.replication = new BucketReplication(this, 'data-replication', {
      // IAM names are account-wide: the role names the regions it replicates between.
      roleName: `${config.prefix}-replication-${primary}-to-${secondary}`,
      source,
      destination,
      prefixes: REPLICATED_PREFIXES,
      arnContext: { partition, account },
    });

    const topicArn = `arn:${partition}:sns:${primary}:${account}:${onCallTopicName(config.prefix)}`;
    for (const prefix of REPLICATED_PREFIXES) {
      const ruleId = replicationRuleId(prefix);
      replicationAlarms(this, `${ruleId}-alarms`, {
        prefix: config.prefix,
        sourceBucket: source.bucketName,
        destinationBucket: destination.bucketName,
        ruleId,
        thresholdSeconds: REPLICATION_TIME_MINUTES * 60,
        topicArn,
      });
    }
    new TerraformOutput(this, 'replication_role_arn', { value: this.replication.role.arn });
  }
}

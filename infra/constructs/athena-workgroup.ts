/**
 * The SQL engine's Athena workgroup: engine version 3 (Trino), its settings enforced (a query
 * cannot pick another result location or turn encryption off), query results encrypted with the
 * bucket's KMS key under athena-results/ in the data bucket, and a per-query scan limit so a
 * runaway query is cut off rather than billed.
 */
import { Construct } from 'constructs';
import { AthenaWorkgroup as AthenaWorkgroupResource } from '@cdktf/provider-aws/lib/athena-workgroup/index.js';

export interface AthenaWorkgroupProps {
  readonly name: string;
  readonly bucketName: string;
  /** Where query results go, a prefix of the bucket (ends with "/"). */
  readonly resultsPrefix: string;
  readonly kmsKeyArn: string;
  /** The most a single query may scan. */
  readonly bytesScannedCutoffPerQuery: number;
}

export class AthenaWorkgroup extends Construct {
  readonly workgroup: AthenaWorkgroupResource;

  constructor(scope: Construct, id: string, props: AthenaWorkgroupProps) {
    super(scope, id);
    this.workgroup = new AthenaWorkgroupResource(this, 'workgroup', {
      name: props.name,
      description: 'Tally recon: the SQL engine for runs above a dataset policy engine.large_above_bytes',
      state: 'ENABLED',
      // Drop the workgroup's saved queries with it; results stay in the bucket (lifecycle rule).
      forceDestroy: true,
      configuration: {
        enforceWorkgroupConfiguration: true,
        publishCloudwatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.bytesScannedCutoffPerQuery,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: `s3://${props.bucketName}/${props.resultsPrefix}`,
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKeyArn: props.kmsKeyArn },
        },
      },
    });
  }
}

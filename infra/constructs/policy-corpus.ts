/**
 * The policy corpus (policies/*.md) as objects of the regional stack's data bucket, so each
 * region's ingest worker indexes it into that region's policy index at deploy, as `npm start`
 * does locally by uploading the same files. Written only once S3 sends events to EventBridge and
 * the rule delivers them to the ingest queue, so the Object Created events are not lost; a
 * changed document is a new object version, hence a new event and a re-index.
 */
import { join } from 'node:path';
import { Construct } from 'constructs';
import { AssetType, TerraformAsset, type ITerraformDependable } from 'cdktf';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';
import { PREFIXES } from '../../functions/shared/resources.ts';
import { policyDocuments } from '../../functions/shared/policy-corpus.ts';

export { policyDocuments };

export interface PolicyCorpusProps {
  readonly bucket: string;
  readonly kmsKeyArn: string;
  /** Directory holding the *.md documents (policies/). */
  readonly sourceDir: string;
  /** What must exist before the objects are written: the bucket's EventBridge notification, the rule's target. */
  readonly after: readonly ITerraformDependable[];
}

export class PolicyCorpus extends Construct {
  readonly objects: S3Object[];

  constructor(scope: Construct, id: string, props: PolicyCorpusProps) {
    super(scope, id);
    this.objects = policyDocuments(props.sourceDir).map((file) => {
      // Construct ids cannot hold "/".
      const id = file.replaceAll('/', '-');
      const asset = new TerraformAsset(this, `${id}-asset`, {
        path: join(props.sourceDir, file),
        type: AssetType.FILE,
      });
      return new S3Object(this, id, {
        bucket: props.bucket,
        key: `${PREFIXES.policies}${file}`,
        source: asset.path,
        // With SSE-KMS the ETag is no MD5: the asset's hash tells Terraform the file changed.
        sourceHash: asset.assetHash,
        contentType: 'text/markdown',
        serverSideEncryption: 'aws:kms',
        kmsKeyId: props.kmsKeyArn,
        dependsOn: [...props.after],
      });
    });
  }
}

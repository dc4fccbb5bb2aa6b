/**
 * The house bucket: versioned, SSE-KMS with a bucket key, no public access whatsoever, ACLs
 * disabled (bucket owner owns every object), TLS-only, events to EventBridge, lifecycle rules
 * per prefix, and CORS for browsers PUTting to pre-signed URLs.
 */
import { Construct } from 'constructs';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketCorsConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-cors-configuration/index.js';
import { S3BucketLifecycleConfiguration } from '@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration/index.js';
import { S3BucketNotification } from '@cdktf/provider-aws/lib/s3-bucket-notification/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning/index.js';
import { policyDocument } from '../iam.ts';

export interface PrefixExpiry {
  readonly prefix: string;
  /** Move to Standard-IA after this many days (S3 requires at least 30). */
  readonly infrequentAccessAfterDays?: number;
  readonly expireAfterDays: number;
}

export interface EncryptedBucketProps {
  readonly bucketName: string;
  readonly kmsKeyArn: string;
  readonly expiries: readonly PrefixExpiry[];
  readonly noncurrentVersionDays: number;
  readonly corsOrigins: readonly string[];
}

export class EncryptedBucket extends Construct {
  readonly bucket: S3Bucket;
  /** S3 sends this bucket's events to EventBridge once this exists. */
  readonly notification: S3BucketNotification;

  constructor(scope: Construct, id: string, props: EncryptedBucketProps) {
    super(scope, id);
    this.bucket = new S3Bucket(this, 'bucket', { bucket: props.bucketName });
    const bucket = this.bucket.id;

    new S3BucketVersioningA(this, 'versioning', { bucket, versioningConfiguration: { status: 'Enabled' } });
    new S3BucketServerSideEncryptionConfigurationA(this, 'encryption', {
      bucket,
      rule: [
        {
          applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: props.kmsKeyArn },
          // One data key per bucket rather than per object: far fewer KMS requests.
          bucketKeyEnabled: true,
        },
      ],
    });
    const publicAccess = new S3BucketPublicAccessBlock(this, 'public-access', {
      bucket,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, 'ownership', { bucket, rule: { objectOwnership: 'BucketOwnerEnforced' } });

    const tlsOnly = policyDocument(this, 'tls-only', [
      {
        sid: 'DenyInsecureTransport',
        effect: 'Deny',
        actions: ['s3:*'],
        resources: [this.bucket.arn, `${this.bucket.arn}/*`],
        principals: [{ type: '*', identifiers: ['*'] }],
        conditions: [{ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] }],
      },
    ]);
    // After the public access block, so S3 never judges this policy against an open bucket.
    new S3BucketPolicy(this, 'policy', { bucket, policy: tlsOnly.json, dependsOn: [publicAccess] });

    // S3 sends every event to EventBridge; the rule there picks what the pipeline needs.
    this.notification = new S3BucketNotification(this, 'events', { bucket, eventbridge: true });

    new S3BucketLifecycleConfiguration(this, 'lifecycle', {
      bucket,
      rule: [
        ...props.expiries.map((e) => ({
          id: `expire-${e.prefix.replace(/\/$/, '')}`,
          status: 'Enabled',
          filter: [{ prefix: e.prefix }],
          ...(e.infrequentAccessAfterDays !== undefined && e.infrequentAccessAfterDays < e.expireAfterDays
            ? { transition: [{ days: e.infrequentAccessAfterDays, storageClass: 'STANDARD_IA' }] }
            : {}),
          expiration: [{ days: e.expireAfterDays }],
        })),
        {
          id: 'tidy-versions-and-uploads',
          status: 'Enabled',
          filter: [{ prefix: '' }],
          noncurrentVersionExpiration: [{ noncurrentDays: props.noncurrentVersionDays }],
          abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }],
        },
      ],
    });

    if (props.corsOrigins.length > 0) {
      new S3BucketCorsConfiguration(this, 'cors', {
        bucket,
        corsRule: [
          {
            allowedMethods: ['PUT'],
            allowedOrigins: [...props.corsOrigins],
            // The pre-signed PUT signs content-type; the browser must be allowed to send it.
            allowedHeaders: ['content-type', 'content-md5', 'x-amz-*'],
            exposeHeaders: ['ETag'],
            maxAgeSeconds: 3600,
          },
        ],
      });
    }
  }
}

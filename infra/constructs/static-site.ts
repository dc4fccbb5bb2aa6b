/**
 * The dashboard as a static site: a private S3 bucket read only by one CloudFront distribution
 * (origin access control), HTTPS on its own name with a us-east-1 certificate (CloudFront's
 * requirement), security headers, and every file of the web build uploaded as an object, plus
 * the config.json that tells the page where the API is and how to sign in. With a failover
 * origin (a copy of the site in the secondary region, `FailoverSiteBucket`), the distribution
 * reads through an origin group: the primary bucket, then the secondary's on 403/404/5xx.
 */
import { readdirSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { Construct } from 'constructs';
import { Fn } from 'cdktf';
import { AcmCertificate } from '@cdktf/provider-aws/lib/acm-certificate/index.js';
import { AcmCertificateValidation } from '@cdktf/provider-aws/lib/acm-certificate-validation/index.js';
import { CloudfrontDistribution } from '@cdktf/provider-aws/lib/cloudfront-distribution/index.js';
import { CloudfrontOriginAccessControl } from '@cdktf/provider-aws/lib/cloudfront-origin-access-control/index.js';
import { CloudfrontResponseHeadersPolicy } from '@cdktf/provider-aws/lib/cloudfront-response-headers-policy/index.js';
import type { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3BucketVersioningA } from '@cdktf/provider-aws/lib/s3-bucket-versioning/index.js';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';
import { policyDocument } from '../iam.ts';

/** AWS managed cache policy "CachingOptimized". */
const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6';
/** CloudFront's hosted zone for alias records (the same in every partition's commercial regions). */
const CLOUDFRONT_ZONE_ID = 'Z2FDTNDATAQYW2';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export class MissingWebBuildError extends Error {
  constructor(dir: string) {
    super(
      `web.enabled is true but ${dir} holds no dashboard build (index.html); run "npm run build" first ("npm run synth" does)`,
    );
    this.name = 'MissingWebBuildError';
  }
}

/** Files of the web build to publish (source maps stay out: the site is for users, not debugging). */
export function webFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    throw new MissingWebBuildError(dir);
  }
  const files = entries
    .map((f) => relative(dir, f).split(sep).join('/'))
    .filter((f) => !f.endsWith('.map') && f !== 'config.json')
    .sort();
  if (!files.includes('index.html')) throw new MissingWebBuildError(dir);
  return files;
}

export interface StaticSiteProps {
  readonly bucketName: string;
  readonly domainName: string;
  readonly hostedZoneId: string;
  /** CloudFront only takes certificates from us-east-1. */
  readonly usEast1: AwsProvider;
  readonly webDir: string;
  /** Written to config.json: where the API is and how the page signs in. */
  readonly site: SiteConfig;
  /** The same site in the secondary region: CloudFront falls over to it when the primary bucket fails. */
  readonly failover?: FailoverSiteBucket;
}

export interface SiteConfig {
  readonly apiUrl: string;
  readonly auth: {
    readonly issuer: string;
    readonly clientId: string;
    readonly scope: string;
    readonly audience?: string;
  };
}

/** What CloudFront's origin group treats as the primary origin failing (GET and HEAD only). */
export const ORIGIN_FAILOVER_STATUS_CODES = [403, 404, 500, 502, 503, 504];

/** The site's private bucket: versioned, SSE-S3, no public access, owner-enforced. */
function siteBucket(scope: Construct, bucketName: string, provider?: AwsProvider) {
  const p = provider ? { provider } : {};
  const siteBucket = new S3Bucket(scope, 'bucket', { bucket: bucketName, ...p });
  const bucket = siteBucket.id;
  new S3BucketVersioningA(scope, 'versioning', { bucket, versioningConfiguration: { status: 'Enabled' }, ...p });
  // SSE-S3, not the data key: these are the page's own assets (nothing secret), and CloudFront's
  // origin access control reads SSE-S3 objects without a KMS grant.
  new S3BucketServerSideEncryptionConfigurationA(scope, 'encryption', {
    bucket,
    rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
    ...p,
  });
  const publicAccess = new S3BucketPublicAccessBlock(scope, 'public-access', {
    bucket,
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
    ...p,
  });
  new S3BucketOwnershipControls(scope, 'ownership', {
    bucket,
    rule: { objectOwnership: 'BucketOwnerEnforced' },
    ...p,
  });
  return { bucket: siteBucket, publicAccess };
}

/** Only the distribution may read the bucket, and only over TLS. */
function readOnlyByDistribution(
  scope: Construct,
  bucket: S3Bucket,
  publicAccess: S3BucketPublicAccessBlock,
  distributionArn: string,
  provider?: AwsProvider,
) {
  const policy = policyDocument(scope, 'bucket-policy', [
    {
      sid: 'DenyInsecureTransport',
      effect: 'Deny',
      actions: ['s3:*'],
      resources: [bucket.arn, `${bucket.arn}/*`],
      principals: [{ type: '*', identifiers: ['*'] }],
      conditions: [{ test: 'Bool', variable: 'aws:SecureTransport', values: ['false'] }],
    },
    {
      sid: 'CloudFrontReads',
      actions: ['s3:GetObject'],
      resources: [`${bucket.arn}/*`],
      principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
      conditions: [{ test: 'StringEquals', variable: 'AWS:SourceArn', values: [distributionArn] }],
    },
  ]);
  new S3BucketPolicy(scope, 'policy', {
    bucket: bucket.id,
    policy: policy.json,
    dependsOn: [publicAccess],
    ...(provider ? { provider } : {}),
  });
}

/** Every file of the web build, and config.json, as objects of the bucket. */
function uploadSite(scope: Construct, bucket: string, webDir: string, site: SiteConfig, provider?: AwsProvider) {
  const p = provider ? { provider } : {};
  for (const file of webFiles(webDir)) {
    const path = join(webDir, file);
    new S3Object(scope, `file-${file}`.replace(/[^A-Za-z0-9-]+/g, '-'), {
      bucket,
      key: file,
      source: path,
      sourceHash: Fn.filemd5(path),
      contentType: CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      // Bundles are content-hashed; everything else is revalidated so a deploy shows at once.
      cacheControl: file.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      ...p,
    });
  }
  new S3Object(scope, 'site-config', {
    bucket,
    key: 'config.json',
    content: JSON.stringify(site),
    contentType: CONTENT_TYPES['.json'],
    cacheControl: 'no-cache',
    ...p,
  });
}

/**
 * The dashboard's copy in the secondary region, uploaded by the same deploy (not replicated: the
 * build is in hand, and a copy never lags). Created before the site, which names it as its failover
 * origin; `StaticSite` then lets its distribution read it.
 */
export class FailoverSiteBucket extends Construct {
  readonly bucket: S3Bucket;
  private readonly publicAccess: S3BucketPublicAccessBlock;
  private readonly provider: AwsProvider;

  constructor(
    scope: Construct,
    id: string,
    props: { bucketName: string; provider: AwsProvider; webDir: string; site: SiteConfig },
  ) {
    super(scope, id);
    this.provider = props.provider;
    const { bucket, publicAccess } = siteBucket(this, props.bucketName, props.provider);
    this.bucket = bucket;
    this.publicAccess = publicAccess;
    uploadSite(this, bucket.id, props.webDir, props.site, props.provider);
  }

  allowDistribution(distributionArn: string): void {
    readOnlyByDistribution(this, this.bucket, this.publicAccess, distributionArn, this.provider);
  }
}

export class StaticSite extends Construct {
  readonly bucket: S3Bucket;
  readonly distribution: CloudfrontDistribution;

  constructor(scope: Construct, id: string, props: StaticSiteProps) {
    super(scope, id);
    const primary = siteBucket(this, props.bucketName);
    this.bucket = primary.bucket;
    const bucket = this.bucket.id;

    const certificate = new AcmCertificate(this, 'certificate', {
      provider: props.usEast1,
      domainName: props.domainName,
      validationMethod: 'DNS',
      lifecycle: { createBeforeDestroy: true },
    });
    const validationRecord = new Route53Record(this, 'certificate-validation-record', {
      zoneId: props.hostedZoneId,
      name: certificate.domainValidationOptions.get(0).resourceRecordName,
      type: certificate.domainValidationOptions.get(0).resourceRecordType,
      records: [certificate.domainValidationOptions.get(0).resourceRecordValue],
      ttl: 300,
      allowOverwrite: true,
    });
    const validation = new AcmCertificateValidation(this, 'certificate-validation', {
      provider: props.usEast1,
      certificateArn: certificate.arn,
      validationRecordFqdns: [validationRecord.fqdn],
    });

    const issuerOrigin = new URL(props.site.auth.issuer).origin;
    const headers = new CloudfrontResponseHeadersPolicy(this, 'headers', {
      name: `${props.bucketName}-headers`.slice(0, 128),
      securityHeadersConfig: {
        // The page loads only its own code; it talks to the API, the sign-in issuer and S3 (pre-signed uploads).
        contentSecurityPolicy: {
          contentSecurityPolicy: [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            `connect-src 'self' ${props.site.apiUrl} ${issuerOrigin} https://*.amazonaws.com`,
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
          ].join('; '),
          override: true,
        },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: 'DENY', override: true },
        referrerPolicy: { referrerPolicy: 'no-referrer', override: true },
        strictTransportSecurity: { accessControlMaxAgeSec: 31_536_000, includeSubdomains: true, override: true },
      },
    });
    const oac = new CloudfrontOriginAccessControl(this, 'origin-access', {
      name: `${props.bucketName}-oac`.slice(0, 64),
      originAccessControlOriginType: 's3',
      signingBehavior: 'always',
      signingProtocol: 'sigv4',
    });
    const originId = 'web-bucket';
    const failoverOriginId = 'web-bucket-secondary';
    const groupId = 'web-buckets';
    this.distribution = new CloudfrontDistribution(this, 'distribution', {
      enabled: true,
      comment: `Tally dashboard (${props.domainName})`,
      aliases: [props.domainName],
      defaultRootObject: 'index.html',
      httpVersion: 'http2and3',
      priceClass: 'PriceClass_100',
      origin: [
        { originId, domainName: this.bucket.bucketRegionalDomainName, originAccessControlId: oac.id },
        ...(props.failover
          ? [
              {
                originId: failoverOriginId,
                domainName: props.failover.bucket.bucketRegionalDomainName,
                originAccessControlId: oac.id,
              },
            ]
          : []),
      ],
      ...(props.failover
        ? {
            // The secondary's copy answers when the primary bucket (or its region) fails.
            originGroup: [
              {
                originId: groupId,
                failoverCriteria: { statusCodes: ORIGIN_FAILOVER_STATUS_CODES },
                member: [{ originId }, { originId: failoverOriginId }],
              },
            ],
          }
        : {}),
      defaultCacheBehavior: {
        targetOriginId: props.failover ? groupId : originId,
        viewerProtocolPolicy: 'redirect-to-https',
        allowedMethods: ['GET', 'HEAD'],
        cachedMethods: ['GET', 'HEAD'],
        compress: true,
        cachePolicyId: CACHING_OPTIMIZED,
        responseHeadersPolicyId: headers.id,
      },
      restrictions: { geoRestriction: { restrictionType: 'none' } },
      viewerCertificate: {
        acmCertificateArn: validation.certificateArn,
        sslSupportMethod: 'sni-only',
        minimumProtocolVersion: 'TLSv1.2_2021',
      },
    });

    readOnlyByDistribution(this, this.bucket, primary.publicAccess, this.distribution.arn);
    props.failover?.allowDistribution(this.distribution.arn);

    new Route53Record(this, 'alias', {
      zoneId: props.hostedZoneId,
      name: props.domainName,
      type: 'A',
      alias: { name: this.distribution.domainName, zoneId: CLOUDFRONT_ZONE_ID, evaluateTargetHealth: false },
    });

    uploadSite(this, bucket, props.webDir, props.site);
  }
}

/** S3 behind the query API: pre-signed uploads, the policy documents and the bucket health probe. */
import {
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { HealthCheck, UploadSigner } from './ports.ts';
import type { PolicyObjects } from './policy-documents.ts';

export class S3UploadSigner implements UploadSigner {
  private readonly s3: S3Client;
  private readonly bucket: string;
  constructor(s3: S3Client, bucket: string) {
    this.s3 = s3;
    this.bucket = bucket;
  }

  async presignPut(request: {
    key: string;
    contentType: string;
    contentLength: number;
    expiresInSeconds: number;
  }): Promise<string> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: request.key,
      ContentType: request.contentType,
      ContentLength: request.contentLength,
    });
    // The presigner leaves content-type (and content-length) unsigned unless told: sign both, so the
    // URL only accepts the file the client declared. The client is built with checksums
    // WHEN_REQUIRED, so no checksum header the uploader would have to reproduce is signed either.
    return getSignedUrl(this.s3, command, {
      expiresIn: request.expiresInSeconds,
      signableHeaders: new Set(['content-type', 'content-length']),
    });
  }

  healthCheck(): HealthCheck {
    return {
      name: 's3',
      check: async () => {
        await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }));
      },
    };
  }
}

/** The policy documents' objects (GET /policies): listed and read under their prefixes. */
export class S3PolicyObjects implements PolicyObjects {
  private readonly s3: S3Client;
  private readonly bucket: string;
  constructor(s3: S3Client, bucket: string) {
    this.s3 = s3;
    this.bucket = bucket;
  }

  async list(prefix: string): Promise<{ key: string; etag: string; size: number; lastModified: string | null }[]> {
    const found: { key: string; etag: string; size: number; lastModified: string | null }[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? [])
        found.push({
          key: o.Key ?? '',
          etag: o.ETag ?? '',
          size: o.Size ?? 0,
          lastModified: o.LastModified?.toISOString() ?? null,
        });
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    return found;
  }

  async read(key: string): Promise<{ text: string; etag: string; lastModified: string | null } | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        text: (await out.Body?.transformToString('utf8')) ?? '',
        etag: out.ETag ?? '',
        lastModified: out.LastModified?.toISOString() ?? null,
      };
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
  }
}

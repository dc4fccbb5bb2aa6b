/** S3 behind the query API: pre-signed uploads and the bucket health probe. */
import { HeadBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { HealthCheck, UploadSigner } from './ports.ts';

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

import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ChunkObjects } from '../../recon/chunks.ts';
import { ObjectMissingError } from '../ports.ts';

/** Findings chunks under results/ (functions/recon/chunks.ts), on S3. */
export class S3ChunkObjects implements ChunkObjects {
  private readonly s3: S3Client;
  constructor(s3: S3Client) {
    this.s3 = s3;
  }

  async put(bucket: string, key: string, body: Uint8Array): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        // Not Content-Encoding: gzip, which HTTP layers may inflate on the way back.
        ContentType: 'application/gzip',
      }),
    );
  }

  async get(bucket: string, key: string): Promise<AsyncIterable<Uint8Array>> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!out.Body) throw new ObjectMissingError({ bucket, key, etag: '' });
      return out.Body as AsyncIterable<Uint8Array>;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404 || (error as Error).name === 'NoSuchKey')
        throw new ObjectMissingError({ bucket, key, etag: '' });
      throw error;
    }
  }

  /** Every key under the prefix, in key order (ListObjectsV2 lists in UTF-8 binary order). */
  async list(bucket: string, prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const object of out.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}

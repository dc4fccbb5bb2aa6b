import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ObjectChangedError, ObjectMissingError, type ObjectRef, type ObjectStore } from '../ports.ts';

export class S3ObjectStore implements ObjectStore {
  private readonly s3: S3Client;
  constructor(s3: S3Client) {
    this.s3 = s3;
  }

  async read(ref: ObjectRef): Promise<AsyncIterable<Uint8Array>> {
    try {
      // IfMatch pins the exact upload the event described; a newer one answers 412.
      const out = await this.s3.send(
        new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, IfMatch: quoteEtag(ref.etag) }),
      );
      if (!out.Body) throw new ObjectMissingError(ref);
      return out.Body as AsyncIterable<Uint8Array>;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const name = (error as Error).name;
      if (status === 412 || name === 'PreconditionFailed') throw new ObjectChangedError(ref);
      if (status === 404 || name === 'NoSuchKey') throw new ObjectMissingError(ref);
      throw error;
    }
  }

  async isReplica(ref: Pick<ObjectRef, 'bucket' | 'key'>): Promise<boolean> {
    const out = await this.s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    return out.ReplicationStatus === 'REPLICA';
  }
}

function quoteEtag(etag: string): string {
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

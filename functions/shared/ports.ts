/**
 * The object store and the queues the cores depend on, as small interfaces; adapters/ implements
 * them on S3 and SQS. Each DynamoDB table has its own port and adapter in tables/. Cores import
 * these, never the AWS SDK.
 */

export interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
  readonly etag: string;
}

export interface ObjectStore {
  /** Streams the object's bytes; fails with ObjectChangedError if its ETag is no longer `etag`. */
  read(ref: ObjectRef): Promise<AsyncIterable<Uint8Array>>;
}

export class ObjectChangedError extends Error {
  constructor(ref: ObjectRef) {
    super(`s3://${ref.bucket}/${ref.key} no longer has ETag ${ref.etag}`);
    this.name = 'ObjectChangedError';
  }
}

export class ObjectMissingError extends Error {
  constructor(ref: ObjectRef) {
    super(`s3://${ref.bucket}/${ref.key} does not exist`);
    this.name = 'ObjectMissingError';
  }
}

export interface MessageQueue<T> {
  send(messages: T[]): Promise<void>;
}

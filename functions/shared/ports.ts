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
  /** Whether the object is a replica S3 replication wrote (its ReplicationStatus is REPLICA). */
  isReplica?(ref: Pick<ObjectRef, 'bucket' | 'key'>): Promise<boolean>;
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

/** The longest SQS delays a message: 15 minutes. */
export const MAX_DELAY_SECONDS = 900;

export interface SendOptions {
  /** Seconds before the messages can be received (SQS DelaySeconds: 0 to MAX_DELAY_SECONDS). */
  readonly delaySeconds?: number;
}

export interface MessageQueue<T> {
  send(messages: T[], options?: SendOptions): Promise<void>;
}

/** What a consumer knows about a message it is moving to its DLQ as permanently bad. */
export interface DeadLetter {
  readonly body: string;
  /** ARN of the queue the message came from (a redrive sends it back there). */
  readonly sourceQueueArn: string;
  readonly code: string;
  readonly reason: string;
  readonly failedAt: string;
}

/** The queue a consumer reads: a message in hand is kept invisible while its work goes on. */
export interface MessageVisibility {
  /** The queue's visibility timeout: what `extend` sets, counted from now. */
  readonly timeoutSeconds: number;
  extend(receiptHandle: string): Promise<void>;
  /**
   * Makes the message invisible for `seconds` from now: a region not active holds messages back, and
   * a message whose claim another worker holds waits longer each time (sqs-batch.ts).
   */
  hold?(receiptHandle: string, seconds: number): Promise<void>;
}

/** The DLQ of the queue a consumer reads: where a message that can never succeed goes at once. */
export interface DeadLetterQueue {
  send(message: DeadLetter): Promise<void>;
}

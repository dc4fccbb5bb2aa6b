/**
 * The EventBridge "Object Created" event S3 sends for a new object, as the ingest queue receives
 * it from the rule. Built here for the two places that stand in for S3's own event: the local S3
 * front door (fauxqs has no bucket notifications) and the sweep that re-emits a missed event.
 */
import { randomUUID } from 'node:crypto';

export type ObjectCreatedReason = 'PutObject' | 'CopyObject' | 'CompleteMultipartUpload';

export interface ObjectCreatedInput {
  readonly bucket: string;
  readonly key: string;
  readonly etag: string;
  readonly sequencer: string;
  readonly size?: number;
  readonly region: string;
  readonly account?: string;
  readonly reason: ObjectCreatedReason;
  readonly time: Date;
}

export function objectCreatedEvent(input: ObjectCreatedInput) {
  const account = input.account ?? '000000000000';
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account,
    time: input.time.toISOString(),
    region: input.region,
    resources: [`arn:aws:s3:::${input.bucket}`],
    detail: {
      version: '0',
      bucket: { name: input.bucket },
      object: {
        key: input.key,
        ...(input.size === undefined ? {} : { size: input.size }),
        // S3 events carry the ETag without the quotes HTTP puts around it.
        etag: input.etag.replaceAll('"', ''),
        sequencer: input.sequencer,
      },
      'request-id': randomUUID(),
      requester: account,
      reason: input.reason,
    },
  };
}
export type ObjectCreatedMessage = ReturnType<typeof objectCreatedEvent>;

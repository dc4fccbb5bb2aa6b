/**
 * Ingest in a region that is not active: an Object Created event of a replica (S3 replication from
 * the active region) is acknowledged, not held until it reaches the DLQ; any other event is held.
 */
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createHandler } from '../../functions/ingest-worker/handler.ts';
import type { IngestDeps } from '../../functions/ingest-worker/ingest.ts';
import { S3ObjectStore } from '../../functions/shared/adapters/s3-object-store.ts';
import type { MetricKey } from '../../functions/shared/resources.ts';
import type { RegionRole } from '../../functions/shared/region-role.ts';
import type { SqsConsumerDeps } from '../../functions/shared/sqs-batch.ts';
import { lambdaContext, objectCreated, sqsEvent, sqsRecord } from '../support/events.ts';

const s3 = mockClient(S3Client);
afterEach(() => s3.reset());

function standbyIngest(role: RegionRole = 'standby') {
  const holds: string[] = [];
  const counts: [MetricKey, number | undefined][] = [];
  const deps = {
    objects: new S3ObjectStore(new S3Client({ region: 'us-west-2' })),
    regionRole: { region: 'us-west-2', read: async () => role },
    visibility: {
      timeoutSeconds: 720,
      extend: async () => undefined,
      hold: async (receiptHandle: string) => void holds.push(receiptHandle),
    },
    metrics: {
      count: (metric: MetricKey, value?: number) => void counts.push([metric, value]),
      flush: () => undefined,
    },
  } as unknown as IngestDeps & SqsConsumerDeps;
  return { handler: createHandler(() => deps), holds, counts };
}

describe('ingest in a standby or fenced region', () => {
  it('acknowledges the events of replicas (the region they were uploaded to ingests them) and holds the rest', async () => {
    s3.on(HeadObjectCommand, { Key: 'incoming/trades/2025-12-10/source.csv' }).resolves({
      ReplicationStatus: 'REPLICA',
    });
    s3.on(HeadObjectCommand, { Key: 'incoming/trades/2025-12-10/target.csv' }).resolves({});
    const { handler, holds, counts } = standbyIngest();

    const response = await handler(
      sqsEvent(
        sqsRecord(
          objectCreated('incoming/trades/2025-12-10/source.csv', 'e1', { bucket: 'tally-data-us-west-2' }),
          'replica',
        ),
        sqsRecord(
          objectCreated('incoming/trades/2025-12-10/target.csv', 'e2', { bucket: 'tally-data-us-west-2' }),
          'upload',
        ),
      ),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'upload' }]);
    expect(holds).toEqual(['rh-upload']);
    expect(counts).toContainEqual(['replicaEventsReleased', 1]);
    expect(s3.commandCalls(HeadObjectCommand).map((c) => c.args[0].input)).toContainEqual({
      Bucket: 'tally-data-us-west-2',
      Key: 'incoming/trades/2025-12-10/source.csv',
    });
  });

  it('holds an event whose object cannot be looked at (nothing is dropped on a guess)', async () => {
    s3.on(HeadObjectCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    const { handler, holds } = standbyIngest('fenced');

    const response = await handler(
      sqsEvent(sqsRecord(objectCreated('incoming/trades/2025-12-10/source.csv', 'e1'), 'a')),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }]);
    expect(holds).toEqual(['rh-a']);
  });
});

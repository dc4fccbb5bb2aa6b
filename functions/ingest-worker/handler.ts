/** Ingest worker Lambda: SQS (EventBridge "Object Created" bodies) -> ingestObject. */
import type { SQSRecord } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { S3ObjectStore } from '../shared/adapters/s3-object-store.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { createLogger } from '../shared/logger.ts';
import type { BusinessMetrics } from '../shared/metrics.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { ENV } from '../shared/resources.ts';
import { consumedQueue, createSqsHandler, consumerDeps, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { leaseMsFor, newLeaseOwner } from '../shared/lease.ts';
import { DynamoFileStore } from '../shared/tables/files-dynamo.ts';
import { DynamoIdempotencyStore } from '../shared/tables/idempotency-dynamo.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { ingestConfig } from './config.ts';
import { createEmbedder, createVectorIndex } from '../shared/search/factory.ts';
import { objectCreatedEventSchema } from '../shared/messages.ts';
import { ingestObject, type IngestDeps, type IngestOutcome } from './ingest.ts';

const logger = createLogger('ingest-worker');

export function defaultDeps(): IngestDeps & SqsConsumerDeps {
  const config = ingestConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  const queue = consumedQueue('ingest');
  return {
    objects: new S3ObjectStore(aws.s3),
    files: new DynamoFileStore(aws.dynamo, config[ENV.filesTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    idempotency: new DynamoIdempotencyStore(aws.dynamo, config[ENV.idempotencyTable]),
    reconQueue: new SqsQueue(aws.sqs, config[ENV.reconQueueUrl]),
    triageQueue: new SqsQueue(aws.sqs, config[ENV.triageQueueUrl]),
    policies: withBundledPolicies(new S3DatasetPolicies(aws.s3)),
    policyCorpus: { embedder: createEmbedder(), index: createVectorIndex('policies') },
    now: Date.now,
    // About one visibility timeout (at most a minute), renewed while the ingest goes on: a dead
    // worker's claim is free again by the time its message comes back.
    leaseMs: leaseMsFor(queue.visibilityTimeoutSeconds),
    newLeaseOwner: () => newLeaseOwner(),
    onHeartbeatError: (error) => logger.warn('could not renew the lease', { error: error as Error }),
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'ingest-worker', queue: queue },
    ),
  };
}

/** Dependencies are built once, on the first invocation, and reused by the warm container. */
export function createHandler(makeDeps: () => IngestDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(
    logger,
    makeDeps,
    async (record: SQSRecord, deps) => {
      const event = parseBody(record, objectCreatedEventSchema);
      const { key, etag } = event.detail.object;
      logger.appendKeys({ fileKey: key });
      const outcome = await ingestObject(event, deps);
      countIngest(outcome, deps.metrics);
      logger.info('ingested', { messageId: record.messageId, fileKey: key, etag, result: outcome });
    },
    { releaseWhenNotActive: replicaOfAnotherRegion },
  );
}

/**
 * S3 replication raises Object Created in the standby's bucket for every upload and policy the
 * active region receives. Held like other messages, each would reach the DLQ after its fifth
 * receive (~6 h), paging on-call every day of normal operation; and a promotion would ingest days
 * of them at once. A replica is its source region's to ingest (the files table, replicated,
 * holds the record), so a region that is not active acknowledges its event; an upload the source
 * region never recorded is found by the sweep here once this region is active (it re-sends
 * objects with no file record of their ETag). Anything else is held as before.
 */
async function replicaOfAnotherRegion(record: SQSRecord, deps: IngestDeps): Promise<string | undefined> {
  if (!deps.objects.isReplica) return undefined;
  const event = parseBody(record, objectCreatedEventSchema);
  const ref = { bucket: event.detail.bucket.name, key: event.detail.object.key };
  return (await deps.objects.isReplica(ref))
    ? `s3://${ref.bucket}/${ref.key} is a replica: the region it was uploaded to ingests it`
    : undefined;
}

/** Business counts of one ingest (the dashboard's and alarms' metrics). */
export function countIngest(outcome: IngestOutcome, metrics: BusinessMetrics | undefined): void {
  if (outcome.outcome === 'ACCEPTED') {
    metrics?.count('filesIngested', 1, 'ACCEPTED');
    metrics?.count('rowsAccepted', outcome.rows);
  } else if (outcome.outcome === 'REJECTED') metrics?.count('filesIngested', 1, 'REJECTED');
  else if (outcome.outcome === 'DUPLICATE') metrics?.count('duplicatesSuppressed');
}

export const handler = createHandler();

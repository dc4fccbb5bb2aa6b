/** Ingest worker Lambda: SQS (EventBridge "Object Created" bodies) -> ingestObject. */
import type { SQSRecord } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { S3ObjectStore } from '../shared/adapters/s3-object-store.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { createLogger } from '../shared/logger.ts';
import { loadReconPolicyFile } from '../shared/recon-policy-file.ts';
import { ENV } from '../shared/resources.ts';
import { createSqsHandler, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { failureStore } from '../shared/tables/failures-dynamo.ts';
import { DynamoFileStore } from '../shared/tables/files-dynamo.ts';
import { DynamoIdempotencyStore } from '../shared/tables/idempotency-dynamo.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { ingestConfig } from './config.ts';
import { createEmbedder, createVectorIndex } from '../shared/search/factory.ts';
import { ingestObject, objectCreatedEventSchema, type IngestDeps } from './ingest.ts';

const logger = createLogger('ingest-worker');

/** Ingest may take a while on a large file; another worker takes over after this. */
const LEASE_MS = 5 * 60 * 1000;

export function defaultDeps(): IngestDeps & SqsConsumerDeps {
  const config = ingestConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  return {
    objects: new S3ObjectStore(aws.s3),
    files: new DynamoFileStore(aws.dynamo, config[ENV.filesTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    idempotency: new DynamoIdempotencyStore(aws.dynamo, config[ENV.idempotencyTable]),
    reconQueue: new SqsQueue(aws.sqs, config[ENV.reconQueueUrl]),
    policy: loadReconPolicyFile(config[ENV.reconPolicyPath]),
    policyCorpus: { embedder: createEmbedder(), index: createVectorIndex('policies') },
    now: Date.now,
    leaseMs: LEASE_MS,
    failures: failureStore(aws.dynamo, config[ENV.failuresTable]),
  };
}

/** Dependencies are built once, on the first invocation, and reused by the warm container. */
export function createHandler(makeDeps: () => IngestDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const event = parseBody(record, objectCreatedEventSchema);
    const { key, etag } = event.detail.object;
    logger.appendKeys({ fileKey: key });
    const outcome = await ingestObject(event, deps);
    logger.info('ingested', { messageId: record.messageId, fileKey: key, etag, result: outcome });
  });
}

export const handler = createHandler();

/** Store Lambda: SQS store requests (one findings chunk each) -> storeChunk. */
import type { SQSRecord } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { S3ChunkObjects } from '../shared/adapters/s3-results.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { SNSClient } from '@aws-sdk/client-sns';
import { SnsBusinessNotifier } from '../shared/adapters/sns-notifier.ts';
import { createLogger } from '../shared/logger.ts';
import type { BusinessMetrics } from '../shared/metrics.ts';
import { storeRequestSchema } from '../shared/messages.ts';
import { ENV } from '../shared/resources.ts';
import { createVectorIndex } from '../shared/search/factory.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { datasetWorkflows, withBundledPolicies } from '../shared/dataset-policies.ts';
import { consumedQueue, consumerDeps, createSqsHandler, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { DynamoExceptionStore } from '../shared/tables/exceptions-dynamo.ts';
import { DynamoFileStore } from '../shared/tables/files-dynamo.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { storeConfig } from './config.ts';
import { storeChunk, type CompletionOutcome, type StoreDeps, type StoreOutcome } from './store.ts';

const logger = createLogger('store');

export function defaultDeps(): StoreDeps & SqsConsumerDeps {
  const config = storeConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  return {
    chunks: new S3ChunkObjects(aws.s3),
    files: new DynamoFileStore(aws.dynamo, config[ENV.filesTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    exceptions: new DynamoExceptionStore(aws.dynamo, config[ENV.exceptionsTable]),
    triageQueue: new SqsQueue(aws.sqs, config[ENV.triageQueueUrl]),
    notifier: new SnsBusinessNotifier(new SNSClient({}), config[ENV.businessEventsTopicArn]),
    exceptionsIndex: createVectorIndex('exceptions'),
    workflows: datasetWorkflows(withBundledPolicies(new S3DatasetPolicies(aws.s3))),
    now: Date.now,
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'store', queue: consumedQueue('store') },
    ),
  };
}

export function createHandler(makeDeps: () => StoreDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const request = parseBody(record, storeRequestSchema);
    logger.appendKeys({ runId: request.run_id, chunk: request.chunk });
    const outcome = await storeChunk(request, deps);
    countStored(outcome, deps.metrics);
    if (outcome.outcome === 'STORED' && outcome.counts.cut_for_storage > 0)
      logger.warn('exceptions stored cut to fit one DynamoDB item (their rows say what in _omitted)', {
        count: outcome.counts.cut_for_storage,
        exceptionIds: outcome.cut_ids,
      });
    if (outcome.outcome !== 'SKIPPED' && outcome.completion) countCompletion(outcome.completion, deps.metrics);
    if (outcome.outcome === 'SKIPPED' && outcome.triage === 'HELD_NOTIFIED') deps.metrics?.count('runsHeld');
    logger.info('chunk handled', { messageId: record.messageId, key: request.key, result: outcome });
  });
}

/** What a chunk stored for the first time cut to fit (a redelivery of a stored chunk is ALREADY_STORED: counted once). */
export function countStored(outcome: StoreOutcome, metrics: BusinessMetrics | undefined): void {
  if (outcome.outcome === 'STORED') metrics?.count('exceptionsCut', outcome.counts.cut_for_storage);
}

/** Business counts of a run this consumer completed (the run's exceptions are counted once, here). */
export function countCompletion(completion: CompletionOutcome, metrics: BusinessMetrics | undefined): void {
  if (completion.outcome !== 'SUPERSEDED' && completion.triage === 'HELD_NOTIFIED') metrics?.count('runsHeld');
  if (completion.outcome !== 'COMPLETED') return;
  metrics?.count('runsCompleted');
  for (const [type, n] of Object.entries(completion.exceptions)) metrics?.count('exceptions', n ?? 0, type);
  metrics?.count('rowsRejected', completion.exceptions.INVALID_RECORD ?? 0);
}

export const handler = createHandler();

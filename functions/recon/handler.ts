/** Recon Lambda: SQS recon requests -> runRecon. */
import type { SQSRecord } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { DynamoExceptionStore, DynamoFileStore, DynamoRunStore } from '../shared/adapters/dynamo.ts';
import { S3ObjectStore } from '../shared/adapters/s3-object-store.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { createLogger } from '../shared/logger.ts';
import { reconRequestSchema } from '../shared/messages.ts';
import { loadReconPolicyFile } from '../shared/recon-policy-file.ts';
import { ENV } from '../shared/resources.ts';
import { createSqsHandler, parseBody } from '../shared/sqs-batch.ts';
import { reconConfig } from './config.ts';
import { createVectorIndex } from '../shared/search/factory.ts';
import { runRecon, type ReconRunDeps } from './run.ts';

const logger = createLogger('recon');

/** Lambda's own ceiling: a run older than this died with its container. */
const LEASE_MS = 15 * 60 * 1000;

export function defaultDeps(): ReconRunDeps {
  const config = reconConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  return {
    objects: new S3ObjectStore(aws.s3),
    files: new DynamoFileStore(aws.dynamo, config[ENV.filesTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    exceptions: new DynamoExceptionStore(aws.dynamo, config[ENV.exceptionsTable]),
    triageQueue: new SqsQueue(aws.sqs, config[ENV.triageQueueUrl]),
    exceptionsIndex: createVectorIndex('exceptions'),
    policy: loadReconPolicyFile(config[ENV.reconPolicyPath]),
    now: Date.now,
    leaseMs: LEASE_MS,
  };
}

export function createHandler(makeDeps: () => ReconRunDeps = defaultDeps) {
  let deps: ReconRunDeps | undefined;
  return createSqsHandler(logger, async (record: SQSRecord) => {
    deps ??= makeDeps();
    const request = parseBody(record, reconRequestSchema);
    logger.appendKeys({ runId: request.run_id });
    const outcome = await runRecon(request, deps);
    logger.info('recon finished', {
      messageId: record.messageId,
      runId: request.run_id,
      dataset: request.dataset,
      businessDate: request.business_date,
      result: outcome,
    });
  });
}

export const handler = createHandler();

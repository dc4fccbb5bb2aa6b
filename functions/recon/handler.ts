/** Recon Lambda: SQS recon requests -> runRecon. */
import type { SQSRecord } from 'aws-lambda';
import { createAwsClients, type AwsClients } from '../shared/adapters/clients.ts';
import { S3ObjectStore } from '../shared/adapters/s3-object-store.ts';
import { S3ChunkObjects } from '../shared/adapters/s3-results.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { createLogger } from '../shared/logger.ts';
import { PermanentError } from '../shared/errors.ts';
import type { BusinessMetrics } from '../shared/metrics.ts';
import { reconQueueMessageSchema } from '../shared/messages.ts';
import { AthenaClient } from '@aws-sdk/client-athena';
import { AwsAthena, SqsDelayedQueue } from '../shared/adapters/athena.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { ENV } from '../shared/resources.ts';
import { consumedQueue, createSqsHandler, consumerDeps, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { leaseMsFor, newLeaseOwner } from '../shared/lease.ts';
import { DynamoFileStore } from '../shared/tables/files-dynamo.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { DynamoPatternStore } from '../shared/tables/patterns-dynamo.ts';
import { reconConfig } from './config.ts';
import { runAthenaCheck } from './athena-run.ts';
import { runRecon, type ReconRunDeps, type ReconRunOutcome } from './run.ts';

const logger = createLogger('recon');

export function defaultDeps(): ReconRunDeps & SqsConsumerDeps {
  const config = reconConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  const queue = consumedQueue('recon');
  return {
    objects: new S3ObjectStore(aws.s3),
    chunks: new S3ChunkObjects(aws.s3),
    files: new DynamoFileStore(aws.dynamo, config[ENV.filesTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    patterns: new DynamoPatternStore(aws.dynamo, config[ENV.patternsTable]),
    storeQueue: new SqsQueue(aws.sqs, config[ENV.storeQueueUrl]),
    chunkFindings: config[ENV.chunkFindings],
    policies: withBundledPolicies(new S3DatasetPolicies(aws.s3)),
    now: Date.now,
    reconOptions: { memoryBudgetBytes: config[ENV.reconMemoryBudgetBytes], tmpDir: config[ENV.reconTmpDir] },
    // About one visibility timeout (at most a minute), renewed while the run goes on: a dead
    // worker's claim is free again by the time its message comes back.
    leaseMs: leaseMsFor(queue.visibilityTimeoutSeconds),
    ...athenaDeps(config, aws),
    log: (message, details) => logger.info(message, details),
    newLeaseOwner: () => newLeaseOwner(),
    onHeartbeatError: (error) => logger.warn('could not renew the lease', { error: error as Error }),
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'recon', queue: queue },
    ),
  };
}

/** The Athena path, when the stack has a workgroup (AWS only; config.ts checks the queue URL comes with it). */
function athenaDeps(config: ReturnType<typeof reconConfig>, aws: AwsClients): Pick<ReconRunDeps, 'athena'> {
  const workgroup = config[ENV.athenaWorkgroup];
  const queueUrl = config[ENV.reconQueueUrl];
  if (workgroup === undefined || queueUrl === undefined) return {};
  const results = new S3ChunkObjects(aws.s3);
  return {
    athena: {
      athena: new AwsAthena(new AthenaClient({}), workgroup),
      checks: new SqsDelayedQueue(aws.sqs, queueUrl),
      listResults: (bucket, prefix) => results.list(bucket, prefix),
    },
  };
}

export function createHandler(makeDeps: () => ReconRunDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const request = parseBody(record, reconQueueMessageSchema);
    logger.appendKeys({ runId: request.run_id });
    let outcome: ReconRunOutcome;
    if (request.kind !== 'athena-check') outcome = await runRecon(request, deps);
    else if (deps.athena === undefined)
      // Only a stack with a workgroup sends checks: one here cannot be acted on, ever.
      throw new PermanentError('NO_ATHENA', `an Athena check for run ${request.run_id} reached a recon without Athena`);
    else outcome = await runAthenaCheck(request, { ...deps, athena: deps.athena });
    countRun(outcome, deps.metrics);
    logger.info(request.kind === 'athena-check' ? 'athena check' : 'recon finished', {
      messageId: record.messageId,
      runId: request.run_id,
      dataset: request.dataset,
      ...(request.kind === 'athena-check' ? { step: request.step } : {}),
      businessDate: request.business_date,
      result: outcome,
    });
  });
}

/**
 * Business counts of one recon run: its failures. A run's completion, and its exceptions, are
 * counted by the store consumer that completes it (functions/store/handler.ts).
 */
export function countRun(outcome: ReconRunOutcome, metrics: BusinessMetrics | undefined): void {
  if (outcome.outcome === 'FAILED') metrics?.count('runsFailed');
}

export const handler = createHandler();

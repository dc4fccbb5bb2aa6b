/**
 * Deadline sweep Lambda (on AWS: an EventBridge schedule; locally: a timer in the local stack):
 * promotes PENDING late arrivals whose window has ended and announces overdue exceptions once
 * (functions/deadlines/deadlines.ts).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { SNSClient } from '@aws-sdk/client-sns';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { SnsBusinessNotifier } from '../shared/adapters/sns-notifier.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { datasetWorkflows, withBundledPolicies } from '../shared/dataset-policies.ts';
import { createLogger } from '../shared/logger.ts';
import { emfMetrics, type BusinessMetrics } from '../shared/metrics.ts';
import { ENV } from '../shared/resources.ts';
import { DynamoBreakerTrials } from '../shared/tables/circuit-breaker-dynamo.ts';
import { DynamoExceptionStore } from '../shared/tables/exceptions-dynamo.ts';
import { DynamoUncitedListing } from '../shared/tables/run-exceptions-dynamo.ts';
import { regionRoleFromEnv, type RegionRoleReader } from '../shared/region-role.ts';
import { deadlinesConfig } from './config.ts';
import { sweepDeadlines, type DeadlineDeps, type DeadlineSweepResult } from './deadlines.ts';

const logger = createLogger('deadlines');

export type DeadlinesHandlerDeps = DeadlineDeps & {
  readonly metrics?: BusinessMetrics;
  /** Only the active region promotes and announces: a standby would do both a second time. */
  readonly regionRole?: RegionRoleReader;
};

export function defaultDeps(): DeadlinesHandlerDeps {
  const config = deadlinesConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  const workflows = datasetWorkflows(withBundledPolicies(new S3DatasetPolicies(aws.s3)));
  return {
    exceptions: new DynamoExceptionStore(aws.dynamo, config[ENV.exceptionsTable]),
    triageQueue: new SqsQueue(aws.sqs, config[ENV.triageQueueUrl]),
    notifier: new SnsBusinessNotifier(new SNSClient({}), config[ENV.businessEventsTopicArn]),
    workflows: (dataset) => workflows(dataset, config[ENV.bucket]),
    now: Date.now,
    recovery: {
      breakers: new DynamoBreakerTrials(aws.dynamo, config[ENV.circuitBreakerTable]),
      degraded: new DynamoUncitedListing(aws.dynamo, config[ENV.exceptionsTable]),
    },
    metrics: emfMetrics('deadlines'),
    regionRole: regionRoleFromEnv(),
  };
}

/** Dependencies are built once, on the first invocation, and reused by the warm container. */
export function createHandler(makeDeps: () => DeadlinesHandlerDeps = defaultDeps) {
  let deps: DeadlinesHandlerDeps | undefined;
  return middy<unknown, DeadlineSweepResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async () => {
      deps ??= makeDeps();
      const role = await deps.regionRole?.read();
      if (role !== undefined && role !== 'active') {
        logger.info('region is not active: no deadline swept', { role });
        return { promoted: [], overdue: [] };
      }
      const result = await sweepDeadlines(deps);
      countDeadlines(result, deps.metrics);
      deps.metrics?.flush();
      logger.info('swept deadlines', {
        promoted: result.promoted.length,
        overdue: result.overdue.length,
        ...(result.promoted.length > 0 ? { promotedIds: result.promoted.slice(0, 50) } : {}),
      });
      if (result.probe)
        logger.info(
          result.probe.exception_id
            ? "a model's circuit breaker waits for its trial: one degraded triage asked again to make it"
            : "a model's circuit breaker waits for its trial: no probe due yet, or no degraded triage to ask again",
          { ...result.probe },
        );
      return result;
    });
}

/** Business counts of one sweep. */
export function countDeadlines(result: DeadlineSweepResult, metrics: BusinessMetrics | undefined): void {
  metrics?.count('lateArrivalsPromoted', result.promoted.length);
  metrics?.count('exceptionsOverdue', result.overdue.length);
}

export const handler = createHandler();

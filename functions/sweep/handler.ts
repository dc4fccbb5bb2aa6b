/**
 * Sweep Lambda (on AWS: an EventBridge schedule; locally: at start and on a timer): re-sends the
 * "Object Created" event of uploads under incoming/ that have no file record, and counts them.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { createLogger } from '../shared/logger.ts';
import { emfMetrics, type BusinessMetrics } from '../shared/metrics.ts';
import { DynamoFileStore } from '../shared/tables/files-dynamo.ts';
import { regionRoleFromEnv, type RegionRoleReader } from '../shared/region-role.ts';
import { sweepConfig } from './config.ts';
import { s3ObjectLister } from './s3-listing.ts';
import { sweepIncoming, type SweepDeps, type SweepResult } from './sweep.ts';

const logger = createLogger('sweep');

/** What the handler is built from: the core's dependencies and where its count goes. */
export type SweepHandlerDeps = Omit<SweepDeps, 'account'> & {
  readonly metrics?: BusinessMetrics;
  /** A region that is not active sweeps nothing: its uploads' events are the active region's work. */
  readonly regionRole?: RegionRoleReader;
};

export function defaultDeps(): SweepHandlerDeps {
  const config = sweepConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config.s3ForcePathStyle });
  return {
    listObjects: s3ObjectLister(aws.s3, config.bucket),
    files: new DynamoFileStore(aws.dynamo, config.filesTable),
    ingestQueue: new SqsQueue(aws.sqs, config.ingestQueueUrl),
    bucket: config.bucket,
    region: config.region,
    now: Date.now,
    minAgeMs: config.minAgeMs,
    metrics: emfMetrics('sweep'),
    regionRole: regionRoleFromEnv(),
  };
}

/** The account in the function's ARN, which S3 events name as the requester. */
function accountOf(context: Context | undefined): string | undefined {
  return context?.invokedFunctionArn?.split(':')[4] || undefined;
}

/** Dependencies are built once, on the first invocation, and reused by the warm container. */
export function createHandler(makeDeps: () => SweepHandlerDeps = defaultDeps) {
  let deps: SweepHandlerDeps | undefined;
  return middy<unknown, SweepResult>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (_event, context) => {
      deps ??= makeDeps();
      const role = await deps.regionRole?.read();
      if (role !== undefined && role !== 'active') {
        logger.info('region is not active: nothing swept', { role });
        return { scanned: 0, resent: [], tooRecent: 0, notExtracts: 0, superseded: 0 };
      }
      const account = accountOf(context);
      const result = await sweepIncoming({ ...deps, ...(account ? { account } : {}) });
      if (result.resent.length > 0) {
        // Each one is an event that went missing: worth an alarm, since the rule or queue may be broken.
        deps.metrics?.count('unrecordedUploads', result.resent.length);
        deps.metrics?.flush();
        logger.warn('re-sent the events of unrecorded uploads', {
          count: result.resent.length,
          files: result.resent.map((r) => r.key),
        });
      }
      logger.info('swept incoming/', {
        scanned: result.scanned,
        resent: result.resent.length,
        tooRecent: result.tooRecent,
        notExtracts: result.notExtracts,
        superseded: result.superseded,
      });
      return result;
    });
}

export const handler = createHandler();

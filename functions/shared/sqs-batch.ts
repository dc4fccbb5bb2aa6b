/**
 * The one way Tally consumes SQS: each record is parsed and handled on its own, failures are
 * reported as batchItemFailures (Powertools batch) so one poison message doesn't drag its batch
 * back, and nothing is swallowed — a record either succeeds or throws.
 */
import middy from '@middy/core';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { z } from 'zod';
import { PermanentError } from './errors.ts';
import type { FailureRecorder } from './tables/failures.ts';

/** Parses a JSON body against a schema; a malformed body is a permanent failure. */
export function parseBody<S extends z.ZodType>(record: SQSRecord, schema: S): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(record.body);
  } catch {
    throw new PermanentError('BAD_MESSAGE', `message ${record.messageId} is not JSON`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new PermanentError('BAD_MESSAGE', `message ${record.messageId} is not the expected shape: ${problems}`);
  }
  return parsed.data;
}

/** What the wrapper itself takes from a consumer's dependencies. */
export interface SqsConsumerDeps {
  /** Where to record why a message failed, for `tally dlq`; undefined where no table is configured. */
  readonly failures?: FailureRecorder | undefined;
}

/**
 * A queue consumer: `makeDeps` runs once, on the first record (a failure to build them fails that
 * record and is tried again on the next), and every record is handled with the same deps.
 */
export function createSqsHandler<D extends SqsConsumerDeps>(
  logger: Logger,
  makeDeps: () => D,
  handleRecord: (record: SQSRecord, deps: D) => Promise<void>,
): middy.MiddyfiedHandler<SQSEvent, SQSBatchResponse, Error, Context> {
  const processor = new BatchProcessor(EventType.SQS);
  let deps: D | undefined;
  const recordHandler = async (record: SQSRecord): Promise<void> => {
    try {
      deps ??= makeDeps();
      await handleRecord(record, deps);
    } catch (error) {
      // Logged here with the message id so the DLQ entry can be traced; rethrown so it is retried.
      logger.error('record failed', {
        messageId: record.messageId,
        receiveCount: record.attributes.ApproximateReceiveCount,
        code: (error as { code?: string }).code,
        permanent: error instanceof PermanentError,
        error: error as Error,
      });
      // For `tally dlq`: why this body failed, readable after it is dead-lettered. Best effort.
      // (Nothing to record with when the deps themselves could not be built.)
      await deps?.failures
        ?.record(record.eventSourceARN, record.body, error)
        .catch((recordError: Error) =>
          logger.warn('could not record the failure', { messageId: record.messageId, error: recordError }),
        );
      throw error;
    }
  };
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event, context) =>
      processPartialResponse(event, recordHandler, processor, { context, throwOnFullBatchFailure: false }),
    );
}

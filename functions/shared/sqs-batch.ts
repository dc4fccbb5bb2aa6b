/**
 * The one way Tally consumes SQS: each record is parsed and handled on its own, failures are
 * reported as batchItemFailures (Powertools batch) so one poison message doesn't drag its batch
 * back, and nothing is swallowed — a record either succeeds, is moved to the DLQ with its reason
 * (permanently bad: retrying cannot help, so it does not wait out maxReceiveCount visibility
 * timeouts — 5 x 90 min for recon), or throws to be retried. While a record is handled, a
 * heartbeat keeps its message invisible (ChangeMessageVisibility every third of the visibility
 * timeout), so long work is not delivered twice and a short visibility timeout is safe: a dead
 * worker's message comes back within one timeout.
 */
import middy from '@middy/core';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { SqsDeadLetterQueue, SqsMessageVisibility } from './adapters/sqs-queue.ts';
import { loadConfig } from './config.ts';
import { PermanentError } from './errors.ts';
import { doublingDelaySeconds, HeldElsewhereError, heldRetryDelaySeconds, startHeartbeat } from './lease.ts';
import { crashPoint } from './crash-point.ts';
import { withRecordKeys } from './logger.ts';
import { emfMetrics, type BusinessMetrics } from './metrics.ts';
import { failureStore } from './tables/failures-dynamo.ts';
import type { DeadLetterQueue, MessageVisibility } from './ports.ts';
import { ENV, FUNCTIONS, LAMBDA_ENV, QUEUES, VISIBILITY_TIMEOUT_FACTOR, type QueueName } from './resources.ts';
import type { FailureRecorder } from './tables/failures.ts';
import { regionRoleFromEnv, type RegionRole, type RegionRoleReader } from './region-role.ts';

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
  /** The consumed queue's DLQ; without it a permanent failure is retried like any other. */
  readonly deadLetter?: DeadLetterQueue | undefined;
  readonly metrics?: BusinessMetrics | undefined;
  /** The consumed queue; without it no heartbeat extends the message's visibility. */
  readonly visibility?: MessageVisibility | undefined;
  /** This region's role: a region that is not active leaves every message in its queue. */
  readonly regionRole?: RegionRoleReader | undefined;
}

/** SQS's limit on a message's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 12 * 3600;

/**
 * How long a region that is not active keeps a message out of sight: the queue's visibility
 * timeout, doubled at each receive, at most SQS's 12 h. Every receive counts toward the queue's
 * maxReceiveCount (5) whatever the consumer does (only a disabled event source mapping receives
 * nothing), so spacing the receives out is what keeps a held message out of the DLQ: with ingest's
 * 12 min timeout its fifth receive comes ~6 h after the first, recon's ~23 h, store's and
 * triage's ~8 h. A region fenced for longer disables its event source mappings (the runbook), and
 * a message that still reaches the DLQ is redriven after promotion (`tally dlq redrive`): it waits
 * there 14 days, and every consumer is idempotent on the data's own keys.
 */
export function notActiveHoldSeconds(receiveCount: number, visibilityTimeoutSeconds: number): number {
  return doublingDelaySeconds(receiveCount, visibilityTimeoutSeconds, MAX_VISIBILITY_SECONDS);
}

/**
 * A queue consumer: `makeDeps` runs once, on the first record (a failure to build them fails that
 * record and is tried again on the next), and every record is handled with the same deps.
 */
export function createSqsHandler<D extends SqsConsumerDeps>(
  logger: Logger,
  makeDeps: () => D,
  handleRecord: (record: SQSRecord, deps: D) => Promise<void>,
  options: {
    /**
     * In a region that is not active: why this record may be acknowledged rather than held (it
     * is another region's to handle), or undefined to hold it. A check that fails holds it.
     */
    readonly releaseWhenNotActive?: (record: SQSRecord, deps: D) => Promise<string | undefined>;
  } = {},
): middy.MiddyfiedHandler<SQSEvent, SQSBatchResponse, Error, Context> {
  const processor = new BatchProcessor(EventType.SQS);
  let deps: D | undefined;
  const recordHandler = async (record: SQSRecord): Promise<void> => {
    let heartbeat: ReturnType<typeof startHeartbeat> | undefined;
    try {
      deps ??= makeDeps();
      const visibility = deps.visibility;
      if (visibility)
        heartbeat = startHeartbeat(
          () => visibility.extend(record.receiptHandle),
          (visibility.timeoutSeconds * 1000) / 3,
          (error) => logger.warn('could not extend the message visibility', { messageId: record.messageId, error }),
        );
      await handleRecord(record, deps);
      // Handled but not yet deleted from its queue: the crash test's "during triage".
      if (process.env[LAMBDA_ENV.serviceName] === 'triage') crashPoint('triage:handled');
    } catch (error) {
      const deadLetter = error instanceof PermanentError ? deps?.deadLetter : undefined;
      // Logged here with the message id so the DLQ entry can be traced.
      logger.error(deadLetter ? 'record is permanently bad: moved to the DLQ' : 'record failed', {
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
      if (deadLetter && error instanceof PermanentError) {
        // If the DLQ cannot take it, the record fails and SQS redelivers it: nothing is lost.
        await deadLetter
          .send({
            body: record.body,
            sourceQueueArn: record.eventSourceARN,
            code: error.code,
            reason: error.message,
            failedAt: new Date().toISOString(),
          })
          .catch((sendError: Error) => {
            deps?.metrics?.count('failedRecords');
            throw sendError;
          });
        deps?.metrics?.count('deadLettered');
        return;
      }
      deps?.metrics?.count('failedRecords');
      if (error instanceof HeldElsewhereError && deps?.visibility) {
        // Wait longer each time for the worker holding the claim (lease.ts says why).
        await heartbeat?.stop();
        heartbeat = undefined;
        const visibility = deps.visibility;
        const seconds = heldRetryDelaySeconds(
          Number(record.attributes.ApproximateReceiveCount),
          visibility.timeoutSeconds,
        );
        await visibility
          .hold?.(record.receiptHandle, seconds)
          .catch((extendError: Error) =>
            logger.warn('could not delay the retry', { messageId: record.messageId, error: extendError }),
          );
      }
      throw error;
    } finally {
      await heartbeat?.stop();
    }
  };
  /**
   * A region that is not active touches no record: each is reported failed (so SQS keeps it) and
   * held out of sight for notActiveHoldSeconds. Nothing is counted as a failure or recorded in the
   * failures table: the messages are fine, the region is not serving.
   */
  const holdUnlessActive = async (event: SQSEvent): Promise<SQSBatchResponse | undefined> => {
    try {
      deps ??= makeDeps();
    } catch {
      return undefined; // each record fails on its own below, as before, and is retried
    }
    if (!deps.regionRole) return undefined;
    let role: RegionRole;
    try {
      role = await deps.regionRole.read();
    } catch (error) {
      // Unknown role: handle nothing. The records come back after their visibility timeout.
      logger.error('could not read the region role: leaving the batch in the queue', { error: error as Error });
      return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    }
    if (role === 'active') return undefined;
    const active = deps;
    const release = options.releaseWhenNotActive;
    const released = new Set<string>();
    if (release)
      await Promise.all(
        event.Records.map(async (r) => {
          try {
            const reason = await release(r, active);
            if (reason === undefined) return;
            released.add(r.messageId);
            logger.info('region is not active: message released, not held', { messageId: r.messageId, reason });
          } catch (error) {
            logger.warn("could not tell whether the message is this region's: holding it", {
              messageId: r.messageId,
              error: error as Error,
            });
          }
        }),
      );
    if (released.size > 0) active.metrics?.count('replicaEventsReleased', released.size);
    const held = event.Records.filter((r) => !released.has(r.messageId));
    const visibility = deps.visibility;
    await Promise.all(
      held.map((r) =>
        visibility?.hold
          ?.call(
            visibility,
            r.receiptHandle,
            notActiveHoldSeconds(Number(r.attributes.ApproximateReceiveCount ?? 1), visibility.timeoutSeconds),
          )
          .catch((error: Error) => logger.warn('could not hold the message', { messageId: r.messageId, error })),
      ),
    );
    logger.warn('region is not active: messages left in the queue', {
      region: deps.regionRole.region,
      role,
      ...(deps.regionRole.reason ? { reason: deps.regionRole.reason } : {}),
      messages: held.length,
      released: released.size,
    });
    return { batchItemFailures: held.map((r) => ({ itemIdentifier: r.messageId })) };
  };
  return middy<SQSEvent, SQSBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event, context) => {
      try {
        const held = await holdUnlessActive(event);
        if (held) return held;
        // Each record's appended log keys are its own (the batch's records run concurrently).
        return await processPartialResponse(
          event,
          (record: SQSRecord) => withRecordKeys(() => recordHandler(record)),
          processor,
          {
            context,
            throwOnFullBatchFailure: false,
          },
        );
      } finally {
        deps?.metrics?.flush();
      }
    });
}

/** The consumed queue's DLQ when its URL is configured (the regional stack and the local stack set it). */
export function deadLetterQueue(sqs: SQSClient, url: string | undefined): DeadLetterQueue | undefined {
  return url ? new SqsDeadLetterQueue(sqs, url) : undefined;
}

/** What a consumer knows of the queue it reads: its URL and visibility timeout. */
export function consumedQueue(queue: QueueName, env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(
    {
      [ENV.consumedQueueUrl]: z.string().optional(),
      // The AWS rule (6x the consumer's timeout) when not told otherwise.
      [ENV.visibilityTimeoutSeconds]: z.coerce
        .number()
        .int()
        .positive()
        .default(VISIBILITY_TIMEOUT_FACTOR * FUNCTIONS[QUEUES[queue].consumer].timeoutSeconds),
    },
    env,
  );
  return { url: config[ENV.consumedQueueUrl], visibilityTimeoutSeconds: config[ENV.visibilityTimeoutSeconds] };
}

/** The heartbeat's handle on the consumed queue, when its URL is configured. */
export function messageVisibility(
  sqs: SQSClient,
  queue: { url: string | undefined; visibilityTimeoutSeconds: number },
): MessageVisibility | undefined {
  return queue.url ? new SqsMessageVisibility(sqs, queue.url, queue.visibilityTimeoutSeconds) : undefined;
}

/**
 * What the wrapper itself takes, built the same way for every consumer: its heartbeat on the
 * consumed queue, the failures table, its DLQ and its metrics (one place, not one per handler).
 */
export function consumerDeps(
  aws: { sqs: SQSClient; dynamo: Parameters<typeof failureStore>[0] },
  config: { failuresTable: string | undefined; deadLetterQueueUrl: string | undefined },
  consumer: { service: string; queue: { url: string | undefined; visibilityTimeoutSeconds: number } },
): SqsConsumerDeps {
  return {
    visibility: messageVisibility(aws.sqs, consumer.queue),
    failures: failureStore(aws.dynamo, config.failuresTable),
    deadLetter: deadLetterQueue(aws.sqs, config.deadLetterQueueUrl),
    metrics: emfMetrics(consumer.service),
    regionRole: regionRoleFromEnv(),
  };
}

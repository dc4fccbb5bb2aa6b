/** Notify Lambda: business events from the notifications queue (subscribed to the business events topic) -> webhooks. */
import type { SQSRecord } from 'aws-lambda';
import { z } from 'zod';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { createLogger } from '../shared/logger.ts';
import type { BusinessEvent } from '../shared/notifications.ts';
import { ENV } from '../shared/resources.ts';
import { consumedQueue, consumerDeps, createSqsHandler, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { notifyConfig } from './config.ts';
import { deliverEvent, type NotifyDeps } from './notify.ts';

const logger = createLogger('notify');

/** What every business event carries (functions/shared/notifications.ts); the rest passes through. */
const businessEventSchema = z.looseObject({
  kind: z.enum(['run_held', 'critical', 'overdue', 'assigned']),
  dataset: z.string().min(1),
  text: z.string().min(1),
  at: z.string().min(1),
});

/** A webhook that does not answer in this long is a failed try. */
const POST_TIMEOUT_MS = 10_000;

export function defaultDeps(): NotifyDeps & SqsConsumerDeps {
  const config = notifyConfig();
  const aws = createAwsClients({ s3ForcePathStyle: false });
  return {
    webhookUrls: config[ENV.webhookUrls],
    post: async (url, body) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(POST_TIMEOUT_MS),
      });
      await res.body?.cancel();
      return { status: res.status };
    },
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'notify', queue: consumedQueue('notifications') },
    ),
  };
}

export function createHandler(makeDeps: () => NotifyDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const event = parseBody(record, businessEventSchema) as unknown as BusinessEvent;
    const result = await deliverEvent(event, deps);
    logger.info('business event delivered', {
      messageId: record.messageId,
      kind: event.kind,
      ...('exception_id' in event ? { exceptionId: event.exception_id } : {}),
      ...('run_id' in event && event.run_id ? { runId: event.run_id } : {}),
      webhooks: result.delivered,
      posts: result.posts,
    });
  });
}

export const handler = createHandler();

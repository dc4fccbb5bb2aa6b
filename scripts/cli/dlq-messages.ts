/**
 * Reading a DLQ without consuming it: depth, the messages with the failure the consumers
 * recorded for each, and what each is about, read through the schema of the queue it came from.
 */
import { GetQueueAttributesCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import {
  objectCreatedEventSchema,
  reconRequestSchema,
  storeRequestSchema,
  triageQueueMessageSchema,
} from '../../functions/shared/messages.ts';
import type { QueueName } from '../../functions/shared/resources.ts';
import { failureId, type FailureRecord } from '../../functions/shared/tables/failures.ts';
import { DEAD_LETTER_ATTRIBUTES } from '../../functions/shared/adapters/sqs-queue.ts';
import type { QueuePair, Target } from './dlq-target.ts';

export interface DlqMessage {
  readonly messageId: string;
  readonly receiveCount: number;
  readonly sentAt?: string;
  readonly body: string;
  readonly failure?: FailureRecord;
  /** Set when a consumer moved the message here at once as permanently bad (its message attributes). */
  readonly deadLettered?: { readonly code: string; readonly reason: string; readonly failedAt: string };
}

export async function depth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/**
 * Reads up to `max` messages without consuming them: received with a zero visibility timeout,
 * so they stay visible (and redrivable) throughout. Rounds continue until one brings nothing new.
 * (Receiving with a timeout and handing messages back with ChangeMessageVisibility 0 would do the
 * same on AWS, but loses the message in the local emulator, fauxqs 2.4.)
 */
export async function readMessages(target: Target, pair: QueuePair, max: number): Promise<DlqMessage[]> {
  const seen = new Map<string, Message>();
  while (seen.size < max) {
    const out = await target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pair.dlqUrl,
        MaxNumberOfMessages: Math.min(10, max - seen.size),
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const fresh = (out.Messages ?? []).filter((m) => !seen.has(m.MessageId as string));
    if (fresh.length === 0) break;
    for (const m of fresh) seen.set(m.MessageId as string, m);
  }
  const messages = [...seen.values()];
  const failures = await recordedFailures(
    target,
    pair.mainArn,
    messages.map((m) => m.Body ?? ''),
  );
  return messages.map((m) => {
    const sent = Number(m.Attributes?.SentTimestamp);
    const failure = failures.get(failureId(pair.mainArn, m.Body ?? ''));
    const attribute = (name: string) => m.MessageAttributes?.[name]?.StringValue;
    const code = attribute(DEAD_LETTER_ATTRIBUTES.code);
    return {
      messageId: m.MessageId as string,
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
      ...(Number.isFinite(sent) && sent > 0 ? { sentAt: new Date(sent).toISOString() } : {}),
      body: m.Body ?? '',
      ...(failure ? { failure } : {}),
      ...(code
        ? {
            deadLettered: {
              code,
              reason: attribute(DEAD_LETTER_ATTRIBUTES.reason) ?? '',
              failedAt: attribute(DEAD_LETTER_ATTRIBUTES.failedAt) ?? '',
            },
          }
        : {}),
    };
  });
}

async function recordedFailures(
  target: Target,
  queueArn: string,
  bodies: string[],
): Promise<Map<string, FailureRecord>> {
  try {
    return await target.failures.find(queueArn, bodies);
  } catch {
    // Reasons are a convenience: without the table (or access to it) the listing still works.
    return new Map();
  }
}

/** A one-line description of what a message on `queue` is about, from that queue's schema. */
export function describeMessage(queue: QueueName, body: string): string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return `(not JSON) ${body.slice(0, 60)}`;
  }
  if (queue === 'ingest') {
    const event = objectCreatedEventSchema.safeParse(json);
    if (event.success) {
      const { bucket, object } = event.data.detail;
      return `s3://${bucket.name}/${object.key} (etag ${object.etag})`;
    }
  } else if (queue === 'recon') {
    const request = reconRequestSchema.safeParse(json);
    if (request.success)
      return `recon run ${request.data.run_id} (${request.data.dataset} ${request.data.business_date})`;
  } else if (queue === 'store') {
    const request = storeRequestSchema.safeParse(json);
    if (request.success)
      return `findings chunk ${request.data.chunk} of run ${request.data.run_id} (${request.data.findings} findings, s3://${request.data.bucket}/${request.data.key})`;
  } else {
    const request = triageQueueMessageSchema.safeParse(json);
    if (request.success) {
      const m = request.data;
      if (m.kind === 'dispatch') return `dispatch of run ${m.run_id}${m.cursor ? ' (a later page)' : ''}`;
      if (m.kind === 'pattern') return `pattern ${m.pattern_id} (run ${m.run_id})`;
      if (m.kind === 'pattern-members') return `members of pattern ${m.pattern_id} (run ${m.run_id})`;
      if (m.kind === 'uncited')
        return `${m.recovered === undefined ? `uncited triages asked again after ${m.document} was indexed` : `degraded triages asked again after ${m.recovered} answered again`}${m.cursor ? ' (a later page)' : ''}`;
      return `exception ${m.exception_id} (run ${m.run_id})`;
    }
  }
  return `(not a valid ${queue} message) ${body.slice(0, 60)}`;
}

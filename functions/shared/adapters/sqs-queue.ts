import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { MessageQueue } from '../ports.ts';
import { retryUnprocessed } from '../retry.ts';

/** Calls of one SendMessageBatch before its failed entries are handed back as a transient failure. */
const MAX_SEND_ATTEMPTS = 5;

/** JSON messages to one queue, ten per SendMessageBatch; failed entries are retried, then thrown. */
export class SqsQueue<T> implements MessageQueue<T> {
  private readonly sqs: SQSClient;
  private readonly queueUrl: string;
  constructor(sqs: SQSClient, queueUrl: string) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
  }

  async send(messages: T[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      await retryUnprocessed(
        messages.slice(i, i + 10).map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m) })),
        async (entries) => {
          const out = await this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
          const failed = new Set((out.Failed ?? []).map((f) => f.Id));
          return entries.filter((e) => failed.has(e.Id));
        },
        {
          maxAttempts: MAX_SEND_ATTEMPTS,
          gaveUp: (left) => `could not send ${left} message(s) to ${this.queueUrl}`,
        },
      );
    }
  }
}

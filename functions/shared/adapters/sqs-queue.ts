import {
  ChangeMessageVisibilityCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { DeadLetter, DeadLetterQueue, MessageQueue, MessageVisibility, SendOptions } from '../ports.ts';
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

  async send(messages: T[], options: SendOptions = {}): Promise<void> {
    const delay = options.delaySeconds === undefined ? {} : { DelaySeconds: options.delaySeconds };
    for (let i = 0; i < messages.length; i += 10) {
      await retryUnprocessed(
        messages.slice(i, i + 10).map((m, j) => ({ Id: String(j), MessageBody: JSON.stringify(m), ...delay })),
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

/** Message attributes a dead-lettered message carries; `tally dlq` shows them. */
export const DEAD_LETTER_ATTRIBUTES = {
  code: 'TallyErrorCode',
  reason: 'TallyErrorReason',
  sourceQueueArn: 'TallySourceQueueArn',
  failedAt: 'TallyFailedAt',
} as const;

/** SQS caps one message attribute value with the body at 256 KiB; a reason needs far less. */
const MAX_REASON = 1000;

/** The body unchanged (a redrive replays it as it was), the reason in message attributes. */
export class SqsDeadLetterQueue implements DeadLetterQueue {
  private readonly sqs: SQSClient;
  private readonly queueUrl: string;
  constructor(sqs: SQSClient, queueUrl: string) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
  }

  async send(message: DeadLetter): Promise<void> {
    const text = (value: string) => ({ DataType: 'String', StringValue: value || '-' });
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: message.body,
        MessageAttributes: {
          [DEAD_LETTER_ATTRIBUTES.code]: text(message.code),
          [DEAD_LETTER_ATTRIBUTES.reason]: text(message.reason.slice(0, MAX_REASON)),
          [DEAD_LETTER_ATTRIBUTES.sourceQueueArn]: text(message.sourceQueueArn),
          [DEAD_LETTER_ATTRIBUTES.failedAt]: text(message.failedAt),
        },
      }),
    );
  }
}

/** The consumed queue: ChangeMessageVisibility on the message in hand (the consumer's heartbeat). */
export class SqsMessageVisibility implements MessageVisibility {
  private readonly sqs: SQSClient;
  private readonly queueUrl: string;
  readonly timeoutSeconds: number;
  constructor(sqs: SQSClient, queueUrl: string, timeoutSeconds: number) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
    this.timeoutSeconds = timeoutSeconds;
  }

  async extend(receiptHandle: string): Promise<void> {
    await this.hold(receiptHandle, this.timeoutSeconds);
  }

  async hold(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }
}

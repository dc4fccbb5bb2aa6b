/**
 * Calls a Lambda handler the way the SQS event source mapping does: receive up to `batchSize`
 * messages, invoke with an SQSEvent, delete the ones that succeeded, leave the reported
 * batchItemFailures (or the whole batch, if the handler throws) to reappear after the visibility
 * timeout — and, past maxReceiveCount, to be moved to the DLQ by the queue's redrive policy.
 */
import { randomUUID } from 'node:crypto';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';

export type SqsLambdaHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface PollerOptions {
  readonly name: string;
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  readonly batchSize: number;
  readonly timeoutSeconds: number;
  readonly handler: SqsLambdaHandler;
  readonly onInvocation?: (info: { name: string; received: number; failed: number; error?: Error }) => void;
}

export interface Poller {
  /** True while a batch is being handled. */
  busy(): boolean;
  stop(): Promise<void>;
}

/**
 * Seconds a receive waits for a message when the queue is empty: SQS's longest, as Lambda's event
 * source mapping polls. A message sent meanwhile answers the receive at once, so only idle polling
 * changes: with 1 s, the local stack's 26 pollers sent 26 receives a second while nothing
 * happened, and the idle stack used 6.2% of a core; with 20 s, 3.4% (scripts/bench/RESULTS.md,
 * session 37).
 */
export const RECEIVE_WAIT_SECONDS = 20;

export function startPoller(options: PollerOptions): Poller {
  let running = true;
  let busy = false;
  // Ends a waiting receive when the poller stops (it would otherwise hold stop() for up to 20 s).
  const stopping = new AbortController();
  const loop = (async () => {
    while (running) {
      let messages: Message[];
      try {
        const out = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: options.batchSize,
            WaitTimeSeconds: RECEIVE_WAIT_SECONDS,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: stopping.signal },
        );
        messages = out.Messages ?? [];
      } catch (error) {
        if (!running) break;
        options.onInvocation?.({ name: options.name, received: 0, failed: 0, error: error as Error });
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) continue;
      busy = true;
      try {
        await invoke(options, messages);
      } finally {
        busy = false;
      }
    }
  })();
  return {
    busy: () => busy,
    async stop() {
      running = false;
      // A batch being handled finishes (its messages deleted); only a waiting receive is ended.
      // The emulator may have handed that receive a message just before: it is received by no
      // one and comes back after the visibility timeout, as after a crash (never lost).
      if (!busy) stopping.abort();
      await loop;
    },
  };
}

async function invoke(options: PollerOptions, messages: Message[]): Promise<void> {
  const event: SQSEvent = {
    Records: messages.map((m) => ({
      messageId: m.MessageId as string,
      receiptHandle: m.ReceiptHandle as string,
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: m.Attributes?.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: options.queueArn,
      awsRegion: options.region,
    })),
  };
  const started = Date.now();
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: `local-${options.name}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${options.region}:000000000000:function:local-${options.name}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/local-${options.name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, options.timeoutSeconds * 1000 - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  } satisfies Context;

  let failedIds: Set<string>;
  let error: Error | undefined;
  try {
    const response = await options.handler(event, context);
    failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
  } catch (e) {
    error = e as Error;
    failedIds = new Set(messages.map((m) => m.MessageId as string));
  }
  const done = messages.filter((m) => !failedIds.has(m.MessageId as string));
  if (done.length > 0) {
    await options.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
      }),
    );
  }
  options.onInvocation?.({
    name: options.name,
    received: messages.length,
    failed: failedIds.size,
    ...(error ? { error } : {}),
  });
}

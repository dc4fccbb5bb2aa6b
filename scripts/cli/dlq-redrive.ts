/** Moving a DLQ's messages back to its source queue: SQS's own move task on AWS, one by one locally. */
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sleep } from '../../functions/shared/retry.ts';
import type { QueuePair } from './dlq-target.ts';

export interface RedriveResult {
  readonly moved: number;
  readonly status: string;
  readonly taskHandle?: string;
  readonly failureReason?: string;
}

/** How often a waiting redrive asks SQS how its move task is doing. */
const MOVE_TASK_POLL_MS = 2000;

/** AWS: SQS moves the messages itself, in order, at its own pace. */
export async function moveTask(sqs: SQSClient, pair: QueuePair, wait: boolean): Promise<RedriveResult> {
  const started = await sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: pair.dlqArn, DestinationArn: pair.mainArn }),
  );
  const taskHandle = started.TaskHandle as string;
  if (!wait) return { moved: 0, status: 'RUNNING', taskHandle };
  // A move task runs at up to 500 messages/s; half an hour is a DLQ far beyond anything normal.
  const deadline = Date.now() + 30 * 60 * 1000;
  while (Date.now() < deadline) {
    await sleep(MOVE_TASK_POLL_MS);
    const out = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: pair.dlqArn, MaxResults: 1 }));
    const task = out.Results?.find((t) => t.TaskHandle === taskHandle) ?? out.Results?.[0];
    if (task && task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') {
      return {
        moved: task.ApproximateNumberOfMessagesMoved ?? 0,
        status: task.Status ?? 'UNKNOWN',
        taskHandle,
        ...(task.FailureReason ? { failureReason: task.FailureReason } : {}),
      };
    }
  }
  return { moved: 0, status: 'RUNNING', taskHandle };
}

/**
 * Local: the emulator has no StartMessageMoveTask. Send a copy (same body and attributes), then
 * delete the original — a crash in between leaves a duplicate, never a loss; the consumers'
 * idempotency absorbs the duplicate. It moves as many messages as the DLQ held when it started: a
 * message its consumer sends straight back (one it cannot parse) was moved again and again, and
 * counted each time, for as long as the loop kept finding it.
 */
export async function moveOneByOne(sqs: SQSClient, pair: QueuePair): Promise<RedriveResult> {
  // In flight too: a message someone is looking at (dlq peek) is back in a moment.
  const depth = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: pair.dlqUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const toMove =
    Number(depth.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(depth.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  let moved = 0;
  while (moved < toMove) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pair.dlqUrl,
        MaxNumberOfMessages: Math.min(10, toMove - moved),
        VisibilityTimeout: 60,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return { moved, status: 'COMPLETED' };
    for (const m of messages) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: pair.mainUrl,
          MessageBody: m.Body ?? '',
          ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length > 0
            ? { MessageAttributes: m.MessageAttributes as Record<string, MessageAttributeValue> }
            : {}),
        }),
      );
      await sqs.send(new DeleteMessageCommand({ QueueUrl: pair.dlqUrl, ReceiptHandle: m.ReceiptHandle as string }));
      moved++;
    }
  }
  return { moved, status: 'COMPLETED' };
}

/** Moving a DLQ's messages back to its source queue: SQS's own move task on AWS, one by one locally. */
import {
  DeleteMessageCommand,
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
 * idempotency absorbs the duplicate.
 */
export async function moveOneByOne(sqs: SQSClient, pair: QueuePair): Promise<RedriveResult> {
  let moved = 0;
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pair.dlqUrl,
        MaxNumberOfMessages: 10,
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
}

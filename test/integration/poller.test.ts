/**
 * The local SQS poller (scripts/local/poller.ts) against the local SQS emulator: it long-polls as
 * Lambda's event source mapping does (one receive waiting on an idle queue, not one a second), a
 * message sent while it waits is handled and deleted, and stop() ends a waiting receive rather
 * than waiting it out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { startEmulators, type Emulators } from '../../scripts/local/emulators.ts';
import { RECEIVE_WAIT_SECONDS, startPoller } from '../../scripts/local/poller.ts';

let root: string;
let emulators: Emulators;
let sqs: SQSClient;
/** The WaitTimeSeconds of every ReceiveMessage the client sent. */
const receives: (number | undefined)[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tally-poller-'));
  emulators = await startEmulators(root);
  sqs = new SQSClient({
    region: 'us-east-1',
    endpoint: emulators.fauxqsUrl,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  sqs.middlewareStack.add(
    (next) => async (args) => {
      if (args.input && typeof args.input === 'object' && 'WaitTimeSeconds' in args.input)
        receives.push((args.input as { WaitTimeSeconds?: number }).WaitTimeSeconds);
      return next(args);
    },
    { step: 'initialize', name: 'countReceives' },
  );
});

afterAll(async () => {
  sqs.destroy();
  await emulators.stop();
  rmSync(root, { recursive: true, force: true });
});

async function queue(name: string): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: QueueUrl as string, AttributeNames: ['QueueArn'] }),
  );
  return { url: QueueUrl as string, arn: Attributes?.QueueArn as string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('local SQS poller', () => {
  it('waits in one long poll on an idle queue, hands a message sent meanwhile to the handler, deletes it, and stops without waiting the poll out', async () => {
    const { url, arn } = await queue('poller-long-poll');
    const handled: string[] = [];
    let resolveHandled: () => void = () => undefined;
    const wasHandled = new Promise<void>((r) => (resolveHandled = r));
    receives.length = 0;
    const poller = startPoller({
      name: 'probe',
      sqs,
      queueUrl: url,
      queueArn: arn,
      region: 'us-east-1',
      batchSize: 10,
      timeoutSeconds: 30,
      handler: async (event: SQSEvent) => {
        handled.push(...event.Records.map((r) => r.body));
        resolveHandled();
      },
    });
    // Idle for 2.5 s: a poll of 1 s would have sent three receives by now.
    await sleep(2_500);
    expect(receives).toEqual([RECEIVE_WAIT_SECONDS]);
    expect(RECEIVE_WAIT_SECONDS).toBe(20);

    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'hello' }));
    await wasHandled;
    expect(handled).toEqual(['hello']);

    // Back to waiting (the receive after the handled batch); stop ends it well inside the
    // test's timeout, and no receive follows.
    await sleep(200);
    const sent = receives.length;
    await poller.stop();
    await sleep(200);
    expect(receives.length).toBe(sent);
    // Deleted after the handler succeeded: nothing left to receive, visible or not.
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(Attributes).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
    const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }));
    expect(again.Messages ?? []).toEqual([]);
  }, 10_000);
});

import { mockClient } from 'aws-sdk-client-mock';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { SqsQueue } from '../../functions/shared/adapters/sqs-queue.ts';

const sqs = mockClient(SQSClient);
afterEach(() => sqs.reset());

function recordBatches(): SendMessageBatchCommandInput[] {
  const sent: SendMessageBatchCommandInput[] = [];
  sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
    sent.push(input);
    return { Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: 'm', MD5OfMessageBody: '' })) };
  });
  return sent;
}

describe('SqsQueue', () => {
  it('sends JSON bodies ten to a batch, with no delay unless asked', async () => {
    const sent = recordBatches();
    await new SqsQueue<{ n: number }>(new SQSClient({ region: 'us-east-1' }), 'https://q/tally-triage').send(
      Array.from({ length: 12 }, (_, n) => ({ n })),
    );
    expect(sent.map((b) => b.Entries?.length)).toEqual([10, 2]);
    expect(JSON.parse(sent[1]?.Entries?.[1]?.MessageBody ?? '')).toEqual({ n: 11 });
    expect(sent.flatMap((b) => b.Entries ?? []).some((e) => 'DelaySeconds' in e)).toBe(false);
  });

  it('delays every message of the call when asked (an uncited sweep waiting for a push to settle)', async () => {
    const sent = recordBatches();
    await new SqsQueue<{ n: number }>(new SQSClient({ region: 'us-east-1' }), 'https://q/tally-triage').send(
      [{ n: 1 }, { n: 2 }],
      { delaySeconds: 45 },
    );
    expect(sent[0]?.Entries?.map((e) => e.DelaySeconds)).toEqual([45, 45]);
  });
});

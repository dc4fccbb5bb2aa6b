import { mockClient } from 'aws-sdk-client-mock';
import { SendMessageBatchCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';

/** SQS mocked with aws-sdk-client-mock: every batch succeeds; `bodies()` returns what was sent, parsed. */
export function mockSqsSends() {
  const sqs = mockClient(SQSClient);
  const sent: SendMessageBatchCommandInput[] = [];
  sqs.on(SendMessageBatchCommand).callsFake(async (input: SendMessageBatchCommandInput) => {
    sent.push(input);
    return {
      Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
      Failed: [],
    };
  });
  return {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- message bodies are whatever the code under test sent
    bodies: (): any[] => sent.flatMap((s) => (s.Entries ?? []).map((e) => JSON.parse(e.MessageBody as string))),
    /** What was sent to the queue whose URL ends with `queue` (e.g. `-store`), parsed. */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
    bodiesTo: (queue: string): any[] =>
      sent
        .filter((s) => (s.QueueUrl ?? '').endsWith(queue))
        .flatMap((s) => (s.Entries ?? []).map((e) => JSON.parse(e.MessageBody as string))),
  };
}

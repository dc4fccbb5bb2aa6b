import { randomUUID } from 'node:crypto';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';

let sequence = 0x1000;

/** An EventBridge "Object Created" event as S3 sends it. */
export function objectCreated(key: string, etag: string, options: { bucket?: string; sequencer?: string } = {}) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: '000000000000',
    time: '2025-12-10T08:00:00Z',
    region: 'us-east-1',
    resources: [`arn:aws:s3:::${options.bucket ?? 'tally-data'}`],
    detail: {
      version: '0',
      bucket: { name: options.bucket ?? 'tally-data' },
      object: {
        key,
        size: 100,
        etag,
        sequencer: options.sequencer ?? (sequence++).toString(16).toUpperCase().padStart(16, '0'),
      },
      reason: 'PutObject',
    },
  };
}

export function sqsRecord(body: unknown, messageId: string = randomUUID()): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:tally-ingest',
    awsRegion: 'us-east-1',
  };
}

export function sqsEvent(...records: SQSRecord[]): SQSEvent {
  return { Records: records };
}

export const lambdaContext = {
  callbackWaitsForEmptyEventLoop: false,
  functionName: 'test',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:test',
  memoryLimitInMB: '1024',
  awsRequestId: 'req',
  logGroupName: '/aws/lambda/test',
  logStreamName: 'test',
  getRemainingTimeInMillis: () => 60_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
} satisfies Context;

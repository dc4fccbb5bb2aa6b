/**
 * Why a message failed, recorded by the queue wrapper through the recorder in the handler's deps
 * and read back the way `tally dlq` reads it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHandler, defaultDeps } from '../../functions/ingest-worker/handler.ts';
import { DynamoFailureStore } from '../../functions/shared/tables/failures-dynamo.ts';
import { failureId, type FailureRecorder } from '../../functions/shared/tables/failures.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext, objectCreated, sqsEvent, sqsRecord } from '../support/events.ts';
import { heldRetryDelaySeconds, MAX_HELD_RETRY_SECONDS } from '../../functions/shared/lease.ts';
import type { IdempotencyStore } from '../../functions/shared/tables/idempotency.ts';

let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

describe('failure records', () => {
  it('the wrapper records a failed message with its queue ARN, body and reason through deps.failures', async () => {
    const record = vi.fn<FailureRecorder['record']>(async () => undefined);
    const handler = createHandler(() => ({ ...defaultDeps(), failures: { record } }));
    const poison = sqsRecord('{not json', 'poison');

    const response = await handler(sqsEvent(poison), lambdaContext);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison' }]);
    expect(record).toHaveBeenCalledTimes(1);
    expect(record.mock.calls[0]?.[0]).toBe(poison.eventSourceARN);
    expect(record.mock.calls[0]?.[1]).toBe('{not json');
    expect(record.mock.calls[0]?.[2]).toMatchObject({ code: 'BAD_MESSAGE' });
  });

  it('a recorder that fails changes nothing about the outcome', async () => {
    const handler = createHandler(() => ({
      ...defaultDeps(),
      failures: { record: async () => Promise.reject(new Error('table gone')) },
    }));

    const response = await handler(sqsEvent(sqsRecord('{not json', 'poison')), lambdaContext);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison' }]);
  });

  it('keeps the first reason, updates the last and counts; find() returns records by body', async () => {
    const store = new DynamoFailureStore(dynamo.doc, dynamo.names.tables.failures);
    const arn = 'arn:aws:sqs:us-east-1:000000000000:tally-ingest';

    await store.record(arn, 'body-1', new Error('first'), Date.parse('2025-12-20T08:00:00Z'));
    await store.record(
      arn,
      'body-1',
      Object.assign(new Error('second'), { code: 'E2' }),
      Date.parse('2025-12-20T09:00:00Z'),
    );
    const found = await store.find(arn, ['body-1', 'never-failed']);

    expect(found.size).toBe(1);
    expect(found.get(failureId(arn, 'body-1'))).toMatchObject({
      queue_arn: arn,
      first_reason: 'Error: first',
      first_failed_at: '2025-12-20T08:00:00.000Z',
      last_reason: 'E2: second',
      last_failed_at: '2025-12-20T09:00:00.000Z',
      failures: 2,
    });
  });
});

describe('a message whose claim another worker holds', () => {
  it('waits one visibility timeout, then twice as long each time, up to a cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => heldRetryDelaySeconds(n, 10))).toEqual([10, 20, 40, 80, 160]);
    expect(heldRetryDelaySeconds(1, 360)).toBe(360);
    expect(heldRetryDelaySeconds(3, 360)).toBe(MAX_HELD_RETRY_SECONDS);
    expect(heldRetryDelaySeconds(Number.NaN, 10)).toBe(10);
  });

  it('fails for a retry and stays invisible for the backoff, not the plain visibility timeout', async () => {
    const inProgress: IdempotencyStore = {
      begin: async () => ({ state: 'in_progress' }),
      reopen: async () => false,
      renew: async () => true,
      complete: async () => undefined,
      release: async () => undefined,
    };
    const extended: [string, number | undefined][] = [];
    const handler = createHandler(() => ({
      ...defaultDeps(),
      failures: { record: async () => undefined },
      idempotency: inProgress,
      visibility: {
        timeoutSeconds: 10,
        extend: async (receiptHandle: string) => {
          extended.push([receiptHandle, undefined]);
        },
        hold: async (receiptHandle: string, seconds: number) => {
          extended.push([receiptHandle, seconds]);
        },
      },
    }));
    const held = sqsRecord(objectCreated('incoming/trades/2025-12-20/source.csv', 'e1'), 'held');
    held.attributes.ApproximateReceiveCount = '3';

    const response = await handler(sqsEvent(held), lambdaContext);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'held' }]);
    expect(extended.at(-1)).toEqual(['rh-held', 40]);
  });
});

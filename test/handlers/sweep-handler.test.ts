import { createHandler as createDeadlinesHandler } from '../../functions/deadlines/handler.ts';
import type { DeadlineDeps } from '../../functions/deadlines/deadlines.ts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Context } from 'aws-lambda';
import { createHandler } from '../../functions/sweep/handler.ts';
import type { BusinessMetrics } from '../../functions/shared/metrics.ts';
import type { MetricKey } from '../../functions/shared/resources.ts';
import { lambdaContext } from '../support/events.ts';

const OLD = new Date(Date.now() - 3600_000);

function handlerWith(objects: { key: string; etag: string }[]) {
  const sent: unknown[] = [];
  const counted: [MetricKey, number | undefined][] = [];
  let flushed = 0;
  const metrics: BusinessMetrics = {
    count: (metric, value) => void counted.push([metric, value]),
    flush: () => void flushed++,
  };
  const handler = createHandler(() => ({
    listObjects: async function* () {
      for (const o of objects) yield { ...o, size: 1, lastModified: OLD };
    },
    files: { get: async () => undefined },
    ingestQueue: { send: async (m: unknown[]) => void sent.push(...m) },
    bucket: 'tally-data',
    region: 'eu-west-1',
    now: Date.now,
    minAgeMs: 300_000,
    metrics,
  }));
  return { handler, sent, counted, flushed: () => flushed };
}

afterEach(() => vi.restoreAllMocks());

describe('sweep handler', () => {
  it('re-sends the missed events with the account of its ARN and publishes a count metric', async () => {
    const { handler, sent, counted, flushed } = handlerWith([
      { key: 'incoming/trades/2025-12-10/source.csv', etag: 'abc' },
    ]);
    const context: Context = {
      ...lambdaContext,
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tally-sweep',
    };

    const result = await handler({ 'detail-type': 'Scheduled Event' }, context);

    expect(result.resent).toHaveLength(1);
    expect(sent).toMatchObject([{ account: '123456789012', region: 'eu-west-1' }]);
    expect(counted).toEqual([['unrecordedUploads', 1]]);
    expect(flushed()).toBe(1);
  });

  it('publishes nothing when every upload is recorded', async () => {
    const { handler, sent, counted } = handlerWith([]);

    const result = await handler({}, lambdaContext);

    expect(result.resent).toEqual([]);
    expect(sent).toEqual([]);
    expect(counted).toEqual([]);
  });
});

describe('sweep handler in a region that is not active', () => {
  it('sweeps nothing: missed events are the active region’s to re-send', async () => {
    const listed = vi.fn();
    const handler = createHandler(() => ({
      listObjects: async function* () {
        listed();
        yield { key: 'incoming/trades/2025-12-10/source.csv', etag: 'abc', size: 1, lastModified: OLD };
      },
      files: { get: async () => undefined },
      ingestQueue: { send: async () => undefined },
      bucket: 'tally-data',
      region: 'eu-west-1',
      now: Date.now,
      minAgeMs: 300_000,
      regionRole: { region: 'eu-west-1', read: async () => 'standby' as const },
    }));

    const result = await handler({}, lambdaContext);

    expect(result).toEqual({ scanned: 0, resent: [], tooRecent: 0, notExtracts: 0, superseded: 0 });
    expect(listed).not.toHaveBeenCalled();
  });
});

describe('the deadline sweep in a region that is not active', () => {
  it('promotes and announces nothing: the active region does both, once', async () => {
    const read = vi.fn(async () => []);
    const handler = createDeadlinesHandler(() => ({
      exceptions: { listExpiredPending: read, listOverdueUnannounced: read } as unknown as DeadlineDeps['exceptions'],
      triageQueue: { send: async () => undefined } as unknown as DeadlineDeps['triageQueue'],
      notifier: { publish: async () => undefined },
      workflows: async () => {
        throw new Error('not read');
      },
      now: Date.now,
      regionRole: { region: 'eu-west-1', read: async () => 'fenced' as const },
    }));

    const result = await handler({}, lambdaContext);

    expect(result).toEqual({ promoted: [], overdue: [] });
    expect(read).not.toHaveBeenCalled();
  });
});

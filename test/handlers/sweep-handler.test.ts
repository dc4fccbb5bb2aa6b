import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Context } from 'aws-lambda';
import { createHandler } from '../../functions/sweep/handler.ts';
import { METRICS } from '../../functions/shared/resources.ts';
import { lambdaContext } from '../support/events.ts';

const OLD = new Date(Date.now() - 3600_000);

function handlerWith(objects: { key: string; etag: string }[]) {
  const sent: unknown[] = [];
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
  }));
  return { handler, sent };
}

afterEach(() => vi.restoreAllMocks());

/** Powertools Metrics writes its EMF documents to stdout. */
function emfDocuments(write: { mock: { calls: unknown[][] } }) {
  return write.mock.calls
    .map((c) => String(c[0]))
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('sweep handler', () => {
  it('re-sends the missed events with the account of its ARN and publishes a count metric', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const { handler, sent } = handlerWith([{ key: 'incoming/trades/2025-12-10/source.csv', etag: 'abc' }]);
    const context: Context = {
      ...lambdaContext,
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tally-sweep',
    };

    const result = await handler({ 'detail-type': 'Scheduled Event' }, context);

    expect(result.resent).toHaveLength(1);
    expect(sent).toMatchObject([{ account: '123456789012', region: 'eu-west-1' }]);
    const emf = emfDocuments(write);
    expect(emf).toHaveLength(1);
    expect(emf[0]?.[METRICS.sweep.name]).toBe(1);
  });

  it('publishes nothing when every upload is recorded', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const { handler, sent } = handlerWith([]);

    const result = await handler({}, lambdaContext);

    expect(result.resent).toEqual([]);
    expect(sent).toEqual([]);
    expect(emfDocuments(write)).toEqual([]);
  });
});

/**
 * The queue wrapper's two ways out for a failed record — straight to the DLQ when it can never
 * succeed, back to SQS for a retry otherwise — and the business metrics each consumer emits,
 * checked against the registry the dashboard and alarms read.
 */
import { countDeadlines } from '../../functions/deadlines/handler.ts';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { countIngest, createHandler, defaultDeps } from '../../functions/ingest-worker/handler.ts';
import { countRun } from '../../functions/recon/handler.ts';
import { countCompletion, countStored } from '../../functions/store/handler.ts';
import { countTriage } from '../../functions/triage/handler.ts';
import { DEAD_LETTER_ATTRIBUTES, SqsDeadLetterQueue } from '../../functions/shared/adapters/sqs-queue.ts';
import type { BusinessMetrics } from '../../functions/shared/metrics.ts';
import type { DeadLetter, DeadLetterQueue } from '../../functions/shared/ports.ts';
import { METRIC_KEYS, METRICS, type MetricKey } from '../../functions/shared/resources.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext, objectCreated, sqsEvent, sqsRecord } from '../support/events.ts';
import { mockS3Objects } from '../support/s3-objects.ts';
import { mockSqsSends } from '../support/sqs-sends.ts';

let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

/** A BusinessMetrics that remembers every count, as `${key}` or `${key}:${dimension}`. */
function recordingMetrics() {
  const counts = new Map<string, number>();
  const metrics: BusinessMetrics & { keys(): Set<MetricKey>; counts: Map<string, number>; flushes: number } = {
    counts,
    flushes: 0,
    count(metric, value = 1, dimension) {
      if (value === 0) return;
      const name = dimension === undefined ? metric : `${metric}:${dimension}`;
      counts.set(name, (counts.get(name) ?? 0) + value);
    },
    flush() {
      metrics.flushes++;
    },
    keys: () => new Set([...counts.keys()].map((k) => k.split(':')[0] as MetricKey)),
  };
  return metrics;
}

function recordingDlq() {
  const sent: DeadLetter[] = [];
  const dlq: DeadLetterQueue = { send: async (m) => void sent.push(m) };
  return { dlq, sent };
}

describe('permanent failures go to the DLQ at once', () => {
  it('moves a malformed body to the DLQ with its reason, and reports the record as handled', async () => {
    const { dlq, sent } = recordingDlq();
    const metrics = recordingMetrics();
    const handler = createHandler(() => ({ ...defaultDeps(), deadLetter: dlq, metrics }));
    const poison = sqsRecord('{not json', 'poison');

    const response = await handler(sqsEvent(poison), lambdaContext);

    expect(response.batchItemFailures).toEqual([]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ body: '{not json', sourceQueueArn: poison.eventSourceARN, code: 'BAD_MESSAGE' });
    expect(sent[0]?.reason).toMatch(/not JSON/);
    expect(metrics.counts.get('deadLettered')).toBe(1);
    expect(metrics.counts.has('failedRecords')).toBe(false);
    expect(metrics.flushes).toBe(1);
  });

  it('moves an object key outside the layout to the DLQ as INVALID_KEY', async () => {
    const { dlq, sent } = recordingDlq();
    const handler = createHandler(() => ({ ...defaultDeps(), deadLetter: dlq }));

    const response = await handler(
      sqsEvent(sqsRecord(objectCreated('incoming/trades/not-a-date/source.csv', 'e1'), 'bad-key')),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(sent.map((m) => m.code)).toEqual(['INVALID_KEY']);
  });

  it('leaves a transient failure to SQS to retry (batch item failure), counted as a failed record', async () => {
    const { dlq, sent } = recordingDlq();
    const metrics = recordingMetrics();
    const handler = createHandler(() => ({
      ...defaultDeps(),
      deadLetter: dlq,
      metrics,
      idempotency: {
        begin: async () => Promise.reject(new Error('ProvisionedThroughputExceededException')),
        reopen: async () => false,
        renew: async () => true,
        complete: async () => undefined,
        release: async () => undefined,
      },
    }));

    const response = await handler(
      sqsEvent(sqsRecord(objectCreated('incoming/trades/2025-03-01/source.csv', 'e1'), 'busy')),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'busy' }]);
    expect(sent).toEqual([]);
    expect(metrics.counts.get('failedRecords')).toBe(1);
  });

  it('retries a permanent failure when the DLQ cannot take it: nothing is lost', async () => {
    const metrics = recordingMetrics();
    const handler = createHandler(() => ({
      ...defaultDeps(),
      deadLetter: { send: async () => Promise.reject(new Error('AccessDenied')) },
      metrics,
    }));

    const response = await handler(sqsEvent(sqsRecord('{not json', 'poison')), lambdaContext);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison' }]);
    expect(metrics.counts.get('failedRecords')).toBe(1);
  });

  it('without a DLQ configured, a permanent failure is retried like any other (as before)', async () => {
    const handler = createHandler(() => ({ ...defaultDeps(), deadLetter: undefined }));

    const response = await handler(sqsEvent(sqsRecord('{not json', 'poison')), lambdaContext);

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'poison' }]);
  });

  it('the SQS adapter sends the body unchanged with the reason in message attributes', async () => {
    const sqs = mockClient(SQSClient);
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
    const dlq = new SqsDeadLetterQueue(new SQSClient({ region: 'us-east-1' }), 'https://sqs/q-dlq');

    await dlq.send({
      body: '{"a":1}',
      sourceQueueArn: 'arn:aws:sqs:us-east-1:1:q',
      code: 'BAD_MESSAGE',
      reason: 'x'.repeat(5000),
      failedAt: '2025-12-10T08:00:00.000Z',
    });

    const input = sqs.commandCalls(SendMessageCommand)[0]?.args[0].input;
    expect(input?.QueueUrl).toBe('https://sqs/q-dlq');
    expect(input?.MessageBody).toBe('{"a":1}');
    expect(input?.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.code]?.StringValue).toBe('BAD_MESSAGE');
    expect(input?.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toHaveLength(1000);
    expect(input?.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.sourceQueueArn]?.StringValue).toBe(
      'arn:aws:sqs:us-east-1:1:q',
    );
    sqs.restore();
  });
});

describe('business metrics', () => {
  it('the ingest worker counts an accepted file and its rows through deps.metrics', async () => {
    const objects = mockS3Objects();
    mockSqsSends();
    const metrics = recordingMetrics();
    const handler = createHandler(() => ({ ...defaultDeps(), metrics }));
    const key = 'incoming/trades/2025-03-02/source.csv';
    const etag = objects.put(key, readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8'));

    const response = await handler(sqsEvent(sqsRecord(objectCreated(key, etag))), lambdaContext);
    await handler(sqsEvent(sqsRecord(objectCreated(key, etag))), lambdaContext);

    expect(response.batchItemFailures).toEqual([]);
    expect(Object.fromEntries(metrics.counts)).toEqual({
      'filesIngested:ACCEPTED': 1,
      rowsAccepted: 20,
      duplicatesSuppressed: 1,
    });
  });

  it('every metric in the registry is emitted by some consumer outcome', () => {
    const metrics = recordingMetrics();

    countIngest({ outcome: 'ACCEPTED', rows: 3 }, metrics);
    countIngest({ outcome: 'REJECTED', code: 'ENCODING', message: 'm' }, metrics);
    countIngest({ outcome: 'DUPLICATE' }, metrics);
    countCompletion(
      { outcome: 'COMPLETED', exceptions: { AMOUNT_MISMATCH: 2, INVALID_RECORD: 1 }, resolved: 0, triage: 'NONE' },
      metrics,
    );
    countStored(
      {
        outcome: 'STORED',
        chunk: 0,
        counts: { new: 2, changed: 0, unchanged: 0, triage_enqueued: 2, cut_for_storage: 1 },
        cut_ids: ['e1'],
      },
      metrics,
    );
    // A run the runaway guard held: counted when its one notification goes out.
    countCompletion({ outcome: 'ALREADY_COMPLETED', triage: 'HELD_NOTIFIED' }, metrics);
    countRun({ outcome: 'FAILED', code: 'ENCODING', message: 'm' }, metrics);
    countTriage(
      { outcome: 'TRIAGED', provider: 'rules', model: 'rules', degraded: true, route: 'default', citations: 1 },
      metrics,
    );
    countDeadlines({ promoted: ['p'], overdue: ['o'] }, metrics);
    // The queue wrapper's own two (covered above through a handler), the sweep's
    // (test/handlers/sweep-handler.test.ts) and triageCall's (test/handlers/triage-cost.test.ts).
    metrics.count('failedRecords');
    metrics.count('triageBudgetExceeded');
    metrics.count('triageCost');
    metrics.count('deadLettered');
    metrics.count('unrecordedUploads');
    // A standby's ingest releasing replicas' events (test/handlers/ingest-standby-replicas.test.ts).
    metrics.count('replicaEventsReleased');

    expect([...metrics.keys()].sort()).toEqual([...METRIC_KEYS].sort());
    expect(metrics.counts.get('exceptions:AMOUNT_MISMATCH')).toBe(2);
    expect(metrics.counts.get('rowsRejected')).toBe(1);
    expect(metrics.counts.get('exceptionsCut')).toBe(1);
    expect(metrics.counts.get('triage:rules')).toBe(1);
  });

  it('the counts this test plays by hand are emitted by real handler code too', () => {
    const wrapper = readFileSync('functions/shared/sqs-batch.ts', 'utf8');
    for (const key of ['failedRecords', 'deadLettered'] as const) {
      expect(wrapper).toContain(`count('${key}')`);
      expect(METRICS[key].name).toBeTruthy();
    }
    expect(readFileSync('functions/sweep/handler.ts', 'utf8')).toContain(`count('unrecordedUploads'`);
    expect(wrapper).toContain(`count('replicaEventsReleased'`);
  });
});

describe('the metrics adapter', () => {
  it('writes one EMF document per dimension value, with the service dimension', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const { emfMetrics } = await import('../../functions/shared/metrics.ts');
      const metrics = emfMetrics('recon');
      metrics.count('exceptions', 2, 'AMOUNT_MISMATCH');
      metrics.count('runsCompleted');
      metrics.count('rowsRejected', 0);
      metrics.flush();
    } finally {
      write.mockRestore();
      vi.unstubAllEnvs();
    }

    const docs = lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{"_aws"') || l.includes('"_aws"'));
    const parsed = docs.map((d) => JSON.parse(d) as Record<string, unknown>);
    const exceptions = parsed.find((d) => 'Exceptions' in d);
    expect(exceptions).toMatchObject({ Exceptions: 2, exception_type: 'AMOUNT_MISMATCH', service: 'recon' });
    const runs = parsed.find((d) => 'RunsCompleted' in d);
    expect(runs).toMatchObject({ RunsCompleted: 1, service: 'recon' });
    expect(parsed.some((d) => 'RowsRejected' in d)).toBe(false);
  });
});

/**
 * Log keys a record's handling appends belong to that record: an SQS batch's records are handled
 * concurrently, and Powertools keeps appended keys per invocation, so a pattern's "pattern triage
 * finished" line carried another record's pattern id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, withRecordKeys } from '../../functions/shared/logger.ts';
import { createSqsHandler } from '../../functions/shared/sqs-batch.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';

/** The JSON lines the loggers write while `run` runs. */
async function linesOf(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const lines: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    await run();
  } finally {
    write.mockRestore();
  }
  return lines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

afterEach(() => vi.unstubAllEnvs());

describe("a record's log keys", () => {
  it('stay with the record whose handling appended them, and the line’s own attributes win', async () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('POWERTOOLS_DEV', '');
    const logger = createLogger('test-records');
    const lines = await linesOf(() =>
      Promise.all(
        ['pat_a', 'pat_b', 'pat_c'].map((id, i) =>
          withRecordKeys(async () => {
            logger.appendKeys({ patternId: id, runId: 'run-1' });
            // The others append theirs meanwhile.
            await sleep(10 * (3 - i));
            logger.info('pattern triage finished', { messageId: `m-${id}` });
            logger.info('overridden', { patternId: 'from-the-line' });
          }),
        ),
      ),
    );
    const finished = lines.filter((l) => l.message === 'pattern triage finished');
    expect(finished.map((l) => [l.messageId, l.patternId, l.runId])).toEqual([
      ['m-pat_c', 'pat_c', 'run-1'],
      ['m-pat_b', 'pat_b', 'run-1'],
      ['m-pat_a', 'pat_a', 'run-1'],
    ]);
    expect(lines.filter((l) => l.message === 'overridden').map((l) => l.patternId)).toEqual([
      'from-the-line',
      'from-the-line',
      'from-the-line',
    ]);
    // Outside any record, appendKeys keeps Powertools' behaviour.
    const outside = await linesOf(async () => {
      logger.appendKeys({ fileKey: 'incoming/a.csv' });
      logger.info('outside');
      logger.resetKeys();
    });
    expect(outside[0]).toMatchObject({ message: 'outside', fileKey: 'incoming/a.csv' });
  });

  it('through an SQS consumer: each record of a concurrent batch logs its own keys', async () => {
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv('POWERTOOLS_DEV', '');
    const logger = createLogger('test-consumer');
    const handler = createSqsHandler(
      logger,
      () => ({}),
      async (record) => {
        const { pattern, wait } = JSON.parse(record.body) as { pattern: string; wait: number };
        logger.appendKeys({ patternId: pattern });
        await sleep(wait);
        logger.info('handled', { messageId: record.messageId });
      },
    );
    const lines = await linesOf(() =>
      handler(
        sqsEvent(
          sqsRecord(JSON.stringify({ pattern: 'pat_slow', wait: 30 }), 'slow'),
          sqsRecord(JSON.stringify({ pattern: 'pat_fast', wait: 1 }), 'fast'),
        ),
        lambdaContext,
      ),
    );
    const handled = lines.filter((l) => l.message === 'handled');
    expect(handled.map((l) => [l.messageId, l.patternId])).toEqual([
      ['fast', 'pat_fast'],
      ['slow', 'pat_slow'],
    ]);
  });
});

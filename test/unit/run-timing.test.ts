import { describe, expect, it } from 'vitest';
import { formatDuration, runTiming, tookText } from '../../web/src/run-timing.ts';

describe("a run's Took", () => {
  it('runs from the request to completion, with queueing and processing apart', () => {
    const run = {
      requested_at: '2026-01-05T10:00:00.000Z',
      started_at: '2026-01-05T10:00:09.500Z',
      completed_at: '2026-01-05T10:00:11.000Z',
    };

    expect(runTiming(run)).toEqual({ totalMs: 11_000, queuedMs: 9_500, processingMs: 1_500 });
    expect(tookText(run)).toBe('11.0 s (queued 9.5 s, processing 1.5 s)');
  });

  it('is unknown until the run finishes', () => {
    expect(tookText({ requested_at: '2026-01-05T10:00:00.000Z', started_at: '2026-01-05T10:00:01.000Z' })).toBeNull();
  });

  it('reads well from milliseconds to minutes', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1_449)).toBe('1.4 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
  });
});

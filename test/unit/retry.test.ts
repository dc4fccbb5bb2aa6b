import { describe, expect, it } from 'vitest';
import { TransientError } from '../../functions/shared/errors.ts';
import { backoff, BATCH_BACKOFF, retryUnprocessed } from '../../functions/shared/retry.ts';

describe('backoff', () => {
  it('waits a random share of a ceiling that doubles each attempt', () => {
    const policy = { baseMs: 50, capMs: 2000 };

    expect(backoff(1, policy, () => 1)).toBe(100);
    expect(backoff(3, policy, () => 1)).toBe(400);
    expect(backoff(3, policy, () => 0.5)).toBe(200);
    expect(backoff(3, policy, () => 0)).toBe(0);
  });

  it('never waits more than the cap', () => {
    expect(backoff(20, { baseMs: 50, capMs: 2000 }, () => 0.999)).toBeLessThan(2000);
    expect(backoff(10, { baseMs: 250, capMs: 8000 }, () => 1)).toBe(8000);
  });
});

describe('retryUnprocessed', () => {
  it('re-sends only what the service left unprocessed, backing off between calls, until nothing is left', async () => {
    const calls: number[][] = [];
    const waits: number[] = [];
    const leftOver = [[2, 3], [3], []];

    await retryUnprocessed(
      [1, 2, 3],
      async (items) => {
        calls.push(items);
        return leftOver[calls.length - 1] ?? [];
      },
      {
        maxAttempts: 8,
        gaveUp: (n) => `${n} left`,
        sleep: async (ms) => {
          waits.push(ms);
        },
        random: () => 1,
      },
    );

    expect(calls).toEqual([[1, 2, 3], [2, 3], [3]]);
    expect(waits).toEqual([backoff(1, BATCH_BACKOFF, () => 1), backoff(2, BATCH_BACKOFF, () => 1)]);
    expect(waits).toEqual([100, 200]);
  });

  it('makes one call and never waits when everything is processed at once', async () => {
    let calls = 0;
    const waits: number[] = [];

    await retryUnprocessed(
      ['a'],
      async () => {
        calls++;
        return [];
      },
      { maxAttempts: 3, gaveUp: () => 'x', sleep: async (ms) => void waits.push(ms) },
    );

    expect(calls).toBe(1);
    expect(waits).toEqual([]);
  });

  it('gives up after maxAttempts calls with a transient error naming what was left', async () => {
    let calls = 0;
    const attempt = retryUnprocessed(
      ['a', 'b'],
      async (items) => {
        calls++;
        return items.slice(1);
      },
      { maxAttempts: 1, gaveUp: (n) => `BatchWriteItem left ${n} items unprocessed`, sleep: async () => undefined },
    );

    await expect(attempt).rejects.toThrow(TransientError);
    await expect(attempt).rejects.toThrow('BatchWriteItem left 1 items unprocessed');
    expect(calls).toBe(1);
  });

  it('does nothing for no items', async () => {
    let calls = 0;

    await retryUnprocessed(
      [],
      async () => {
        calls++;
        return [];
      },
      { maxAttempts: 3, gaveUp: () => 'x' },
    );

    expect(calls).toBe(0);
  });
});

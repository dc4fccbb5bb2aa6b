/**
 * The local query API's pool of instances (scripts/local/function-host.ts poolOf): at most
 * POOL_INSTANCE_IN_FLIGHT invocations on an instance, the rest in one queue, first come first
 * served, each taken by whichever instance frees a slot first.
 */
import { describe, expect, it } from 'vitest';
import type { Context } from 'aws-lambda';
import { POOL_INSTANCE_IN_FLIGHT, poolOf, type HostedFunction } from '../../scripts/local/function-host.ts';

/** An instance whose invocations end when the test says so. */
function instance(label: string, started: string[], finish: Map<string, () => void>): HostedFunction {
  return {
    name: 'query-api',
    invoke: (event) =>
      new Promise((resolve) => {
        const id = String(event);
        started.push(`${id}@${label}`);
        finish.set(id, () => resolve(`${id} by ${label}`));
      }),
    warm: async () => {
      started.push(`warm@${label}`);
      return label;
    },
    stop: async () => undefined,
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the local pool of function instances', () => {
  it('holds at most two invocations per instance and hands the waiting ones, in arrival order, to whichever instance frees first', async () => {
    // Prepare
    expect(POOL_INSTANCE_IN_FLIGHT).toBe(2);
    const started: string[] = [];
    const finish = new Map<string, () => void>();
    const pool = poolOf('query-api', [instance('a', started, finish), instance('b', started, finish)]);
    const context = {} as Context;

    // Act: seven at once.
    const answers = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7'].map((id) => pool.invoke(id, context));
    await settle();

    // Assess: two on each, spread; three waiting.
    expect(started).toEqual(['r1@a', 'r2@b', 'r3@a', 'r4@b']);

    // Act: b ends one; then a ends two.
    finish.get('r4')?.();
    await settle();
    expect(started.slice(4)).toEqual(['r5@b']);
    finish.get('r1')?.();
    finish.get('r3')?.();
    await settle();

    // Assess: the waiting ones went in their order, to the instance that had room.
    expect(started.slice(5)).toEqual(['r6@a', 'r7@a']);
    for (const id of ['r2', 'r5', 'r6', 'r7']) finish.get(id)?.();
    expect(await Promise.all(answers)).toEqual([
      'r1 by a',
      'r2 by b',
      'r3 by a',
      'r4 by b',
      'r5 by b',
      'r6 by a',
      'r7 by a',
    ]);

    // Act: a new one with every instance free goes straight through.
    const late = pool.invoke('r8', context);
    await settle();
    expect(started.at(-1)).toMatch(/^r8@/);
    finish.get('r8')?.();
    await late;
  });

  it('frees the slot of an invocation that failed', async () => {
    const calls: number[] = [];
    const failing: HostedFunction = {
      name: 'query-api',
      invoke: async () => {
        calls.push(calls.length);
        throw new Error('handler failed');
      },
      warm: async () => null,
      stop: async () => undefined,
    };
    const pool = poolOf('query-api', [failing]);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => pool.invoke('x', {} as Context)));
    expect(outcomes.map((o) => o.status)).toEqual(Array(5).fill('rejected'));
    expect(calls).toHaveLength(5);
  });

  it('warms every instance (each loads what its first invocation would) and reports each', async () => {
    const started: string[] = [];
    const pool = poolOf('query-api', [instance('a', started, new Map()), instance('b', started, new Map())]);
    expect(await pool.warm()).toEqual(['a', 'b']);
    expect(started).toEqual(['warm@a', 'warm@b']);
  });
});

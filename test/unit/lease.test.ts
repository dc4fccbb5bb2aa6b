/**
 * Leases tied to the worker holding them: short claims with an owner token, renewed by a
 * heartbeat, taken over once they lapse, and never completed by a worker that lost them.
 * The stores run against dynalite with an injected clock (the `now` of every call).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  LeaseLostError,
  leaseMsFor,
  MAX_LEASE_MS,
  newLeaseOwner,
  startHeartbeat,
  withHeartbeat,
} from '../../functions/shared/lease.ts';
import { DynamoIdempotencyStore } from '../../functions/shared/tables/idempotency-dynamo.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

let dynamo: TestDynamo;
let n = 0;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});
afterEach(() => {
  vi.useRealTimers();
});

const LEASE = 10_000;
const T0 = 1_750_000_000_000;

describe('the lease length', () => {
  it('is one visibility timeout, at most a minute', () => {
    expect(leaseMsFor(10)).toBe(10_000);
    expect(leaseMsFor(720)).toBe(MAX_LEASE_MS);
  });

  it('owner tokens say where they run and are never reused', () => {
    const a = newLeaseOwner({});
    expect(a).toMatch(new RegExp(`^local:${process.pid}:`));
    expect(newLeaseOwner({})).not.toBe(a);
    expect(newLeaseOwner({ AWS_LAMBDA_LOG_STREAM_NAME: '2025/01/01/[$LATEST]abc' })).toMatch(/^lambda:2025/);
  });
});

describe('the heartbeat', () => {
  it('renews every interval until stopped, and notices a lost claim', async () => {
    vi.useFakeTimers();
    let beats = 0;
    const heartbeat = startHeartbeat(async () => ++beats < 3, 1000);
    await vi.advanceTimersByTimeAsync(2500);
    expect(beats).toBe(2);
    expect(heartbeat.held()).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(heartbeat.held()).toBe(false);
    await heartbeat.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(beats).toBe(3);
  });

  it('keeps beating after a failed renewal and reports it', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let calls = 0;
    const heartbeat = startHeartbeat(
      async () => {
        if (++calls === 1) throw new Error('throttled');
        return true;
      },
      1000,
      (e) => errors.push(e),
    );
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    expect(heartbeat.held()).toBe(true);
    await heartbeat.stop();
  });

  it('withHeartbeat renews every third of the lease while the work runs, and stops with it', async () => {
    vi.useFakeTimers();
    let beats = 0;
    let finish = () => undefined as void;
    const done = withHeartbeat(
      async () => {
        beats++;
        return true;
      },
      3000,
      () => new Promise<string>((resolve) => (finish = () => resolve('ok'))),
    );
    await vi.advanceTimersByTimeAsync(3500);
    expect(beats).toBe(3);
    finish();
    await expect(done).resolves.toBe('ok');
    await vi.advanceTimersByTimeAsync(5000);
    expect(beats).toBe(3);
  });
});

describe('the idempotency lease', () => {
  const store = () => new DynamoIdempotencyStore(dynamo.doc, dynamo.names.tables.idempotency);
  const id = () => `bucket/key/etag-${++n}`;

  it('is held while renewed, and taken over only once it lapses', async () => {
    const s = store();
    const key = id();
    expect(await s.begin(key, '1', { owner: 'a', now: T0, leaseMs: LEASE })).toEqual({ state: 'acquired' });
    expect(await s.begin(key, '1', { owner: 'b', now: T0 + LEASE - 1, leaseMs: LEASE })).toEqual({
      state: 'in_progress',
    });
    // a's heartbeat moves the expiry on: b still cannot take it where the first lease would have lapsed.
    expect(await s.renew(key, { owner: 'a', now: T0 + 5000, leaseMs: LEASE })).toBe(true);
    expect(await s.begin(key, '1', { owner: 'b', now: T0 + LEASE + 1, leaseMs: LEASE })).toEqual({
      state: 'in_progress',
    });
    // a died: one lease after its last beat, b takes over.
    expect(await s.begin(key, '1', { owner: 'b', now: T0 + 5000 + LEASE + 1, leaseMs: LEASE })).toEqual({
      state: 'acquired',
    });
  });

  it('a worker that lost its lease can neither renew, release nor complete over its successor', async () => {
    const s = store();
    const key = id();
    await s.begin(key, '1', { owner: 'slow', now: T0, leaseMs: LEASE });
    await s.begin(key, '1', { owner: 'next', now: T0 + LEASE + 1, leaseMs: LEASE });

    expect(await s.renew(key, { owner: 'slow', now: T0 + LEASE + 2, leaseMs: LEASE })).toBe(false);
    await expect(s.complete(key, 'slow', 'ACCEPTED', T0 + LEASE + 3)).rejects.toBeInstanceOf(LeaseLostError);
    await s.release(key, 'slow');
    // Still next's: a third worker is refused, and next completes.
    expect(await s.begin(key, '1', { owner: 'third', now: T0 + LEASE + 4, leaseMs: LEASE })).toEqual({
      state: 'in_progress',
    });
    await s.complete(key, 'next', 'ACCEPTED', T0 + LEASE + 5);
    expect(await s.begin(key, '1', { owner: 'third', now: T0 + 10 * LEASE, leaseMs: LEASE })).toEqual({
      state: 'completed',
      sequencer: '1',
    });
  });

  it('a completed record stays completed: no renewal, release or second completion touches it', async () => {
    const s = store();
    const key = id();
    await s.begin(key, '1', { owner: 'a', now: T0, leaseMs: LEASE });
    await s.complete(key, 'a', 'ACCEPTED', T0 + 1);
    expect(await s.renew(key, { owner: 'a', now: T0 + 2, leaseMs: LEASE })).toBe(false);
    await s.release(key, 'a');
    await expect(s.complete(key, 'a', 'ACCEPTED', T0 + 3)).rejects.toBeInstanceOf(LeaseLostError);
    expect((await s.begin(key, '1', { owner: 'b', now: T0 + 4, leaseMs: LEASE })).state).toBe('completed');
  });

  it('the owner releasing after a failure lets a retry start at once', async () => {
    const s = store();
    const key = id();
    await s.begin(key, '1', { owner: 'a', now: T0, leaseMs: LEASE });
    await s.release(key, 'a');
    expect(await s.begin(key, '1', { owner: 'b', now: T0 + 1, leaseMs: LEASE })).toEqual({ state: 'acquired' });
  });
});

describe('the run lease', () => {
  const store = () => new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  async function requested(): Promise<string> {
    const runId = `run-lease-${++n}`;
    const ref = { bucket: 'b', key: 'k', etag: 'e' };
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.runs,
        Item: {
          run_id: runId,
          dataset: 'trades',
          business_date: '2025-01-01',
          source: ref,
          target: ref,
          status: 'REQUESTED',
          requested_at: new Date(T0).toISOString(),
          requested_by: 'x',
          dataset_date: 'trades#2025-01-01',
          record_type: 'RUN',
        },
      }),
    );
    return runId;
  }

  it('is held while renewed, taken over once it lapses, and only its holder finishes the run', async () => {
    const s = store();
    const runId = await requested();
    expect(await s.claim(runId, { owner: 'a', now: T0, leaseMs: LEASE })).toEqual({ claimed: true });
    expect(await s.renew(runId, { owner: 'a', now: T0 + 5000, leaseMs: LEASE })).toBe(true);
    const refused = await s.claim(runId, { owner: 'b', now: T0 + LEASE + 1, leaseMs: LEASE });
    expect(refused).toMatchObject({ claimed: false, run: { status: 'RUNNING', lease_owner: 'a' } });

    expect(await s.claim(runId, { owner: 'b', now: T0 + 5000 + LEASE + 1, leaseMs: LEASE })).toEqual({
      claimed: true,
    });
    expect(await s.renew(runId, { owner: 'a', now: T0 + 5000 + LEASE + 2, leaseMs: LEASE })).toBe(false);
    await expect(s.finish(runId, 'a', { status: 'COMPLETED' })).rejects.toBeInstanceOf(LeaseLostError);
    await s.finish(runId, 'b', { status: 'COMPLETED' });
    expect((await s.get(runId))?.status).toBe('COMPLETED');
  });

  it('a completed run is not claimed again, whatever its lease said', async () => {
    const s = store();
    const runId = await requested();
    await s.claim(runId, { owner: 'a', now: T0, leaseMs: LEASE });
    await s.finish(runId, 'a', { status: 'COMPLETED' });
    expect(await s.claim(runId, { owner: 'b', now: T0 + 100 * LEASE, leaseMs: LEASE })).toMatchObject({
      claimed: false,
      run: { status: 'COMPLETED' },
    });
    await expect(s.finish(runId, 'a', { status: 'FAILED' })).rejects.toBeInstanceOf(LeaseLostError);
  });

  it('released by its holder after a failure, the run is claimed again at once', async () => {
    const s = store();
    const runId = await requested();
    await s.claim(runId, { owner: 'a', now: T0, leaseMs: LEASE });
    await s.release(runId, 'someone-else');
    expect((await s.claim(runId, { owner: 'b', now: T0 + 1, leaseMs: LEASE })).claimed).toBe(false);
    await s.release(runId, 'a');
    expect(await s.claim(runId, { owner: 'b', now: T0 + 2, leaseMs: LEASE })).toEqual({ claimed: true });
  });
});

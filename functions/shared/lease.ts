/**
 * Leases tied to the worker holding them. A claim (an ingest's idempotency record, a recon run)
 * carries its holder's owner token and a short expiry; while the work goes on a heartbeat renews
 * it (a write conditional on the token), so a live worker keeps its claim however long it works
 * and a dead one's expires within one lease. Completion is conditional on the token too: a slow
 * worker whose lease was taken over cannot finish over its successor.
 *
 * Why short and renewed rather than "longer than the work can take" (5 and 15 min before): the
 * message of a dead worker comes back after its visibility timeout (10 s locally) and found the
 * old claim still held, failed five times and landed in the DLQ.
 */
import { randomUUID } from 'node:crypto';
import { TransientError } from './errors.ts';

/** Upper bound of a lease: a dead worker's claim is free within this, whatever the queue says. */
export const MAX_LEASE_MS = 60_000;

/**
 * The lease of a consumer of a queue with this visibility timeout: never longer than it, so that
 * when a dead worker's message comes back its claim has expired.
 */
export function leaseMsFor(visibilityTimeoutSeconds: number): number {
  return Math.min(visibilityTimeoutSeconds * 1000, MAX_LEASE_MS);
}

/**
 * A fresh owner token for one claim: where it runs (the Lambda log stream, or `local:<pid>`
 * for the local stack, whose next start can tell its predecessor's claims) plus a random part.
 */
export function newLeaseOwner(env: NodeJS.ProcessEnv = process.env): string {
  const where = env.AWS_LAMBDA_LOG_STREAM_NAME ? `lambda:${env.AWS_LAMBDA_LOG_STREAM_NAME}` : `local:${process.pid}`;
  return `${where}:${randomUUID()}`;
}

/** The claim was taken over by another worker after this one missed its renewals. */
export class LeaseLostError extends TransientError {
  constructor(what: string) {
    super(`${what}: lease lost to another worker; its result stands`);
    this.name = 'LeaseLostError';
  }
}

/**
 * Another live worker holds this claim (an ingest's idempotency record, a running run): the
 * message is retried later, and later each time ({@link heldRetryDelaySeconds}), because the
 * holder may work for minutes — heartbeats keep its lease — and a retry every visibility timeout
 * would spend the message's receives (5) before the holder finished and dead-letter a message
 * nothing was wrong with. If the holder dies, its own message comes back and does the work.
 */
export class HeldElsewhereError extends TransientError {
  constructor(message: string) {
    super(message);
    this.name = 'HeldElsewhereError';
  }
}

/** Longest wait before a held message is tried again (SQS allows 12 h; a dead holder's lease lapses in 1 min). */
export const MAX_HELD_RETRY_SECONDS = 900;

/**
 * How long a message whose claim is held elsewhere stays invisible after its `receiveCount`th
 * attempt: one visibility timeout, then doubling (10, 20, 40, 80 s locally: 150 s of another
 * worker's work before the fifth receive, against 50 s without the doubling).
 */
export function heldRetryDelaySeconds(receiveCount: number, visibilityTimeoutSeconds: number): number {
  return doublingDelaySeconds(receiveCount, visibilityTimeoutSeconds, MAX_HELD_RETRY_SECONDS);
}

/** One visibility timeout after the first receive, doubling at each later one, at most `capSeconds`. */
export function doublingDelaySeconds(
  receiveCount: number,
  visibilityTimeoutSeconds: number,
  capSeconds: number,
): number {
  const n = Number.isFinite(receiveCount) && receiveCount > 1 ? Math.min(receiveCount - 1, 20) : 0;
  return Math.min(visibilityTimeoutSeconds * 2 ** n, capSeconds);
}

export interface Heartbeat {
  /** False once a renewal found the claim held by someone else. */
  held(): boolean;
  /** Stops renewing; waits for a renewal in flight. */
  stop(): Promise<void>;
}

/**
 * Calls `renew` every `intervalMs` until stopped. `renew` answers false when the claim is no
 * longer this worker's; a renewal that throws (a throttled table) is tried again at the next beat —
 * the lease has two more beats of slack.
 */
export function startHeartbeat(
  renew: () => Promise<boolean | void>,
  intervalMs: number,
  onError: (error: unknown) => void = () => undefined,
): Heartbeat {
  let held = true;
  let inFlight: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    inFlight = inFlight.then(async () => {
      try {
        if ((await renew()) === false) held = false;
      } catch (error) {
        onError(error);
      }
    });
  }, intervalMs);
  // A pending beat never keeps a process alive on its own.
  timer.unref?.();
  return {
    held: () => held,
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}

/** Runs `work` under a heartbeat renewing every third of the lease. */
export async function withHeartbeat<T>(
  renew: () => Promise<boolean | void>,
  leaseMs: number,
  work: (heartbeat: Heartbeat) => Promise<T>,
  onError?: (error: unknown) => void,
): Promise<T> {
  const heartbeat = startHeartbeat(renew, Math.max(1, Math.floor(leaseMs / 3)), onError);
  try {
    return await work(heartbeat);
  } finally {
    await heartbeat.stop();
  }
}

/**
 * How Tally waits and retries: one backoff formula, one loop for the batch calls AWS answers
 * partially (BatchWriteItem/BatchGetItem's unprocessed items, SendMessageBatch's Failed entries),
 * and the one `sleep`. Randomness and sleeping are injectable so tests are deterministic.
 */
import { TransientError } from './errors.ts';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface BackoffPolicy {
  /** The ceiling of the first retry's wait; doubles each attempt. */
  readonly baseMs: number;
  readonly capMs: number;
}

/** What AWS's batch calls get: 50 ms, doubling, never more than 2 s. */
export const BATCH_BACKOFF: BackoffPolicy = { baseMs: 50, capMs: 2000 };

/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a random wait up to min(cap, base x 2^attempt), so retrying workers spread out
 * instead of retrying in step.
 */
export function backoff(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  return random() * Math.min(policy.capMs, policy.baseMs * 2 ** attempt);
}

export interface UnprocessedRetryOptions {
  /** Calls in all, the first included; then a TransientError says how many were left. */
  readonly maxAttempts: number;
  /** The error message for `left` items still unprocessed after the last attempt. */
  readonly gaveUp: (left: number) => string;
  readonly policy?: BackoffPolicy;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/**
 * Sends `items` with `call`, which returns the items the service left unprocessed; re-sends
 * those after a backoff until none are left. Throws a TransientError (the message is retried
 * later) when `maxAttempts` calls still leave some.
 */
export async function retryUnprocessed<T>(
  items: readonly T[],
  call: (items: T[]) => Promise<readonly T[]>,
  options: UnprocessedRetryOptions,
): Promise<void> {
  const wait = options.sleep ?? sleep;
  let pending = [...items];
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt === options.maxAttempts) throw new TransientError(options.gaveUp(pending.length));
    if (attempt > 0) await wait(backoff(attempt, options.policy ?? BATCH_BACKOFF, options.random));
    pending = [...(await call(pending))];
  }
}

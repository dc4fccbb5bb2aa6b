/**
 * The circuit-breaker table: one item per AI provider, shared by every concurrent triage worker.
 * After `threshold` consecutive failures the provider is skipped for `cooldownMs`; the first call
 * after the cool-down is a trial that closes or re-opens it.
 */

/**
 * `closed`: call it; `open`: skip it, cooling down; `trial`: cooled down after opening, call it
 * (an answer closes the breaker: the provider is back).
 */
export type BreakerState = 'closed' | 'open' | 'trial';

/** At most one recovery (its degraded triages asked again) per provider in this long. */
export const RECOVERY_INTERVAL_MS = 3_600_000;

export interface CircuitBreaker {
  state(provider: string, now: number): Promise<BreakerState>;
  /**
   * A trial call answered: closes the breaker for this caller alone (of the workers whose trials
   * answer at once), and only if the provider's last recovery is RECOVERY_INTERVAL_MS old. The
   * claim (the cool-down's end it removed) to hand back if asking again fails, or undefined.
   */
  claimRecovery?(provider: string, now: number): Promise<number | undefined>;
  /** Hands a claim back: the breaker is on trial again, so the next answer claims it anew. */
  releaseRecovery?(provider: string, claim: number): Promise<void>;
  recordSuccess(provider: string): Promise<void>;
  recordFailure(provider: string, now: number): Promise<void>;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly cooldownMs: number;
}

/**
 * The providers whose breaker opened and has cooled down (`trial`): the next call to each is its
 * trial. With no triage to make that call (no runs after an outage), the deadline sweep asks one
 * degraded triage again (functions/deadlines/recovery-probe.ts).
 */
export interface BreakerTrials {
  onTrial(now: number): Promise<string[]>;
}

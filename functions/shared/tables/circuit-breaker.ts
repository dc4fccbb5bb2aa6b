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
 * A breaker that opened and has cooled down (`trial`): the next call to its provider is its trial.
 * With no triage to make that call (no runs after an outage), the deadline sweep asks one degraded
 * triage again (functions/deadlines/recovery-probe.ts), each trial's probes spaced further apart.
 */
export interface TrialBreaker {
  readonly provider: string;
  /** The cool-down's end this trial follows (`opened_until`): a new opening is a new trial. */
  readonly openedUntil: number;
  /** The probes made for this trial so far. */
  readonly probes: number;
  /** When the next probe of this trial is due (absent: none made yet, due now). */
  readonly nextProbeAt?: number;
}

export interface BreakerTrials {
  onTrial(now: number): Promise<TrialBreaker[]>;
  /**
   * Records a probe of this trial, the next due at `nextProbeAt`: false when the breaker has
   * changed since it was read (closed, or opened again) or another sweep recorded this probe first.
   */
  claimProbe(breaker: TrialBreaker, now: number, nextProbeAt: number): Promise<boolean>;
}

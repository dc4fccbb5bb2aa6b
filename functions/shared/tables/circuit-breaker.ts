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

export interface CircuitBreaker {
  state(provider: string, now: number): Promise<BreakerState>;
  recordSuccess(provider: string): Promise<void>;
  recordFailure(provider: string, now: number): Promise<void>;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly cooldownMs: number;
}

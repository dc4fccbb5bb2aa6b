/**
 * The circuit-breaker table: one item per AI provider, shared by every concurrent triage worker.
 * After `threshold` consecutive failures the provider is skipped for `cooldownMs`; the first call
 * after the cool-down is a trial that closes or re-opens it.
 */

export interface CircuitBreaker {
  canCall(provider: string, now: number): Promise<boolean>;
  recordSuccess(provider: string): Promise<void>;
  recordFailure(provider: string, now: number): Promise<void>;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly cooldownMs: number;
}

/**
 * The runaway guard: a run whose break rate or exception count is above the policy's
 * `triage.hold_above` is HELD — its exceptions are stored, but no triage starts until an analyst
 * releases it (POST /runs/{id}/triage). One wrong file must not become 80,000 model calls.
 *
 * Pure: recon records the decision on the run when it sets it STORING (functions/recon/run.ts);
 * the store consumer reads it when the run completes (functions/store/store.ts).
 */
import { compareDecimal, decimal, formatDecimal, type Decimal } from '../shared/decimal.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { EngineSummary, RunTriageState } from '../shared/tables/runs.ts';

export interface HoldDecision {
  readonly hold: boolean;
  readonly reason?: string;
}

export function holdDecision(summary: EngineSummary, policy: ReconPolicy): HoldDecision {
  // The policy's triage.hold_above, its defaults filled in where the policy is parsed.
  const { holdAbove } = policy.triage;
  const reasons: string[] = [];
  const rate = breakRateOf(summary);
  if (holdAbove.breakRate !== undefined && rate !== undefined && compareDecimal(rate, holdAbove.breakRate) > 0)
    reasons.push(`break rate ${formatDecimal(rate)} is above ${formatDecimal(holdAbove.breakRate)}`);
  const exceptions = Object.values(summary.exceptions).reduce<number>((sum, n) => sum + (n ?? 0), 0);
  if (holdAbove.exceptions !== undefined && exceptions > holdAbove.exceptions)
    reasons.push(`${exceptions} exceptions are above ${holdAbove.exceptions}`);
  return reasons.length > 0 ? { hold: true, reason: reasons.join('; ') } : { hold: false };
}

/** The run's triage state as recon records it with STORING. */
export function initialTriageState(decision: HoldDecision, at: string): RunTriageState {
  return decision.hold ? { state: 'HELD', reason: decision.reason as string, at } : { state: 'PENDING', at };
}

/** The engine's break rate (6 decimals); runs summarised before it existed have none. */
function breakRateOf(summary: EngineSummary): Decimal | undefined {
  if (summary.break_rate !== undefined) return decimal(summary.break_rate);
  return undefined;
}

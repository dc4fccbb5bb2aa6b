import { describe, expect, it } from 'vitest';
import { decimal } from '../../functions/shared/decimal.ts';
import type { ReconPolicy, TriageSettings } from '../../functions/shared/policy.ts';
import { loadReconPolicyFile } from '../../functions/shared/recon-policy-file.ts';
import { join } from 'node:path';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import type { EngineSummary } from '../../functions/shared/tables/runs.ts';
import { holdDecision, initialTriageState } from '../../functions/triage/guard.ts';

const policy: ReconPolicy = loadReconPolicyFile(join(POLICIES_DIR, 'datasets', 'trades.md'));
/** The policy with the contract's `triage` block, as the policy module parses it. */
const withTriage = (triage: TriageSettings): ReconPolicy => ({ ...policy, triage }) as ReconPolicy;

function summary(keys: number, broken: number, exceptions = broken): EngineSummary {
  return {
    rows: { source: keys, target: keys },
    matched: keys - broken,
    exceptions: { AMOUNT_MISMATCH: exceptions },
    rejected: { source: 0, target: 0 },
    duration_ms: 1,
    keys,
    keys_with_exception: broken,
    break_rate: (broken / keys).toFixed(6),
  };
}

describe('the runaway guard', () => {
  it('holds nothing ordinary under the defaults (break rate 0.5, 100,000 exceptions)', () => {
    // trades.md sets no triage block: the policy module's defaults.
    expect(policy.triage.holdAbove).toEqual({ breakRate: decimal('0.5'), exceptions: 100_000 });
    expect(holdDecision(summary(1000, 80), policy)).toEqual({ hold: false });
    // Equal to the limit is within it, as every threshold in the policy.
    expect(holdDecision(summary(1000, 500), policy)).toEqual({ hold: false });
  });

  it('holds a run whose break rate is above the limit, saying by how much', () => {
    expect(holdDecision(summary(1000, 501), policy)).toEqual({
      hold: true,
      reason: 'break rate 0.501000 is above 0.5',
    });
  });

  it('holds a run with more exceptions than the limit, whatever its break rate', () => {
    const huge = summary(2_000_000, 100_001);
    expect(holdDecision(huge, policy)).toEqual({ hold: true, reason: '100001 exceptions are above 100000' });
  });

  it("reads the policy's triage.hold_above: either limit alone, both reasons together", () => {
    const strict = withTriage({ holdAbove: { breakRate: decimal('0.05'), exceptions: 40 }, patternMinMembers: 10 });
    const rateOnly = withTriage({ holdAbove: { breakRate: decimal('0.05') }, patternMinMembers: 10 });

    expect(holdDecision(summary(1000, 60), strict)).toEqual({
      hold: true,
      reason: 'break rate 0.060000 is above 0.05; 60 exceptions are above 40',
    });
    expect(holdDecision(summary(100_000, 4000, 4000), rateOnly)).toEqual({ hold: false });
  });

  it('does not hold a run summarised before break rates existed, unless its count is above', () => {
    const { break_rate: _, ...old } = summary(10, 10);
    expect(holdDecision(old, policy)).toEqual({ hold: false });
  });

  it('records HELD with the reason, or PENDING', () => {
    const at = '2026-01-05T10:00:00.000Z';
    expect(initialTriageState({ hold: true, reason: 'r' }, at)).toEqual({ state: 'HELD', reason: 'r', at });
    expect(initialTriageState({ hold: false }, at)).toEqual({ state: 'PENDING', at });
  });
});

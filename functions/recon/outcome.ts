/**
 * A run's verdict under the policy's thresholds: FAIL if any `fail` condition is exceeded, else
 * WARN if any `warn` condition is, else PASS. A condition is exceeded when the run's figure is
 * strictly above its limit (a limit of 0 exceptions of a type fails on the first one). With no
 * thresholds at all, any exception makes the run FAIL.
 */
import { compareDecimal, formatDecimal, type Decimal } from '../shared/decimal.ts';
import type { ReconPolicy, ThresholdSet } from '../shared/policy.ts';
import { EXCEPTION_TYPES, type ExceptionType } from '../shared/types.ts';
import type { ReconSummary } from './engine.ts';

export const OUTCOMES = ['PASS', 'WARN', 'FAIL'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface CrossedThreshold {
  readonly level: 'warn' | 'fail';
  /** `break_rate`, `exceptions.<TYPE>` or `net_amount_difference`. */
  readonly condition: string;
  readonly limit: string;
  readonly actual: string;
}

export interface OutcomeInput {
  /** Distinct keys on both sides (an invalid row that no key could be read from counts as one). */
  readonly keys: number;
  /** Keys with an exception. */
  readonly keysWithException: number;
  readonly exceptions: Partial<Record<ExceptionType, number>>;
  readonly netAmountDifference: Decimal | undefined;
}

/** `numerator / denominator` to 6 decimal places (rounded half up), "0" for 0/0. */
export function ratioText(numerator: number, denominator: number): string {
  if (denominator === 0) return '0';
  const scaled = (BigInt(numerator) * 10_000_000n) / BigInt(denominator);
  return formatDecimal({ units: (scaled + 5n) / 10n, scale: 6 });
}

/** Whether numerator / denominator > limit, exactly. */
function rateAbove(numerator: number, denominator: number, limit: Decimal): boolean {
  if (denominator === 0) return false;
  // n / d > u / 10^s  <=>  n * 10^s > u * d
  return BigInt(numerator) * 10n ** BigInt(limit.scale) > limit.units * BigInt(denominator);
}

export function outcomeOf(policy: ReconPolicy, run: OutcomeInput): { outcome: Outcome; crossed: CrossedThreshold[] } {
  const total = Object.values(run.exceptions).reduce((a, b) => a + (b ?? 0), 0);
  if (policy.thresholds === undefined) {
    return {
      outcome: total > 0 ? 'FAIL' : 'PASS',
      crossed:
        total > 0
          ? [{ level: 'fail', condition: 'exceptions (no thresholds: any)', limit: '0', actual: String(total) }]
          : [],
    };
  }
  const crossed: CrossedThreshold[] = [];
  const check = (level: 'warn' | 'fail', set: ThresholdSet | undefined) => {
    if (set === undefined) return;
    if (set.breakRate !== undefined && rateAbove(run.keysWithException, run.keys, set.breakRate))
      crossed.push({
        level,
        condition: 'break_rate',
        limit: formatDecimal(set.breakRate),
        actual: ratioText(run.keysWithException, run.keys),
      });
    for (const type of EXCEPTION_TYPES) {
      const limit = set.exceptions[type];
      const actual = run.exceptions[type] ?? 0;
      if (limit !== undefined && actual > limit)
        crossed.push({ level, condition: `exceptions.${type}`, limit: String(limit), actual: String(actual) });
    }
    if (
      set.netAmountDifference !== undefined &&
      run.netAmountDifference !== undefined &&
      compareDecimal(run.netAmountDifference, set.netAmountDifference) > 0
    )
      crossed.push({
        level,
        condition: 'net_amount_difference',
        limit: formatDecimal(set.netAmountDifference),
        actual: formatDecimal(run.netAmountDifference),
      });
  };
  check('fail', policy.thresholds.fail);
  check('warn', policy.thresholds.warn);
  const outcome: Outcome = crossed.some((c) => c.level === 'fail')
    ? 'FAIL'
    : crossed.some((c) => c.level === 'warn')
      ? 'WARN'
      : 'PASS';
  return { outcome, crossed };
}

/** What either engine counted in a run; `summarise` derives the verdict and the rates from it. */
export interface RunCounts extends OutcomeInput {
  readonly rows: ReconSummary['rows'];
  readonly matched: number;
  readonly rejected: ReconSummary['rejected'];
  readonly durationMs: number;
  readonly fields: ReconSummary['fields'];
  readonly amountTotals: ReconSummary['amount_totals'];
  readonly controlTotals: ReconSummary['control_totals'];
}

/** The run summary, the same from the in-memory and the SQL engine: one place for its derived figures. */
export function summarise(policy: ReconPolicy, c: RunCounts): ReconSummary {
  const verdict = outcomeOf(policy, c);
  return {
    rows: c.rows,
    matched: c.matched,
    exceptions: c.exceptions,
    rejected: c.rejected,
    duration_ms: c.durationMs,
    outcome: verdict.outcome,
    thresholds_crossed: verdict.crossed,
    keys: c.keys,
    keys_with_exception: c.keysWithException,
    match_rate: ratioText(c.matched, c.keys),
    break_rate: ratioText(c.keysWithException, c.keys),
    fields: c.fields,
    ...(c.amountTotals === undefined ? {} : { amount_totals: c.amountTotals }),
    control_totals: c.controlTotals,
  };
}

/** A completed run's summary for tests: `exceptions` by type, one row a side per exception, nothing matched. */
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import type { ExceptionType } from '../../functions/shared/types.ts';

export function completedSummary(
  exceptions: Partial<Record<ExceptionType, number>>,
): NonNullable<RunRecord['summary']> {
  const total = Object.values(exceptions).reduce((n, count) => n + (count ?? 0), 0);
  return {
    rows: { source: total, target: total },
    matched: 0,
    exceptions,
    rejected: { source: 0, target: 0 },
    duration_ms: 1,
    outcome: 'FAIL',
    thresholds_crossed: [],
    keys: total,
    match_rate: '0.000000',
    break_rate: '1.000000',
    fields: {},
    control_totals: [],
    new: total,
    changed: 0,
    unchanged: 0,
    resolved: 0,
    triage_enqueued: total,
  };
}

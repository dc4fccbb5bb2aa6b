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

/**
 * A run record for tests to store: `dataset`'s extracts of `business_date` as its sides, requested
 * by ingest at 2026-01-01 09:00 and COMPLETED unless `fields` say otherwise.
 */
export function runRecord(
  fields: Pick<RunRecord, 'run_id' | 'dataset' | 'business_date'> & Partial<RunRecord>,
): RunRecord {
  const side = (name: 'source' | 'target') => ({
    bucket: 'b',
    key: `incoming/${fields.dataset}/${fields.business_date}/${name}.csv`,
    etag: name[0] as string,
  });
  return {
    status: 'COMPLETED',
    source: side('source'),
    target: side('target'),
    requested_at: '2026-01-01T09:00:00.000Z',
    requested_by: 'ingest',
    ...fields,
  };
}

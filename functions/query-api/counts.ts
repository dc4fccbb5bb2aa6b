/**
 * Counting the exceptions a listing matches, by type and severity, for the dashboard's charts.
 * The dashboard used to page the listing 200 at a time and stop at 1,600 ("1600+"); here the
 * same key query (planQuery: never a Scan) is read to its end in large pages inside the API, one
 * request for the caller. A time budget keeps the answer inside API Gateway's 30 s: past it the
 * counts are returned as a lower bound with complete: false.
 */
import type { ExceptionCounts } from '../shared/api-types.ts';
import type { ExceptionQueries } from '../shared/tables/exceptions.ts';
import { COUNTING_PAGE } from '../shared/tables/index-query.ts';
import { planQuery, type DatasetScope } from './listing.ts';
import type { ListFilters } from './schemas.ts';

/** Stop reading after this long; the function times out at 29 s. */
const COUNT_BUDGET_MS = 20_000;

export async function countExceptions(
  filters: ListFilters,
  deps: { store: ExceptionQueries; now: () => number },
  datasets: DatasetScope = 'all',
): Promise<ExceptionCounts> {
  const plan = planQuery(filters, datasets, deps.now());
  const byType: Record<string, number> = {};
  const bySeverity: Record<string, number> = {};
  let total = 0;
  let startKey: Record<string, unknown> | undefined;
  const deadline = deps.now() + COUNT_BUDGET_MS;
  do {
    // Counting needs every item once, not their order: each shard is read on from its own position.
    // The index entries carry type and severity: whole items, with their triage and stored
    // embedding, are read only for an entry without a severity.
    const page = await deps.store.queryExceptionEntries({
      ...plan,
      limit: COUNTING_PAGE,
      order: 'any',
      attributes: ['exception_type', 'severity'],
      ...(startKey ? { startKey } : {}),
    });
    const counted = page.items.filter((entry) => entry.severity !== undefined);
    const withoutSeverity = page.items.filter((entry) => entry.severity === undefined);
    if (withoutSeverity.length > 0)
      counted.push(
        ...(await deps.store.wholeExceptions(withoutSeverity, ['exception_type', 'severity', 'policy_severity'])),
      );
    for (const item of counted) {
      const type = String(item.exception_type);
      byType[type] = (byType[type] ?? 0) + 1;
      const severity = String(item.severity ?? item.policy_severity);
      bySeverity[severity] = (bySeverity[severity] ?? 0) + 1;
    }
    total += counted.length;
    startKey = page.lastKey;
  } while (startKey && deps.now() < deadline);
  return { total, by_type: byType, by_severity: bySeverity, complete: startKey === undefined };
}

/** GET /usage: what triage's model calls cost per UTC day, against the daily budget. */
import type { UsageReport } from '../shared/api-types.ts';
import { lastDays, NO_USAGE, type UsageCounts, type UsageQueries } from '../shared/tables/usage.ts';
import type { UsageQuery } from './schemas.ts';

export async function usageReport(
  query: UsageQuery,
  deps: { usage: { queries: UsageQueries; dailyBudgetMicroUsd: number | undefined }; now: () => number },
): Promise<UsageReport> {
  const budget = deps.usage.dailyBudgetMicroUsd ?? null;
  const days = await deps.usage.queries.getDays(lastDays(deps.now(), query.days));
  const total: UsageCounts = days.reduce(
    (sum, d) => ({
      micro_usd: sum.micro_usd + d.micro_usd,
      input_tokens: sum.input_tokens + d.input_tokens,
      output_tokens: sum.output_tokens + d.output_tokens,
      calls: sum.calls + d.calls,
    }),
    NO_USAGE,
  );
  return {
    days: days.map((d) => ({
      ...d,
      budget_micro_usd: budget,
      remaining_micro_usd: budget === null ? null : Math.max(0, budget - d.micro_usd),
    })),
    total,
    budget_micro_usd: budget,
  };
}

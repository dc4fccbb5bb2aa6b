/**
 * A run's break patterns at the end of its engine: the ones with at least the policy's
 * triage.pattern_min_members members are saved (functions/shared/tables/patterns.ts) and their
 * numbers go on the run with STORING, so triage can plan one model call per pattern plus one per
 * singleton. Saving is a put of the same items each time: a re-claimed run finds the same
 * findings, so the same patterns, and puts them again.
 */
import { PatternAccumulator } from '../shared/patterns/accumulator.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { PatternStore } from '../shared/tables/patterns.ts';
import type { RunPatterns } from '../shared/tables/runs.ts';

export function runPatterns(
  policy: ReconPolicy,
  run: { readonly run_id: string; readonly dataset: string; readonly business_date: string },
): PatternAccumulator {
  return new PatternAccumulator(policy, { runId: run.run_id, dataset: run.dataset, businessDate: run.business_date });
}

/** Saves the patterns that reach the policy's minimum; returns what the run records of them. */
export async function savePatterns(
  patterns: PatternAccumulator,
  policy: ReconPolicy,
  store: Pick<PatternStore, 'putAll'>,
): Promise<RunPatterns> {
  const min = policy.triage.patternMinMembers;
  const records = patterns.records(min);
  if (records.length > 0) await store.putAll(records);
  return patterns.counts(min);
}

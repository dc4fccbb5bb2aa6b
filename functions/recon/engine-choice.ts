/**
 * Which engine reconciles a run: the in-memory engine (`engine.ts`), or the SQL engine when the
 * two files together are larger than the policy's `engine.large_above_bytes`
 * (`usesSqlEngine`). The SQL engine is injected: the local stack and the CLI pass the DuckDB
 * runner (`sql/duckdb.ts`, a native module no Lambda bundle may import); on AWS the Athena runner
 * (`sql/athena.ts`) is asynchronous and goes through the chunked store path instead, so a Lambda
 * given no in-process SQL engine keeps the in-memory one and says so.
 */
import type { ReconPolicy } from '../shared/policy.ts';
import { usesSqlEngine } from '../shared/policy.ts';
import { reconcileInto, type FindingSink, type ReconInput, type ReconOptions, type ReconSummary } from './engine.ts';

/** A reconciliation as the in-memory engine's `reconcileInto` does it: findings to a sink, the summary back. */
export type Reconciler = (
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  sink: FindingSink,
  options?: ReconOptions,
) => Promise<ReconSummary>;

export interface EngineChoice {
  readonly engine: 'memory' | 'sql';
  readonly reconcile: Reconciler;
  /** Why, for the run's log. */
  readonly reason: string;
}

export function chooseEngine(
  policy: ReconPolicy,
  sizes: { readonly source: number | undefined; readonly target: number | undefined },
  sqlEngine: Reconciler | undefined,
): EngineChoice {
  const total = (sizes.source ?? 0) + (sizes.target ?? 0);
  const limit = policy.engine.largeAboveBytes;
  if (!usesSqlEngine(policy, sizes.source ?? 0, sizes.target ?? 0))
    return { engine: 'memory', reconcile: reconcileInto, reason: `${total} bytes, at most ${limit}` };
  if (sqlEngine === undefined)
    return {
      engine: 'memory',
      reconcile: reconcileInto,
      reason: `${total} bytes, above ${limit}, but no SQL engine runs in this process`,
    };
  return { engine: 'sql', reconcile: sqlEngine, reason: `${total} bytes, above ${limit}` };
}

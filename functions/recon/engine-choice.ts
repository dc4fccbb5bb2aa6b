/**
 * Which engine reconciles a run: the in-memory engine (`engine.ts`), or the SQL engine when the
 * two files together are larger than the policy's `engine.large_above_bytes`
 * (`usesSqlEngine`). The SQL engine is injected: the local stack and the CLI pass the DuckDB
 * runner (`sql/duckdb.ts`, a native module no Lambda bundle may import); on AWS the choice is
 * `athena` (`athena-run.ts`: asynchronous, through the chunked store path), and a deployment with
 * neither keeps the in-memory engine and says so.
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
  /** `athena`: deferred to Athena (AWS), with `reconcile` the in-memory fallback for a policy Athena cannot run. */
  readonly engine: 'memory' | 'sql' | 'athena';
  readonly reconcile: Reconciler;
  /** Why, for the run's log. */
  readonly reason: string;
}

/**
 * In memory up to the limit; above it the in-process SQL engine when one is injected (DuckDB
 * locally), else Athena when this deployment has it, else in memory (and the reason says so).
 */
export function chooseEngine(
  policy: ReconPolicy,
  sizes: { readonly source: number | undefined; readonly target: number | undefined },
  available: { readonly sqlEngine?: Reconciler | undefined; readonly athena: boolean },
): EngineChoice {
  const total = (sizes.source ?? 0) + (sizes.target ?? 0);
  const limit = policy.engine.largeAboveBytes;
  if (!usesSqlEngine(policy, sizes.source ?? 0, sizes.target ?? 0))
    return { engine: 'memory', reconcile: reconcileInto, reason: `${total} bytes, at most ${limit}` };
  if (available.sqlEngine !== undefined)
    return { engine: 'sql', reconcile: available.sqlEngine, reason: `${total} bytes, above ${limit}` };
  if (available.athena) return { engine: 'athena', reconcile: reconcileInto, reason: `${total} bytes, above ${limit}` };
  return {
    engine: 'memory',
    reconcile: reconcileInto,
    reason: `${total} bytes, above ${limit}, but no SQL engine runs in this process`,
  };
}

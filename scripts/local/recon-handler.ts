/**
 * The recon function as the local stack runs it: the Lambda's handler with the SQL engine on
 * embedded DuckDB injected, for runs above the policy's `engine.large_above_bytes`. DuckDB is a
 * native module: it is loaded on the first such run, and never from functions/ (whose handlers
 * are the Lambda bundles).
 */
import { createHandler, defaultDeps } from '../../functions/recon/handler.ts';
import type { Reconciler } from '../../functions/recon/engine-choice.ts';

export const sqlEngine: Reconciler = async (source, target, policy, sink, options) => {
  const { reconcileSqlInto } = await import('../../functions/recon/sql/duckdb.ts');
  return reconcileSqlInto(source, target, policy, sink, { tmpDir: options?.tmpDir, note: options?.note });
};

export const handler = createHandler(() => ({ ...defaultDeps(), sqlEngine }));

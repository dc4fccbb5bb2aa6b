/**
 * The DuckDB side of `npm run bench:recon`: the same reconciliation as Tally's engine, written as
 * SQL over the same CSV files, so the benchmark has an honest yardstick.
 *
 * Equivalence (for the files the generator writes): every column read as text, keys and compared
 * fields trimmed, a row is invalid when its key is empty or its amount does not cast to a decimal,
 * duplicates found by GROUP BY (a duplicated key is one finding per side and is not also a
 * mismatch or missing), a key whose only row on one side is invalid (its key readable, its amount
 * not) is not also missing on that side (its other row rides on the INVALID_RECORD), FULL OUTER JOIN of the per-key aggregates, text fields compared exactly,
 * amounts compared as decimals with the policy's tolerance (inclusive).
 *
 * Tuned to give DuckDB its best shot: DECIMAL(18,6) rather than DECIMAL(38,6) (TRY_CAST to the
 * 128-bit decimal is several times slower per row), one statement with MATERIALIZED CTEs so no
 * stage is evaluated twice and DuckDB plans the whole pipeline at once (faster here than a chain of
 * temp tables).
 */
import { DuckDBInstance } from '@duckdb/node-api';
import type { ReconPolicy } from '../../functions/shared/policy.ts';
import { formatDecimal } from '../../functions/shared/decimal.ts';

export interface DuckdbReconResult {
  /** Result rows fetched into JS, one per exception. */
  readonly records: number;
  /** From the start of reading the files to the last result row in JS. */
  readonly ms: number;
  readonly exceptions: Record<string, number>;
  readonly rows: { source: number; target: number };
}

const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

export async function duckdbReconcile(
  sourcePath: string,
  targetPath: string,
  policy: ReconPolicy,
): Promise<DuckdbReconResult> {
  if (policy.amountField === undefined)
    throw new Error('the DuckDB benchmark query needs a policy with an amount field');
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  try {
    const keyExpr =
      policy.keyColumns.length === 1
        ? `trim(${ident(policy.keyColumns[0] as string)})`
        : `concat_ws(chr(31), ${policy.keyColumns.map((c) => `coalesce(trim(${ident(c)}), '')`).join(', ')})`;
    const keyEmpty = policy.keyColumns.map((c) => `coalesce(trim(${ident(c)}), '') = ''`).join(' OR ');
    const fields = policy.textFields.map((f, i) => ({ name: f, col: `f${i}` }));
    const amount = ident(policy.amountField);
    const tolerance = formatDecimal(policy.amountTolerance);

    const load = (path: string): string => `
        SELECT ${keyExpr} AS k,
               ${fields.map((f) => `coalesce(trim(${ident(f.name)}), '') AS ${f.col}`).join(', ')},
               coalesce(trim(${amount}), '') AS amount_text,
               TRY_CAST(trim(${amount}) AS DECIMAL(18,6)) AS amt,
               (${keyEmpty}) AS key_empty
        FROM read_csv(${literal(path)}, header = true, all_varchar = true)`;
    const aggregate = (from: string): string => `
        SELECT k, count(*) AS n,
               ${fields.map((f) => `any_value(${f.col}) AS ${f.col}`).join(', ')},
               any_value(amount_text) AS amount_text, any_value(amt) AS amt
        FROM ${from} WHERE NOT key_empty AND amt IS NOT NULL GROUP BY k`;

    const fieldDiff = fields.length === 0 ? 'false' : fields.map((f) => `s.${f.col} <> t.${f.col}`).join(' OR ');
    const amountDiff = `abs(t.amt - s.amt) > ${tolerance}`;
    const sourceCols = [...fields.map((f) => `s.${f.col} AS s_${f.col}`), 's.amount_text AS s_amount'].join(', ');
    const targetCols = [...fields.map((f) => `t.${f.col} AS t_${f.col}`), 't.amount_text AS t_amount'].join(', ');
    const out = [...fields.map((f) => `s_${f.col}`), 's_amount', ...fields.map((f) => `t_${f.col}`), 't_amount'].join(
      ', ',
    );
    const nulls = (prefix: string): string =>
      [...fields.map((f) => `NULL AS ${prefix}_${f.col}`), `NULL AS ${prefix}_amount`].join(', ');
    const rowCols = (prefix: string): string =>
      [...fields.map((f) => `${f.col} AS ${prefix}_${f.col}`), `amount_text AS ${prefix}_amount`].join(', ');
    // One statement: the loaded rows are materialised once (the invalid-row scans reuse them), the
    // join keeps only the keys that are exceptions, so the final UNION works on a few percent.
    const sql = `
      WITH s_raw AS MATERIALIZED (${load(sourcePath)}),
      t_raw AS MATERIALIZED (${load(targetPath)}),
      s_inv AS MATERIALIZED (SELECT DISTINCT k FROM s_raw WHERE NOT key_empty AND amt IS NULL),
      t_inv AS MATERIALIZED (SELECT DISTINCT k FROM t_raw WHERE NOT key_empty AND amt IS NULL),
      s_agg AS (${aggregate('s_raw')}),
      t_agg AS (${aggregate('t_raw')}),
      j AS MATERIALIZED (
        SELECT coalesce(s.k, t.k) AS k, s.n AS sn, t.n AS tn, ${sourceCols}, ${targetCols},
               CAST(t.amt - s.amt AS VARCHAR) AS delta,
               (${fieldDiff}) AS field_diff, (${amountDiff}) AS amount_diff
        FROM s_agg s FULL OUTER JOIN t_agg t ON s.k = t.k
        WHERE s.n IS DISTINCT FROM 1 OR t.n IS DISTINCT FROM 1 OR ${fieldDiff} OR ${amountDiff}
      )
      SELECT 'DUPLICATE_IN_SOURCE' AS type, k, ${out}, NULL AS delta FROM j WHERE sn > 1
      UNION ALL
      SELECT 'DUPLICATE_IN_TARGET', k, ${out}, NULL FROM j WHERE tn > 1
      UNION ALL
      SELECT CASE WHEN sn IS NULL THEN 'MISSING_IN_SOURCE' WHEN tn IS NULL THEN 'MISSING_IN_TARGET'
                  WHEN field_diff THEN 'FIELD_MISMATCH' ELSE 'AMOUNT_MISMATCH' END,
             k, ${out}, CASE WHEN amount_diff THEN delta END
        FROM j WHERE coalesce(sn, 1) = 1 AND coalesce(tn, 1) = 1
          AND NOT (sn IS NULL AND k IN (SELECT k FROM s_inv))
          AND NOT (tn IS NULL AND k IN (SELECT k FROM t_inv))
      UNION ALL
      SELECT 'INVALID_RECORD', k, ${rowCols('s')}, ${nulls('t')}, NULL FROM s_raw WHERE key_empty OR amt IS NULL
      UNION ALL
      SELECT 'INVALID_RECORD', k, ${nulls('s')}, ${rowCols('t')}, NULL FROM t_raw WHERE key_empty OR amt IS NULL
      UNION ALL
      SELECT '#rows', NULL, ${nulls('s')}, ${nulls('t')}, CAST((SELECT count(*) FROM s_raw) AS VARCHAR) || ',' || CAST((SELECT count(*) FROM t_raw) AS VARCHAR)`;
    // Each exception comes back as one JSON text (as Tally's records are): the client converts
    // values one N-API call at a time (~2 us each), so ten columns per row would cost more in the
    // fetch than in the query.
    await db.run('SET preserve_insertion_order = false');
    const started = performance.now();
    const reader = await db.runAndReadAll(`SELECT x.type, CAST(to_json(x) AS VARCHAR) AS record FROM (${sql}) x`);
    const [types = [], records = []] = reader.getColumns() as string[][];
    const ms = performance.now() - started;
    const exceptions: Record<string, number> = {};
    let counts: string[] = [];
    for (let i = 0; i < types.length; i++) {
      const type = types[i] as string;
      if (type === '#rows') {
        counts = String((JSON.parse(records[i] as string) as { delta: string }).delta).split(',');
        continue;
      }
      exceptions[type] = (exceptions[type] ?? 0) + 1;
    }
    return {
      records: types.length - 1,
      ms,
      exceptions,
      rows: { source: Number(counts[0]), target: Number(counts[1]) },
    };
  } finally {
    db.closeSync();
    instance.closeSync();
  }
}

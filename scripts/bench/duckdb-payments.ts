/**
 * The DuckDB side of the payments-shape case of `npm run bench:recon`: the reconciliation
 * policies/datasets/payments.md describes, as SQL over the same two files (the hub's `;` CSV with
 * decimal commas and DD/MM/YYYY dates, the correspondent's JSON Lines).
 *
 * Equivalence (for the files generate-payments.ts writes): keys trimmed and upper-cased; the hub's
 * amount read after dropping `.` and turning `,` into `.`; dates by each side's format; currency
 * upper-cased; status through the policy's equivalence groups; a row is invalid when its key is
 * empty or its amount or date does not read; duplicates by GROUP BY; a key whose only row on one
 * side is invalid is not also missing there; amounts agree within absolute + relative × the larger
 * magnitude, dates within the policy's days; AMOUNT_MISMATCH when only the amount breaks.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { formatDecimal } from '../../functions/shared/decimal.ts';
import type { FieldSpec, ReconPolicy } from '../../functions/shared/policy.ts';
import type { DuckdbReconResult } from './duckdb-query.ts';

const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

export async function duckdbReconcilePayments(
  sourcePath: string,
  targetPath: string,
  policy: ReconPolicy,
): Promise<DuckdbReconResult> {
  const field = (name: string) => policy.fields.find((f) => f.field === name) as FieldSpec;
  const amount = field('amount');
  const valueDate = field('value_date');
  const status = field('status');
  const statusCase = (col: string) =>
    `CASE upper(trim(${col})) ${[...(status.equivalents ?? new Map<string, string>())]
      .map(([v, c]) => `WHEN ${literal(v)} THEN ${literal(c)}`)
      .join(' ')} ELSE upper(trim(${col})) END`;
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  try {
    const shape = (from: string, key: string, amt: string, date: string, ccy: string, st: string, raw: string) => `
        SELECT upper(trim(${key})) AS k, ${amt} AS amt, ${date} AS vd, upper(trim(${ccy})) AS ccy, ${statusCase(st)} AS st,
               coalesce(trim(${key}), '') = '' AS key_empty, ${raw} AS raw
        FROM ${from}`;
    const source = shape(
      `read_csv(${literal(sourcePath)}, header = true, all_varchar = true, delim = ';')`,
      'PaymentRef',
      `TRY_CAST(replace(replace(trim(Amt), '.', ''), ',', '.') AS DECIMAL(18,2))`,
      `CAST(try_strptime(trim(ValueDate), '%d/%m/%Y') AS DATE)`,
      'Ccy',
      'Status',
      `concat_ws(';', PaymentRef, ValueDate, Ccy, Amt, Status, Beneficiary)`,
    );
    const target = shape(
      `read_json(${literal(targetPath)}, format = 'newline_delimited', columns = {payment_id: 'VARCHAR', value_date: 'VARCHAR', currency: 'VARCHAR', amount: 'DECIMAL(18,2)', status: 'VARCHAR'})`,
      'payment_id',
      'amount',
      'TRY_CAST(value_date AS DATE)',
      'currency',
      'status',
      `concat_ws(',', payment_id, value_date, currency, amount, status)`,
    );
    const valid = 'NOT key_empty AND amt IS NOT NULL AND vd IS NOT NULL';
    const aggregate = (from: string) => `
        SELECT k, count(*) AS n, any_value(amt) AS amt, any_value(vd) AS vd, any_value(ccy) AS ccy,
               any_value(st) AS st, any_value(raw) AS raw
        FROM ${from} WHERE ${valid} GROUP BY k`;
    const abs = formatDecimal(amount.tolerance.absolute);
    const rel = formatDecimal(amount.tolerance.relative);
    const amountDiff = `abs(t.amt - s.amt) > ${abs} + ${rel} * greatest(abs(s.amt), abs(t.amt))`;
    const fieldDiff = `(s.ccy <> t.ccy OR s.st <> t.st OR abs(date_diff('day', s.vd, t.vd)) > ${valueDate.toleranceDays})`;
    const sql = `
      WITH s_raw AS MATERIALIZED (${source}),
      t_raw AS MATERIALIZED (${target}),
      s_inv AS MATERIALIZED (SELECT DISTINCT k FROM s_raw WHERE NOT key_empty AND NOT (${valid})),
      t_inv AS MATERIALIZED (SELECT DISTINCT k FROM t_raw WHERE NOT key_empty AND NOT (${valid})),
      s_agg AS (${aggregate('s_raw')}),
      t_agg AS (${aggregate('t_raw')}),
      j AS MATERIALIZED (
        SELECT coalesce(s.k, t.k) AS k, s.n AS sn, t.n AS tn, s.raw AS s_row, t.raw AS t_row,
               CAST(t.amt - s.amt AS VARCHAR) AS delta, ${fieldDiff} AS field_diff, (${amountDiff}) AS amount_diff
        FROM s_agg s FULL OUTER JOIN t_agg t ON s.k = t.k
        WHERE s.n IS DISTINCT FROM 1 OR t.n IS DISTINCT FROM 1 OR ${fieldDiff} OR ${amountDiff}
      )
      SELECT 'DUPLICATE_IN_SOURCE' AS type, k, s_row, t_row, NULL AS delta FROM j WHERE sn > 1
      UNION ALL
      SELECT 'DUPLICATE_IN_TARGET', k, s_row, t_row, NULL FROM j WHERE tn > 1
      UNION ALL
      SELECT CASE WHEN sn IS NULL THEN 'MISSING_IN_SOURCE' WHEN tn IS NULL THEN 'MISSING_IN_TARGET'
                  WHEN field_diff THEN 'FIELD_MISMATCH' ELSE 'AMOUNT_MISMATCH' END,
             k, s_row, t_row, CASE WHEN amount_diff THEN delta END
        FROM j WHERE coalesce(sn, 1) = 1 AND coalesce(tn, 1) = 1
          AND NOT (sn IS NULL AND k IN (SELECT k FROM s_inv))
          AND NOT (tn IS NULL AND k IN (SELECT k FROM t_inv))
      UNION ALL
      SELECT 'INVALID_RECORD', k, raw, NULL, NULL FROM s_raw WHERE NOT (${valid})
      UNION ALL
      SELECT 'INVALID_RECORD', k, NULL, raw, NULL FROM t_raw WHERE NOT (${valid})
      UNION ALL
      SELECT '#rows', NULL, NULL, NULL, CAST((SELECT count(*) FROM s_raw) AS VARCHAR) || ',' || CAST((SELECT count(*) FROM t_raw) AS VARCHAR)`;
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

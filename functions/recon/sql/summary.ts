/**
 * The run summary from the SQL engine's aggregate rows: the same `ReconSummary` the in-memory
 * engine fills (`engine.ts`), with the same outcome rules (`outcome.ts`). The rows arrive as text
 * (Athena's GetQueryResults gives nothing else; the DuckDB runner reads them the same way), and
 * decimals as DECIMAL(38, 12) text are cut back to the scale they were written with.
 */
import { decimal, formatDecimal, subtractDecimal, type Decimal } from '../../shared/decimal.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import { EXCEPTION_TYPES, type ExceptionType } from '../../shared/types.ts';
import type { ReconSummary } from '../engine.ts';
import type { FieldStatistics } from '../field-rules.ts';
import { summarise } from '../outcome.ts';
import { ControlTotals, type ControlTotalGroup } from '../control-totals.ts';

/** A result row: column name to text (NULL as undefined). */
export type TextRow = Readonly<Record<string, string | null | undefined>>;

export interface SummaryRows {
  readonly counts: TextRow;
  /** `type`, `n`. */
  readonly exceptions: readonly TextRow[];
  readonly fieldStats: readonly TextRow[];
  readonly controlTotals: readonly TextRow[] | undefined;
  readonly amountTotals: readonly TextRow[] | undefined;
}

const num = (text: string | null | undefined): number => (text === null || text === undefined ? 0 : Number(text));

/** A DECIMAL text (any number of decimals) as a Decimal of exactly `scale` decimals. */
export function decimalAtScale(text: string, scale: number): Decimal {
  const d = decimal(text);
  if (d.scale <= scale) return { units: d.units * 10n ** BigInt(scale - d.scale), scale };
  const factor = 10n ** BigInt(d.scale - scale);
  // The value was written with `scale` decimals, so the cut digits are zeros.
  return { units: d.units / factor, scale };
}

export function summaryFromRows(policy: ReconPolicy, rows: SummaryRows, durationMs: number): ReconSummary {
  const c = rows.counts;
  const exceptions: Partial<Record<ExceptionType, number>> = {};
  for (const type of EXCEPTION_TYPES) {
    const n = num(rows.exceptions.find((r) => r.type === type)?.n);
    if (n > 0) exceptions[type] = n;
  }
  const invalid = num(c.rejected_s) + num(c.rejected_t);
  const validKeys = num(c.valid_keys) - num(c.attached);
  const matched = num(c.matched);
  const keys = validKeys + invalid;
  const keysWithException = validKeys - matched + invalid;

  const fields: Record<string, FieldStatistics> = {};
  for (const f of policy.fields) {
    const r = rows.fieldStats.find((x) => x.field === f.field);
    const largest = r?.largest;
    fields[f.field] = {
      unequal: num(r?.unequal),
      within_tolerance: num(r?.within),
      ...(largest === null || largest === undefined ? {} : { largest_difference: largest }),
    };
  }

  let amountTotals: ReconSummary['amount_totals'];
  let net: Decimal | undefined;
  // As the engine: totals whenever the policy wants them, zero without an amount field.
  if (ControlTotals.wanted(policy)) {
    const side = (s: string) => {
      const r = rows.amountTotals?.find((x) => x.side === s);
      return decimalAtScale(r?.total ?? '0', num(r?.scale));
    };
    const source = side('source');
    const target = side('target');
    const d = subtractDecimal(target, source);
    net = d.units < 0n ? { units: -d.units, scale: d.scale } : d;
    amountTotals = { source: formatDecimal(source), target: formatDecimal(target), net_difference: formatDecimal(net) };
  }

  return summarise(policy, {
    rows: { source: num(c.rows_s), target: num(c.rows_t) },
    matched,
    exceptions,
    rejected: { source: num(c.rejected_s), target: num(c.rejected_t) },
    durationMs,
    keys,
    keysWithException,
    netAmountDifference: net,
    fields,
    amountTotals,
    controlTotals: controlTotals(policy, rows.controlTotals),
  });
}

const GROUP_SEPARATOR = '\u001f';

/** Both sides' group rows merged by group values, ordered by them (as `ControlTotals.result`). */
function controlTotals(policy: ReconPolicy, rows: readonly TextRow[] | undefined): ControlTotalGroup[] {
  const spec = policy.controlTotals;
  if (spec === undefined || rows === undefined) return [];
  interface Acc {
    group: string[];
    rows: [number, number];
    sums: [Decimal[], Decimal[]];
  }
  const zero: Decimal = { units: 0n, scale: 0 };
  const groups = new Map<string, Acc>();
  for (const r of rows) {
    // Without group_by the aggregate yields a row even for an empty side; the engine has no group then.
    if (num(r.rows) === 0) continue;
    const group = spec.groupBy.map((_, i) => r[`g${i}`] ?? '');
    const id = group.join(GROUP_SEPARATOR);
    let acc = groups.get(id);
    if (acc === undefined) {
      acc = { group, rows: [0, 0], sums: [spec.sum.map(() => zero), spec.sum.map(() => zero)] };
      groups.set(id, acc);
    }
    const s = r.side === 'source' ? 0 : 1;
    acc.rows[s] = num(r.rows);
    acc.sums[s] = spec.sum.map((_, i) => decimalAtScale(r[`sum${i}`] ?? '0', num(r[`scale${i}`])));
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, acc]) => {
      const sums = (s: 0 | 1) =>
        Object.fromEntries(spec.sum.map((f, i) => [f, formatDecimal(acc.sums[s][i] as Decimal)]));
      return {
        group: Object.fromEntries(spec.groupBy.map((n, i) => [n, acc.group[i] as string])),
        source: { rows: acc.rows[0], sums: sums(0) },
        target: { rows: acc.rows[1], sums: sums(1) },
        difference: {
          rows: acc.rows[1] - acc.rows[0],
          sums: Object.fromEntries(
            spec.sum.map((f, i) => [
              f,
              formatDecimal(subtractDecimal(acc.sums[1][i] as Decimal, acc.sums[0][i] as Decimal)),
            ]),
          ),
        },
      };
    });
}

/**
 * Control totals: per group of the policy's `control_totals.group_by` fields, each side's row
 * count and the sums of its `sum` fields, and the differences (target − source). Also each
 * side's total of the amount field, for the `net_amount_difference` threshold. Sums are exact
 * and cover every valid row (duplicates included: they are what each file holds).
 *
 * Group values are read the way the fields compare: text normalised and mapped through its
 * equivalents, keys normalised, dates as YYYY-MM-DD, decimals in canonical form; so `usd` and
 * `USD` fall in one group when the policy says they are the same currency.
 */
import { addDecimal, formatDecimal, parseDecimalWith, subtractDecimal, ZERO, type Decimal } from '../shared/decimal.ts';
import {
  amountSpec,
  isoDate,
  normalizeText,
  type FieldSpec,
  type KeySpec,
  type ReconPolicy,
} from '../shared/policy.ts';
import type { Side } from '../shared/types.ts';

export interface SideTotals {
  rows: number;
  sums: Record<string, string>;
}

export interface ControlTotalGroup {
  /** The group's values by field name. */
  group: Record<string, string>;
  source: SideTotals;
  target: SideTotals;
  difference: SideTotals;
}

interface Accumulator {
  rows: [number, number];
  sums: [Decimal[], Decimal[]];
  group: string[];
}

const GROUP_SEPARATOR = '\u001f';

export class ControlTotals {
  private readonly policy: ReconPolicy;
  private readonly groupBy: (KeySpec | FieldSpec)[];
  private readonly sum: FieldSpec[];
  private readonly amount: FieldSpec | undefined;
  /** Per side: header positions of the group, sum and amount fields. */
  private readonly at: Record<Side, { group: number[]; sum: number[]; amount: number }> = {
    source: { group: [], sum: [], amount: -1 },
    target: { group: [], sum: [], amount: -1 },
  };
  private readonly groups = new Map<string, Accumulator>();
  private readonly amountTotal: [Decimal, Decimal] = [ZERO, ZERO];

  constructor(policy: ReconPolicy) {
    this.policy = policy;
    const byName = (name: string) =>
      (policy.keys.find((k) => k.field === name) ?? policy.fields.find((f) => f.field === name)) as KeySpec | FieldSpec;
    this.groupBy = (policy.controlTotals?.groupBy ?? []).map(byName);
    this.sum = (policy.controlTotals?.sum ?? []).map((n) => policy.fields.find((f) => f.field === n) as FieldSpec);
    this.amount = amountSpec(policy);
  }

  /** Whether a run under `policy` needs totals (control totals, or a net amount threshold). */
  static wanted(policy: ReconPolicy): boolean {
    return (
      policy.controlTotals !== undefined ||
      policy.thresholds?.warn?.netAmountDifference !== undefined ||
      policy.thresholds?.fail?.netAmountDifference !== undefined
    );
  }

  columns(side: Side, header: string[]): void {
    this.at[side] = {
      group: this.groupBy.map((g) => header.indexOf(g[side])),
      sum: this.sum.map((f) => header.indexOf(f[side])),
      amount: this.amount === undefined ? -1 : header.indexOf(this.amount[side]),
    };
  }

  /** One valid row's values in its header's order. */
  add(side: Side, values: string[]): void {
    const at = this.at[side];
    const s = side === 'source' ? 0 : 1;
    const separator = this.policy.sides[side].decimalSeparator;
    if (at.amount >= 0) this.amountTotal[s] = addDecimal(this.amountTotal[s], decimalOr0(values[at.amount], separator));
    if (this.policy.controlTotals === undefined) return;
    const group = this.groupBy.map((spec, i) => groupValue(spec, side, (values[at.group[i] as number] ?? '').trim()));
    const id = group.join(GROUP_SEPARATOR);
    let acc = this.groups.get(id);
    if (acc === undefined) {
      acc = { rows: [0, 0], sums: [this.sum.map(() => ZERO), this.sum.map(() => ZERO)], group };
      this.groups.set(id, acc);
    }
    acc.rows[s]++;
    const sums = acc.sums[s];
    for (let i = 0; i < this.sum.length; i++)
      sums[i] = addDecimal(sums[i] as Decimal, decimalOr0(values[at.sum[i] as number], separator));
  }

  /** |Σ source amount − Σ target amount|. */
  netAmountDifference(): Decimal {
    const d = subtractDecimal(this.amountTotal[1], this.amountTotal[0]);
    return d.units < 0n ? { units: -d.units, scale: d.scale } : d;
  }

  amountTotals(): { source: string; target: string } {
    return { source: formatDecimal(this.amountTotal[0]), target: formatDecimal(this.amountTotal[1]) };
  }

  /** The groups, ordered by their values. */
  result(): ControlTotalGroup[] {
    if (this.policy.controlTotals === undefined) return [];
    const names = this.groupBy.map((g) => g.field);
    return [...this.groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, acc]) => {
        const sums = (s: 0 | 1) =>
          Object.fromEntries(this.sum.map((f, i) => [f.field, formatDecimal(acc.sums[s][i] as Decimal)]));
        return {
          group: Object.fromEntries(names.map((n, i) => [n, acc.group[i] as string])),
          source: { rows: acc.rows[0], sums: sums(0) },
          target: { rows: acc.rows[1], sums: sums(1) },
          difference: {
            rows: acc.rows[1] - acc.rows[0],
            sums: Object.fromEntries(
              this.sum.map((f, i) => [
                f.field,
                formatDecimal(subtractDecimal(acc.sums[1][i] as Decimal, acc.sums[0][i] as Decimal)),
              ]),
            ),
          },
        };
      });
  }
}

function decimalOr0(text: string | undefined, separator: '.' | ','): Decimal {
  const t = (text ?? '').trim();
  if (t === '') return ZERO;
  const parsed = parseDecimalWith(t, separator);
  return parsed.ok ? parsed.value : ZERO;
}

function groupValue(spec: KeySpec | FieldSpec, side: Side, value: string): string {
  if (!('type' in spec)) return normalizeText(value, spec.normalize);
  if (value === '') return '';
  switch (spec.type) {
    case 'text': {
      const v = normalizeText(value, spec.normalize);
      return spec.equivalents?.get(v) ?? v;
    }
    case 'date': {
      const days = (side === 'source' ? spec.sourceFormat : spec.targetFormat).parse(value);
      return days === undefined ? value : isoDate(days);
    }
    default:
      return value;
  }
}

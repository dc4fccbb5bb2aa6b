/**
 * The typed field rules: how one value is read on a side (is it valid?) and how two values of a
 * compared field agree. Text is trimmed, normalised and mapped through its equivalents; decimals
 * are exact and agree within |s − t| ≤ absolute + relative × max(|s|, |t|) (a difference exactly
 * at the bound is within); dates are read with each side's format and agree within
 * `tolerance_days` calendar days; integers are exact. An empty value is "no value": it agrees
 * only with another empty value.
 */
import {
  absDecimal,
  addDecimal,
  compareDecimal,
  formatDecimal,
  multiplyDecimal,
  parseDecimalWith,
  subtractDecimal,
  type Decimal,
} from '../shared/decimal.ts';
import { normalizeText, type FieldSpec, type ReconPolicy } from '../shared/policy.ts';
import type { Side } from '../shared/types.ts';

const INTEGER = /^[+-]?\d+$/;

/** Why `value` (trimmed, non-empty) cannot be read as this field on this side, or undefined. */
export function valueProblem(
  spec: FieldSpec,
  side: Side,
  value: string,
  decimalSeparator: '.' | ',',
): string | undefined {
  switch (spec.type) {
    case 'text':
      return undefined;
    case 'decimal': {
      const parsed = parseDecimalWith(value, decimalSeparator);
      return parsed.ok ? undefined : parsed.reason.replace(/^amount /, 'value ');
    }
    case 'date': {
      const format = side === 'source' ? spec.sourceFormat : spec.targetFormat;
      return format.parse(value) === undefined
        ? `value ${JSON.stringify(value)} is not a date in the format ${format.pattern}`
        : undefined;
    }
    case 'integer':
      return INTEGER.test(value) ? undefined : `value ${JSON.stringify(value)} is not an integer`;
  }
}

/** What comparing one field of a matched pair found. */
export type FieldComparison =
  | { readonly kind: 'equal' }
  /** Unequal but within the field's tolerance: counted, not a break. */
  | { readonly kind: 'within'; readonly magnitude: Decimal | undefined }
  | { readonly kind: 'break'; readonly delta: Decimal | undefined; readonly magnitude: Decimal | undefined };

const EQUAL: FieldComparison = { kind: 'equal' };

/** Compares a field's values `a` (source) and `b` (target), both already trimmed. */
export function compareField(
  spec: FieldSpec,
  a: string,
  b: string,
  sep: Readonly<Record<Side, '.' | ','>>,
): FieldComparison {
  if (a === '' || b === '') return a === b ? EQUAL : { kind: 'break', delta: undefined, magnitude: undefined };
  switch (spec.type) {
    case 'text': {
      if (a === b) return EQUAL;
      let x = normalizeText(a, spec.normalize);
      let y = normalizeText(b, spec.normalize);
      if (spec.equivalents !== undefined) {
        x = spec.equivalents.get(x) ?? x;
        y = spec.equivalents.get(y) ?? y;
      }
      return x === y ? EQUAL : { kind: 'break', delta: undefined, magnitude: undefined };
    }
    case 'decimal': {
      if (a === b && sep.source === sep.target) return EQUAL;
      const x = decimalOf(a, sep.source);
      const y = decimalOf(b, sep.target);
      const delta = subtractDecimal(y, x);
      if (delta.units === 0n) return EQUAL;
      const magnitude = absDecimal(delta);
      return withinTolerance(magnitude, x, y, spec)
        ? { kind: 'within', magnitude }
        : { kind: 'break', delta, magnitude };
    }
    case 'date': {
      const x = spec.sourceFormat.parse(a) as number;
      const y = spec.targetFormat.parse(b) as number;
      if (x === y) return EQUAL;
      const delta = { units: BigInt(y - x), scale: 0 };
      const magnitude = absDecimal(delta);
      return Math.abs(y - x) <= spec.toleranceDays
        ? { kind: 'within', magnitude }
        : { kind: 'break', delta, magnitude };
    }
    case 'integer': {
      const x = BigInt(a);
      const y = BigInt(b);
      if (x === y) return EQUAL;
      const delta = { units: y - x, scale: 0 };
      return { kind: 'break', delta, magnitude: absDecimal(delta) };
    }
  }
}

/** |s − t| ≤ absolute + relative × max(|s|, |t|). */
export function withinTolerance(
  magnitude: Decimal,
  s: Decimal,
  t: Decimal,
  spec: Pick<FieldSpec, 'tolerance'>,
): boolean {
  const { absolute, relative } = spec.tolerance;
  let bound = absolute;
  if (relative.units !== 0n) {
    const as = absDecimal(s);
    const at = absDecimal(t);
    bound = addDecimal(bound, multiplyDecimal(relative, compareDecimal(as, at) >= 0 ? as : at));
  }
  return compareDecimal(magnitude, bound) <= 0;
}

function decimalOf(text: string, sep: '.' | ','): Decimal {
  const parsed = parseDecimalWith(text, sep);
  // Rows with unparseable values were rejected on load, so this cannot fail here.
  if (!parsed.ok) throw new Error(`internal: decimal ${text} passed validation but does not parse`);
  return parsed.value;
}

/** Per compared field: unequal values, those within tolerance, and the largest difference. */
export interface FieldStatistics {
  unequal: number;
  within_tolerance: number;
  /** The largest |target − source| among unequal values (days for dates); absent for text. */
  largest_difference?: string;
}

/** One field's counts; `line` is the source line of the largest difference (ties go to the first). */
interface FieldCount {
  unequal: number;
  within: number;
  largest: Decimal | undefined;
  line: number;
}

export class FieldStats {
  private readonly counts: FieldCount[];
  private readonly names: readonly string[];

  constructor(policy: ReconPolicy) {
    this.names = policy.fields.map((f) => f.field);
    this.counts = policy.fields.map(() => ({ unequal: 0, within: 0, largest: undefined, line: 0 }));
  }

  /**
   * Records the comparison of field number `i` (in `policy.fields` order) for the row at source
   * `line`. Equal largest differences may be written differently ("15.0", "15.00"): the first
   * source row's is kept, whatever order the rows come in (a partitioned run meets them out of
   * file order).
   */
  add(i: number, c: FieldComparison, line: number): void {
    if (c.kind === 'equal') return;
    const s = this.counts[i] as FieldCount;
    s.unequal++;
    if (c.kind === 'within') s.within++;
    if (c.magnitude === undefined) return;
    const order = s.largest === undefined ? 1 : compareDecimal(c.magnitude, s.largest);
    if (order > 0 || (order === 0 && line < s.line)) {
      s.largest = c.magnitude;
      s.line = line;
    }
  }

  toJSON(): Record<string, FieldStatistics> {
    const out: Record<string, FieldStatistics> = {};
    this.names.forEach((name, i) => {
      const s = this.counts[i] as FieldCount;
      out[name] = {
        unequal: s.unequal,
        within_tolerance: s.within,
        ...(s.largest === undefined ? {} : { largest_difference: formatDecimal(s.largest) }),
      };
    });
    return out;
  }
}

/**
 * A finding's break pattern: what kind of break it is, with the values that make it one break
 * among many (keys, amounts) left out. Exceptions with the same signature in one dataset and
 * business date are one pattern, whose id is a hash of the signature: the same input gives the
 * same patterns, whichever engine found the breaks and in whatever order.
 *
 * The signature: the exception type; the sorted set of differing fields; per differing field its
 * shape — decimals and integers the sign of target − source and either the round ratio target ÷
 * source is close to (×100, ×0.01, ×−1 ...) or, when there is none, the power of ten of the
 * difference; dates the day offset; text "changed" (or "filled"/"emptied" when one side is empty).
 * A ratio replaces the sign and the magnitude: with target = source × 100 the difference grows
 * with the amount and takes its sign, so they would split one cause (a JPY amount sent in the
 * wrong unit) into a pattern per power of ten and per buy or sell. Missing and duplicate exceptions have no fields: their type (which
 * names the side) is the shape. An invalid record's shape is its side and its reason with the
 * values taken out.
 *
 * Pure: no I/O, no clock; the dashboard could import it.
 */
import { createHash } from 'node:crypto';
import {
  absDecimal,
  compareDecimal,
  decimal,
  multiplyDecimal,
  parseDecimal,
  parseDecimalWith,
  subtractDecimal,
  type Decimal,
} from '../decimal.ts';
import type { FieldType, ReconPolicy } from '../policy.ts';
import type { Diff, ExceptionType, Row } from '../types.ts';

/** What patternOf reads of a finding (functions/recon/findings.ts Finding). */
export interface PatternInput {
  readonly type: ExceptionType;
  readonly key: Row;
  readonly source: Row | null;
  readonly target: Row | null;
  readonly diffs: readonly Diff[];
  readonly reason?: string;
}

export type FieldShape =
  | { readonly kind: 'number'; readonly ratio: string }
  | { readonly kind: 'number'; readonly sign: '+' | '-'; readonly magnitude: number }
  | { readonly kind: 'date'; readonly days: number }
  | { readonly kind: 'text'; readonly change: 'changed' | 'filled' | 'emptied' };

export interface Signature {
  readonly type: ExceptionType;
  /** Differing fields, sorted. Empty for missing, duplicate and invalid records. */
  readonly fields: readonly string[];
  /** Per differing field. */
  readonly shapes: Readonly<Record<string, FieldShape>>;
  /** INVALID_RECORD only: the side the row was on, and its reason without the values. */
  readonly side?: 'source' | 'target';
  readonly reason?: string;
}

export interface Pattern {
  readonly signature: Signature;
  /** The signature in words, for people and the triage prompt. */
  readonly text: string;
}

/**
 * Round ratios target ÷ source a systematic error produces: a unit or scale slip (×10ⁿ), a sign
 * flip (×−1), a doubled or halved booking. Tried in this order; the first close one wins.
 */
const RATIOS = ['-1', '2', '0.5', '10', '100', '1000', '10000', '0.1', '0.01', '0.001', '0.0001'] as const;
const RATIO_VALUES = RATIOS.map((r) => ({ text: r, value: decimal(r), approx: Number(r) }));
/** Close to a ratio: |target − ratio × source| ≤ 0.5% of |ratio × source| (rounding of the converted amount). */
const CLOSE_PER_MILLE = 5n;

export function patternOf(finding: PatternInput, policy: ReconPolicy): Pattern {
  const signature = signatureOf(finding, policy);
  return { signature, text: describeSignature(signature) };
}

/** The signature alone (patternOf without the words: what the accumulator needs per finding). */
export function signatureOf(finding: PatternInput, policy: ReconPolicy): Signature {
  if (finding.type === 'INVALID_RECORD') {
    const side = finding.source !== null ? 'source' : finding.target !== null ? 'target' : sideOfKey(finding.key);
    return { type: finding.type, fields: [], shapes: {}, side, reason: reasonShape(finding.reason ?? '') };
  }
  if (finding.diffs.length === 0) return { type: finding.type, fields: [], shapes: {} };
  const types = new Map(policy.fields.map((f) => [f.field, f.type]));
  const separators = [policy.sides.source.decimalSeparator, policy.sides.target.decimalSeparator] as const;
  const shapes: Record<string, FieldShape> = {};
  for (const diff of finding.diffs) shapes[diff.field] = shapeOf(diff, types.get(diff.field) ?? 'text', separators);
  const fields = Object.keys(shapes).sort();
  return { type: finding.type, fields, shapes: Object.fromEntries(fields.map((f) => [f, shapes[f] as FieldShape])) };
}

function sideOfKey(key: Row): 'source' | 'target' {
  return key.side === 'target' ? 'target' : 'source';
}

/** Each side's decimal separator: a diff keeps the values as each file wrote them. */
type Separators = readonly ['.' | ',', '.' | ','];

function shapeOf(diff: Diff, type: FieldType, separators: Separators): FieldShape {
  const s = diff.source.trim();
  const t = diff.target.trim();
  if (s === '' && t !== '') return { kind: 'text', change: 'filled' };
  if (s !== '' && t === '') return { kind: 'text', change: 'emptied' };
  if (type === 'date' && diff.delta !== undefined && /^-?\d+$/.test(diff.delta))
    return { kind: 'date', days: Number(diff.delta) };
  if ((type === 'decimal' || type === 'integer') && diff.delta !== undefined) {
    const delta = parseDecimal(diff.delta);
    if (delta.ok && delta.value.units !== 0n) {
      const sign = delta.value.units < 0n ? '-' : '+';
      const ratio = roundRatio(s, t, separators);
      return ratio === undefined
        ? { kind: 'number', sign, magnitude: magnitudeOf(delta.value) }
        : { kind: 'number', ratio };
    }
  }
  return { kind: 'text', change: 'changed' };
}

/** The round ratio target ÷ source is close to, if any (each read with its side's decimal separator). */
export function roundRatio(
  sourceText: string,
  targetText: string,
  separators: Separators = ['.', '.'],
): string | undefined {
  const s = parseDecimalWith(sourceText, separators[0]);
  const t = parseDecimalWith(targetText, separators[1]);
  if (!s.ok || !t.ok || s.value.units === 0n) return undefined;
  // A float estimate rules most ratios out cheaply; the decision itself is exact.
  const estimate = toNumber(t.value) / toNumber(s.value);
  for (const ratio of RATIO_VALUES) {
    if (!(Math.abs(estimate - ratio.approx) <= Math.abs(ratio.approx) * 0.01)) continue;
    const expected = multiplyDecimal(s.value, ratio.value);
    const off = absDecimal(subtractDecimal(t.value, expected));
    const allowed = multiplyDecimal(absDecimal(expected), { units: CLOSE_PER_MILLE, scale: 3 });
    if (compareDecimal(off, allowed) <= 0) return ratio.text;
  }
  return undefined;
}

function toNumber(value: Decimal): number {
  return Number(value.units) / 10 ** value.scale;
}

/** floor(log10(|value|)) of a non-zero decimal: 25.00 -> 1, 0.5 -> -1, 1000 -> 3. */
export function magnitudeOf(value: Decimal): number {
  const digits = (value.units < 0n ? -value.units : value.units).toString().length;
  return digits - value.scale - 1;
}

/**
 * An invalid record's reason as a code: quoted values, numbers and long tails taken out, so
 * `amount: amount "12,x" is not a decimal number` and the same with "abc" are one reason.
 */
export function reasonShape(reason: string): string {
  return reason
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160);
}

/** JSON with object keys sorted at every level: one text per value, whatever order it was built in. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** `pat_` + the first 16 hex digits of sha256 over the canonical JSON of (dataset, business date, signature). */
export function patternId(dataset: string, businessDate: string, signature: Signature): string {
  const text = canonicalJson({ dataset, business_date: businessDate, signature });
  return `pat_${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

export const PATTERN_ID_PATTERN = /^pat_[0-9a-f]{16}$/;

/** The signature in words: `AMOUNT_MISMATCH: amount target = source × 100`. */
export function describeSignature(signature: Signature): string {
  if (signature.type === 'INVALID_RECORD')
    return `${signature.type} (${signature.side ?? 'source'}): ${signature.reason || 'unreadable row'}`;
  if (signature.fields.length === 0) return signature.type;
  const parts = signature.fields.map((field) => `${field} ${describeShape(signature.shapes[field] as FieldShape)}`);
  return `${signature.type}: ${parts.join(', ')}`;
}

function describeShape(shape: FieldShape): string {
  switch (shape.kind) {
    case 'number':
      if ('ratio' in shape) return `target = source × ${shape.ratio}`;
      return `${shape.sign === '+' ? 'higher' : 'lower'} in target by ${magnitudeRange(shape.magnitude)}`;
    case 'date':
      return `${shape.days > 0 ? '+' : ''}${shape.days} day${Math.abs(shape.days) === 1 ? '' : 's'} in target`;
    case 'text':
      return shape.change === 'changed' ? 'changed' : shape.change === 'filled' ? 'empty in source' : 'empty in target';
  }
}

/** 1 -> "10 to 100", -2 -> "0.01 to 0.1". */
function magnitudeRange(m: number): string {
  const pow = (e: number) => (e >= 0 ? `1${'0'.repeat(e)}` : `0.${'0'.repeat(-e - 1)}1`);
  return `${pow(m)} to ${pow(m + 1)}`;
}

/**
 * The deterministic scorer behind `GET /exceptions/{id}/suggestions` (the rules of a manual match
 * are in manual-match.ts). It gives points for each piece of evidence and says which it found, so
 * a person sees why a pair is suggested: the amounts agree within the policy's tolerance for the
 * amount field, an account field has the same value on both rows, a date field agrees within the
 * field's tolerance_days, and the keys are at most two edits apart. Same inputs, same answer: no
 * model.
 */
// The engine's own tolerance rule, so "within tolerance" means here what it means in a run.
import { withinTolerance } from '../recon/field-rules.ts';
import { absDecimal, parseDecimalWith, subtractDecimal } from './decimal.ts';
import type { ReconPolicy } from './policy.ts';
import type { Row } from './types.ts';

/** Points per piece of evidence; a suggestion needs at least one. */
export const MATCH_WEIGHTS = {
  amount: 40,
  account: 20,
  date: 20,
  /** One edit apart; two edits score half. */
  key: 20,
} as const;

/** The greatest key edit distance that counts as evidence. */
export const MAX_KEY_EDITS = 2;

export interface MatchCandidate {
  readonly exception_id: string;
  readonly exception_type: string;
  readonly key: Row;
  readonly source: Row | null;
  readonly target: Row | null;
}

export interface MatchReason {
  readonly kind: keyof typeof MATCH_WEIGHTS;
  readonly points: number;
  readonly text: string;
}

export interface ScoredMatch {
  readonly exception_id: string;
  readonly score: number;
  readonly reasons: MatchReason[];
}

/** What the scorer reads of the dataset's policy (a missing policy: keys only). */
export type MatchPolicy = Pick<ReconPolicy, 'fields' | 'amountField' | 'keys' | 'sides'>;

/** Levenshtein distance, stopping early once it exceeds `max` (returns max + 1 then). */
export function editDistance(a: string, b: string, max = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin > max) return max + 1;
    previous = current;
  }
  return previous[b.length] as number;
}

/** A row's value of a column, whatever the header's case. */
function columnValue(row: Row | null, column: string): string | undefined {
  if (row === null) return undefined;
  if (row[column] !== undefined) return row[column];
  const lower = column.toLowerCase();
  for (const [name, value] of Object.entries(row)) if (name.toLowerCase() === lower) return value;
  return undefined;
}

/** The key as one string, fields in the policy's order (or the row's when there is no policy). */
function keyText(key: Row, policy: MatchPolicy | undefined): string {
  const names = policy ? policy.keys.map((k) => k.field) : Object.keys(key).sort();
  return names.map((n) => key[n] ?? '').join('|');
}

/** The row a missing exception has (the side it was found on) and that side's column for each field. */
function presentRow(c: MatchCandidate): { row: Row | null; side: 'source' | 'target' } {
  return c.exception_type === 'MISSING_IN_TARGET'
    ? { row: c.source, side: 'source' }
    : { row: c.target, side: 'target' };
}

function amountReason(s: MatchCandidate, t: MatchCandidate, policy: MatchPolicy): MatchReason | undefined {
  const spec = policy.fields.find((f) => f.field === policy.amountField);
  if (!spec) return undefined;
  const sText = columnValue(presentRow(s).row, spec.source);
  const tText = columnValue(presentRow(t).row, spec.target);
  if (sText === undefined || tText === undefined) return undefined;
  const sv = parseDecimalWith(sText.trim(), policy.sides.source.decimalSeparator);
  const tv = parseDecimalWith(tText.trim(), policy.sides.target.decimalSeparator);
  if (!sv.ok || !tv.ok) return undefined;
  const magnitude = absDecimal(subtractDecimal(sv.value, tv.value));
  if (!withinTolerance(magnitude, sv.value, tv.value, spec)) return undefined;
  return {
    kind: 'amount',
    points: MATCH_WEIGHTS.amount,
    text: `${spec.field} ${sText.trim()} and ${tText.trim()} agree within the policy's tolerance`,
  };
}

function accountReason(s: MatchCandidate, t: MatchCandidate, policy: MatchPolicy): MatchReason | undefined {
  for (const spec of policy.fields) {
    if (!/account/i.test(spec.field)) continue;
    const sv = columnValue(presentRow(s).row, spec.source)?.trim();
    const tv = columnValue(presentRow(t).row, spec.target)?.trim();
    if (sv && tv && sv === tv)
      return { kind: 'account', points: MATCH_WEIGHTS.account, text: `same ${spec.field} ${sv}` };
  }
  return undefined;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
function isoDays(text: string): number | undefined {
  const m = ISO_DATE.exec(text);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(ms) ? undefined : ms / 86_400_000;
}

function dateReason(s: MatchCandidate, t: MatchCandidate, policy: MatchPolicy): MatchReason | undefined {
  for (const spec of policy.fields) {
    // A date field parses with each side's format; a text field named like a date counts when both are ISO dates.
    const isDate = spec.type === 'date';
    if (!isDate && !/date/i.test(spec.field)) continue;
    const sText = columnValue(presentRow(s).row, spec.source)?.trim();
    const tText = columnValue(presentRow(t).row, spec.target)?.trim();
    if (!sText || !tText) continue;
    const sd = isDate ? spec.sourceFormat.parse(sText) : isoDays(sText);
    const td = isDate ? spec.targetFormat.parse(tText) : isoDays(tText);
    if (sd === undefined || td === undefined) continue;
    const days = Math.abs(sd - td);
    const tolerance = isDate ? spec.toleranceDays : 0;
    if (days <= tolerance)
      return {
        kind: 'date',
        points: MATCH_WEIGHTS.date,
        text:
          days === 0
            ? `same ${spec.field} ${sText}`
            : `${spec.field} ${sText} and ${tText} are ${days} day(s) apart, within ${tolerance}`,
      };
  }
  return undefined;
}

function keyReason(s: MatchCandidate, t: MatchCandidate, policy: MatchPolicy | undefined): MatchReason | undefined {
  const a = keyText(s.key, policy);
  const b = keyText(t.key, policy);
  const edits = editDistance(a, b, MAX_KEY_EDITS);
  if (edits > MAX_KEY_EDITS) return undefined;
  const points = edits <= 1 ? MATCH_WEIGHTS.key : MATCH_WEIGHTS.key / 2;
  return { kind: 'key', points, text: `keys ${a} and ${b} are ${edits} edit(s) apart` };
}

/**
 * Scores `other` as the opposite side of `exception` (the caller passes opposite-side missing
 * exceptions of the same dataset). Undefined when nothing speaks for the pair.
 */
export function scoreMatch(
  exception: MatchCandidate,
  other: MatchCandidate,
  policy: MatchPolicy | undefined,
): ScoredMatch | undefined {
  const [s, t] = exception.exception_type === 'MISSING_IN_TARGET' ? [exception, other] : [other, exception];
  const reasons = [
    ...(policy ? [amountReason(s, t, policy), accountReason(s, t, policy), dateReason(s, t, policy)] : []),
    keyReason(s, t, policy),
  ].filter((r): r is MatchReason => r !== undefined);
  if (reasons.length === 0) return undefined;
  return { exception_id: other.exception_id, score: reasons.reduce((sum, r) => sum + r.points, 0), reasons };
}

/** The best `limit` of `candidates` for `exception`: highest score first, then exception id (stable). */
export function rankMatches(
  exception: MatchCandidate,
  candidates: readonly MatchCandidate[],
  policy: MatchPolicy | undefined,
  limit: number,
): ScoredMatch[] {
  return candidates
    .filter((c) => c.exception_id !== exception.exception_id)
    .map((c) => scoreMatch(exception, c, policy))
    .filter((m): m is ScoredMatch => m !== undefined)
    .sort((a, b) => b.score - a.score || (a.exception_id < b.exception_id ? -1 : 1))
    .slice(0, limit);
}

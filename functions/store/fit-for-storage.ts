/**
 * A finding cut to fit one DynamoDB item (400 KB, attribute names included). The engines do not
 * bound a finding's size: a key found on 120,000 rows lists 120,000 line numbers (730 KB); a row
 * of a few 65,536-character fields, or of hundreds of columns, is as large. DynamoDB refuses such an item ("Item size has exceeded the maximum allowed size"),
 * the chunk's message fails on every delivery and lands in the DLQ, and the run never completes.
 *
 * What is stored instead, in this order until it fits: the first LINES_KEPT line numbers of a
 * side, row values cut to VALUE_CHARS, diff values cut to DIFF_CHARS, then a row's fields after
 * those the key and the diffs name dropped from its end; and, for a policy comparing very many
 * fields that all differ, diff values cut to VALUE_CHARS too, then the differences after those
 * that fit dropped with their fields. Each cut row says what it lost in an `_omitted` field (as
 * `_extra_N` and `_line` are shown in a row), so a reader knows the stored row is not the whole
 * one. The content hash is taken of the whole finding before this, so a change in a cut part
 * still counts as a change.
 *
 * Only the key and the engine's reason are never cut: a key is made of a few fields, each at most
 * the reader's longest field, and a reason is one sentence.
 */
import type { Finding } from '../recon/findings.ts';
import { cutText, namedFields } from '../shared/exception-view.ts';
import type { Diff, Row } from '../shared/types.ts';

/**
 * What a finding's own parts may take, as JSON bytes (more than DynamoDB counts for them): the
 * rest of the item (history, triage, its embedding, index keys) keeps over 140 KB.
 */
export const FINDING_BUDGET_BYTES = 256 * 1024;
export const LINES_KEPT = 1000;
export const VALUE_CHARS = 256;
export const DIFF_CHARS = 4096;
export const OMITTED = '_omitted';

type Side = 'source' | 'target';

const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
const sizeOf = (f: Finding) => bytesOf([f.key, f.source, f.target, f.diffs, f.lines, f.reason]);

export function fitForStorage(finding: Finding): Finding {
  if (sizeOf(finding) <= FINDING_BUDGET_BYTES) return finding;
  const notes: Record<Side, string[]> = { source: [], target: [] };
  let fitted: Finding = finding;

  const lines = { ...fitted.lines };
  for (const side of ['source', 'target'] as const) {
    if (lines[side].length <= LINES_KEPT) continue;
    notes[side].push(`line numbers after the first ${LINES_KEPT} of ${lines[side].length}`);
    lines[side] = lines[side].slice(0, LINES_KEPT);
  }
  fitted = { ...fitted, lines };

  if (sizeOf(fitted) > FINDING_BUDGET_BYTES) {
    const rows = { source: fitted.source, target: fitted.target };
    for (const side of ['source', 'target'] as const) {
      const row = rows[side];
      if (row === null) continue;
      const long = Object.values(row).filter((v) => v.length > VALUE_CHARS).length;
      if (long === 0) continue;
      rows[side] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, cutText(v, VALUE_CHARS)]));
      notes[side].push(`the text past ${VALUE_CHARS} characters of ${long} value${long === 1 ? '' : 's'}`);
    }
    fitted = { ...fitted, ...rows, diffs: fitted.diffs.map((d) => cutDiff(d, DIFF_CHARS)) };
  }

  if (sizeOf(fitted) > FINDING_BUDGET_BYTES) fitted = dropFields(fitted, notes);

  if (sizeOf(fitted) > FINDING_BUDGET_BYTES) {
    // Every field the diffs name is kept, and every diff: many long ones cut further.
    const long = fitted.diffs.filter((d) => d.source.length > VALUE_CHARS || d.target.length > VALUE_CHARS).length;
    if (long > 0) {
      notes[noteSide(fitted)].push(
        `the text past ${VALUE_CHARS} characters of ${long} difference${long === 1 ? '' : 's'}`,
      );
      fitted = { ...fitted, diffs: fitted.diffs.map((d) => cutDiff(d, VALUE_CHARS)) };
    }
  }

  if (sizeOf(fitted) > FINDING_BUDGET_BYTES) {
    // Still too many: the differences that fit (in the engine's order, the policy's), each with its fields.
    const keyFields = namedFields({ key: fitted.key });
    const keysOnly = { source: keptOnly(fitted.source, keyFields), target: keptOnly(fitted.target, keyFields) };
    let left = FINDING_BUDGET_BYTES - 512 - sizeOf({ ...fitted, ...keysOnly, diffs: [] });
    const kept: Diff[] = [];
    for (const d of fitted.diffs) {
      const cost = bytesOf(d) + 1 + fieldCost(fitted.source, d.field) + fieldCost(fitted.target, d.field);
      if (cost > left) break;
      kept.push(d);
      left -= cost;
    }
    const dropped = fitted.diffs.length - kept.length;
    if (dropped > 0)
      notes[noteSide(fitted)].push(
        `${dropped} of ${fitted.diffs.length} differences after the first ${kept.length}, and their fields`,
      );
    const named = namedFields({ key: fitted.key, diffs: kept });
    fitted = { ...fitted, diffs: kept, source: keptOnly(fitted.source, named), target: keptOnly(fitted.target, named) };
  }

  const withNote = (row: Row | null, side: Side): Row | null =>
    row === null || notes[side].length === 0
      ? row
      : { ...row, [OMITTED]: `not stored (over DynamoDB's item size): ${notes[side].join('; ')}` };
  return { ...fitted, source: withNote(fitted.source, 'source'), target: withNote(fitted.target, 'target') };
}

/** A row's fields after those the key and the diffs name dropped from its end, while over the budget. */
function dropFields(fitted: Finding, notes: Record<Side, string[]>): Finding {
  const named = namedFields(fitted);
  const rows = { source: fitted.source, target: fitted.target };
  let left = FINDING_BUDGET_BYTES - sizeOf({ ...fitted, source: keptOnly(rows.source, named), target: null });
  left -= bytesOf(keptOnly(rows.target, named)) + 512; // and room for the notes
  for (const side of ['source', 'target'] as const) {
    const row = rows[side];
    if (row === null) continue;
    const kept: Row = {};
    let dropped = 0;
    for (const [k, v] of Object.entries(row)) {
      const cost = bytesOf(k) + bytesOf(v) + 2;
      if (named.has(k)) kept[k] = v;
      else if (cost <= left) {
        kept[k] = v;
        left -= cost;
      } else dropped++;
    }
    if (dropped > 0) notes[side].push(`${dropped} field${dropped === 1 ? '' : 's'}`);
    rows[side] = kept;
  }
  return { ...fitted, ...rows };
}

/** What one field of a row adds to the JSON (nothing when the row lacks it). */
function fieldCost(row: Row | null, field: string): number {
  const value = row?.[field];
  return value === undefined ? 0 : bytesOf(field) + bytesOf(value) + 2;
}

/** The row that carries a note about the diffs: the source's, or the target's when there is none. */
function noteSide(f: Finding): Side {
  return f.source === null ? 'target' : 'source';
}

function cutDiff(diff: Diff, chars: number): Diff {
  return { ...diff, source: cutText(diff.source, chars), target: cutText(diff.target, chars) };
}

function keptOnly(row: Row | null, named: ReadonlySet<string>): Row | null {
  return row === null ? null : Object.fromEntries(Object.entries(row).filter(([k]) => named.has(k)));
}

/**
 * A finding cut to fit one DynamoDB item (400 KB, attribute names included). The engines do not
 * bound a finding's size: a key found on 120,000 rows lists 120,000 line numbers (730 KB); a row
 * of a few 65,536-character fields, or of hundreds of columns, is as large. DynamoDB refuses such an item ("Item size has exceeded the maximum allowed size"),
 * the chunk's message fails on every delivery and lands in the DLQ, and the run never completes.
 *
 * What is stored instead, in this order until it fits: the first LINES_KEPT line numbers of a
 * side, row values cut to VALUE_CHARS, diff values cut to DIFF_CHARS, then a row's fields after
 * those the key and the diffs name dropped from its end. Each cut row says what it lost in an
 * `_omitted` field (as `_extra_N` and `_line` are shown in a row), so a reader knows the stored
 * row is not the whole one. The content hash is taken of the whole finding before this, so a
 * change in a cut part still counts as a change.
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

  if (sizeOf(fitted) > FINDING_BUDGET_BYTES) {
    // Fields the key and the diffs name are kept; the others while the budget lasts.
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
    fitted = { ...fitted, ...rows };
  }

  const withNote = (row: Row | null, side: Side): Row | null =>
    row === null || notes[side].length === 0
      ? row
      : { ...row, [OMITTED]: `not stored (over DynamoDB's item size): ${notes[side].join('; ')}` };
  return { ...fitted, source: withNote(fitted.source, 'source'), target: withNote(fitted.target, 'target') };
}

function cutDiff(diff: Diff, chars: number): Diff {
  return { ...diff, source: cutText(diff.source, chars), target: cutText(diff.target, chars) };
}

function keptOnly(row: Row | null, named: ReadonlySet<string>): Row | null {
  return row === null ? null : Object.fromEntries(Object.entries(row).filter(([k]) => named.has(k)));
}

/**
 * A bounded view of an exception for the models that read it: triage's prompts and the text
 * search embeds. An exception within the bounds reads as it is stored.
 */
import type { ExceptionRecord, Row } from './types.ts';

export const VIEW_LINES = 20;
export const VIEW_VALUE_CHARS = 512;
export const VIEW_ROW_FIELDS = 40;

/**
 * An exception's rows, diffs and line numbers as a model reads them (triage's prompts, the text
 * search embeds). A stored exception may be up to ~256 KB (store/fit-for-storage.ts: a key on
 * 120,000 rows, rows of hundreds of fields). What tells one break from another is the key, the
 * fields that differ and some context: each side's first VIEW_LINES line numbers (with the count),
 * values cut to VIEW_VALUE_CHARS, and at most VIEW_ROW_FIELDS fields a row (a longer row: the
 * key's and the diffs' first); what is left out is counted in `_omitted`.
 */
/** A value's first `chars` characters and an ellipsis when it is longer. */
export function cutText(value: string, chars: number): string {
  return value.length > chars ? `${value.slice(0, chars)}…` : value;
}

/** The fields an exception's key and diffs name: what a shortened row keeps first. */
export function namedFields(e: { readonly key?: object; readonly diffs?: readonly { readonly field: unknown }[] }) {
  return new Set([...Object.keys(e.key ?? {}), ...(e.diffs ?? []).map((d) => String(d.field))]);
}

export function boundedView(e: Pick<ExceptionRecord, 'key' | 'source' | 'target' | 'diffs' | 'lines'>) {
  // Items read back from the table's stream may lack what a record always has.
  const diffs = e.diffs ?? [];
  const lines = { source: e.lines?.source ?? [], target: e.lines?.target ?? [] };
  const named = namedFields(e);
  const cut = (v: string) => cutText(v, VIEW_VALUE_CHARS);
  const row = (r: Row | null): Row | null => {
    if (r === null) return null;
    const fields = Object.entries(r);
    const kept =
      fields.length <= VIEW_ROW_FIELDS
        ? fields
        : [...fields.filter(([k]) => named.has(k)), ...fields.filter(([k]) => !named.has(k))].slice(0, VIEW_ROW_FIELDS);
    const out = Object.fromEntries(kept.map(([k, v]) => [k, cut(v)]));
    const left = fields.length - kept.length;
    return left > 0 ? { ...out, _omitted: `${left} more field${left === 1 ? '' : 's'} not shown` } : out;
  };
  const cutLines = (l: number[]) => l.slice(0, VIEW_LINES);
  const longer = lines.source.length > VIEW_LINES || lines.target.length > VIEW_LINES;
  return {
    source: row(e.source ?? null),
    target: row(e.target ?? null),
    diffs: diffs.map((d) => ({ ...d, source: cut(d.source), target: cut(d.target) })),
    lines: { source: cutLines(lines.source), target: cutLines(lines.target) },
    ...(longer ? { line_count: { source: lines.source.length, target: lines.target.length } } : {}),
  };
}

/**
 * The reconciliation engine: source vs target under the recon policy. Pure: no AWS, no clock
 * except for the run duration. Streams both files; holds one compact entry per key.
 */
import { absDecimal, compareDecimal, formatDecimal, parseDecimal, subtractDecimal, type Decimal } from '../shared/decimal.ts';
import { CsvFileError, fieldsOf, readCsv, splitPlain, type CsvRecord } from '../shared/csv.ts';
import { requiredColumns, type ReconPolicy } from '../shared/policy.ts';
import type { Diff, ExceptionType, Row, RunSummary, Severity, Side } from '../shared/types.ts';

export interface ReconInput {
  /** Shown in errors: a path or an s3:// URL. */
  readonly name: string;
  readonly stream: AsyncIterable<Uint8Array | string>;
}

/** One break, before it is given an id, a run and a lifecycle. */
export interface Finding {
  readonly type: ExceptionType;
  /** Key columns and their values (trimmed). For INVALID_RECORD, `side:line`-based. */
  readonly key: Row;
  /** Stable text of the key, the input to the exception id. */
  readonly keyText: string;
  readonly source: Row | null;
  readonly target: Row | null;
  readonly diffs: Diff[];
  readonly lines: { source: number[]; target: number[] };
  readonly reason?: string;
  readonly severity: Severity;
}

export interface ReconResult {
  readonly findings: Finding[];
  readonly summary: RunSummary;
}

export type ReconErrorCode = 'FILE_EMPTY' | 'HEADER_INVALID' | 'MISSING_COLUMNS' | CsvFileError['code'];

/** The file cannot be reconciled at all. Names the file, the line and what was expected. */
export class ReconInputError extends Error {
  readonly code: ReconErrorCode;
  readonly file: string;
  readonly line: number | undefined;
  constructor(code: ReconErrorCode, file: string, message: string, line?: number) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.name = 'ReconInputError';
    this.code = code;
    this.file = file;
    this.line = line;
  }
}

/** Fields longer than this make a row invalid: they would not fit a stored exception. */
export const MAX_FIELD_CHARS = 64 * 1024;

/** A first occurrence of a key: its line and its raw text (or fields, when it was quoted). */
interface Entry {
  readonly line: number;
  readonly text: string | string[];
}

/** One side, loaded: an entry per key, the extra lines of repeated keys, the rejected rows. */
interface LoadedSide {
  readonly side: Side;
  header: string[];
  readonly index: Map<string, Entry>;
  readonly dupLines: Map<string, number[]>;
  readonly invalid: Finding[];
  rows: number;
}

interface Columns {
  readonly keys: number[];
  readonly text: number[];
  readonly amount: number;
  readonly count: number;
}

// Plain decimals take a regex instead of the full parser: most rows of a big file look like this.
const SIMPLE_AMOUNT = /^-?\d+(?:\.\d+)?$/;

export async function reconcile(source: ReconInput, target: ReconInput, policy: ReconPolicy): Promise<ReconResult> {
  const started = performance.now();
  const s = await loadSide('source', source, policy);
  const t = await loadSide('target', target, policy);
  const sCols = columnsOf(s.header, policy);
  const tCols = columnsOf(t.header, policy);
  // Identical raw lines under identical headers match without being split.
  const sameLayout = s.header.length === t.header.length && s.header.every((h, i) => h === t.header[i]);
  const findings: Finding[] = [];
  let matched = 0;

  for (const [keyText, se] of s.index) {
    const te = t.index.get(keyText);
    const sDup = s.dupLines.get(keyText);
    const tDup = te === undefined ? undefined : t.dupLines.get(keyText);
    if (sDup) {
      // Both sides duplicated: each finding accounts for its own side's rows only.
      findings.push(duplicate('DUPLICATE_IN_SOURCE', keyText, s, se, sDup, t, te, tDup, policy, tDup === undefined));
      if (te && tDup) findings.push(duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, sDup, policy, false));
      continue;
    }
    if (te === undefined) {
      findings.push(missing('MISSING_IN_TARGET', keyText, s, se, policy));
      continue;
    }
    if (tDup) {
      findings.push(duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, undefined, policy, true));
      continue;
    }
    if (sameLayout && se.text === te.text) {
      matched++;
      continue;
    }
    const finding = compare(keyText, s, se, sCols, t, te, tCols, policy);
    if (finding) findings.push(finding);
    else matched++;
  }
  for (const [keyText, te] of t.index) {
    if (s.index.has(keyText)) continue;
    const tDup = t.dupLines.get(keyText);
    findings.push(tDup
      ? duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, undefined, undefined, policy, true)
      : missing('MISSING_IN_SOURCE', keyText, t, te, policy));
  }
  findings.push(...s.invalid, ...t.invalid);

  const exceptions: Partial<Record<ExceptionType, number>> = {};
  for (const f of findings) exceptions[f.type] = (exceptions[f.type] ?? 0) + 1;
  return {
    findings,
    summary: {
      rows: { source: s.rows, target: t.rows },
      matched,
      exceptions,
      rejected: { source: s.invalid.length, target: t.invalid.length },
      duration_ms: Math.round(performance.now() - started),
    },
  };
}

async function loadSide(side: Side, input: ReconInput, policy: ReconPolicy): Promise<LoadedSide> {
  let cols: Columns | undefined;
  const state: LoadedSide = { side, header: [], index: new Map(), dupLines: new Map(), invalid: [], rows: 0 };
  try {
    for await (const batch of readCsv(input.stream)) {
      let start = 0;
      if (cols === undefined) {
        const first = batch[0];
        if (first === undefined) continue;
        state.header = checkHeader(first, input.name, policy);
        cols = columnsOf(state.header, policy);
        start = 1;
      }
      for (let i = start; i < batch.length; i++) addRow(state, cols, batch[i] as CsvRecord, policy);
    }
  } catch (error) {
    if (error instanceof CsvFileError) throw new ReconInputError(error.code, input.name, error.message, error.line);
    if (error instanceof ReconInputError) throw error;
    throw new ReconInputError('FILE_UNREADABLE', input.name, `cannot read file: ${(error as Error).message}`);
  }
  if (cols === undefined) {
    throw new ReconInputError('FILE_EMPTY', input.name, `file is empty; expected a header row with columns ${requiredColumns(policy).join(', ')}`);
  }
  return state;
}

function checkHeader(record: CsvRecord, file: string, policy: ReconPolicy): string[] {
  if (record.error) throw new ReconInputError('HEADER_INVALID', file, `header row is damaged: ${record.error}`, record.line);
  const names = fieldsOf(record).map((f) => f.replace(/^\uFEFF/, '').trim().toLowerCase());
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === '') throw new ReconInputError('HEADER_INVALID', file, `header column ${i + 1} has no name; every column needs a name`, record.line);
    const before = seen.get(name);
    if (before !== undefined) throw new ReconInputError('HEADER_INVALID', file, `column "${name}" appears twice (columns ${before + 1} and ${i + 1}); column names must be unique`, record.line);
    seen.set(name, i);
  });
  const required = requiredColumns(policy);
  const missingCols = required.filter((c) => !seen.has(c));
  if (missingCols.length > 0) {
    const hint = names.length === 1 && (names[0] ?? '').includes(';') ? ' (the header looks semicolon-delimited; files must be comma-delimited)' : '';
    throw new ReconInputError('MISSING_COLUMNS', file,
      `missing required column(s) ${missingCols.join(', ')}; expected columns ${required.join(', ')}, found ${names.join(', ')}${hint}`, record.line);
  }
  return names;
}

function columnsOf(header: string[], policy: ReconPolicy): Columns {
  return {
    keys: policy.keyColumns.map((c) => header.indexOf(c)),
    text: policy.textFields.map((c) => header.indexOf(c)),
    amount: policy.amountField === undefined ? -1 : header.indexOf(policy.amountField),
    count: header.length,
  };
}

function addRow(state: LoadedSide, cols: Columns, record: CsvRecord, policy: ReconPolicy): void {
  state.rows++;
  const checked = record.error === undefined ? checkRow(record, cols, policy) : record.error;
  if (typeof checked === 'string') {
    state.invalid.push(invalidRecord(state.side, state.header, fieldsOf(record), record.line, checked, policy));
    return;
  }
  const existing = state.index.get(checked.key);
  if (existing === undefined) {
    state.index.set(checked.key, { line: record.line, text: record.plain ?? record.fields });
    return;
  }
  const more = state.dupLines.get(checked.key);
  if (more) more.push(record.line);
  else state.dupLines.set(checked.key, [record.line]);
}

/** The row's key, or why the row is invalid. Plain lines are scanned, not split. */
function checkRow(record: CsvRecord, cols: Columns, policy: ReconPolicy): { key: string } | string {
  const keys: string[] = [];
  let amount: string | undefined;
  let count = 0;
  if (record.plain !== undefined) {
    const text = record.plain;
    let from = 0;
    for (;;) {
      const comma = text.indexOf(',', from);
      const end = comma === -1 ? text.length : comma;
      if (count === cols.amount) amount = text.slice(from, end);
      else if (cols.keys.includes(count)) keys[cols.keys.indexOf(count)] = text.slice(from, end);
      count++;
      if (comma === -1) break;
      from = comma + 1;
    }
    if (count === cols.count && text.length > MAX_FIELD_CHARS && text.split(',').some((f) => f.length > MAX_FIELD_CHARS)) {
      return `a field is longer than ${MAX_FIELD_CHARS} characters`;
    }
  } else {
    const { fields } = record;
    count = fields.length;
    if (count === cols.count) {
      if (fields.some((f) => f.length > MAX_FIELD_CHARS)) return `a field is longer than ${MAX_FIELD_CHARS} characters`;
      cols.keys.forEach((k, i) => {
        keys[i] = fields[k] as string;
      });
      if (cols.amount >= 0) amount = fields[cols.amount];
    }
  }
  if (count !== cols.count) return `expected ${cols.count} fields, found ${count}`;
  for (let k = 0; k < keys.length; k++) {
    const trimmed = (keys[k] as string).trim();
    if (trimmed === '') return `key column ${policy.keyColumns[k]} is empty`;
    keys[k] = trimmed;
  }
  if (amount !== undefined && !SIMPLE_AMOUNT.test(amount)) {
    const parsed = parseDecimal(amount);
    if (!parsed.ok) return `${policy.amountField}: ${parsed.reason}`;
  }
  return { key: keys.length === 1 ? (keys[0] as string) : keys.join('\u001f') };
}

function keyRow(keyText: string, policy: ReconPolicy): Row {
  const parts = policy.keyColumns.length === 1 ? [keyText] : keyText.split('\u001f');
  return Object.fromEntries(policy.keyColumns.map((c, i) => [c, parts[i] ?? '']));
}

function valuesOf(entry: Entry): string[] {
  return typeof entry.text === 'string' ? splitPlain(entry.text, 0, entry.text.length) : entry.text;
}

function rowOf(header: string[], values: string[]): Row {
  const row: Row = {};
  header.forEach((name, i) => {
    row[name] = values[i] ?? '';
  });
  return row;
}

function compare(keyText: string, s: LoadedSide, se: Entry, sc: Columns, t: LoadedSide, te: Entry, tc: Columns, policy: ReconPolicy): Finding | undefined {
  const sv = valuesOf(se);
  const tv = valuesOf(te);
  const diffs: Diff[] = [];
  for (let i = 0; i < sc.text.length; i++) {
    const a = (sv[sc.text[i] as number] as string).trim();
    const b = (tv[tc.text[i] as number] as string).trim();
    if (a !== b) diffs.push({ field: policy.textFields[i] as string, source: a, target: b });
  }
  let delta: Decimal | undefined;
  if (sc.amount >= 0) {
    const a = (sv[sc.amount] as string).trim();
    const b = (tv[tc.amount] as string).trim();
    if (a !== b) {
      const d = subtractDecimal(amountOf(b), amountOf(a));
      if (compareDecimal(absDecimal(d), policy.amountTolerance) > 0) {
        delta = d;
        diffs.push({ field: policy.amountField as string, source: a, target: b, delta: formatDecimal(d) });
      }
    }
  }
  if (diffs.length === 0) return undefined;
  const type: ExceptionType = diffs.length === 1 && delta !== undefined ? 'AMOUNT_MISMATCH' : 'FIELD_MISMATCH';
  return {
    type,
    key: keyRow(keyText, policy),
    keyText,
    source: rowOf(s.header, sv),
    target: rowOf(t.header, tv),
    diffs,
    lines: { source: [se.line], target: [te.line] },
    severity: severityOf(type, policy, delta),
  };
}

function amountOf(text: string): Decimal {
  const parsed = parseDecimal(text);
  // Rows with unparseable amounts were rejected on load, so this cannot fail here.
  if (!parsed.ok) throw new Error(`internal: amount ${text} passed validation but does not parse`);
  return parsed.value;
}

function missing(type: 'MISSING_IN_TARGET' | 'MISSING_IN_SOURCE', keyText: string, present: LoadedSide, entry: Entry, policy: ReconPolicy): Finding {
  const row = rowOf(present.header, valuesOf(entry));
  return {
    type,
    key: keyRow(keyText, policy),
    keyText,
    source: present.side === 'source' ? row : null,
    target: present.side === 'target' ? row : null,
    diffs: [],
    lines: present.side === 'source' ? { source: [entry.line], target: [] } : { source: [], target: [entry.line] },
    severity: severityOf(type, policy),
  };
}

/**
 * One finding per duplicated key. The counterpart on the other side is shown for context; with
 * `accountOther` this finding also accounts for its rows (they are then not reported as missing
 * or mismatched).
 */
function duplicate(
  type: 'DUPLICATE_IN_SOURCE' | 'DUPLICATE_IN_TARGET', keyText: string,
  dupSide: LoadedSide, entry: Entry, extraLines: number[],
  otherSide: LoadedSide, other: Entry | undefined, otherExtra: number[] | undefined,
  policy: ReconPolicy, accountOther: boolean,
): Finding {
  const dupLines = [entry.line, ...extraLines];
  const otherLines = other && accountOther ? [other.line, ...(otherExtra ?? [])] : [];
  const dupRow = rowOf(dupSide.header, valuesOf(entry));
  const otherRow = other ? rowOf(otherSide.header, valuesOf(other)) : null;
  const isSource = dupSide.side === 'source';
  return {
    type,
    key: keyRow(keyText, policy),
    keyText,
    source: isSource ? dupRow : otherRow,
    target: isSource ? otherRow : dupRow,
    diffs: [],
    lines: isSource ? { source: dupLines, target: otherLines } : { source: otherLines, target: dupLines },
    severity: severityOf(type, policy),
  };
}

function invalidRecord(side: Side, header: string[], fields: string[], line: number, reason: string, policy: ReconPolicy): Finding {
  const raw = rowOf(header.length >= fields.length ? header : [...header, ...fields.slice(header.length).map((_, i) => `_extra_${i + 1}`)],
    fields.map((f) => (f.length > 256 ? `${f.slice(0, 256)}…` : f)));
  return {
    type: 'INVALID_RECORD',
    key: { side, line: String(line) },
    keyText: `${side}:${line}`,
    source: side === 'source' ? raw : null,
    target: side === 'target' ? raw : null,
    diffs: [],
    lines: side === 'source' ? { source: [line], target: [] } : { source: [], target: [line] },
    reason,
    severity: severityOf('INVALID_RECORD', policy),
  };
}

export function severityOf(type: ExceptionType, policy: ReconPolicy, delta?: Decimal): Severity {
  const magnitude = delta === undefined ? undefined : absDecimal(delta);
  for (const rule of policy.severityRules) {
    if (rule.exceptionType !== type) continue;
    if (rule.minAbsDelta !== undefined && (magnitude === undefined || compareDecimal(magnitude, rule.minAbsDelta) < 0)) continue;
    return rule.severity;
  }
  return policy.defaultSeverity;
}

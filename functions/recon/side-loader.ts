/**
 * Reads one side of a reconciliation from its file reader (CSV, JSON Lines or Parquet): checks
 * the header, validates each row (one set of row rules, for unquoted CSV lines read in place and
 * for every other record alike), and feeds valid rows to the source index. Invalid rows become
 * INVALID_RECORD findings.
 */
import { MAX_DIGITS, parseDecimalWith } from '../shared/decimal.ts';
import { checkHeader, ReconInputError } from '../shared/extract.ts';
import { splitPlain, type CsvRecord, type CsvSink } from '../shared/csv.ts';
import type { JsonLinesSink } from '../shared/formats/jsonl.ts';
import { columnName, jsonRowProblem, parseJsonObject } from '../shared/formats/jsonl.ts';
import type { ParquetSink } from '../shared/formats/parquet.ts';
import {
  amountSpec,
  normalizeText,
  requiredColumns,
  type FieldSpec,
  type KeySpec,
  type ReconPolicy,
} from '../shared/policy.ts';
import type { Side } from '../shared/types.ts';
import type { ControlTotals } from './control-totals.ts';
import { valueProblem } from './field-rules.ts';
import { KEY_SEPARATOR, type ComparedColumns, type Finding, type FindingBuilder } from './findings.ts';
import { hashOf, type SourceIndex } from './source-index.ts';

/**
 * Fields longer than this (in UTF-16 units, JavaScript's `length`; the SQL engine counts alike)
 * make a row invalid: they would not fit a stored exception.
 */
export const MAX_FIELD_CHARS = 64 * 1024;

export interface Columns extends ComparedColumns {
  readonly count: number;
  /**
   * Per column: its position in the key (>= 0), AMOUNT_COLUMN, OTHER_COLUMN, or a typed field
   * whose values are checked on load (`CHECKED - i` for `checks[i]`).
   */
  readonly role: Int32Array;
  /** The typed fields (decimal, date, integer) other than the amount, checked on load. */
  readonly checks: readonly FieldSpec[];
}

const OTHER_COLUMN = -1;
const AMOUNT_COLUMN = -2;
const CHECKED = -3;

/**
 * Where a loader sends its rows once the engine has gone over its memory budget: the partition
 * files (`partition.ts`). Rows arrive validated, after the totals counted them, so reading them
 * back only has to match them.
 */
export interface RowSpill {
  /** A valid row: its key is `keyStr[keyStart, keyEnd)` (hash `h`), its raw text `buf[start, end)` or its fields. */
  valid(
    side: Side,
    h: number,
    keyStr: string,
    keyStart: number,
    keyEnd: number,
    buf: string,
    start: number,
    end: number,
    fields: string[] | undefined,
    line: number,
  ): void;
  /** An INVALID_RECORD, with the key it was remembered under (undefined when unreadable). */
  invalid(side: Side, finding: Finding, key: string | undefined): void;
}

/** What the estimate counts for each retained object besides its text (headers, map entries). */
const ENTRY_BYTES = 96;
/** Rows between two looks at the memory estimate, at most. */
export const CHECK_EVERY = 1024;
const LONG_ROW_CHARS = 16 * 1024;

/** A key seen only in the target, in first-seen order. */
export interface TargetOnly {
  readonly line: number;
  readonly text: string | string[];
  extra: number[] | undefined;
}

export function columnsOf(header: string[], policy: ReconPolicy, side: Side = 'source'): Columns {
  const keys = policy.keys.map((k) => header.indexOf(k[side]));
  const amountField = amountSpec(policy);
  const amount = amountField === undefined ? -1 : header.indexOf(amountField[side]);
  const others = policy.fields.filter((f) => f !== amountField);
  const role = new Int32Array(header.length).fill(OTHER_COLUMN);
  if (amount >= 0) role[amount] = AMOUNT_COLUMN;
  const checks: FieldSpec[] = [];
  for (const f of others) {
    const at = header.indexOf(f[side]);
    if (f.type === 'text' || at < 0) continue;
    role[at] = CHECKED - checks.length;
    checks.push(f);
  }
  keys.forEach((k, i) => {
    role[k] = i;
  });
  return {
    text: others.map((f) => header.indexOf(f[side])),
    amount,
    count: header.length,
    role,
    checks,
  };
}

/**
 * A line of spaces or tabs only: a blank line to a person, but not an empty one (which is
 * skipped), so a row of one field. Said as such rather than "expected 4 fields, found 1".
 * compile.ts gives the SQL engine the same reason.
 */
export function blankLine(count: number): string {
  return `line holds only spaces or tabs; expected ${count} fields`;
}

/** The characters `String.prototype.trim` removes. */
function isTrimmed(c: number): boolean {
  if (c > 32 && c < 127) return false;
  return (
    c === 32 ||
    (c >= 9 && c <= 13) ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * Whether `str[start, end)` is a plain decimal (`-?\d+(\.\d+)?`) short enough for a Decimal:
 * most amounts of a big file look like this and need no full parse.
 */
function isSimpleAmount(str: string, start: number, end: number): boolean {
  // Longer text may hold more digits than a Decimal allows: the full parser decides (and rejects).
  if (end - start > MAX_DIGITS) return false;
  let i = start;
  if (i < end && str.charCodeAt(i) === 45) i++;
  const digits = i;
  while (i < end && (str.charCodeAt(i) - 48) >>> 0 < 10) i++;
  if (i === digits) return false;
  if (i === end) return true;
  if (str.charCodeAt(i) !== 46) return false;
  const fraction = ++i;
  while (i < end && (str.charCodeAt(i) - 48) >>> 0 < 10) i++;
  return i > fraction && i === end;
}

/**
 * Reads one side. The source builds the index; the target is streamed against it, so only its
 * keys missing from the source are kept in a map (a few percent of a typical file), and its rows
 * are kept only when they differ from the source's row.
 */
export class SideLoader implements CsvSink, JsonLinesSink, ParquetSink {
  readonly side: Side;
  private readonly isSource: boolean;
  private readonly policy: ReconPolicy;
  private readonly format: ReconPolicy['sides']['source']['format'];
  private readonly delimiter: string;
  private readonly decimalSeparator: '.' | ',';
  /** Whether any key field has a normaliser beyond trimming: its key text must then be built. */
  private readonly keyTransform: boolean;
  private readonly totals: ControlTotals | undefined;
  /** Start and end of each checked field's value in the current row. */
  private checkRange: Int32Array = new Int32Array(0);
  /** Whether the current row's key was read (valid and trimmed in `keyRange`) before a problem. */
  private keysRead = false;
  /** Invalid rows whose key could be read: the key's first such row, by key text (`invalid` index). */
  readonly invalidKeys = new Map<string, number>();
  private readonly file: string;
  private readonly index: SourceIndex;
  private readonly findings: FindingBuilder;
  header: string[] = [];
  cols: Columns | undefined;
  rows = 0;
  readonly invalid: Finding[] = [];
  /** Per `invalid` finding: the key it was remembered under, if its key could be read. */
  readonly invalidKey: (string | undefined)[] = [];
  /** Invalid rows found by this loader, spilled or not. */
  rejected = 0;
  readonly targetOnly = new Map<string, TargetOnly>();
  /** Estimated bytes this loader holds beyond the source index (target-only rows, invalid rows). */
  retainedBytes = 0;
  /** Set when the engine partitions: rows go there instead of the index. */
  spill: RowSpill | undefined;
  /** Called every few rows held in memory; the engine checks its budget (and may set `spill`). */
  onGrowth: (() => void) | undefined;
  /** Rows between two calls of `onGrowth`. */
  checkEvery = CHECK_EVERY;
  private sinceCheck = 0;
  /** Source and target under the same header, so equal raw lines are equal rows. */
  private sameLayout = false;
  private readonly sourceHeader: string[] | undefined;
  /** The source slot the previous target row matched. */
  private lastSlot = -1;
  /** Start and end of each key column's value in the current row. */
  private keyRange: Int32Array = new Int32Array(2);

  constructor(
    side: Side,
    file: string,
    index: SourceIndex,
    policy: ReconPolicy,
    findings: FindingBuilder,
    sourceHeader?: string[],
    totals?: ControlTotals,
  ) {
    this.side = side;
    this.isSource = side === 'source';
    this.file = file;
    this.index = index;
    this.policy = policy;
    this.findings = findings;
    this.sourceHeader = sourceHeader;
    this.totals = totals;
    const options = policy.sides[side];
    this.format = options.format;
    this.delimiter = options.delimiter;
    this.decimalSeparator = options.decimalSeparator;
    this.keyTransform = policy.keys.some((k) => k.normalize.length > 0);
  }

  private onHeader(record: CsvRecord): void {
    this.setHeader(
      checkHeader(
        record.fields === undefined
          ? { line: record.line, fields: splitPlain(record.plain, 0, record.plain.length, this.delimiter) }
          : record,
        this.file,
        this.policy,
        this.side,
      ),
    );
  }

  /** A partition's loader: the columns its side's file had (the file's header was read before). */
  presetHeader(header: string[]): void {
    this.setHeader(header);
  }

  private setHeader(header: string[]): void {
    this.header = header;
    this.cols = columnsOf(this.header, this.policy, this.side);
    this.keyRange = new Int32Array(this.policy.keys.length * 2);
    this.checkRange = new Int32Array(this.cols.checks.length * 2);
    this.totals?.columns(this.side, header);
    const s = this.sourceHeader;
    // The same raw row is the same row only when both sides are read alike.
    this.sameLayout =
      this.policy.symmetric &&
      s !== undefined &&
      s.length === this.header.length &&
      s.every((h, i) => h === this.header[i]);
  }

  /** A stored row's values in header order. */
  values(text: string | string[]): string[] {
    if (typeof text !== 'string') return text;
    if (this.format === 'jsonl') {
      const parsed = parseJsonObject(text);
      if (!parsed.ok) return [];
      const byName = lowerKeys(parsed.values);
      return this.header.map((h) => byName.get(h) ?? '');
    }
    return splitPlain(text, 0, text.length, this.delimiter);
  }

  /** An unquoted line, read in place: located with one pass over its commas. */
  plain(buf: string, start: number, end: number, line: number): void {
    const cols = this.cols;
    if (cols === undefined) {
      this.onHeader({ line, plain: buf.slice(start, end) });
      return;
    }
    this.rows++;
    if (this.sameLayout && this.spill === undefined && this.sameAsNextSource(buf, start, end, line)) {
      this.totals?.add(this.side, this.values(buf.slice(start, end)));
      return;
    }
    // One pass over the delimiters: the field count, the key, amount and checked positions, the
    // longest field.
    const role = cols.role;
    const count = cols.count;
    const keyRange = this.keyRange;
    const checkRange = this.checkRange;
    const delimiter = this.delimiter;
    let n = 0;
    let from = start;
    let amountStart = -1;
    let amountEnd = -1;
    let longest = 0;
    for (;;) {
      let comma = buf.indexOf(delimiter, from);
      const last = comma === -1 || comma >= end;
      if (last) comma = end;
      if (n < count) {
        const r = role[n] as number;
        if (r >= 0) {
          keyRange[r * 2] = from;
          keyRange[r * 2 + 1] = comma;
        } else if (r === AMOUNT_COLUMN) {
          amountStart = from;
          amountEnd = comma;
        } else if (r <= CHECKED) {
          checkRange[(CHECKED - r) * 2] = from;
          checkRange[(CHECKED - r) * 2 + 1] = comma;
        }
      }
      if (comma - from > longest) longest = comma - from;
      n++;
      if (last) break;
      from = comma + 1;
    }
    const reason = this.problemOf(buf, start, end, n, longest, amountStart, amountEnd);
    if (reason !== undefined) {
      this.reject(splitPlain(buf, start, end, delimiter), line, reason, buf);
      return;
    }
    // A single key is read where it is; a composite or normalised one is built.
    if (keyRange.length === 2 && !this.keyTransform)
      this.addKey(buf, keyRange[0] as number, keyRange[1] as number, buf, start, end, undefined, line);
    else {
      const key = this.compositeKey(buf);
      this.addKey(key, 0, key.length, buf, start, end, undefined, line);
    }
    this.totals?.add(this.side, splitPlain(buf, start, end, delimiter));
  }

  /** A quoted or damaged record. */
  record(record: CsvRecord): void {
    const cols = this.cols;
    if (cols === undefined) {
      this.onHeader(record);
      return;
    }
    if (record.error === undefined && record.plain !== undefined) {
      this.plain(record.plain, 0, record.plain.length, record.line);
      return;
    }
    this.rows++;
    const fields = record.fields ?? splitPlain(record.plain, 0, record.plain.length, this.delimiter);
    if (record.error !== undefined) {
      this.reject(fields, record.line, record.error);
      return;
    }
    this.fieldsRow(fields, record.line, undefined);
  }

  /** A JSON Lines line: one object, its values read by the side's column names. */
  line(buf: string, start: number, end: number, line: number): void {
    const text = buf.slice(start, end);
    if (this.cols !== undefined) {
      this.rows++;
      if (this.sameLayout && this.spill === undefined && this.sameAsNextSource(buf, start, end, line)) {
        this.totals?.add(this.side, this.values(buf.slice(start, end)));
        return;
      }
    }
    const parsed = parseJsonObject(text);
    if (this.cols === undefined) {
      // The columns are the policy's, then the first object's other keys (for display).
      const required = requiredColumns(this.policy, this.side);
      const extra = parsed.ok ? [...lowerKeys(parsed.values).keys()].filter((k) => !required.includes(k)) : [];
      this.setHeader([...required, ...extra]);
      this.rows++;
    }
    if (!parsed.ok) {
      this.addInvalid(this.findings.invalidRecord(this.side, ['_line'], [text], line, parsed.reason), undefined);
      return;
    }
    const byName = lowerKeys(parsed.values);
    const problem = jsonRowProblem(text, parsed, byName.size, this.header);
    if (problem !== undefined) {
      this.addInvalid(this.findings.invalidRecord(this.side, ['_line'], [text], line, problem), undefined);
      return;
    }
    const fields = this.header.map((h) => byName.get(h) ?? '');
    this.fieldsRow(fields, line, { buf, start, end });
  }

  /** Parquet: the file's columns. */
  parquetColumns(names: string[]): void {
    const header = names.map((n) => n.trim().toLowerCase());
    const missing = requiredColumns(this.policy, this.side).filter((c) => !header.includes(c));
    if (missing.length > 0)
      throw new ReconInputError(
        'MISSING_COLUMNS',
        this.file,
        `missing required column(s) ${missing.join(', ')}; expected columns ${requiredColumns(this.policy, this.side).join(', ')}, found ${header.join(', ')}`,
      );
    this.setHeader(header);
  }

  /** Parquet: one row's values as text. */
  parquetRow(fields: string[], row: number): void {
    this.rows++;
    this.fieldsRow(fields, row, undefined);
  }

  /**
   * A row given as its fields. `raw`, when given, is where its text is (kept instead of the
   * fields, and read again with `values` when a finding needs it).
   */
  private fieldsRow(
    fields: string[],
    line: number,
    raw: { buf: string; start: number; end: number } | undefined,
  ): void {
    const cols = this.cols as Columns;
    // The fields side by side in one string, so the same rules read them by position.
    const role = cols.role;
    const count = cols.count;
    const keyRange = this.keyRange;
    const checkRange = this.checkRange;
    const joined = fields.join(',');
    let amountStart = -1;
    let amountEnd = -1;
    let longest = 0;
    let from = 0;
    for (let n = 0; n < fields.length; n++) {
      const to = from + (fields[n] as string).length;
      if (n < count) {
        const r = role[n] as number;
        if (r >= 0) {
          keyRange[r * 2] = from;
          keyRange[r * 2 + 1] = to;
        } else if (r === AMOUNT_COLUMN) {
          amountStart = from;
          amountEnd = to;
        } else if (r <= CHECKED) {
          checkRange[(CHECKED - r) * 2] = from;
          checkRange[(CHECKED - r) * 2 + 1] = to;
        }
      }
      if (to - from > longest) longest = to - from;
      from = to + 1;
    }
    const reason = this.problemOf(joined, 0, joined.length, fields.length, longest, amountStart, amountEnd);
    if (reason !== undefined) {
      this.reject(fields, line, reason, joined);
      return;
    }
    const key =
      keyRange.length === 2 && !this.keyTransform ? joined.slice(keyRange[0], keyRange[1]) : this.compositeKey(joined);
    if (raw === undefined) this.addKey(key, 0, key.length, '', 0, 0, fields, line);
    else this.addKey(key, 0, key.length, raw.buf, raw.start, raw.end, undefined, line);
    this.totals?.add(this.side, fields);
  }

  /**
   * The row rules, for a row whose `n` fields are `str` from `start` to `end`: the key columns at
   * `keyRange` (trimmed here, in place), the amount at `[amountStart, amountEnd)`, the longest
   * field `longest` characters. Why the row cannot be reconciled, or undefined.
   */
  private problemOf(
    str: string,
    start: number,
    end: number,
    n: number,
    longest: number,
    amountStart: number,
    amountEnd: number,
  ): string | undefined {
    const cols = this.cols as Columns;
    const count = cols.count;
    this.keysRead = false;
    if (n !== count)
      return n === 1 && count > 1 && str.slice(start, end).trim() === ''
        ? blankLine(count)
        : `expected ${count} fields, found ${n}`;
    // An over-long field says so first, but with the right field count the key is still where
    // it should be: read, the row takes the other side's row of its key (no second MISSING).
    const tooLong = longest > MAX_FIELD_CHARS ? `a field is longer than ${MAX_FIELD_CHARS} characters` : undefined;
    const keyRange = this.keyRange;
    for (let k = 0; k < keyRange.length; k += 2) {
      let a = keyRange[k] as number;
      let b = keyRange[k + 1] as number;
      while (a < b && isTrimmed(str.charCodeAt(a))) a++;
      while (b > a && isTrimmed(str.charCodeAt(b - 1))) b--;
      if (a === b) return tooLong ?? `key column ${this.policy.keyColumns[k / 2]} is empty`;
      keyRange[k] = a;
      keyRange[k + 1] = b;
    }
    this.keysRead = true;
    if (tooLong !== undefined) return tooLong;
    if (amountStart >= 0 && !(this.decimalSeparator === '.' && isSimpleAmount(str, amountStart, amountEnd))) {
      const parsed = parseDecimalWith(str.slice(amountStart, amountEnd), this.decimalSeparator);
      if (!parsed.ok) return `${this.policy.amountField}: ${parsed.reason}`;
    }
    const checks = cols.checks;
    for (let c = 0; c < checks.length; c++) {
      const value = str.slice(this.checkRange[c * 2], this.checkRange[c * 2 + 1]).trim();
      if (value === '') continue;
      const spec = checks[c] as FieldSpec;
      const problem = valueProblem(spec, this.side, value, this.decimalSeparator);
      if (problem !== undefined) return `${spec.field}: ${problem}`;
    }
    return undefined;
  }

  /**
   * An invalid row. With `keyIn` (the string `keyRange` points into) and a key read before the
   * problem was found, the row is remembered under its key: the other side's row of that key
   * then belongs on this row's INVALID_RECORD rather than becoming a "missing" of its own.
   */
  private reject(fields: string[], line: number, reason: string, keyIn?: string): void {
    let key: string | undefined;
    if (keyIn !== undefined && this.keysRead) {
      const keyRange = this.keyRange;
      key =
        keyRange.length === 2 && !this.keyTransform ? keyIn.slice(keyRange[0], keyRange[1]) : this.compositeKey(keyIn);
    }
    this.keysRead = false;
    this.addInvalid(this.findings.invalidRecord(this.side, this.header, fields, line, reason), key);
  }

  /**
   * An INVALID_RECORD, remembered under `key` when its key could be read (the first such row of
   * a key takes the other side's row). Also how a partition's rows come back.
   */
  addInvalid(finding: Finding, key: string | undefined): void {
    if (this.spill !== undefined) {
      this.rejected++;
      this.spill.invalid(this.side, finding, key);
      return;
    }
    if (key !== undefined && !this.invalidKeys.has(key)) this.invalidKeys.set(key, this.invalid.length);
    this.invalid.push(finding);
    this.invalidKey.push(key);
    this.rejected++;
    this.retainedBytes += invalidBytes(finding);
    if (++this.sinceCheck >= this.checkEvery) this.growth();
  }

  /** An INVALID_RECORD read back from a partition: found (and counted) by the loader that spilled it. */
  restoreInvalid(finding: Finding, key: string | undefined): void {
    this.addInvalid(finding, key);
    this.rejected--;
  }

  /** Lets go of what this loader held (now in partition files): its rows go to `spill` from now on. */
  startSpilling(spill: RowSpill): void {
    this.invalid.length = 0;
    this.invalidKey.length = 0;
    this.invalidKeys.clear();
    this.targetOnly.clear();
    this.retainedBytes = 0;
    this.lastSlot = -1;
    this.spill = spill;
  }

  private growth(): void {
    this.sinceCheck = 0;
    this.onGrowth?.();
  }

  /** The key fields at `keyRange` in `str`, normalised and joined. */
  private compositeKey(str: string): string {
    const keyRange = this.keyRange;
    const keys = this.policy.keys;
    const parts: string[] = [];
    for (let k = 0; k < keyRange.length; k += 2) {
      const part = str.slice(keyRange[k], keyRange[k + 1]);
      const spec = keys[k / 2] as KeySpec;
      parts.push(spec.normalize.length === 0 ? part : normalizeText(part, spec.normalize));
    }
    return parts.join(KEY_SEPARATOR);
  }

  /**
   * A valid row whose key is `keyStr[keyStart, keyEnd)`; its raw line is `buf[start, end)`, or
   * its fields are `fields` when it was quoted. Also how a partition's rows come back.
   */
  addKey(
    keyStr: string,
    keyStart: number,
    keyEnd: number,
    buf: string,
    start: number,
    end: number,
    fields: string[] | undefined,
    line: number,
  ): void {
    const index = this.index;
    const h = hashOf(keyStr, keyStart, keyEnd);
    // Looked at before the row is held: when the engine starts spilling, this row goes too. A
    // long row is looked at at once (a thousand rows of wide fields are megabytes).
    if (++this.sinceCheck >= this.checkEvery || end - start > LONG_ROW_CHARS) this.growth();
    if (this.spill !== undefined) {
      this.spill.valid(this.side, h, keyStr, keyStart, keyEnd, buf, start, end, fields, line);
      return;
    }
    if (this.isSource) {
      const keyHolder = keyStr === buf ? index.holderOf(buf) : index.ownHolder(keyStr);
      const rowHolder = fields === undefined ? index.holderOf(buf) : -1;
      index.append(h, keyHolder, keyStart, keyEnd, rowHolder, start, end, fields, line);
      return;
    }
    // Extracts are usually in the same order on both sides: try the rows after the last match
    // before the hash table (a random memory access per row, the main cost of a large file).
    const guess = index.firstAfter(this.lastSlot);
    let found: number;
    if (index.hasKey(guess, h, keyStr, keyStart, keyEnd)) found = guess;
    else found = index.find(h, keyStr, keyStart, keyEnd);
    if (found < 0) {
      const keyText = keyStr.slice(keyStart, keyEnd);
      const other = this.targetOnly.get(keyText);
      if (other === undefined) {
        const text = fields ?? buf.slice(start, end);
        this.targetOnly.set(keyText, { line, text, extra: undefined });
        this.retainedBytes += ENTRY_BYTES + keyText.length + textBytes(text);
      } else if (other.extra === undefined) other.extra = [line];
      else other.extra.push(line);
      this.retainedBytes += 8;
      return;
    }
    this.lastSlot = found;
    index.matchTarget(
      found,
      fields === undefined && this.sameLayout && index.rowIs(found, buf, start, end),
      fields ?? buf,
      start,
      end,
      line,
    );
  }

  /**
   * The target side's shortcut: extracts are usually in the same order and mostly identical, so
   * a target line is first compared whole with the source row after the last match. The same raw
   * line under the same header is a valid row with the same key, so it needs no further reading.
   */
  private sameAsNextSource(buf: string, start: number, end: number, line: number): boolean {
    const index = this.index;
    const slot = index.firstAfter(this.lastSlot);
    if (slot >= index.size || !index.rowIs(slot, buf, start, end)) return false;
    this.lastSlot = slot;
    index.matchTarget(slot, true, buf, start, end, line);
    return true;
  }
}

/** About what a row's text or fields cost in memory (one byte a character: extracts are mostly ASCII). */
export function textBytes(text: string | string[]): number {
  if (typeof text === 'string') return text.length;
  let n = 32;
  for (const f of text) n += 24 + f.length;
  return n;
}

function invalidBytes(f: Finding): number {
  const row = f.source ?? f.target;
  let n = 4 * ENTRY_BYTES + (f.reason?.length ?? 0);
  if (row) for (const k in row) n += 48 + k.length + (row[k] as string).length;
  return n;
}

/** A parsed JSON object's values by lower-case name (column names match case-insensitively). */
function lowerKeys(values: Map<string, string | null>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of values) out.set(columnName(k), v ?? '');
  return out;
}

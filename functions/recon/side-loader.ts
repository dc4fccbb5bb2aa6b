/**
 * Reads one side of a reconciliation from the CSV reader: checks the header, validates each row
 * (one set of row rules, for unquoted lines read in place and for quoted records alike), and
 * feeds valid rows to the source index. Invalid rows become INVALID_RECORD findings.
 */
import { MAX_DIGITS, parseDecimal } from '../shared/decimal.ts';
import { checkHeader } from '../shared/extract.ts';
import { fieldsOf, splitPlain, type CsvRecord, type CsvSink } from '../shared/csv.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { Side } from '../shared/types.ts';
import { KEY_SEPARATOR, type ComparedColumns, type Finding, type FindingBuilder } from './findings.ts';
import { hashOf, type SourceIndex } from './source-index.ts';

/** Fields longer than this make a row invalid: they would not fit a stored exception. */
export const MAX_FIELD_CHARS = 64 * 1024;

export interface Columns extends ComparedColumns {
  readonly count: number;
  /** Per column: its position in the key (>= 0), AMOUNT_COLUMN, or OTHER_COLUMN. */
  readonly role: Int32Array;
}

const OTHER_COLUMN = -1;
const AMOUNT_COLUMN = -2;

/** A key seen only in the target, in first-seen order. */
export interface TargetOnly {
  readonly line: number;
  readonly text: string | string[];
  extra: number[] | undefined;
}

export function columnsOf(header: string[], policy: ReconPolicy): Columns {
  const keys = policy.keyColumns.map((c) => header.indexOf(c));
  const amount = policy.amountField === undefined ? -1 : header.indexOf(policy.amountField);
  const role = new Int32Array(header.length).fill(OTHER_COLUMN);
  if (amount >= 0) role[amount] = AMOUNT_COLUMN;
  keys.forEach((k, i) => {
    role[k] = i;
  });
  return {
    text: policy.textFields.map((c) => header.indexOf(c)),
    amount,
    count: header.length,
    role,
  };
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
export class SideLoader implements CsvSink {
  readonly side: Side;
  private readonly isSource: boolean;
  private readonly policy: ReconPolicy;
  private readonly file: string;
  private readonly index: SourceIndex;
  private readonly findings: FindingBuilder;
  header: string[] = [];
  cols: Columns | undefined;
  rows = 0;
  readonly invalid: Finding[] = [];
  readonly targetOnly = new Map<string, TargetOnly>();
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
  ) {
    this.side = side;
    this.isSource = side === 'source';
    this.file = file;
    this.index = index;
    this.policy = policy;
    this.findings = findings;
    this.sourceHeader = sourceHeader;
  }

  private onHeader(record: CsvRecord): void {
    this.header = checkHeader(record, this.file, this.policy);
    this.cols = columnsOf(this.header, this.policy);
    this.keyRange = new Int32Array(this.policy.keyColumns.length * 2);
    const s = this.sourceHeader;
    this.sameLayout = s !== undefined && s.length === this.header.length && s.every((h, i) => h === this.header[i]);
  }

  /** An unquoted line, read in place: located with one pass over its commas. */
  plain(buf: string, start: number, end: number, line: number): void {
    const cols = this.cols;
    if (cols === undefined) {
      this.onHeader({ line, plain: buf.slice(start, end) });
      return;
    }
    this.rows++;
    if (this.sameLayout && this.sameAsNextSource(buf, start, end, line)) return;
    // One pass over the commas: the field count, the key and amount positions, the longest field.
    const role = cols.role;
    const count = cols.count;
    const keyRange = this.keyRange;
    let n = 0;
    let from = start;
    let amountStart = -1;
    let amountEnd = -1;
    let longest = 0;
    for (;;) {
      let comma = buf.indexOf(',', from);
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
        }
      }
      if (comma - from > longest) longest = comma - from;
      n++;
      if (last) break;
      from = comma + 1;
    }
    const reason = this.problemOf(buf, n, longest, amountStart, amountEnd);
    if (reason !== undefined) {
      this.reject(splitPlain(buf, start, end), line, reason);
      return;
    }
    // A single key is read where it is; a composite one is built.
    if (keyRange.length === 2)
      this.addKey(buf, keyRange[0] as number, keyRange[1] as number, buf, start, end, undefined, line);
    else {
      const key = this.compositeKey(buf);
      this.addKey(key, 0, key.length, buf, start, end, undefined, line);
    }
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
    const fields = fieldsOf(record);
    if (record.error !== undefined) {
      this.reject(fields, record.line, record.error);
      return;
    }
    // The fields side by side in one string, so the same rules read them by position.
    const role = cols.role;
    const count = cols.count;
    const keyRange = this.keyRange;
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
        }
      }
      if (to - from > longest) longest = to - from;
      from = to + 1;
    }
    const reason = this.problemOf(joined, fields.length, longest, amountStart, amountEnd);
    if (reason !== undefined) {
      this.reject(fields, record.line, reason);
      return;
    }
    const key = keyRange.length === 2 ? joined.slice(keyRange[0], keyRange[1]) : this.compositeKey(joined);
    this.addKey(key, 0, key.length, '', 0, 0, fields, record.line);
  }

  /**
   * The row rules, for a row whose `n` fields are located in `str`: the key columns at
   * `keyRange` (trimmed here, in place), the amount at `[amountStart, amountEnd)`, the longest
   * field `longest` characters. Why the row cannot be reconciled, or undefined.
   */
  private problemOf(
    str: string,
    n: number,
    longest: number,
    amountStart: number,
    amountEnd: number,
  ): string | undefined {
    const count = (this.cols as Columns).count;
    if (n === count && longest > MAX_FIELD_CHARS) return `a field is longer than ${MAX_FIELD_CHARS} characters`;
    if (n !== count) return `expected ${count} fields, found ${n}`;
    const keyRange = this.keyRange;
    for (let k = 0; k < keyRange.length; k += 2) {
      let a = keyRange[k] as number;
      let b = keyRange[k + 1] as number;
      while (a < b && isTrimmed(str.charCodeAt(a))) a++;
      while (b > a && isTrimmed(str.charCodeAt(b - 1))) b--;
      if (a === b) return `key column ${this.policy.keyColumns[k / 2]} is empty`;
      keyRange[k] = a;
      keyRange[k + 1] = b;
    }
    if (amountStart >= 0 && !isSimpleAmount(str, amountStart, amountEnd)) {
      const parsed = parseDecimal(str.slice(amountStart, amountEnd));
      if (!parsed.ok) return `${this.policy.amountField}: ${parsed.reason}`;
    }
    return undefined;
  }

  private reject(fields: string[], line: number, reason: string): void {
    this.invalid.push(this.findings.invalidRecord(this.side, this.header, fields, line, reason));
  }

  /** The key columns at `keyRange` in `str`, joined. */
  private compositeKey(str: string): string {
    const keyRange = this.keyRange;
    const parts: string[] = [];
    for (let k = 0; k < keyRange.length; k += 2) parts.push(str.slice(keyRange[k], keyRange[k + 1]));
    return parts.join(KEY_SEPARATOR);
  }

  /**
   * A valid row whose key is `keyStr[keyStart, keyEnd)`; its raw line is `buf[start, end)`, or
   * its fields are `fields` when it was quoted.
   */
  private addKey(
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
      if (other === undefined)
        this.targetOnly.set(keyText, { line, text: fields ?? buf.slice(start, end), extra: undefined });
      else if (other.extra === undefined) other.extra = [line];
      else other.extra.push(line);
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

/**
 * The reconciliation engine: source vs target under the recon policy. Pure: no AWS, no clock
 * except for the run duration. Streams both files; holds one compact entry per key.
 */
import {
  absDecimal,
  compareDecimal,
  formatDecimal,
  MAX_DIGITS,
  parseDecimal,
  subtractDecimal,
  type Decimal,
} from '../shared/decimal.ts';
import { checkHeader, ReconInputError } from '../shared/extract.ts';
import { CsvFileError, fieldsOf, readCsvInto, splitPlain, type CsvRecord, type CsvSink } from '../shared/csv.ts';
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

// File-level errors and header rules are shared with ingest's validation (shared/extract.ts).
export { ReconInputError, type ReconErrorCode } from '../shared/extract.ts';

/** Fields longer than this make a row invalid: they would not fit a stored exception. */
export const MAX_FIELD_CHARS = 64 * 1024;

/** A first occurrence of a key: its line and its raw text (or fields, when it was quoted). */
interface Entry {
  readonly line: number;
  readonly text: string | string[];
}

interface Columns {
  readonly keys: number[];
  readonly text: number[];
  readonly amount: number;
  readonly count: number;
  /** Per column: its position in the key (>= 0), AMOUNT_COLUMN, or OTHER_COLUMN. */
  readonly role: Int32Array;
}

const OTHER_COLUMN = -1;
const AMOUNT_COLUMN = -2;
const KEY_SEPARATOR = '\u001f';

// Plain decimals take a regex instead of the full parser: most rows of a big file look like this.
const SIMPLE_AMOUNT = /^-?\d+(?:\.\d+)?$/;

// Per source key flags.
const SOURCE_DUPLICATED = 1;
const TARGET_SEEN = 2;
const TARGET_DUPLICATED = 4;
/** The target's first row is the same raw line as the source's under the same header. */
const TARGET_SAME_TEXT = 8;
/** A later row of a duplicated source key: its lines are on the first row's slot. */
const REPEAT = 16;

// A slot's record in a SourceIndex page: fields side by side, so a lookup touches one cache line.
const F_HASH = 0;
const F_KEY_HOLDER = 1;
const F_KEY_START = 2;
const F_KEY_END = 3;
/** Holder of the raw line, or -1 when the row was quoted (its fields are in `quotedRows`). */
const F_ROW_HOLDER = 4;
const F_ROW_START = 5;
const F_ROW_END = 6;
const F_LINE = 7;
const F_TARGET_LINE = 8;
const F_FLAGS = 9;
const STRIDE = 10;
const PAGE_BITS = 14;
const PAGE_SLOTS = 1 << PAGE_BITS;
const PAGE_MASK = PAGE_SLOTS - 1;

/**
 * The source side's keys, one slot per distinct valid key in first-seen order, kept in typed
 * arrays behind an open-addressing hash table. A million keys cost a few megabytes of typed arrays
 * instead of a million Map entries and entry objects (which is what made a 1M-row run slow: cache
 * misses in the Map and the garbage collector walking the entries). Slots live in fixed-size pages
 * so growing never copies them.
 *
 * Key and row text are not copied: they stay in the decoded chunk string they were read from
 * (`holders`), addressed by offsets. A key that had to be built (quoted rows, composite keys) is
 * a holder of its own.
 */
class SourceIndex {
  size = 0;
  private readonly pages: Int32Array[] = [];
  private mask = 0;
  /**
   * Hash table of (slot + 1 or 0 when empty, hash) pairs, side by side so a probe reads one
   * line; at most half full. Built once the source is loaded (`build`), at its final size.
   */
  private table: Int32Array = new Int32Array(0);
  readonly holders: string[] = [];
  readonly quotedRows = new Map<number, string[]>();
  /** Lines of the second and later rows of a key, per side. */
  readonly sourceExtra = new Map<number, number[]>();
  readonly targetExtra = new Map<number, number[]>();
  /** The target's first row of a key, when it is not TARGET_SAME_TEXT. */
  readonly targetText = new Map<number, string | string[]>();

  private page(slot: number): Int32Array {
    return this.pages[slot >>> PAGE_BITS] as Int32Array;
  }

  get(slot: number, field: number): number {
    return (this.pages[slot >>> PAGE_BITS] as Int32Array)[(slot & PAGE_MASK) * STRIDE + field] as number;
  }

  set(slot: number, field: number, value: number): void {
    (this.pages[slot >>> PAGE_BITS] as Int32Array)[(slot & PAGE_MASK) * STRIDE + field] = value;
  }

  /** The first row whose key is `str[start, end)` (hashing to `h`), or -1. After `build`. */
  find(h: number, str: string, start: number, end: number): number {
    const table = this.table;
    const mask = this.mask;
    if (table.length === 0) return -1;
    for (let pos = h & mask; ; pos = (pos + 1) & mask) {
      const entry = table[pos << 1] as number;
      if (entry === 0) return -1;
      if (table[(pos << 1) + 1] === h && this.keyIs(entry - 1, str, start, end)) return entry - 1;
    }
  }

  /** Whether `slot` is a first row whose key is `str[start, end)` (hashing to `h`). */
  hasKey(slot: number, h: number, str: string, start: number, end: number): boolean {
    return (
      slot < this.size &&
      this.get(slot, F_HASH) === h &&
      (this.get(slot, F_FLAGS) & REPEAT) === 0 &&
      this.keyIs(slot, str, start, end)
    );
  }

  /** Whether the key of `slot` is `str[start, end)`. */
  keyIs(slot: number, str: string, start: number, end: number): boolean {
    const page = this.page(slot);
    const base = (slot & PAGE_MASK) * STRIDE;
    const ks = page[base + F_KEY_START] as number;
    const len = end - start;
    if ((page[base + F_KEY_END] as number) - ks !== len) return false;
    const holder = this.holders[page[base + F_KEY_HOLDER] as number] as string;
    let i = 0;
    while (i < len && holder.charCodeAt(ks + i) === str.charCodeAt(start + i)) i++;
    return i === len;
  }

  /** Whether the raw line of `slot` is `buf[start, end)`. */
  rowIs(slot: number, buf: string, start: number, end: number): boolean {
    const page = this.page(slot);
    const base = (slot & PAGE_MASK) * STRIDE;
    const holder = page[base + F_ROW_HOLDER] as number;
    if (holder < 0) return false;
    const rs = page[base + F_ROW_START] as number;
    const re = page[base + F_ROW_END] as number;
    if (re - rs !== end - start) return false;
    // Two (cheap, sliced) substrings and a builtin compare beat comparing char by char in JS.
    return buf.slice(start, end) === (this.holders[holder] as string).slice(rs, re);
  }

  /** Adds a row of the source, in file order. */
  append(
    h: number,
    keyHolder: number,
    keyStart: number,
    keyEnd: number,
    rowHolder: number,
    rowStart: number,
    rowEnd: number,
    line: number,
  ): number {
    const slot = this.size;
    if ((slot & PAGE_MASK) === 0) this.pages.push(new Int32Array(PAGE_SLOTS * STRIDE));
    const page = this.page(slot);
    const base = (slot & PAGE_MASK) * STRIDE;
    page[base + F_HASH] = h;
    page[base + F_KEY_HOLDER] = keyHolder;
    page[base + F_KEY_START] = keyStart;
    page[base + F_KEY_END] = keyEnd;
    page[base + F_ROW_HOLDER] = rowHolder;
    page[base + F_ROW_START] = rowStart;
    page[base + F_ROW_END] = rowEnd;
    page[base + F_LINE] = line;
    this.size = slot + 1;
    return slot;
  }

  /**
   * Builds the hash table over all rows, in file order: a row whose key an earlier row has
   * becomes a REPEAT and its line is added to the earlier row's. Sized once, so never rehashed,
   * and the probes of consecutive rows are independent, so the CPU overlaps their cache misses.
   */
  build(): void {
    let tableSize = 1 << 10;
    while (tableSize < this.size * 2) tableSize *= 2;
    const mask = tableSize - 1;
    const table = new Int32Array(tableSize * 2);
    for (let slot = 0; slot < this.size; slot++) {
      const page = this.page(slot);
      const base = (slot & PAGE_MASK) * STRIDE;
      const h = page[base + F_HASH] as number;
      let pos = h & mask;
      for (;;) {
        const entry = table[pos << 1] as number;
        if (entry === 0) {
          table[pos << 1] = slot + 1;
          table[(pos << 1) + 1] = h;
          break;
        }
        if (table[(pos << 1) + 1] === h) {
          const holder = this.holders[page[base + F_KEY_HOLDER] as number] as string;
          const first = entry - 1;
          if (this.keyIs(first, holder, page[base + F_KEY_START] as number, page[base + F_KEY_END] as number)) {
            page[base + F_FLAGS] = REPEAT;
            this.set(first, F_FLAGS, this.get(first, F_FLAGS) | SOURCE_DUPLICATED);
            const lines = this.sourceExtra.get(first);
            if (lines) lines.push(page[base + F_LINE] as number);
            else this.sourceExtra.set(first, [page[base + F_LINE] as number]);
            break;
          }
        }
        pos = (pos + 1) & mask;
      }
    }
    this.table = table;
    this.mask = mask;
  }

  keyText(slot: number): string {
    return (this.holders[this.get(slot, F_KEY_HOLDER)] as string).slice(
      this.get(slot, F_KEY_START),
      this.get(slot, F_KEY_END),
    );
  }

  sourceEntry(slot: number): Entry {
    const holder = this.get(slot, F_ROW_HOLDER);
    const text =
      holder < 0
        ? (this.quotedRows.get(slot) as string[])
        : (this.holders[holder] as string).slice(this.get(slot, F_ROW_START), this.get(slot, F_ROW_END));
    return { line: this.get(slot, F_LINE), text };
  }

  /** The target's first row for a source key that has one. */
  targetEntry(slot: number, source: Entry): Entry {
    const text =
      this.get(slot, F_FLAGS) & TARGET_SAME_TEXT ? source.text : (this.targetText.get(slot) as string | string[]);
    return { line: this.get(slot, F_TARGET_LINE), text };
  }
}

/** What the finding builders need of a side. */
interface LoadedSide {
  readonly side: Side;
  readonly header: string[];
}

/** A key seen only in the target, in first-seen order. */
interface TargetOnly {
  readonly line: number;
  readonly text: string | string[];
  extra: number[] | undefined;
}

/**
 * FNV-1a over the UTF-16 code units, then a murmur3 finaliser so linear probing spreads well.
 * 30 bits, so the value stays a small integer for V8 (no heap number per row).
 */
function hashOf(str: string, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ str.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x3fffffff;
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

/** `SIMPLE_AMOUNT.test(str.slice(start, end))` without the slice. */
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
class SideLoader implements CsvSink {
  readonly side: Side;
  private readonly isSource: boolean;
  private readonly policy: ReconPolicy;
  private readonly file: string;
  private readonly index: SourceIndex;
  header: string[] = [];
  cols: Columns | undefined;
  rows = 0;
  readonly invalid: Finding[] = [];
  readonly targetOnly = new Map<string, TargetOnly>();
  /** Source and target under the same header, so equal raw lines are equal rows. */
  private sameLayout = false;
  private sourceHeader: string[] | undefined;
  private lastBuf: string | undefined;
  private lastHolder = -1;
  /** The source slot the previous target row matched. */
  private lastSlot = -1;
  /** Start and end of each key column's value in the current row (composite keys). */
  private keyRange: Int32Array = new Int32Array(2);

  constructor(side: Side, file: string, index: SourceIndex, policy: ReconPolicy, sourceHeader?: string[]) {
    this.side = side;
    this.isSource = side === 'source';
    this.file = file;
    this.index = index;
    this.policy = policy;
    this.sourceHeader = sourceHeader;
  }

  private onHeader(record: CsvRecord): void {
    this.header = checkHeader(record, this.file, this.policy);
    this.cols = columnsOf(this.header, this.policy);
    this.keyRange = new Int32Array(this.cols.keys.length * 2);
    const s = this.sourceHeader;
    this.sameLayout = s !== undefined && s.length === this.header.length && s.every((h, i) => h === this.header[i]);
  }

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
    let reason: string | undefined;
    if (n === count && longest > MAX_FIELD_CHARS) reason = `a field is longer than ${MAX_FIELD_CHARS} characters`;
    else if (n !== count) reason = `expected ${count} fields, found ${n}`;
    else {
      for (let k = 0; k < keyRange.length; k += 2) {
        let a = keyRange[k] as number;
        let b = keyRange[k + 1] as number;
        while (a < b && isTrimmed(buf.charCodeAt(a))) a++;
        while (b > a && isTrimmed(buf.charCodeAt(b - 1))) b--;
        if (a === b) {
          reason = `key column ${this.policy.keyColumns[k / 2]} is empty`;
          break;
        }
        keyRange[k] = a;
        keyRange[k + 1] = b;
      }
      if (reason === undefined && amountStart >= 0 && !isSimpleAmount(buf, amountStart, amountEnd)) {
        const parsed = parseDecimal(buf.slice(amountStart, amountEnd));
        if (!parsed.ok) reason = `${this.policy.amountField}: ${parsed.reason}`;
      }
    }
    if (reason !== undefined) {
      this.invalid.push(invalidRecord(this.side, this.header, splitPlain(buf, start, end), line, reason, this.policy));
      return;
    }
    if (keyRange.length === 2) {
      this.addKey(buf, keyRange[0] as number, keyRange[1] as number, buf, start, end, undefined, line);
    } else {
      const parts: string[] = [];
      for (let k = 0; k < keyRange.length; k += 2) parts.push(buf.slice(keyRange[k], keyRange[k + 1]));
      const key = parts.join(KEY_SEPARATOR);
      this.addKey(key, 0, key.length, buf, start, end, undefined, line);
    }
  }

  record(record: CsvRecord): void {
    if (this.cols === undefined) {
      this.onHeader(record);
      return;
    }
    if (record.error === undefined && record.plain !== undefined) {
      this.rows--; // counted again by plain()
      this.plain(record.plain, 0, record.plain.length, record.line);
      this.rows++;
      return;
    }
    this.rows++;
    const checked = record.error === undefined ? checkRow(record, this.cols, this.policy) : record.error;
    if (typeof checked === 'string') {
      this.invalid.push(invalidRecord(this.side, this.header, fieldsOf(record), record.line, checked, this.policy));
      return;
    }
    const key = checked.key;
    this.addKey(key, 0, key.length, '', 0, 0, record.fields, record.line);
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
      let keyHolder: number;
      if (keyStr === buf) {
        keyHolder = this.holderOf(buf);
      } else {
        keyHolder = index.holders.length;
        index.holders.push(keyStr);
      }
      const rowHolder = fields === undefined ? this.holderOf(buf) : -1;
      const slot = index.append(h, keyHolder, keyStart, keyEnd, rowHolder, start, end, line);
      if (fields !== undefined) index.quotedRows.set(slot, fields);
      return;
    }
    // Extracts are usually in the same order on both sides: try the rows after the last match
    // before the hash table (a random memory access per row, the main cost of a large file).
    const guess = this.nextSlot();
    let found: number;
    if (index.hasKey(guess, h, keyStr, keyStart, keyEnd)) found = guess;
    else found = index.find(h, keyStr, keyStart, keyEnd);
    if (found >= 0) this.lastSlot = found;
    if (found < 0) {
      const keyText = keyStr.slice(keyStart, keyEnd);
      const other = this.targetOnly.get(keyText);
      if (other === undefined)
        this.targetOnly.set(keyText, { line, text: fields ?? buf.slice(start, end), extra: undefined });
      else if (other.extra === undefined) other.extra = [line];
      else other.extra.push(line);
      return;
    }
    this.matchTarget(
      found,
      fields === undefined && this.sameLayout && this.index.rowIs(found, buf, start, end),
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
    const slot = this.nextSlot();
    if (slot >= this.index.size || !this.index.rowIs(slot, buf, start, end)) return false;
    this.lastSlot = slot;
    this.matchTarget(slot, true, buf, start, end, line);
    return true;
  }

  /** The first source row after the last match that is not a REPEAT. */
  private nextSlot(): number {
    const index = this.index;
    let slot = this.lastSlot + 1;
    while (slot < index.size && index.get(slot, F_FLAGS) & REPEAT) slot++;
    return slot;
  }

  /** A target row whose key is the source key of `slot`; `same` when it is the same raw line. */
  private matchTarget(
    slot: number,
    same: boolean,
    text: string | string[],
    start: number,
    end: number,
    line: number,
  ): void {
    const index = this.index;
    const flags = index.get(slot, F_FLAGS);
    if (flags & TARGET_SEEN) {
      index.set(slot, F_FLAGS, flags | TARGET_DUPLICATED);
      pushLine(index.targetExtra, slot, line);
      return;
    }
    index.set(slot, F_TARGET_LINE, line);
    if (same) {
      index.set(slot, F_FLAGS, flags | TARGET_SEEN | TARGET_SAME_TEXT);
    } else {
      index.set(slot, F_FLAGS, flags | TARGET_SEEN);
      index.targetText.set(slot, typeof text === 'string' ? text.slice(start, end) : text);
    }
  }

  /** The holder number of a decoded chunk; consecutive rows share the chunk. */
  private holderOf(buf: string): number {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastHolder = this.index.holders.length;
      this.index.holders.push(buf);
    }
    return this.lastHolder;
  }
}

function pushLine(map: Map<number, number[]>, slot: number, line: number): void {
  const lines = map.get(slot);
  if (lines) lines.push(line);
  else map.set(slot, [line]);
}

export async function reconcile(source: ReconInput, target: ReconInput, policy: ReconPolicy): Promise<ReconResult> {
  const started = performance.now();
  plainSeverities.delete(policy); // remembered for this run only
  const index = new SourceIndex();
  const s = await loadSide(new SideLoader('source', source.name, index, policy), source, policy);
  index.build();
  const t = await loadSide(new SideLoader('target', target.name, index, policy, s.header), target, policy);
  const sCols = s.cols as Columns;
  const tCols = t.cols as Columns;
  const findings: Finding[] = [];
  let matched = 0;

  for (let slot = 0; slot < index.size; slot++) {
    const flags = index.get(slot, F_FLAGS);
    if (flags & REPEAT) continue;
    if (
      (flags & (SOURCE_DUPLICATED | TARGET_DUPLICATED | TARGET_SEEN | TARGET_SAME_TEXT)) ===
      (TARGET_SEEN | TARGET_SAME_TEXT)
    ) {
      matched++;
      continue;
    }
    const keyText = index.keyText(slot);
    const se = index.sourceEntry(slot);
    const te = flags & TARGET_SEEN ? index.targetEntry(slot, se) : undefined;
    const tDup = flags & TARGET_DUPLICATED ? index.targetExtra.get(slot) : undefined;
    if (flags & SOURCE_DUPLICATED) {
      const sDup = index.sourceExtra.get(slot) as number[];
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
    const finding = compare(keyText, s, se, sCols, t, te, tCols, policy);
    if (finding) findings.push(finding);
    else matched++;
  }
  for (const [keyText, te] of t.targetOnly) {
    findings.push(
      te.extra
        ? duplicate('DUPLICATE_IN_TARGET', keyText, t, te, te.extra, s, undefined, undefined, policy, true)
        : missing('MISSING_IN_SOURCE', keyText, t, te, policy),
    );
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

async function loadSide(loader: SideLoader, input: ReconInput, policy: ReconPolicy): Promise<SideLoader> {
  try {
    await readCsvInto(input.stream, loader);
  } catch (error) {
    if (error instanceof CsvFileError) throw new ReconInputError(error.code, input.name, error.message, error.line);
    if (error instanceof ReconInputError) throw error;
    throw new ReconInputError('FILE_UNREADABLE', input.name, `cannot read file: ${(error as Error).message}`);
  }
  if (loader.cols === undefined) {
    throw new ReconInputError(
      'FILE_EMPTY',
      input.name,
      `file is empty; expected a header row with columns ${requiredColumns(policy).join(', ')}`,
    );
  }
  return loader;
}

function columnsOf(header: string[], policy: ReconPolicy): Columns {
  const keys = policy.keyColumns.map((c) => header.indexOf(c));
  const amount = policy.amountField === undefined ? -1 : header.indexOf(policy.amountField);
  const role = new Int32Array(header.length).fill(OTHER_COLUMN);
  if (amount >= 0) role[amount] = AMOUNT_COLUMN;
  keys.forEach((k, i) => {
    role[k] = i;
  });
  return {
    keys,
    text: policy.textFields.map((c) => header.indexOf(c)),
    amount,
    count: header.length,
    role,
  };
}

/** The row's key, or why the row is invalid (the general path: quoted rows). */
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
    if (
      count === cols.count &&
      text.length > MAX_FIELD_CHARS &&
      text.split(',').some((f) => f.length > MAX_FIELD_CHARS)
    ) {
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
  if (amount !== undefined && !(amount.length <= MAX_DIGITS && SIMPLE_AMOUNT.test(amount))) {
    const parsed = parseDecimal(amount);
    if (!parsed.ok) return `${policy.amountField}: ${parsed.reason}`;
  }
  return { key: keys.length === 1 ? (keys[0] as string) : keys.join(KEY_SEPARATOR) };
}

function keyRow(keyText: string, policy: ReconPolicy): Row {
  const columns = policy.keyColumns;
  const row: Row = {};
  if (columns.length === 1) {
    row[columns[0] as string] = keyText;
    return row;
  }
  const parts = keyText.split(KEY_SEPARATOR);
  for (let i = 0; i < columns.length; i++) row[columns[i] as string] = parts[i] ?? '';
  return row;
}

function valuesOf(entry: Entry): string[] {
  return typeof entry.text === 'string' ? splitPlain(entry.text, 0, entry.text.length) : entry.text;
}

function rowOf(header: string[], values: string[]): Row {
  const row: Row = {};
  for (let i = 0; i < header.length; i++) row[header[i] as string] = values[i] ?? '';
  return row;
}

function compare(
  keyText: string,
  s: LoadedSide,
  se: Entry,
  sc: Columns,
  t: LoadedSide,
  te: Entry,
  tc: Columns,
  policy: ReconPolicy,
): Finding | undefined {
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

function missing(
  type: 'MISSING_IN_TARGET' | 'MISSING_IN_SOURCE',
  keyText: string,
  present: LoadedSide,
  entry: Entry,
  policy: ReconPolicy,
): Finding {
  const row = rowOf(present.header, valuesOf(entry));
  return {
    type,
    key: keyRow(keyText, policy),
    keyText,
    source: present.side === 'source' ? row : null,
    target: present.side === 'target' ? row : null,
    diffs: [],
    lines: present.side === 'source' ? { source: [entry.line], target: [] } : { source: [], target: [entry.line] },
    severity: plainSeverityOf(type, policy),
  };
}

/**
 * One finding per duplicated key. The counterpart on the other side is shown for context; with
 * `accountOther` this finding also accounts for its rows (they are then not reported as missing
 * or mismatched).
 */
function duplicate(
  type: 'DUPLICATE_IN_SOURCE' | 'DUPLICATE_IN_TARGET',
  keyText: string,
  dupSide: LoadedSide,
  entry: Entry,
  extraLines: number[],
  otherSide: LoadedSide,
  other: Entry | undefined,
  otherExtra: number[] | undefined,
  policy: ReconPolicy,
  accountOther: boolean,
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
    severity: plainSeverityOf(type, policy),
  };
}

function invalidRecord(
  side: Side,
  header: string[],
  fields: string[],
  line: number,
  reason: string,
  policy: ReconPolicy,
): Finding {
  const raw = rowOf(
    header.length >= fields.length
      ? header
      : [...header, ...fields.slice(header.length).map((_, i) => `_extra_${i + 1}`)],
    fields.map((f) => (f.length > 256 ? `${f.slice(0, 256)}…` : f)),
  );
  return {
    type: 'INVALID_RECORD',
    key: { side, line: String(line) },
    keyText: `${side}:${line}`,
    source: side === 'source' ? raw : null,
    target: side === 'target' ? raw : null,
    diffs: [],
    lines: side === 'source' ? { source: [line], target: [] } : { source: [], target: [line] },
    reason,
    severity: plainSeverityOf('INVALID_RECORD', policy),
  };
}

const plainSeverities = new WeakMap<ReconPolicy, Map<ExceptionType, Severity>>();

/** `severityOf` without a delta (it then depends on the type alone), remembered per policy. */
function plainSeverityOf(type: ExceptionType, policy: ReconPolicy): Severity {
  let known = plainSeverities.get(policy);
  if (known === undefined) {
    known = new Map();
    plainSeverities.set(policy, known);
  }
  let severity = known.get(type);
  if (severity === undefined) {
    severity = severityOf(type, policy);
    known.set(type, severity);
  }
  return severity;
}

export function severityOf(type: ExceptionType, policy: ReconPolicy, delta?: Decimal): Severity {
  const magnitude = delta === undefined ? undefined : absDecimal(delta);
  for (const rule of policy.severityRules) {
    if (rule.exceptionType !== type) continue;
    if (rule.minAbsDelta !== undefined && (magnitude === undefined || compareDecimal(magnitude, rule.minAbsDelta) < 0))
      continue;
    return rule.severity;
  }
  return policy.defaultSeverity;
}

/**
 * The source side's keys in typed arrays behind an open-addressing hash table, and what the
 * target stream found for each of them. No policy, no findings: slots, flags and text offsets.
 */

/** A first occurrence of a key: its line and its raw text (or fields, when it was quoted). */
export interface Entry {
  readonly line: number;
  readonly text: string | string[];
}

// Per source key flags (`SourceIndex.flags`).
export const SOURCE_DUPLICATED = 1;
export const TARGET_SEEN = 2;
export const TARGET_DUPLICATED = 4;
/** The target's first row is the same raw line as the source's under the same header. */
export const TARGET_SAME_TEXT = 8;
/** A later row of a duplicated source key: its lines are on the first row's slot. */
export const REPEAT = 16;

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
const FIRST_PAGE_SLOTS = 1 << 8;

/**
 * FNV-1a over the UTF-16 code units, then a murmur3 finaliser so linear probing spreads well.
 * 30 bits, so the value stays a small integer for V8 (no heap number per row).
 */
export function hashOf(str: string, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ str.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x3fffffff;
}

/**
 * The source side's keys, one slot per row in file order (a row whose key an earlier row has
 * becomes a REPEAT of it), kept in typed arrays behind an open-addressing hash table. A million
 * keys cost a few megabytes of typed arrays instead of a million Map entries and entry objects
 * (which is what made a 1M-row run slow: cache misses in the Map and the garbage collector walking
 * the entries). Slots live in fixed-size pages so growing never copies them.
 *
 * Key and row text are not copied: they stay in the decoded chunk string they were read from
 * (`holders`), addressed by offsets. A key that had to be built (quoted rows, composite keys) is
 * a holder of its own.
 */
export class SourceIndex {
  size = 0;
  /**
   * Estimated bytes held: the text of the chunks and built keys rows point into, quoted rows,
   * what the target kept. The slots and the hash table are counted by `approxBytes`.
   */
  private heldBytes = 0;
  private readonly pages: Int32Array[] = [];
  private mask = 0;
  /**
   * Hash table of (slot + 1 or 0 when empty, hash) pairs, side by side so a probe reads one
   * line; at most half full. Built once the source is loaded (`build`), at its final size.
   */
  private table: Int32Array = new Int32Array(0);
  private readonly holders: string[] = [];
  private lastBuf: string | undefined;
  private lastHolder = -1;
  private readonly quotedRows = new Map<number, string[]>();
  /** Lines of the second and later rows of a key, per side. */
  private readonly sourceExtra = new Map<number, number[]>();
  private readonly targetExtra = new Map<number, number[]>();
  /** The target's first row of a key, when it is not TARGET_SAME_TEXT. */
  private readonly targetText = new Map<number, string | string[]>();

  private page(slot: number): Int32Array {
    return this.pages[slot >>> PAGE_BITS] as Int32Array;
  }

  private get(slot: number, field: number): number {
    return (this.pages[slot >>> PAGE_BITS] as Int32Array)[(slot & PAGE_MASK) * STRIDE + field] as number;
  }

  private set(slot: number, field: number, value: number): void {
    (this.pages[slot >>> PAGE_BITS] as Int32Array)[(slot & PAGE_MASK) * STRIDE + field] = value;
  }

  flags(slot: number): number {
    return this.get(slot, F_FLAGS);
  }

  /** The holder number of a decoded chunk; consecutive rows share the chunk. */
  holderOf(buf: string): number {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastHolder = this.holders.length;
      this.holders.push(buf);
      this.heldBytes += buf.length;
    }
    return this.lastHolder;
  }

  /** A holder for a key that had to be built. */
  ownHolder(key: string): number {
    this.heldBytes += key.length + 32;
    this.holders.push(key);
    return this.holders.length - 1;
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

  /** The first row after `slot` that is not a REPEAT (`size` when there is none). */
  firstAfter(slot: number): number {
    let next = slot + 1;
    while (next < this.size && this.get(next, F_FLAGS) & REPEAT) next++;
    return next;
  }

  /**
   * Adds a row of the source, in file order: its key is `holders[keyHolder][keyStart, keyEnd)`,
   * its raw line `holders[rowHolder][rowStart, rowEnd)` or, with `fields`, it was quoted.
   */
  append(
    h: number,
    keyHolder: number,
    keyStart: number,
    keyEnd: number,
    rowHolder: number,
    rowStart: number,
    rowEnd: number,
    fields: string[] | undefined,
    line: number,
  ): void {
    const slot = this.size;
    if ((slot & PAGE_MASK) === 0)
      this.pages.push(new Int32Array((slot === 0 ? FIRST_PAGE_SLOTS : PAGE_SLOTS) * STRIDE));
    let page = this.page(slot);
    if ((slot & PAGE_MASK) * STRIDE === page.length) page = this.growFirstPage();
    const base = (slot & PAGE_MASK) * STRIDE;
    page[base + F_HASH] = h;
    page[base + F_KEY_HOLDER] = keyHolder;
    page[base + F_KEY_START] = keyStart;
    page[base + F_KEY_END] = keyEnd;
    page[base + F_ROW_HOLDER] = fields === undefined ? rowHolder : -1;
    page[base + F_ROW_START] = rowStart;
    page[base + F_ROW_END] = rowEnd;
    page[base + F_LINE] = line;
    this.size = slot + 1;
    if (fields !== undefined) {
      this.quotedRows.set(slot, fields);
      this.heldBytes += 64;
      for (const f of fields) this.heldBytes += 24 + f.length;
    }
  }

  /**
   * About how many bytes this index holds, counting the hash table `build` makes at 32 bytes a
   * slot (it is 16 to 32).
   */
  approxBytes(): number {
    return this.heldBytes + this.size * (STRIDE * 4 + 32);
  }

  /** Lets go of every row (after they were written to partition files). */
  clear(): void {
    this.size = 0;
    this.heldBytes = 0;
    this.pages.length = 0;
    this.mask = 0;
    this.table = new Int32Array(0);
    this.holders.length = 0;
    this.lastBuf = undefined;
    this.lastHolder = -1;
    this.quotedRows.clear();
    this.sourceExtra.clear();
    this.targetExtra.clear();
    this.targetText.clear();
  }

  /** The key hash of `slot`. */
  hashAt(slot: number): number {
    return this.get(slot, F_HASH);
  }

  /** The lines of later target rows of the key at `slot`, if any. */
  targetExtraLines(slot: number): number[] | undefined {
    return this.targetExtra.get(slot);
  }

  /** The first page starts small (a partition may hold a handful of rows) and doubles up to a full page. */
  private growFirstPage(): Int32Array {
    const page = this.pages[0] as Int32Array;
    const bigger = new Int32Array(Math.min(PAGE_SLOTS * STRIDE, page.length * 2));
    bigger.set(page);
    this.pages[0] = bigger;
    return bigger;
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
            pushLine(this.sourceExtra, first, page[base + F_LINE] as number);
            break;
          }
        }
        pos = (pos + 1) & mask;
      }
    }
    this.table = table;
    this.mask = mask;
  }

  /**
   * A target row whose key is the source key of `slot`; `same` when it is the same raw line
   * (then `text` is not kept). `text` is the raw line `text[start, end)` or the quoted row's fields.
   */
  matchTarget(slot: number, same: boolean, text: string | string[], start: number, end: number, line: number): void {
    const flags = this.get(slot, F_FLAGS);
    if (flags & TARGET_SEEN) {
      this.set(slot, F_FLAGS, flags | TARGET_DUPLICATED);
      pushLine(this.targetExtra, slot, line);
      this.heldBytes += 16;
      return;
    }
    this.set(slot, F_TARGET_LINE, line);
    if (same) {
      this.set(slot, F_FLAGS, flags | TARGET_SEEN | TARGET_SAME_TEXT);
    } else {
      this.set(slot, F_FLAGS, flags | TARGET_SEEN);
      this.targetText.set(slot, typeof text === 'string' ? text.slice(start, end) : text);
      this.heldBytes += 96 + (typeof text === 'string' ? end - start : 32 * text.length);
    }
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

  /** Lines of the second and later source rows of a SOURCE_DUPLICATED slot. */
  sourceRepeats(slot: number): number[] {
    return this.sourceExtra.get(slot) as number[];
  }

  /** Lines of the second and later target rows of a TARGET_DUPLICATED slot. */
  targetRepeats(slot: number): number[] | undefined {
    return this.targetExtra.get(slot);
  }
}

function pushLine(map: Map<number, number[]>, slot: number, line: number): void {
  const lines = map.get(slot);
  if (lines) lines.push(line);
  else map.set(slot, [line]);
}

/**
 * Bounded memory: when the rows a reconciliation holds outgrow its budget, both sides go to
 * partition files by key hash, and each partition is then reconciled on its own (`engine.ts`).
 * A key's rows (valid and invalid) all land in one partition, in file order, so every rule that
 * looks at a key (duplicates, the invalid-row attachment, matching) sees exactly what it would in
 * memory; what is counted over the whole file (rows, rejected rows, control totals) was counted
 * before the rows were written.
 *
 * A partition file is UTF-8 text, one record per row, each a tag, a few decimal numbers and
 * length-prefixed text (lengths in UTF-16 code units of the decoded text, so no text needs
 * escaping):
 *   v<line>,<keyStart>,<keyEnd>,<len>,<text>       a raw row whose key is a part of its text
 *   V<line>,<keyLen>,<len>,<key><text>             a raw row with a built key
 *   F<line>,<keyLen>,<len>,<key json><fields json> a row read as fields (quoted CSV, Parquet)
 *   J<line>,<keyLen>,<len>,<key json><text json>   a raw row with text UTF-8 cannot carry (lone surrogates)
 *   I<keyLen or -1>,<len>,<key json><finding json> an INVALID_RECORD and the key it was remembered under
 * and a line feed (for people reading a file; the reader skips it).
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAscii } from 'node:buffer';
import { getHeapStatistics } from 'node:v8';
import type { Side } from '../shared/types.ts';
import type { Finding } from './findings.ts';
import type { RowSpill, SideLoader } from './side-loader.ts';
import { hashOf } from './source-index.ts';
import { isWellFormed } from '../shared/formats/utf8.ts';

/** Partitions per spill: 16 per level, up to `MAX_DEPTH` levels deep. */
export const PARTITION_BITS = 4;
export const PARTITIONS = 1 << PARTITION_BITS;
/**
 * Levels of partitioning before a partition is reconciled in memory whatever its size (a key
 * repeated millions of times cannot be split by its hash).
 */
export const MAX_DEPTH = 3;

// One multiplier per level, so a partition's keys spread again at the next level; the partition
// is taken from the top bits, the hash table from the low bits of the key hash.
const MULTIPLIERS = [0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f];

export function partitionOf(hash: number, depth: number): number {
  return Math.imul(hash, MULTIPLIERS[depth % MULTIPLIERS.length] as number) >>> (32 - PARTITION_BITS);
}

/**
 * The default budget: a quarter of the V8 heap limit, at most 768 MiB.
 *
 * Measured on the `bench:recon` trades pairs (44-byte rows), 2026-12-01: the estimate is ~116
 * bytes a source row (the text, a 40-byte slot, 32 for the hash table). When the source spills,
 * peak RSS is about 1.1x the budget (5M rows: 371 MB at a 256 MB budget, 552 MB at 512 MB);
 * when the source just fits, the hash table, the target's breaks and the findings being built
 * come on top: 5M rows in memory estimate ~580 MB and peak at 1,016 MB RSS (1.75x). A quarter of
 * the heap leaves that worst case under half the heap: Lambda's Node runtime sets the heap limit to
 * about 90% of the function's memory, so the 3008 MB recon function gets ~680 MB (about 5M rows a
 * side in memory). The cap keeps the worst case near 1.35 GB on a large machine (the CLI: the
 * heap limit is 4 GB here); a partitioned run costs about twice the time of one in memory.
 */
export function defaultMemoryBudgetBytes(heapLimit = getHeapStatistics().heap_size_limit): number {
  return Math.min(Math.floor(heapLimit / 4), 768 * 2 ** 20);
}

/** Buffered per partition file: 32 files a level, 4 MiB. */
const WRITE_BYTES = 1 << 17;
const READ_BYTES = 1 << 20;

/** A run's temporary directory, made when first needed and removed with everything in it. */
export class SpillArea {
  private readonly parent: string;
  private dir: string | undefined;
  private readonly open = new Set<PartitionWriter>();
  private made = 0;

  constructor(parent = tmpdir()) {
    this.parent = parent;
  }

  /** A fresh writer for one level of partitioning. */
  writer(depth: number): PartitionWriter {
    if (this.dir === undefined) {
      mkdirSync(this.parent, { recursive: true });
      this.dir = mkdtempSync(join(this.parent, 'tally-recon-'));
    }
    const writer = new PartitionWriter(join(this.dir, `p${this.made++}`), depth, () => this.open.delete(writer));
    this.open.add(writer);
    return writer;
  }

  /** Closes what is open and removes the directory (also after an error). */
  dispose(): void {
    for (const w of this.open) w.close();
    this.open.clear();
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

interface PartitionFile {
  readonly fd: number;
  buf: Buffer;
  used: number;
}

function flush(file: PartitionFile): void {
  if (file.used > 0) writeSync(file.fd, file.buf, 0, file.used);
  file.used = 0;
}

/** Writes `n` and a comma at `at`; returns where it ended. */
function putInt(b: Buffer, at: number, n: number): number {
  if (n < 0) {
    b[at++] = 45;
    n = -n;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  for (let i = at + digits - 1; i >= at; i--) {
    b[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  b[at + digits] = 44;
  return at + digits + 1;
}

/** Writes one level's rows, `PARTITIONS` files a side, by key hash. */
export class PartitionWriter implements RowSpill {
  private readonly prefix: string;
  private readonly depth: number;
  private readonly onClose: () => void;
  private readonly files: Record<Side, (PartitionFile | undefined)[]> = { source: [], target: [] };
  /** Invalid rows without a key go round the partitions. */
  private unkeyed = 0;
  private closed = false;

  constructor(prefix: string, depth: number, onClose: () => void) {
    this.prefix = prefix;
    this.depth = depth;
    this.onClose = onClose;
  }

  path(side: Side, partition: number): string {
    return `${this.prefix}-${side === 'source' ? 's' : 't'}${partition}`;
  }

  /** Whether any row of either side went to `partition`. */
  hasRows(partition: number): boolean {
    return this.files.source[partition] !== undefined || this.files.target[partition] !== undefined;
  }

  /** Whether `side` has a file for `partition`. */
  has(side: Side, partition: number): boolean {
    return this.files[side][partition] !== undefined;
  }

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
  ): void {
    const file = this.file(side, partitionOf(h, this.depth));
    if (fields !== undefined) {
      this.put(file, 70 /* F */, line, JSON.stringify(keyStr.slice(keyStart, keyEnd)), JSON.stringify(fields));
      return;
    }
    const text = buf.slice(start, end);
    if (keyStr === buf && keyStart >= start && keyEnd <= end && isWellFormed(text)) {
      // The common case, written straight into the file's buffer: no string per record.
      const b = this.reserve(file, text.length * 3 + 48);
      let at = file.used;
      b[at++] = 118; // v
      at = putInt(b, at, line);
      at = putInt(b, at, keyStart - start);
      at = putInt(b, at, keyEnd - start);
      at = putInt(b, at, text.length);
      at += b.write(text, at);
      b[at++] = 10;
      file.used = at;
      return;
    }
    const key = keyStr.slice(keyStart, keyEnd);
    if (isWellFormed(text) && isWellFormed(key)) this.put(file, 86 /* V */, line, key, text);
    else this.put(file, 74 /* J */, line, JSON.stringify(key), JSON.stringify(text));
  }

  invalid(side: Side, finding: Finding, key: string | undefined): void {
    const json = JSON.stringify(finding);
    const file =
      key === undefined
        ? this.file(side, this.unkeyed++ % PARTITIONS)
        : this.file(side, partitionOf(hashOfKey(key), this.depth));
    this.put(file, 73 /* I */, undefined, key === undefined ? undefined : JSON.stringify(key), json);
  }

  /** A record of `tag`: `line` (unless undefined), the key's and the text's lengths, key and text. */
  private put(file: PartitionFile, tag: number, line: number | undefined, key: string | undefined, text: string): void {
    const b = this.reserve(file, ((key?.length ?? 0) + text.length) * 3 + 48);
    let at = file.used;
    b[at++] = tag;
    if (line !== undefined) at = putInt(b, at, line);
    at = putInt(b, at, key === undefined ? -1 : key.length);
    at = putInt(b, at, text.length);
    if (key !== undefined) at += b.write(key, at);
    at += b.write(text, at);
    b[at++] = 10;
    file.used = at;
  }

  private file(side: Side, partition: number): PartitionFile {
    let file = this.files[side][partition];
    if (file === undefined) {
      file = { fd: openSync(this.path(side, partition), 'w'), buf: Buffer.allocUnsafe(WRITE_BYTES), used: 0 };
      this.files[side][partition] = file;
    }
    return file;
  }

  /** The file's buffer with room for `bytes` more (written out first if need be). */
  private reserve(file: PartitionFile, bytes: number): Buffer {
    if (file.used + bytes <= file.buf.length) return file.buf;
    flush(file);
    if (bytes > file.buf.length) file.buf = Buffer.allocUnsafe(bytes);
    return file.buf;
  }

  /** Writes what is buffered and closes the files (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const side of ['source', 'target'] as const)
      for (const file of this.files[side]) {
        if (file === undefined) continue;
        try {
          flush(file);
        } finally {
          closeSync(file.fd);
        }
      }
    this.onClose();
  }

  /** Removes a partition's files once it has been reconciled (frees the disk as the run goes). */
  remove(partition: number): void {
    for (const side of ['source', 'target'] as const)
      if (this.files[side][partition] !== undefined) rmSync(this.path(side, partition), { force: true });
  }
}

function hashOfKey(key: string): number {
  return hashOf(key, 0, key.length);
}

/** A read position in a decoded block of a partition file. */
class Cursor {
  pos = 0;
  private readonly buf: string;
  constructor(buf: string) {
    this.buf = buf;
  }
  /** A decimal number ended by a comma (a leading `-` allowed); NaN when `buf` ends first. */
  num(): number {
    const buf = this.buf;
    let i = this.pos;
    let sign = 1;
    if (buf.charCodeAt(i) === 45) {
      sign = -1;
      i++;
    }
    let n = 0;
    for (;;) {
      if (i >= buf.length) return NaN;
      const c = buf.charCodeAt(i++);
      if (c === 44) break;
      n = n * 10 + (c - 48);
    }
    this.pos = i;
    return sign * n;
  }
}

/** One read buffer for every partition read (reads are synchronous; the text is decoded out of it). */
let readBuffer: Buffer | undefined;

/**
 * Feeds a partition file's rows, in the order they were written, to a loader: valid rows as
 * `addKey` (matched against the index, as when first read), invalid ones as `restoreInvalid`.
 */
export function readPartition(path: string, loader: SideLoader): void {
  const fd = openSync(path, 'r');
  try {
    readBuffer ??= Buffer.allocUnsafe(READ_BYTES);
    let bytes = readBuffer;
    /** Bytes read and not yet fed: the start of a record the last read cut, or of a UTF-8 sequence. */
    let have = 0;
    for (;;) {
      if (have === bytes.length) {
        // One record larger than the buffer (a quoted row of long fields): make room for it.
        const bigger = Buffer.allocUnsafe(bytes.length * 2);
        bytes.copy(bigger, 0, 0, have);
        bytes = bigger;
      }
      const n = readSync(fd, bytes, have, bytes.length - have, null);
      have += n;
      const cut = n === 0 ? have : completeUtf8(bytes, have);
      // ASCII (most extracts) decodes to a one-byte string without a UTF-8 decoder.
      const ascii = isAscii(bytes.subarray(0, cut));
      const text = bytes.toString(ascii ? 'latin1' : 'utf8', 0, cut);
      const used = feed(text, loader);
      // The cut record is read again from its bytes with the next read: one flat string a read.
      const from =
        used === text.length ? cut : cut - (ascii ? text.length - used : Buffer.byteLength(text.slice(used)));
      bytes.copy(bytes, 0, from, have);
      have -= from;
      if (n === 0) break;
    }
    if (have > 0) throw new Error(`internal: partition file ${path} ends inside a record`);
  } finally {
    closeSync(fd);
  }
}

/** Where the last complete UTF-8 sequence of `bytes[0, end)` ends. */
function completeUtf8(bytes: Buffer, end: number): number {
  let i = end - 1;
  while (i > end - 4 && i > 0 && ((bytes[i] as number) & 0xc0) === 0x80) i--;
  const lead = bytes[i] as number;
  const need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + need <= end ? end : i;
}

/** Feeds the whole records of `buf`; returns where the first incomplete one starts. */
function feed(buf: string, loader: SideLoader): number {
  const c = new Cursor(buf);
  for (;;) {
    const at = c.pos;
    if (at >= buf.length) return at;
    const tag = buf.charCodeAt(at);
    c.pos = at + 1;
    if (tag === 10) continue;
    if (tag === 118 /* v */) {
      const line = c.num();
      const ks = c.num();
      const ke = c.num();
      const len = c.num();
      if (Number.isNaN(len) || c.pos + len > buf.length) return at;
      const start = c.pos;
      loader.addKey(buf, start + ks, start + ke, buf, start, start + len, undefined, line);
      c.pos = start + len;
      continue;
    }
    if (tag === 73 /* I */) {
      const keyLen = c.num();
      const len = c.num();
      if (Number.isNaN(len) || c.pos + Math.max(keyLen, 0) + len > buf.length) return at;
      const key = keyLen < 0 ? undefined : (JSON.parse(buf.slice(c.pos, c.pos + keyLen)) as string);
      c.pos += Math.max(keyLen, 0);
      loader.restoreInvalid(JSON.parse(buf.slice(c.pos, c.pos + len)) as Finding, key);
      c.pos += len;
      continue;
    }
    const line = c.num();
    const keyLen = c.num();
    const len = c.num();
    if (Number.isNaN(len) || c.pos + keyLen + len > buf.length) return at;
    const k = c.pos;
    const r = k + keyLen;
    if (tag === 86 /* V */) loader.addKey(buf, k, r, buf, r, r + len, undefined, line);
    else if (tag === 70 /* F */) {
      const key = JSON.parse(buf.slice(k, r)) as string;
      loader.addKey(key, 0, key.length, '', 0, 0, JSON.parse(buf.slice(r, r + len)) as string[], line);
    } else if (tag === 74 /* J */) {
      const key = JSON.parse(buf.slice(k, r)) as string;
      const text = JSON.parse(buf.slice(r, r + len)) as string;
      loader.addKey(key, 0, key.length, text, 0, text.length, undefined, line);
    } else throw new Error(`internal: unknown partition record ${String.fromCharCode(tag)}`);
    c.pos = r + len;
  }
}

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
import { getHeapStatistics } from 'node:v8';
import type { Side } from '../shared/types.ts';
import type { Finding } from './findings.ts';
import type { RowSpill, SideLoader } from './side-loader.ts';
import { hashOf } from './source-index.ts';

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
 * The default budget: a third of the V8 heap limit, at most 1 GiB.
 *
 * Measured (`bench:recon` trades files, 2026-12-01): the engine's estimate of what it holds is
 * about 130 bytes a source row (44-byte rows: the text, a 40-byte slot, the hash table), and the
 * heap peaks at about 1.6x the estimate at the end of a side (the decoded block being read, the
 * findings being built, garbage not yet collected). Lambda's Node runtime sets the heap limit to
 * about 90% of the function's memory, so a 3008 MB recon function gets a budget of ~0.9 GB:
 * about 7M rows a side in memory, and a heap peak (~1.5 GB) well inside its limit. The 1 GiB cap
 * keeps a large machine's run (heap limit 4 GB here) under 1.5 GB of RSS; partitioning costs
 * each row one more write and read of its text, not a blow-up.
 */
export function defaultMemoryBudgetBytes(heapLimit = getHeapStatistics().heap_size_limit): number {
  return Math.min(Math.floor(heapLimit / 3), 1 << 30);
}

const FLUSH_CHARS = 1 << 18;
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
  fd: number;
  pending: string;
  records: number;
}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

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
    let record: string;
    if (fields !== undefined) {
      const key = JSON.stringify(keyStr.slice(keyStart, keyEnd));
      const json = JSON.stringify(fields);
      record = `F${line},${key.length},${json.length},${key}${json}\n`;
    } else {
      const text = buf.slice(start, end);
      if (keyStr === buf && keyStart >= start && keyEnd <= end && isWellFormed(text))
        record = `v${line},${keyStart - start},${keyEnd - start},${text.length},${text}\n`;
      else {
        const key = keyStr.slice(keyStart, keyEnd);
        if (isWellFormed(text) && isWellFormed(key)) record = `V${line},${key.length},${text.length},${key}${text}\n`;
        else {
          const k = JSON.stringify(key);
          const t = JSON.stringify(text);
          record = `J${line},${k.length},${t.length},${k}${t}\n`;
        }
      }
    }
    this.append(side, partitionOf(h, this.depth), record);
  }

  invalid(side: Side, finding: Finding, key: string | undefined): void {
    const json = JSON.stringify(finding);
    if (key === undefined) {
      this.append(side, this.unkeyed++ % PARTITIONS, `I-1,${json.length},${json}\n`);
      return;
    }
    const k = JSON.stringify(key);
    this.append(side, partitionOf(hashOfKey(key), this.depth), `I${k.length},${json.length},${k}${json}\n`);
  }

  private append(side: Side, partition: number, record: string): void {
    let file = this.files[side][partition];
    if (file === undefined) {
      file = { fd: openSync(this.path(side, partition), 'w'), pending: '', records: 0 };
      this.files[side][partition] = file;
    }
    file.pending += record;
    file.records++;
    if (file.pending.length >= FLUSH_CHARS) {
      writeSync(file.fd, file.pending);
      file.pending = '';
    }
  }

  /** Writes what is buffered and closes the files (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const side of ['source', 'target'] as const)
      for (const file of this.files[side]) {
        if (file === undefined) continue;
        try {
          if (file.pending.length > 0) writeSync(file.fd, file.pending);
        } finally {
          file.pending = '';
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
    const bytes = readBuffer;
    const decoder = new TextDecoder('utf-8');
    let carry = '';
    for (;;) {
      const n = readSync(fd, bytes, 0, READ_BYTES, null);
      const text = n === 0 ? decoder.decode() : decoder.decode(bytes.subarray(0, n), { stream: true });
      const buf = carry + text;
      const used = feed(buf, loader);
      carry = used < buf.length ? buf.slice(used) : '';
      if (n === 0) break;
    }
    if (carry.length > 0) throw new Error(`internal: partition file ${path} ends inside a record`);
  } finally {
    closeSync(fd);
  }
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

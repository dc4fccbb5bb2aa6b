/**
 * The embedded vector store for local mode: exact (brute-force) cosine search over documents
 * held in memory and persisted as an append-only log under the local data folder. Exact search
 * is the right trade at local sizes (thousands of vectors) and makes results reproducible.
 *
 * Each local function runs in a thread of its own (as each Lambda has its own container), so
 * several instances share one file: every call first reads what others appended since, and a
 * write appends, then reads back in file order, so all instances converge on the file's order.
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { Bm25Index } from './lexical.ts';
import { compileFilter, fieldEquals, fuseHybrid, fusionDepth, type FieldFilter } from './fusion.ts';
import type { FieldValue, SearchOptions, VectorDocument, VectorHit, VectorIndex } from './ports.ts';
import { decodeEmbeddingFloats, encodeEmbedding } from './stored-embedding.ts';

type Op =
  | { op: 'put'; doc: StoredDoc }
  | { op: 'del'; id: string }
  | { op: 'fields'; id: string; fields: Record<string, FieldValue> };

interface StoredDoc {
  id: string;
  // stored-embedding.ts's form: float32 values, base64, sparse when mostly zeros (the JSON of a
  // number array would be four times the dense form)
  vector: string;
  fields: Record<string, FieldValue>;
  text: string;
  lexical?: string;
}

interface LiveDoc {
  id: string;
  vector: Float32Array;
  fields: Record<string, FieldValue>;
  text: string;
  lexical: string;
}

const open = new Map<string, LocalVectorIndex>();

export class LocalVectorIndex implements VectorIndex {
  private readonly path: string;
  private readonly docs = new Map<string, LiveDoc>();
  private readonly lexical = new Bm25Index<string>();
  private logLines = 0;
  /** How much of the file (which inode) has been applied. */
  private readBytes = 0;
  private inode = -1;

  /** One instance per file in a process: every handler sees the same documents. */
  static at(path: string): LocalVectorIndex {
    let index = open.get(path);
    if (!index) {
      index = new LocalVectorIndex(path);
      open.set(path, index);
    }
    return index;
  }

  /** A fresh instance reading the file again (tests, tools); handlers use `at`. */
  static load(path: string): LocalVectorIndex {
    return new LocalVectorIndex(path);
  }

  private constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.sync();
  }

  /** Applies what was appended to the file since the last call (by any instance, in any thread). */
  private sync(): void {
    if (!existsSync(this.path)) return;
    const fd = openSync(this.path, 'r');
    try {
      const { ino, size } = fstatSync(fd);
      if (ino !== this.inode || size < this.readBytes) {
        // First read, or another instance compacted the log: start over from the new file.
        this.docs.clear();
        this.lexical.clear();
        this.logLines = 0;
        this.readBytes = 0;
        this.inode = ino;
      }
      if (size === this.readBytes) return;
      const chunk = Buffer.alloc(size - this.readBytes);
      readSync(fd, chunk, 0, chunk.length, this.readBytes);
      // Only whole lines: a concurrent append may be half written.
      const end = chunk.lastIndexOf(0x0a) + 1;
      for (const line of chunk.subarray(0, end).toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.apply(JSON.parse(line) as Op);
        this.logLines++;
      }
      this.readBytes += end;
    } finally {
      closeSync(fd);
    }
  }

  async ensure(): Promise<void> {
    if (!existsSync(this.path)) writeFileSync(this.path, '');
  }

  async replace(doc: VectorDocument): Promise<void> {
    this.write({
      op: 'put',
      doc: {
        id: doc.id,
        vector: encodeEmbedding(doc.vector),
        fields: { ...doc.fields },
        text: doc.text,
        ...(doc.lexical !== undefined ? { lexical: doc.lexical } : {}),
      },
    });
  }

  async replaceMany(docs: readonly VectorDocument[]): Promise<void> {
    for (const doc of docs) await this.replace(doc);
  }

  async updateFields(id: string, fields: Readonly<Record<string, FieldValue>>): Promise<void> {
    this.sync();
    if (this.docs.has(id)) this.write({ op: 'fields', id, fields: { ...fields } });
  }

  async deleteWhere(field: string, value: string): Promise<number> {
    this.sync();
    const ids = [...this.docs.values()].filter((d) => fieldEquals(d.fields[field], value)).map((d) => d.id);
    for (const id of ids) this.write({ op: 'del', id });
    return ids.length;
  }

  async search(
    vector: number[],
    k: number,
    filter: Readonly<Record<string, string>> = {},
    options: SearchOptions = {},
  ): Promise<VectorHit[]> {
    this.sync();
    const accept = compileFilter(filter, options.ranges);
    if (options.text === undefined) return this.nearest(vector, k, accept);
    const depth = fusionDepth(k);
    const lexical = this.lexical
      .search(options.text, depth, accept ? (id) => accept((this.docs.get(id) as LiveDoc).fields) : null)
      .map(({ doc: id, score }) => {
        const doc = this.docs.get(id) as LiveDoc;
        return { id, score, fields: doc.fields, text: doc.text, lexical: doc.lexical };
      });
    return fuseHybrid(options.text, this.nearest(vector, depth, accept), lexical, k);
  }

  private nearest(vector: number[], k: number, accept: FieldFilter | null): VectorHit[] {
    const query = normalise(vector);
    const hits: VectorHit[] = [];
    for (const doc of this.docs.values()) {
      if (accept && !accept(doc.fields)) continue;
      let dot = 0;
      for (let i = 0; i < query.length; i++) dot += (query[i] as number) * (doc.vector[i] ?? 0);
      hits.push({ id: doc.id, score: (dot + 1) / 2, fields: doc.fields, text: doc.text });
    }
    return hits.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id)).slice(0, k);
  }

  async count(filter: Readonly<Record<string, string>> = {}): Promise<number> {
    this.sync();
    const accept = compileFilter(filter);
    let n = 0;
    for (const doc of this.docs.values()) if (!accept || accept(doc.fields)) n++;
    return n;
  }

  private write(op: Op): void {
    // Appended first, then read back with whatever others appended before it: the file's order wins.
    appendFileSync(this.path, `${JSON.stringify(op)}\n`);
    this.sync();
    // Rewrite the log once it is mostly superseded operations.
    if (this.logLines > 1000 && this.logLines > 3 * this.docs.size) this.compact();
  }

  private compact(): void {
    const lines = [...this.docs.values()].map((d) =>
      JSON.stringify({
        op: 'put',
        doc: {
          id: d.id,
          vector: encodeEmbedding(d.vector),
          fields: d.fields,
          text: d.text,
          lexical: d.lexical,
        },
      }),
    );
    writeFileSync(`${this.path}.tmp`, lines.length ? `${lines.join('\n')}\n` : '');
    renameSync(`${this.path}.tmp`, this.path);
    // The next sync sees a new inode and reads the compacted file from the start.
    this.sync();
  }

  private apply(op: Op): void {
    if (op.op === 'put') {
      const vector = normalise(Array.from(decodeEmbeddingFloats(op.doc.vector)));
      this.docs.set(op.doc.id, {
        id: op.doc.id,
        vector: Float32Array.from(vector),
        fields: op.doc.fields,
        text: op.doc.text,
        lexical: op.doc.lexical ?? op.doc.text,
      });
      this.lexical.add(op.doc.id, op.doc.lexical ?? op.doc.text);
    } else if (op.op === 'del') {
      this.docs.delete(op.id);
      this.lexical.remove(op.id);
    } else {
      const doc = this.docs.get(op.id);
      if (doc) doc.fields = { ...doc.fields, ...op.fields };
    }
  }
}

function normalise(vector: number[]): number[] {
  let sum = 0;
  for (const v of vector) sum += v * v;
  const norm = Math.sqrt(sum);
  return norm === 0 ? vector : vector.map((v) => v / norm);
}

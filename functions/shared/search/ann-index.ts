/**
 * The embedded vector store for local mode: an HNSW graph (hnswlib-node) for approximate nearest
 * neighbours, over documents kept as an append-only log under the local data folder.
 *
 * Why hnswlib-node (measured on this 2-core machine, shared with other work, on 20k vectors from
 * the hashing embedder, 1024 dimensions; scripts/bench/RESULTS.md has the figures):
 * - @lancedb/lancedb 0.31.0, IVF_PQ: 140 s to build the index, a query 15 ms at p50, and 50
 *   concurrent queries p95 329 ms: its per-query overhead alone misses a 100 ms p95.
 * - hnswlib-node 3.0.0 (M 16, efConstruction 64): 1.3 ms an insert, a short-text query 1.0 ms at
 *   p50 with recall@10 0.91 at ef 64 (0.96 at ef 128). A native addon built by node-gyp at
 *   install; N-API, so one build serves every Node version, and it loads in worker threads.
 * - @orama/orama was not measured.
 *
 * What keeps answers exact where it matters:
 * - Sparse queries (the hashing embedder's: 3-7 non-zero dimensions) are scored from postings of
 *   the documents' non-zero dimensions while every document is sparse: exact, and at 100k about
 *   1 ms a query against 13-67 ms for a full scan; the graph serves dense embedders.
 * - The hybrid embedder's vectors are a dense head (USE-lite's 512 dimensions, of the exception's
 *   gist: every exception of one kind has the same) and a sparse rest (hashing of its words). With
 *   `denseHead`, each distinct head is kept once and the rest goes to the postings: a query scores
 *   the few distinct heads, adds the postings, and ranks every candidate exactly. Measured at 100k
 *   (bench:api's 8 queries, in-process, the query API's handler): 2.1-4.5 ms a request against
 *   3.6-19.5 ms through the graph and exact scans, and exact where the graph was approximate. The
 *   graph stays for dense embedders, and for heads that are not shared (`SparsePostings.add`).
 * - Filters are exact: a candidate set comes from per-field postings; when scanning it exactly is
 *   cheap (few candidates, or a sparse query such as the hashing embedder's) the answer is exact;
 *   otherwise the graph is searched with the filter applied to every node it visits, and when it
 *   finds fewer than k the candidates are scanned exactly.
 * - Documents written since the graph last caught up are scanned exactly and merged, so a write
 *   is searchable at once; the graph takes them in, a few milliseconds at a time, in the background.
 *
 * Persistence and crashes: the log is the truth (the exact index's file and format, so existing
 * data dirs keep their documents, and bench:api compares both on one file). Appends start with a newline, so a line cut by a kill is ended by
 * the next append and skipped when read. The graph is a cache: snapshots are written to a new file,
 * then a small manifest naming it is renamed into place; on open, nodes whose id and vector hash
 * match a live document are reused, the rest are re-added. A missing or damaged snapshot costs a
 * rebuild, never a wrong answer.
 *
 * Sharing: each local function runs in a thread of its own, so several instances share one log;
 * every call first reads what others appended since (whole lines only).
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type * as Hnswlib from 'hnswlib-node';
import type { HierarchicalNSW } from 'hnswlib-node';
import { Bm25Index } from './lexical.ts';
import { compileFilter, fuseHybrid, fusionDepth, keywordValues, withinRange } from './fusion.ts';
import type { FieldValue, SearchOptions, VectorDocument, VectorHit, VectorIndex } from './ports.ts';
import { decodeEmbeddingFloats, encodeEmbedding } from './stored-embedding.ts';

type Op =
  | { op: 'put'; doc: StoredDoc }
  | { op: 'del'; id: string }
  | { op: 'fields'; id: string; fields: Record<string, FieldValue> };

interface StoredDoc {
  id: string;
  vector: string; // stored-embedding.ts's form: float32 values, sparse or dense, base64
  fields: Record<string, FieldValue>;
  text: string;
  lexical?: string;
}

interface LiveDoc {
  id: string;
  /** Numbers the documents of this instance (never reused): where a search's filter marks it. */
  readonly ord: number;
  /** Its place in the sparse postings, or -1 when not in them. */
  slot: number;
  /** Normalised; null in an instance that has not searched yet (writers never need vectors). */
  vector: Float32Array | null;
  /** Identifies the vector: a graph node is reused only for the same id and hash. */
  hash: number;
  fields: Record<string, FieldValue>;
  text: string;
  /** Absent when it equals `text`. */
  lexical: string | undefined;
}

interface GraphNode {
  label: number;
  hash: number;
}

interface Manifest {
  version: 1;
  graph: string;
  dimensions: number;
  nextLabel: number;
  deleted: number;
  nodes: [id: string, label: number, hash: number][];
}

export interface AnnIndexOptions {
  /** Below this many documents no graph is built: an exact scan is as fast. */
  readonly graphMinDocs?: number;
  /** An exact scan is chosen when candidates × (query non-zeros + a visit) stays under this. */
  readonly exactBudget?: number;
  /** hnswlib parameters. */
  readonly m?: number;
  readonly efConstruction?: number;
  readonly efSearch?: number;
  /** A snapshot is written once the graph has this many nodes more than the last one. */
  readonly snapshotEvery?: number;
  /** Milliseconds of graph inserts per background slice, between which requests are served. */
  readonly foldSliceMs?: number;
  /**
   * Keep postings of every document's non-zero dimensions while all documents are sparse (the
   * hashing embedder's are): a sparse query is then scored exactly from them, touching only the
   * documents that share a dimension with it. Off, sparse queries go to the graph (tests of it).
   */
  readonly sparse?: boolean;
  /** A filter whose smallest posting has at most this many documents is marked in full before a search (`filterMarks`). */
  readonly eagerFilterMax?: number;
  /** Floats per array of the vector slab (`VectorSlab`); tests make it small to exercise repacking. */
  readonly slabFloats?: number;
  /**
   * Leading dimensions that are dense and shared by many documents: the hybrid embedder's model
   * part, which embeds an exception's gist (its words without ids and amounts), so every
   * exception of one kind has the same one. Given, the postings hold the other dimensions and
   * each distinct head is kept once (`SparsePostings`): a query scores the distinct heads, then
   * every document exactly from its head's score and its postings, with no graph. 0: none.
   */
  readonly denseHead?: number;
}

const DEFAULTS = {
  graphMinDocs: 1000,
  exactBudget: 200_000,
  m: 16,
  efConstruction: 64,
  efSearch: 64,
  snapshotEvery: 1000,
  foldSliceMs: 8,
  sparse: true,
  eagerFilterMax: 8_192,
  // 4 MiB, ~680 vectors of 1,536 dimensions.
  slabFloats: 1 << 20,
  denseHead: 0,
} satisfies Required<AnnIndexOptions>;

/** How much of the log `prepare` reads between two turns of the thread's event loop. */
const PREPARE_SLICE_BYTES = 1 << 20;
/** A scanned document's fixed cost in multiply-adds: measured, a visit costs ~60 of them. */
const VISIT_COST = 64;
/** A posting entry's cost in the same units (a gather, a multiply-add, a first-touch check). */
const POSTING_COST = 2;
/** A query with more non-zero dimensions than this is dense: the postings would touch everything. */
const SPARSE_QUERY_MAX_NON_ZERO = 64;
/** How much an exact scan's budget grows per unit of 1/selectivity of a filter (see `nearest`). */
const SELECTIVE_BUDGET = 1.5;
/** A document with more is dense (a model's embedding): the postings are dropped for good. */
const SPARSE_DOC_MAX_NON_ZERO = 512;
/** A document's visit in `SparsePostings.ranked` (typed arrays by slot, no object), in the same units. */
const SLOT_COST = 2;
/**
 * How much more of `exactCost`'s units `SparsePostings.ranked` may spend than the graph: its units
 * are cheaper (measured at 100k, ~2.3 ns against ~4 for an exact scan's, in typed arrays read in
 * order), and its answer is exact where the graph's is approximate.
 */
const RANKED_OVER_GRAPH = 2;
/** Distinct dense heads kept before their number is checked against the documents' (`SparsePostings.add`). */
const MAX_SHARED_HEADS = 4_096;
/** Zero dimensions between two non-zero ones below which `dot` multiplies through them. */
const RUN_GAP = 8;
/** Filters whose verdicts are kept between searches (each a byte a document). */
const FILTER_VERDICTS = 16;
const ADMITTED = 1;
const REFUSED = 2;

/** Loaded on first use: the addon is native, and only local mode needs it (never a Lambda bundle). */
let hnswlib: typeof Hnswlib | undefined;
function loadHnswlib(): typeof Hnswlib {
  hnswlib ??= createRequire(import.meta.url)('hnswlib-node') as typeof Hnswlib;
  return hnswlib;
}

const open = new Map<string, AnnVectorIndex>();
/** Set by stopGraphMaintenance: no fold is scheduled any more in this thread. */
let maintenanceStopped = false;

/**
 * Stops this thread's background graph work before the thread ends (the local function host
 * calls it before a worker exits): a thread terminated while hnswlib's addPoint runs dies with a
 * fatal N-API error that takes the whole process down. The graph is a cache; the log is the truth.
 */
export function stopGraphMaintenance(): void {
  maintenanceStopped = true;
  for (const index of open.values()) index.stopFolding();
}

export class AnnVectorIndex implements VectorIndex {
  private readonly path: string;
  private readonly options: Required<AnnIndexOptions>;

  // The log, as read so far.
  private readonly docs = new Map<string, LiveDoc>();
  private readonly postings = new Map<string, Set<LiveDoc>>();
  /** Each field's values by document number: what a filter compares (see `filterMarks`). */
  private readonly columns = new Map<string, Column>();
  /** Where the documents' vectors are kept (see `VectorSlab`). */
  private slab: VectorSlab;
  private repacks = 0;
  private readBytes = 0;
  private inode = -1;
  private logLines = 0;
  private withVectors = false;

  // The graph (searching instances only).
  private graph: HierarchicalNSW | null = null;
  private dimensions = 0;
  private readonly nodes = new Map<string, GraphNode>();
  private readonly byLabel = new Labels();
  private readonly pending = new Set<LiveDoc>();
  private nextLabel = 0;
  private deleted = 0;
  private snapshotNodes = 0;
  private folding: NodeJS.Timeout | null = null;

  // Postings of non-zero dimensions (searching instances, while every document is sparse).
  private sparse: SparsePostings | null = null;
  private sparseAnswers = 0;

  // BM25 over the documents' lexical text, built by the first hybrid search and kept up to date.
  private lexical: Bm25Index<LiveDoc> | null = null;

  private nextOrd = 0;
  /** Recent filters' verdicts by document number (see `filterMarks`); cleared when any document's fields change. */
  private readonly verdicts = new Map<string, { of: Uint8Array; complete: boolean }>();

  /** One instance per file in a thread: every handler there sees the same documents. */
  static at(path: string, options: AnnIndexOptions = {}): AnnVectorIndex {
    let index = open.get(path);
    if (!index) {
      index = new AnnVectorIndex(path, options);
      open.set(path, index);
    }
    return index;
  }

  /**
   * How many documents the log at `path` holds, as an instance reading it would count them (whole
   * lines only; a line cut short, or a put whose vector cannot be decoded, changes nothing),
   * without building an index: read a slice at a time, the thread's other work between slices.
   * For the local stack's diagnostics, counted on its main thread, which also serves the API and
   * the S3 and SQS emulators: building the index there to count it held that thread for 8.6 s at
   * 100k exceptions (`/health` unanswered meanwhile) and kept ~230 MB of it for good.
   */
  static async countDocuments(path: string, sliceBytes = PREPARE_SLICE_BYTES): Promise<number> {
    const ids = new Set<string>();
    let file: FileHandle;
    try {
      file = await openFile(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
    try {
      let position = 0;
      let rest = Buffer.alloc(0);
      for (;;) {
        const slice = Buffer.alloc(sliceBytes);
        const { bytesRead } = await file.read(slice, 0, sliceBytes, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        const chunk =
          rest.length > 0 ? Buffer.concat([rest, slice.subarray(0, bytesRead)]) : slice.subarray(0, bytesRead);
        const end = eachWholeLine(chunk, (line) => {
          const op = parseOp(line);
          if (op?.op === 'put' && logVector(op.doc.vector) !== undefined) ids.add(op.doc.id);
          else if (op?.op === 'del') ids.delete(op.id);
        });
        // What follows the last newline: the start of the next slice's first line.
        rest = Buffer.from(chunk.subarray(end));
      }
    } finally {
      await file.close();
    }
    return ids.size;
  }

  /** A fresh instance reading the files again (tests, tools); handlers use `at`. */
  static load(path: string, options: AnnIndexOptions = {}): AnnVectorIndex {
    return new AnnVectorIndex(path, options);
  }

  private constructor(path: string, options: AnnIndexOptions) {
    this.path = path;
    this.options = { ...DEFAULTS, ...options };
    this.slab = new VectorSlab(this.options.slabFloats);
    mkdirSync(dirname(path), { recursive: true });
    // The log is read by the first call, which reads it anyway: a search (or `prepare`) with the
    // vectors, once. Read here as well, a searching thread read 100k documents twice (~9 s more,
    // and the first request of any route, even a health check, waited for the first read).
  }

  async ensure(): Promise<void> {
    if (!existsSync(this.path)) writeFileSync(this.path, '', { flag: 'a' });
  }

  async replace(doc: VectorDocument): Promise<void> {
    await this.replaceMany([doc]);
  }

  /** One append for the lot: a batch of triaged exceptions costs one write. */
  async replaceMany(docs: readonly VectorDocument[]): Promise<void> {
    if (docs.length === 0) return;
    this.append(
      docs.map((doc) => ({
        op: 'put',
        doc: {
          id: doc.id,
          vector: encodeEmbedding(doc.vector),
          fields: { ...doc.fields },
          text: doc.text,
          ...(doc.lexical !== undefined ? { lexical: doc.lexical } : {}),
        },
      })),
    );
  }

  async updateFields(id: string, fields: Readonly<Record<string, FieldValue>>): Promise<void> {
    this.sync();
    if (this.docs.has(id)) this.append([{ op: 'fields', id, fields: { ...fields } }]);
  }

  async deleteWhere(field: string, value: string): Promise<number> {
    this.sync();
    const ids = [...(this.postings.get(postingKey(field, value)) ?? [])].map((d) => d.id);
    if (ids.length > 0) this.append(ids.map((id) => ({ op: 'del', id })));
    return ids.length;
  }

  /**
   * What a first hybrid search loads (the vectors, their postings, BM25's index), loaded now, a
   * slice of the log at a time with the thread's other work between slices: at 100k hybrid
   * exceptions the whole takes ~20 s, while a request waits one slice (~1 MiB, tens of ms) at
   * most. A search meanwhile reads the rest at once, as it would have.
   */
  async prepare(sliceBytes = PREPARE_SLICE_BYTES): Promise<void> {
    this.needVectors();
    // Not read yet: an empty word index, which the reading fills (`resetLog` keeps one held).
    this.lexical ??= this.inode === -1 ? new Bm25Index<LiveDoc>((doc) => doc.ord) : this.buildLexical();
    while (!this.sync(sliceBytes)) await new Promise((resolve) => setImmediate(resolve));
  }

  async search(
    vector: number[],
    k: number,
    filter: Readonly<Record<string, string>> = {},
    options: SearchOptions = {},
  ): Promise<VectorHit[]> {
    this.needVectors();
    this.sync();
    if (k <= 0) return [];
    const { accept, candidates } = this.filterMarks(filter, options.ranges);
    if (options.text === undefined) return this.nearest(vector, k, candidates, accept);
    const depth = fusionDepth(k);
    this.lexical ??= this.buildLexical();
    const lexical = this.lexical
      .searchByKey(options.text, depth, accept)
      .map(({ doc, score }) => ({ ...hit(doc, score), lexical: doc.lexical ?? doc.text }));
    return fuseHybrid(options.text, this.nearest(vector, depth, candidates, accept), lexical, k);
  }

  /**
   * The filter as a cheap per-document test, and the smallest posting of its equalities (a
   * superset of its matches; null when it has none). The graph asks it about every node it visits and
   * BM25 about every posting of a common word: at 100k, a filtered hybrid query spent more time
   * in the field-by-field filter than in either search. Here each equality reads the field's value
   * from an array by document number, each answer is remembered (for the later searches of the
   * same filter too, until a document's fields change), and a filter whose smallest posting is
   * small is marked in full up front (cheaper than being asked about the documents of a common
   * word one by one). Valid for this search: a search runs from here to its answer without
   * yielding.
   */
  private filterMarks(
    filter: Readonly<Record<string, string>>,
    ranges: SearchOptions['ranges'],
  ): { accept: ((ord: number) => boolean) | null; candidates: Set<LiveDoc> | null } {
    const bounds = Object.entries(ranges ?? {}).filter(([, r]) => r.from !== undefined || r.to !== undefined);
    const equalities = Object.entries(filter);
    if (equalities.length === 0 && bounds.length === 0) return { accept: null, candidates: null };
    const limits = bounds.map(([field, range]) => ({ range, column: this.columns.get(field) ?? new Column() }));
    const conditions = equalities
      .map(([field, value]) => {
        const column = this.columns.get(field) ?? new Column();
        return { value, column, code: column.codeOf(value), posting: this.postings.get(postingKey(field, value)) };
      })
      .sort((a, b) => (a.posting?.size ?? 0) - (b.posting?.size ?? 0));
    // Indexed loops: a for-of here made an iterator per ask (a filtered search's largest garbage).
    const passes = (ord: number): boolean => {
      for (let i = 0; i < conditions.length; i++) {
        const { value, column, code } = conditions[i] as (typeof conditions)[number];
        if (!column.holds(ord, code, value)) return false;
      }
      for (let i = 0; i < limits.length; i++) {
        const { range, column } = limits[i] as (typeof limits)[number];
        if (!withinRange(column.text(ord), range)) return false;
      }
      return true;
    };
    // The verdicts of this filter from earlier searches, while no document's fields have changed:
    // a dashboard asks the same few filters again and again (bench:api at 100k: ~7% of a
    // filtered search was asking the columns again).
    const key = JSON.stringify([equalities, bounds]);
    let verdicts = this.verdicts.get(key);
    // (A document added since clears them all: a kept one is never too short.)
    if (verdicts === undefined || verdicts.of.length < this.nextOrd)
      verdicts = { of: new Uint8Array(Math.max(this.nextOrd * 2, 1_024)), complete: false };
    // Most recently used last; the oldest out past the limit.
    this.verdicts.delete(key);
    this.verdicts.set(key, verdicts);
    if (this.verdicts.size > FILTER_VERDICTS) this.verdicts.delete(this.verdicts.keys().next().value as string);
    const of = verdicts.of;
    const candidates = conditions.length > 0 ? (conditions[0]?.posting ?? new Set<LiveDoc>()) : null;
    if (candidates !== null && candidates.size <= this.options.eagerFilterMax) {
      // Every admitted document is a candidate: mark them all up front, and all others refused.
      if (!verdicts.complete) {
        for (const doc of candidates) if (passes(doc.ord)) of[doc.ord] = ADMITTED;
        verdicts.complete = true;
      }
      return { accept: (ord) => of[ord] === ADMITTED, candidates };
    }
    const accept = (ord: number): boolean => {
      const seen = of[ord] as number;
      if (seen === ADMITTED) return true;
      if (seen === REFUSED) return false;
      const verdict = passes(ord);
      of[ord] = verdict ? ADMITTED : REFUSED;
      return verdict;
    };
    return { accept, candidates };
  }

  private buildLexical(): Bm25Index<LiveDoc> {
    const index = new Bm25Index<LiveDoc>((doc) => doc.ord);
    for (const doc of this.docs.values()) index.add(doc, doc.lexical ?? doc.text);
    return index;
  }

  /** Vector search among `candidates` (all documents when null); `accept` is the whole filter. */
  private nearest(
    vector: number[],
    k: number,
    candidates: Set<LiveDoc> | null,
    accept: ((ord: number) => boolean) | null,
  ): VectorHit[] {
    const query = normalised(vector);
    const nonZero = nonZeroIndices(query);
    const runs = nonZeroRuns(nonZero);
    const matches = (doc: LiveDoc) => accept === null || accept(doc.ord);
    const size = candidates === null ? this.docs.size : candidates.size;
    const all = candidates ?? this.docs.values();
    // Each document scanned costs its multiply-adds plus a visit (a cache miss, a filter check).
    const exactCost = size * (nonZero.length + VISIT_COST);
    // A filtered graph search visits about 1/selectivity times the nodes of an unfiltered one (it
    // walks past the nodes the filter refuses), and far more when the matches lie away from the
    // query: so the budget for an exact scan of the candidates grows as they get fewer. Measured
    // at 100k hybrid vectors: 5,000 candidates, graph 13-27 ms, exact scan 16-17 ms (~3 µs a
    // candidate; 10-12 ms since `VectorSlab`); 14,000, graph 2.5-4 ms for a query near its
    // matches but ~200 ms for one far from them, exact ~36 ms (the graph is kept there: the
    // common case is the near one).
    const budget = this.options.exactBudget * Math.max(1, (SELECTIVE_BUDGET * this.docs.size) / Math.max(1, size));

    const sparse = this.sparse;
    if (sparse !== null && sparse.head > 0) {
      // Past the head, a hybrid query's words: each a list of the documents that hold it.
      let from = 0;
      while (from < nonZero.length && (nonZero[from] as number) < sparse.head) from++;
      const tail = nonZero.subarray(from);
      // Against what would run otherwise: an exact scan, or the graph (about `budget`'s cost).
      const otherwise = exactCost <= budget ? exactCost : RANKED_OVER_GRAPH * budget;
      if (sparse.rankCost(tail, candidates === null ? null : candidates.size) <= otherwise) {
        this.sparseAnswers++;
        return sparse.ranked(query, tail, k, candidates, accept).hits();
      }
    } else if (sparse !== null && nonZero.length <= SPARSE_QUERY_MAX_NON_ZERO) {
      if (sparse.cost(nonZero) * POSTING_COST <= exactCost) {
        const top = sparse.positives(query, nonZero, k, candidates, matches);
        // Every document outside the postings scores 0, below every positive one: k positives
        // are the answer. Fewer, and the zero and negative ones are ranked by an exact scan.
        if (top.size() >= k || top.size() >= size) {
          this.sparseAnswers++;
          return top.hits();
        }
      }
      return this.exact(all, query, runs, k, matches);
    }

    // The exact scan answers before the graph is asked for: a graph is opened (and at 100k hybrid
    // vectors, built: ~2 minutes of a core in 8 ms slices between searches, ~1.2 GB held) only by
    // a search that would walk it. A selective filter whose candidates cost less to scan than the
    // query's word lists (an account's few exceptions) opened it before, for no search using it.
    if (exactCost <= budget) return this.exact(all, query, runs, k, matches);
    this.maintainGraph();
    const graph = this.graph;
    if (graph === null || this.byLabel.size === 0) return this.exact(all, query, runs, k, matches);
    const top = new TopK(k);
    const ef = Math.max(this.options.efSearch, k);
    graph.setEf(ef);
    const wanted = Math.min(k, this.byLabel.size);
    const acceptLabel =
      accept === null
        ? undefined
        : (label: number) => {
            const ord = this.byLabel.ord(label);
            return ord >= 0 && accept(ord);
          };
    const result = graph.searchKnn(Array.from(query), wanted, acceptLabel);
    result.neighbors.forEach((label, i) => {
      const doc = this.byLabel.get(label);
      // Inner-product distance is 1 - cos.
      if (doc) top.offer(doc, 1 - (result.distances[i] as number));
    });
    let found = top.size();
    for (const doc of this.pending) {
      if (matches(doc)) {
        found++;
        top.offer(doc, dot(query, runs, doc.vector));
      }
    }
    // The graph may miss matches of a selective filter: then the candidates decide, exactly.
    if (found < k && size > found) return this.exact(all, query, runs, k, matches);
    return top.hits();
  }

  async count(filter: Readonly<Record<string, string>> = {}): Promise<number> {
    this.sync();
    const entries = Object.entries(filter);
    const candidates = this.candidates(entries);
    if (candidates === null) return this.docs.size;
    const accept = compileFilter(filter);
    let n = 0;
    for (const doc of candidates) if (!accept || accept(doc.fields)) n++;
    return n;
  }

  /** Waits until the graph holds every document (benchmarks, tests); search never needs to. */
  async settle(): Promise<void> {
    this.needVectors();
    this.sync();
    this.maintainGraph();
    if (this.folding) clearTimeout(this.folding);
    this.folding = null;
    while (this.pending.size > 0) this.fold(Number.POSITIVE_INFINITY);
    this.maybeSnapshot();
  }

  /** How the graph and the postings stand (benchmarks, tests). */
  graphStats(): {
    nodes: number;
    pending: number;
    deleted: number;
    postings: boolean;
    /** Distinct dense heads kept (`denseHead`), 0 without. */
    heads: number;
    sparseAnswers: number;
    /** Of those, rankings ended before visiting every document (`SparsePostings.rankAll`'s bounds). */
    boundedAnswers: number;
    vectorRepacks: number;
    /** BM25's index is held (built by a hybrid search, or filled by `prepare` as the log is read). */
    lexical: boolean;
  } {
    return {
      nodes: this.byLabel.size,
      pending: this.pending.size,
      deleted: this.deleted,
      postings: this.sparse !== null,
      heads: this.sparse?.distinctHeads() ?? 0,
      sparseAnswers: this.sparseAnswers,
      boundedAnswers: this.sparse?.boundedAnswers ?? 0,
      vectorRepacks: this.repacks,
      lexical: this.lexical !== null,
    };
  }

  private exact(
    docs: Iterable<LiveDoc>,
    query: Float32Array,
    runs: Int32Array,
    k: number,
    matches: (doc: LiveDoc) => boolean,
  ): VectorHit[] {
    const top = new TopK(k);
    for (const doc of docs) if (matches(doc)) top.offer(doc, dot(query, runs, doc.vector));
    return top.hits();
  }

  /** The smallest posting list among the filter's terms (a superset of the matches), or null for all. */
  private candidates(entries: [string, string][]): Set<LiveDoc> | null {
    let best: Set<LiveDoc> | null = null;
    for (const [field, value] of entries) {
      const posting = this.postings.get(postingKey(field, value)) ?? new Set<LiveDoc>();
      if (best === null || posting.size < best.size) best = posting;
    }
    return best;
  }

  // ---- the log ----

  private append(ops: Op[]): void {
    // The leading newline ends a line a kill may have cut short, so it is skipped, not merged.
    appendFileSync(this.path, `\n${ops.map((op) => JSON.stringify(op)).join('\n')}\n`);
    this.sync();
    // Rewrite the log once it is mostly superseded operations.
    if (this.logLines > 1000 && this.logLines > 3 * this.docs.size) this.compact();
  }

  /**
   * Applies what was appended to the file since the last call (by any instance, in any thread),
   * or its first `maxBytes` (whole lines; `prepare`'s slices). True when it has read to the end.
   */
  private sync(maxBytes = Number.POSITIVE_INFINITY): boolean {
    // One stat when nothing changed (every search starts here): no open, fstat and close.
    const stat = statSync(this.path, { throwIfNoEntry: false });
    if (stat === undefined || (stat.ino === this.inode && stat.size === this.readBytes)) return true;
    let atEnd: boolean;
    const fd = openSync(this.path, 'r');
    try {
      const { ino, size } = fstatSync(fd);
      if (ino !== this.inode || size < this.readBytes) {
        // First read, or the log was compacted: read it again (graph nodes are kept and re-claimed).
        this.resetLog();
        this.inode = ino;
      }
      if (size === this.readBytes) return true;
      let chunk = Buffer.alloc(Math.min(size - this.readBytes, maxBytes));
      readSync(fd, chunk, 0, chunk.length, this.readBytes);
      // Only whole lines: a concurrent append may be half written. A slice with none (a line
      // longer than the slice) reads on to the end.
      if (chunk.length < size - this.readBytes && chunk.lastIndexOf(0x0a) === -1) {
        chunk = Buffer.alloc(size - this.readBytes);
        readSync(fd, chunk, 0, chunk.length, this.readBytes);
      }
      atEnd = chunk.length === size - this.readBytes;
      this.readBytes += eachWholeLine(chunk, (line) => this.applyLine(line));
    } finally {
      closeSync(fd);
    }
    if (this.slab.wasteful()) this.repack();
    if (this.graph) this.dropOrphanNodes();
    return atEnd;
  }

  private applyLine(line: string): void {
    const op = parseOp(line);
    if (op === undefined) return;
    this.logLines++;
    if (op.op === 'put') this.put(op.doc);
    else if (op.op === 'del') this.remove(op.id);
    else this.patch(op.id, op.fields);
  }

  private put(stored: StoredDoc): void {
    const raw = logVector(stored.vector);
    if (raw === undefined) return; // damaged: as a line cut short, never an acknowledged write
    const doc: LiveDoc = {
      id: stored.id,
      ord: this.nextOrd++,
      slot: -1,
      vector: this.withVectors ? this.slab.add(normalised(raw)) : null,
      hash: hashWords(raw),
      fields: stored.fields,
      text: stored.text,
      lexical: stored.lexical,
    };
    const old = this.docs.get(doc.id);
    if (old) {
      this.slab.drop(old.vector);
      this.unpost(old);
      this.sparse?.remove(old);
      this.lexical?.remove(old);
    }
    this.docs.set(doc.id, doc);
    this.post(doc);
    this.lexical?.add(doc, doc.lexical ?? doc.text);
    if (this.sparse && doc.vector && !this.sparse.add(doc, raw)) this.sparse = null;
    if (this.graph) {
      if (old) this.pending.delete(old);
      const node = this.nodes.get(doc.id);
      if (node && node.hash !== doc.hash) this.dropNode(doc.id);
      const kept = this.nodes.get(doc.id);
      if (kept) this.byLabel.set(kept.label, doc);
      else this.pending.add(doc);
    }
  }

  private remove(id: string): void {
    const doc = this.docs.get(id);
    if (!doc) return;
    this.slab.drop(doc.vector);
    this.unpost(doc);
    this.sparse?.remove(doc);
    this.lexical?.remove(doc);
    this.docs.delete(id);
    this.pending.delete(doc);
    if (this.graph) this.dropNode(id);
  }

  private patch(id: string, fields: Record<string, FieldValue>): void {
    const doc = this.docs.get(id);
    if (!doc) return;
    this.unpost(doc);
    doc.fields = { ...doc.fields, ...fields };
    this.post(doc);
  }

  private post(doc: LiveDoc): void {
    this.verdicts.clear();
    for (const [field, value] of Object.entries(doc.fields)) {
      let column = this.columns.get(field);
      if (!column) this.columns.set(field, (column = new Column()));
      column.set(doc.ord, value);
      for (const one of keywordValues(value)) {
        const key = postingKey(field, one);
        let set = this.postings.get(key);
        if (!set) this.postings.set(key, (set = new Set()));
        set.add(doc);
      }
    }
  }

  private unpost(doc: LiveDoc): void {
    this.verdicts.clear();
    for (const [field, value] of Object.entries(doc.fields)) {
      this.columns.get(field)?.set(doc.ord, undefined);
      for (const one of keywordValues(value)) {
        const key = postingKey(field, one);
        const set = this.postings.get(key);
        set?.delete(doc);
        if (set?.size === 0) this.postings.delete(key);
      }
    }
  }

  /**
   * The live vectors copied into a fresh slab, in document order: replaced ones' space is freed.
   * A copy of every vector (measured: 0.2-0.6 s for 100k of 1,536 dimensions), in the search
   * that finds the slab wasteful; each repack frees at least a quarter of the live size, so they
   * stay rare.
   */
  private repack(): void {
    const slab = new VectorSlab(this.options.slabFloats);
    for (const doc of this.docs.values()) if (doc.vector) doc.vector = slab.add(doc.vector);
    this.slab = slab;
    this.repacks++;
  }

  private resetLog(): void {
    this.slab = new VectorSlab(this.options.slabFloats);
    this.docs.clear();
    this.postings.clear();
    this.columns.clear();
    this.verdicts.clear();
    this.pending.clear();
    this.byLabel.clear();
    // A word index held is filled again as the log is read; none is built by the first hybrid search.
    this.lexical = this.lexical === null ? null : new Bm25Index<LiveDoc>((doc) => doc.ord);
    this.nextOrd = 0;
    this.readBytes = 0;
    this.logLines = 0;
    this.sparse = this.withVectors && this.options.sparse ? new SparsePostings(this.options.denseHead) : null;
  }

  /** The first search makes this instance keep vectors: read the log again with them. */
  private needVectors(): void {
    if (this.withVectors) return;
    this.withVectors = true;
    this.inode = -1;
  }

  private compact(): void {
    // Vectors come from the log as stored, so each keeps its hash and its graph node.
    const vectors = new Map<string, string>();
    // Line by line from bytes: a large log is longer than the longest string V8 makes (512 MiB).
    const bytes = readFileSync(this.path);
    for (let start = 0; start < bytes.length;) {
      const stop = bytes.indexOf(0x0a, start) === -1 ? bytes.length : bytes.indexOf(0x0a, start);
      const line = bytes.toString('utf8', start, stop);
      start = stop + 1;
      if (!line.startsWith('{"op":"put"')) continue;
      try {
        const op = JSON.parse(line) as { doc: StoredDoc };
        vectors.set(op.doc.id, op.doc.vector);
      } catch {
        // a line cut short by a crash
      }
    }
    const lines = [...this.docs.values()].map((d) =>
      JSON.stringify({
        op: 'put',
        doc: { id: d.id, vector: vectors.get(d.id) ?? '', fields: d.fields, text: d.text, lexical: d.lexical },
      }),
    );
    const tmp = `${this.path}.${randomUUID()}.tmp`;
    writeFileSync(tmp, lines.length ? `${lines.join('\n')}\n` : '');
    // Another thread appended meanwhile: keep its lines, compact another time.
    const now = statSync(this.path);
    if (now.ino !== this.inode || now.size !== this.readBytes) {
      unlinkSync(tmp);
      return;
    }
    renameSync(tmp, this.path);
    this.sync();
  }

  // ---- the graph ----

  private maintainGraph(): void {
    if (!this.graph && this.docs.size >= this.options.graphMinDocs) this.openGraph();
    if (this.graph && this.deleted > Math.max(this.options.graphMinDocs, this.byLabel.size)) {
      // Mostly superseded nodes: start a fresh graph rather than search through them.
      this.newGraph();
    }
    if (this.pending.size > 0) this.scheduleFold();
  }

  private openGraph(): void {
    const first = this.docs.values().next().value as LiveDoc | undefined;
    if (!first?.vector) return;
    this.dimensions = first.vector.length;
    if (!this.loadSnapshot()) this.newGraph();
  }

  private newGraph(): void {
    const { HierarchicalNSW } = loadHnswlib();
    const graph = new HierarchicalNSW('ip', this.dimensions);
    graph.initIndex({
      maxElements: Math.max(1024, this.docs.size * 2),
      m: this.options.m,
      efConstruction: this.options.efConstruction,
    });
    this.graph = graph;
    this.nodes.clear();
    this.byLabel.clear();
    this.nextLabel = 0;
    this.deleted = 0;
    this.snapshotNodes = 0;
    this.pending.clear();
    for (const doc of this.docs.values()) this.pending.add(doc);
  }

  private loadSnapshot(): boolean {
    const manifestPath = `${this.path}.graph.json`;
    try {
      if (!existsSync(manifestPath)) return false;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
      if (manifest.version !== 1 || manifest.dimensions !== this.dimensions) return false;
      const { HierarchicalNSW } = loadHnswlib();
      const graph = new HierarchicalNSW('ip', this.dimensions);
      graph.readIndexSync(join(dirname(this.path), manifest.graph));
      this.graph = graph;
      this.nodes.clear();
      this.byLabel.clear();
      this.pending.clear();
      for (const [id, label, hash] of manifest.nodes) this.nodes.set(id, { label, hash });
      this.nextLabel = manifest.nextLabel;
      this.deleted = manifest.deleted;
      this.snapshotNodes = manifest.nodes.length;
      for (const doc of this.docs.values()) {
        const node = this.nodes.get(doc.id);
        if (node && node.hash !== doc.hash) this.dropNode(doc.id);
        const kept = this.nodes.get(doc.id);
        if (kept) this.byLabel.set(kept.label, doc);
        else this.pending.add(doc);
      }
      this.dropOrphanNodes();
      return true;
    } catch {
      // A damaged or vanished snapshot: rebuild from the log.
      this.graph = null;
      return false;
    }
  }

  private dropNode(id: string): void {
    const node = this.nodes.get(id);
    if (!node || !this.graph) return;
    this.graph.markDelete(node.label);
    this.nodes.delete(id);
    this.byLabel.delete(node.label);
    this.deleted++;
  }

  /** Nodes no live document claims (deleted while another instance held the log). */
  private dropOrphanNodes(): void {
    if (this.nodes.size === this.byLabel.size) return;
    for (const [id, node] of [...this.nodes]) if (this.byLabel.get(node.label)?.id !== id) this.dropNode(id);
  }

  /** Cancels the scheduled fold (stopGraphMaintenance). */
  stopFolding(): void {
    if (this.folding) clearTimeout(this.folding);
    this.folding = null;
  }

  private scheduleFold(): void {
    if (this.folding || maintenanceStopped) return;
    this.folding = setTimeout(() => {
      this.folding = null;
      if (!this.graph) return;
      this.fold(this.options.foldSliceMs);
      if (this.pending.size > 0) this.scheduleFold();
      else this.maybeSnapshot();
    }, 0);
    // Folding is an optimisation: it never keeps a process alive.
    this.folding.unref();
  }

  private fold(sliceMs: number): void {
    const graph = this.graph;
    if (!graph) return;
    const started = performance.now();
    for (const doc of this.pending) {
      this.pending.delete(doc);
      if (!doc.vector || doc.vector.length !== this.dimensions) continue;
      if (graph.getCurrentCount() >= graph.getMaxElements()) graph.resizeIndex(graph.getMaxElements() * 2);
      const label = this.nextLabel++;
      graph.addPoint(Array.from(doc.vector), label);
      this.nodes.set(doc.id, { label, hash: doc.hash });
      this.byLabel.set(label, doc);
      if (performance.now() - started >= sliceMs) break;
    }
  }

  private maybeSnapshot(): void {
    const graph = this.graph;
    if (!graph || this.nodes.size - this.snapshotNodes < this.options.snapshotEvery) return;
    const dir = dirname(this.path);
    const prefix = `${basename(this.path)}.hnsw-`;
    const file = `${prefix}${randomUUID()}`;
    try {
      graph.writeIndexSync(join(dir, file));
      const manifest: Manifest = {
        version: 1,
        graph: file,
        dimensions: this.dimensions,
        nextLabel: this.nextLabel,
        deleted: this.deleted,
        nodes: [...this.nodes].map(([id, n]) => [id, n.label, n.hash]),
      };
      const tmp = `${this.path}.graph.json.${randomUUID()}.tmp`;
      writeFileSync(tmp, JSON.stringify(manifest));
      renameSync(tmp, `${this.path}.graph.json`);
      this.snapshotNodes = this.nodes.size;
      // Older snapshots (left by this or another instance a while ago) are no longer named.
      for (const name of readdirSync(dir)) {
        if (!name.startsWith(prefix) || name === file) continue;
        const full = join(dir, name);
        if (Date.now() - statSync(full).mtimeMs > 60_000) unlinkSync(full);
      }
    } catch {
      // A snapshot only saves a rebuild: failing to write one changes no answer.
    }
  }
}

/** A copy of `array`, `size` long, its new places set to `fill`. */
function grown<T extends Float32Array | Float64Array | Int32Array>(array: T, size: number, fill = 0): T {
  const copy = new (array.constructor as new (length: number) => T)(size);
  if (fill !== 0) copy.fill(fill, array.length);
  copy.set(array);
  return copy;
}

/** A bound raised past its own rounding (its sums run in another order than the scores they bound). */
function aboveRounding(bound: number): number {
  return bound + Math.abs(bound) * 1e-9 + 1e-12;
}

/**
 * A slot's score in a ranking over every slot: its head's score times its 1/norm, plus its words'
 * sum, which is set back to zero (`sums` is all zeros between searches: no pass clears it).
 */
function takeScore(
  headScores: Float64Array,
  headOf: Int32Array,
  scale: Float64Array,
  sums: Float64Array,
  slot: number,
): number {
  const score = (headScores[headOf[slot] as number] as number) * (scale[slot] as number);
  const sum = sums[slot] as number;
  if (sum === 0) return score;
  sums[slot] = 0;
  return score + sum;
}

/** Adds q times each of a posting list's values to its documents' scores. */
function addList(scores: Float64Array, list: PostingList, q: number): void {
  const { docs, values } = list;
  for (let p = 0; p < list.n; p++) {
    const slot = docs[p] as number;
    scores[slot] = (scores[slot] as number) + q * (values[p] as number);
  }
}

/** A dimension's documents (slots, ascending) and their values; `max`/`min` bound every value it ever held. */
interface PostingList {
  docs: Int32Array;
  values: Float32Array;
  n: number;
  max: number;
  min: number;
}

/**
 * Inverted lists over non-zero dimensions: for each dimension, the slots of the documents that
 * have it and their values. Scoring a query adds, per slot, the products over the query's own
 * non-zero dimensions in ascending order: the same sum, in the same order, as `dot`, so the
 * scores equal an exact scan's bit for bit.
 *
 * With a dense head (`AnnIndexOptions.denseHead`), the lists start after it, and each document's
 * head is one of the distinct heads, kept once as read from the log (before normalising) with
 * the document's 1/norm beside its slot. A document's score is then its head's dot product with
 * the query, times its 1/norm, plus its postings' sum: the exact cosine up to float rounding (the
 * normalised vector's floats are rounded once more), ~1e-7.
 */
class SparsePostings {
  private slots: (LiveDoc | undefined)[] = [];
  private dead = 0;
  private lists: PostingList[] = [];
  // Scratch space reused by every query (a thread runs one search at a time).
  private scores = new Float64Array(0);
  private seen = new Int32Array(0);
  private touchedSlots = new Int32Array(0);
  private epoch = 0;
  // The distinct heads, `head` floats each, and by slot which one and the document's 1/norm.
  private heads = new Float32Array(0);
  private headCount = 0;
  private readonly headsByHash = new Map<number, number[]>();
  private headOf = new Int32Array(0);
  private scale = new Float64Array(0);
  private headScores = new Float64Array(0);
  // By head: the largest and smallest 1/norm of a document placed with it (bounds: never lowered).
  private headMaxScale = new Float64Array(0);
  private headMinScale = new Float64Array(0);
  private order = new Int32Array(0);
  private kept = new Int32Array(0);
  private keptScores = new Float64Array(0);
  private sums = new Float64Array(0);
  /** By slot, its document's number (what a filter is asked about), -1 once removed. */
  private ords = new Int32Array(0);

  /** Leading dimensions kept as distinct heads rather than in the lists (0: none). */
  readonly head: number;
  /** Rankings `rankAll` ended before visiting every slot. */
  boundedAnswers = 0;

  constructor(head = 0) {
    this.head = head;
  }

  /** How many distinct heads were read (never fewer: a head no document holds any more stays). */
  distinctHeads(): number {
    return this.headCount;
  }

  /**
   * False when the document is dense past the head, or brings a new head once they are many
   * and as many as half the documents (nothing shared to exploit): the caller drops these postings.
   */
  add(doc: LiveDoc, raw: Float32Array): boolean {
    const vector = doc.vector as Float32Array;
    const head = this.head;
    if (vector.length < head) return false;
    let nonZero = 0;
    for (let i = head; i < vector.length; i++) if (vector[i] !== 0) nonZero++;
    if (nonZero > SPARSE_DOC_MAX_NON_ZERO) return false;
    let headId = -1;
    // The head's hash: where its kin are looked up, and filed under if it is new.
    const key = head > 0 ? hashWords(raw.subarray(0, head)) : 0;
    if (head > 0) {
      headId = this.findHead(raw, key);
      if (headId < 0 && this.headCount >= MAX_SHARED_HEADS && this.headCount * 2 >= this.slots.length - this.dead)
        return false;
    }
    if (this.dead > 1024 && this.dead > this.slots.length - this.dead) this.rebuild();
    doc.slot = this.slots.length;
    this.slots.push(doc);
    if (head > 0) {
      if (headId < 0) headId = this.addHead(raw, key);
      const length = norm(raw);
      this.place(doc, headId, length === 0 ? 1 : 1 / length);
    }
    this.index(doc);
    return true;
  }

  private findHead(raw: Float32Array, key: number): number {
    const head = this.head;
    const same = this.headsByHash.get(key);
    if (!same) return -1;
    for (const id of same) {
      const base = id * head;
      let i = 0;
      while (i < head && this.heads[base + i] === raw[i]) i++;
      if (i === head) return id;
    }
    return -1;
  }

  private addHead(raw: Float32Array, key: number): number {
    const head = this.head;
    const id = this.headCount++;
    if (this.headMaxScale.length < this.headCount) {
      const size = Math.max(this.headCount * 2, 16);
      this.heads = grown(this.heads, size * head);
      // No document placed with a new head yet: no bound (rankAll skips it).
      this.headMaxScale = grown(this.headMaxScale, size, Number.NEGATIVE_INFINITY);
      this.headMinScale = grown(this.headMinScale, size, Number.POSITIVE_INFINITY);
    }
    this.heads.set(raw.subarray(0, head), id * head);
    const same = this.headsByHash.get(key);
    if (same) same.push(id);
    else this.headsByHash.set(key, [id]);
    return id;
  }

  private place(doc: LiveDoc, headId: number, scale: number): void {
    const slot = doc.slot;
    if (slot >= this.headOf.length) {
      const size = Math.max(slot + 1, this.headOf.length * 2, 1_024);
      this.headOf = grown(this.headOf, size);
      this.scale = grown(this.scale, size);
      this.ords = grown(this.ords, size);
    }
    this.headOf[slot] = headId;
    this.scale[slot] = scale;
    this.ords[slot] = doc.ord;
    // (Every head id comes from addHead, which sized these.)
    if (scale > (this.headMaxScale[headId] as number)) this.headMaxScale[headId] = scale;
    if (scale < (this.headMinScale[headId] as number)) this.headMinScale[headId] = scale;
  }

  remove(doc: LiveDoc): void {
    if (doc.slot < 0) return;
    if (doc.slot < this.ords.length) this.ords[doc.slot] = -1;
    this.slots[doc.slot] = undefined;
    doc.slot = -1;
    this.dead++;
  }

  /** Posting entries a query would read. */
  cost(nonZero: Int32Array): number {
    let n = 0;
    for (let j = 0; j < nonZero.length; j++) n += this.lists[nonZero[j] as number]?.n ?? 0;
    return n;
  }

  /** The k best documents with a positive score, among the candidates (or all), that `accept` admits. */
  positives(
    query: Float32Array,
    nonZero: Int32Array,
    k: number,
    candidates: Set<LiveDoc> | null,
    accept: (doc: LiveDoc) => boolean,
  ): TopK {
    const size = this.slots.length;
    const scores = this.scoresFor(size);
    // Lists shorter in all than the slots: score only the slots they touch, and rank only those,
    // rather than clear and pass over every slot twice (at 100k, most of a rare-word query's time).
    const touched = this.cost(nonZero) < size ? this.touch(size) : null;
    if (touched === null) scores.fill(0, 0, size);
    let n = 0;
    const seen = this.seen;
    const epoch = this.epoch;
    for (let j = 0; j < nonZero.length; j++) {
      const dim = nonZero[j] as number;
      const list = this.lists[dim];
      if (!list) continue;
      const q = query[dim] as number;
      if (touched === null) {
        addList(scores, list, q);
        continue;
      }
      const { docs, values } = list;
      for (let p = 0; p < list.n; p++) {
        const slot = docs[p] as number;
        // First touch: 0 + x is x, so the sum is the same, bit for bit, as from a cleared slot.
        if (seen[slot] !== epoch) {
          seen[slot] = epoch;
          touched[n++] = slot;
          scores[slot] = q * (values[p] as number);
        } else scores[slot] = (scores[slot] as number) + q * (values[p] as number);
      }
    }
    // First the k-th best score among admitted documents (numbers only: no id compared), then
    // the documents at or above it, ranked with ids breaking ties.
    const best = new MinHeap(k);
    const top = new TopK(k);
    if (candidates !== null && candidates.size * 4 < size) {
      // A selective filter: visit its candidates rather than every slot.
      for (const doc of candidates) {
        const score = doc.slot < 0 || (touched !== null && seen[doc.slot] !== epoch) ? 0 : (scores[doc.slot] as number);
        if (score > 0 && (!best.full() || score > best.min()) && accept(doc)) best.push(score);
      }
      const floor = best.full() ? best.min() : Number.MIN_VALUE;
      for (const doc of candidates) {
        const score = doc.slot < 0 || (touched !== null && seen[doc.slot] !== epoch) ? 0 : (scores[doc.slot] as number);
        if (score > 0 && score >= floor && accept(doc)) top.offer(doc, score);
      }
      return top;
    }
    // Every slot, or only the touched ones (the others score 0): TopK's order does not depend on
    // the order of offers.
    const count = touched === null ? size : n;
    for (let i = 0; i < count; i++) {
      const slot = touched === null ? i : (touched[i] as number);
      const score = scores[slot] as number;
      if (score <= 0 || (best.full() && score <= best.min())) continue;
      const doc = this.slots[slot];
      if (doc !== undefined && accept(doc)) best.push(score);
    }
    if (best.size() === 0) return top;
    const floor = best.full() ? best.min() : Number.MIN_VALUE;
    for (let i = 0; i < count; i++) {
      const slot = touched === null ? i : (touched[i] as number);
      const score = scores[slot] as number;
      if (score < floor || score <= 0) continue;
      const doc = this.slots[slot];
      if (doc !== undefined && accept(doc)) top.offer(doc, score);
    }
    return top;
  }

  /** What `ranked` costs, in `exactCost`'s units: the distinct heads' dot products, the lists, a visit per document. */
  rankCost(tail: Int32Array, candidates: number | null): number {
    const size = this.slots.length;
    const visits = candidates !== null && candidates * 4 < size ? candidates : size;
    return this.headCount * this.head + this.cost(tail) * POSTING_COST + visits * SLOT_COST;
  }

  /**
   * With a dense head: the k best of the candidates (or all documents) that `accept` admits, by
   * their whole score (`tail`: the query's non-zero dimensions past the head; `accept` asked by
   * document number, null when nothing is filtered). Exact: every candidate is scored, from its
   * head's score and its lists, and none is skipped. In-process at 100k (bench:api's 8 queries,
   * runs alternated), reading numbers by slot rather than documents, with the words' sums kept
   * zeroed in place of a pass that set every score, and the filters' kept verdicts: a search
   * 13.3-14.2 → 12.1-12.3 ms for the 8 (medians summed).
   */
  ranked(
    query: Float32Array,
    tail: Int32Array,
    k: number,
    candidates: Set<LiveDoc> | null,
    accept: ((ord: number) => boolean) | null,
  ): TopK {
    const head = this.head;
    const size = this.slots.length;
    if (this.headScores.length < this.headCount) this.headScores = new Float64Array(this.headCount * 2);
    const headScores = this.headScores;
    const heads = this.heads;
    for (let h = 0; h < this.headCount; h++) {
      const base = h * head;
      let sum = 0;
      for (let i = 0; i < head; i++) sum += (query[i] as number) * (heads[base + i] as number);
      headScores[h] = sum;
    }
    const headOf = this.headOf;
    const scale = this.scale;
    const ords = this.ords;
    // A selective filter: only its candidates are scored and ranked, their slots gathered once so
    // that ranking reads no document.
    const selective = candidates !== null && candidates.size * 4 < size;
    let visits = size;
    let order: Int32Array | null = null;
    if (selective) {
      order = this.gathered(candidates.size);
      visits = 0;
      for (const doc of candidates) if (doc.slot >= 0) order[visits++] = doc.slot;
    }
    const pick = new Selection(k, this.keptSlots(visits), this.keptScores, ords, accept);
    if (order === null) {
      this.rankAll(query, tail, headScores, pick, size);
    } else {
      // The candidates' head parts in place of clearing, then the words' (other slots' scores
      // are left as they are: never read).
      const scores = this.scoresFor(size);
      for (let i = 0; i < visits; i++) {
        const slot = order[i] as number;
        scores[slot] = (headScores[headOf[slot] as number] as number) * (scale[slot] as number);
      }
      this.addLists(scores, query, tail);
      for (let i = 0; i < visits; i++) {
        const slot = order[i] as number;
        const score = scores[slot] as number;
        if (score >= pick.min) pick.offer(slot, score);
      }
    }
    return pick.top(this.slots);
  }

  /**
   * Every slot's score offered to `pick`, without visiting every slot when bounds allow (MaxScore,
   * Turtle and Flood 1995, over the hybrid's score). A score is the head part (its head's score
   * times its 1/norm: at most `headBound`, the best of each head's score times its largest or
   * smallest 1/norm) plus what the query's words add (their lists added into `sums`, all zeros
   * between searches; each word at most its query value times the largest or smallest value its
   * list holds, and 0 to a document without it).
   *
   * The words' lists are visited shortest first, each slot once, scored exactly. Once the head
   * bound plus the bounds of the lists not yet visited is below the k-th best admitted score so
   * far, no slot outside the visited lists can enter the answer, and the ranking ends there.
   * Otherwise (the bound stays above it until the visited lists would hold as many entries as
   * there are slots) every slot not yet visited is scored in one sequential pass. The scores are
   * the full pass's, and only slots below the final k-th best are left out: the same answer.
   * At 100k (bench:api's 8 queries, in-process), 5 of the 8 end early; see RESULTS.md, session 34.
   */
  private rankAll(
    query: Float32Array,
    tail: Int32Array,
    headScores: Float64Array,
    pick: Selection,
    size: number,
  ): void {
    const sums = this.sumsFor(size);
    this.addLists(sums, query, tail);
    this.touch(size);
    const seen = this.seen;
    const epoch = this.epoch;
    const headOf = this.headOf;
    const scale = this.scale;
    const lists: { list: PostingList; bound: number }[] = [];
    for (let j = 0; j < tail.length; j++) {
      const dim = tail[j] as number;
      const list = this.lists[dim];
      if (!list || list.n === 0) continue;
      const q = query[dim] as number;
      lists.push({ list, bound: Math.max(0, q * list.max, q * list.min) });
    }
    lists.sort((a, b) => a.list.n - b.list.n);
    // rest[e]: what the lists from e on can add at most.
    const rest = new Float64Array(lists.length + 1);
    for (let e = lists.length - 1; e >= 0; e--)
      rest[e] = (rest[e + 1] as number) + (lists[e] as (typeof lists)[number]).bound;
    let headBound = Number.NEGATIVE_INFINITY;
    for (let h = 0; h < this.headCount; h++) {
      const max = this.headMaxScale[h] as number;
      const min = this.headMinScale[h] as number;
      if (!(max >= min)) continue;
      const score = headScores[h] as number;
      const part = score >= 0 ? score * max : score * min;
      if (part > headBound) headBound = part;
    }
    let visited = 0;
    let e = 0;
    for (; e < lists.length; e++) {
      if (aboveRounding(headBound + (rest[e] as number)) < pick.min) break;
      const { docs, n } = (lists[e] as (typeof lists)[number]).list;
      visited += n;
      if (visited > size) break;
      for (let p = 0; p < n; p++) {
        const slot = docs[p] as number;
        if (seen[slot] === epoch) continue;
        seen[slot] = epoch;
        const score = takeScore(headScores, headOf, scale, sums, slot);
        if (score >= pick.min) pick.offer(slot, score);
      }
    }
    if (aboveRounding(headBound + (rest[e] as number)) < pick.min) {
      this.boundedAnswers++;
      // The lists not visited: their sums back to zero.
      for (let r = e; r < lists.length; r++) {
        const { docs, n } = (lists[r] as (typeof lists)[number]).list;
        for (let p = 0; p < n; p++) sums[docs[p] as number] = 0;
      }
      return;
    }
    // Every slot not yet visited, in order.
    for (let slot = 0; slot < size; slot++) {
      const score = takeScore(headScores, headOf, scale, sums, slot);
      if (score >= pick.min && seen[slot] !== epoch) pick.offer(slot, score);
    }
  }

  /** Adds each of the query's words' lists (`tail`: its non-zero dimensions past the head), times its value. */
  private addLists(scores: Float64Array, query: Float32Array, tail: Int32Array): void {
    for (let j = 0; j < tail.length; j++) {
      const dim = tail[j] as number;
      const list = this.lists[dim];
      if (list) addList(scores, list, query[dim] as number);
    }
  }

  /** Scratch room for `n` slots in the order a selective search visits them. */
  private gathered(n: number): Int32Array {
    if (this.order.length < n) this.order = new Int32Array(n * 2);
    return this.order;
  }

  /** Scratch room for the slots a ranking keeps (at most every one it visits). */
  private keptSlots(n: number): Int32Array {
    if (this.kept.length < n) {
      this.kept = new Int32Array(Math.max(n, 1_024));
      this.keptScores = new Float64Array(this.kept.length);
    }
    return this.kept;
  }

  /** Per-slot sums of a query's words, zero in every slot between searches (`ranked` restores it). */
  private sumsFor(size: number): Float64Array {
    if (this.sums.length < size) this.sums = new Float64Array(size * 2);
    return this.sums;
  }

  /** The scratch scores (one a slot), grown to `size`; their values are whatever the last query left. */
  private scoresFor(size: number): Float64Array {
    if (this.scores.length < size) this.scores = new Float64Array(size * 2);
    return this.scores;
  }

  /** A new epoch of the per-slot "touched" marks, and room to list the touched slots. */
  private touch(size: number): Int32Array {
    if (this.seen.length < size || this.epoch >= 0x3fffffff) {
      this.seen = new Int32Array(size * 2);
      this.touchedSlots = new Int32Array(size * 2);
      this.epoch = 0;
    }
    this.epoch++;
    return this.touchedSlots;
  }

  private index(doc: LiveDoc): void {
    const vector = doc.vector as Float32Array;
    for (let i = this.head; i < vector.length; i++) {
      const value = vector[i] as number;
      if (value === 0) continue;
      let list = this.lists[i];
      if (!list)
        this.lists[i] = list = { docs: new Int32Array(16), values: new Float32Array(16), n: 0, max: value, min: value };
      if (list.n === list.docs.length) {
        const docs = new Int32Array(list.n * 2);
        docs.set(list.docs);
        const values = new Float32Array(list.n * 2);
        values.set(list.values);
        list.docs = docs;
        list.values = values;
      }
      list.docs[list.n] = doc.slot;
      list.values[list.n] = value;
      list.n++;
      // Read back as stored (float32): the bound is of the values the scores are made of.
      const stored = list.values[list.n - 1] as number;
      if (stored > list.max) list.max = stored;
      if (stored < list.min) list.min = stored;
    }
  }

  /** Mostly removed documents: lay the live ones out again (each keeps its head and 1/norm). */
  private rebuild(): void {
    const live = this.slots.filter((d): d is LiveDoc => d !== undefined);
    const headOf = this.headOf.slice();
    const scale = this.scale.slice();
    this.slots = [];
    this.dead = 0;
    this.lists = [];
    for (const doc of live) {
      const old = doc.slot;
      doc.slot = this.slots.length;
      this.slots.push(doc);
      if (this.head > 0) this.place(doc, headOf[old] as number, scale[old] as number);
      this.index(doc);
    }
  }
}

/**
 * A ranking's one pass over its slots: the k-th best score among admitted slots so far (numbers
 * only, in `min` for the caller's loop, -Infinity until k are held), and every admitted slot at
 * or above it when offered, with its score (a superset of the answer, ties included); then
 * (`top`) those at or above the final k-th best, ranked with ids breaking ties. `accept` is asked
 * only of slots offered (at or above `min`); a removed slot's document number is -1.
 */
class Selection {
  min = Number.NEGATIVE_INFINITY;
  private held = 0;
  private readonly best: MinHeap;
  private readonly k: number;
  private readonly kept: Int32Array;
  private readonly keptScores: Float64Array;
  private readonly ords: Int32Array;
  private readonly accept: ((ord: number) => boolean) | null;

  constructor(
    k: number,
    kept: Int32Array,
    keptScores: Float64Array,
    ords: Int32Array,
    accept: ((ord: number) => boolean) | null,
  ) {
    this.k = k;
    this.best = new MinHeap(k);
    this.kept = kept;
    this.keptScores = keptScores;
    this.ords = ords;
    this.accept = accept;
  }

  offer(slot: number, score: number): void {
    const ord = this.ords[slot] as number;
    if (ord < 0 || (this.accept !== null && !this.accept(ord))) return;
    if (score > this.min) {
      this.best.push(score);
      if (this.best.full()) this.min = this.best.min();
    }
    this.kept[this.held] = slot;
    this.keptScores[this.held++] = score;
  }

  top(slots: readonly (LiveDoc | undefined)[]): TopK {
    const floor = this.best.full() ? this.best.min() : Number.NEGATIVE_INFINITY;
    const top = new TopK(this.k);
    for (let i = 0; i < this.held; i++) {
      const score = this.keptScores[i] as number;
      if (score >= floor) top.offer(slots[this.kept[i] as number] as LiveDoc, score);
    }
    return top;
  }
}

/** The k largest numbers offered, the smallest of them on top. */
class MinHeap {
  private readonly items: Float64Array;
  private n = 0;
  constructor(k: number) {
    this.items = new Float64Array(k);
  }
  size(): number {
    return this.n;
  }
  full(): boolean {
    return this.n === this.items.length;
  }
  min(): number {
    return this.items[0] as number;
  }
  /** Adds x, dropping the smallest when full (callers offer only x above it then). */
  push(x: number): void {
    const a = this.items;
    if (this.n < a.length) {
      let i = this.n++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if ((a[parent] as number) <= x) break;
        a[i] = a[parent] as number;
        i = parent;
      }
      a[i] = x;
      return;
    }
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= this.n) break;
      const right = left + 1;
      const child = right < this.n && (a[right] as number) < (a[left] as number) ? right : left;
      if ((a[child] as number) >= x) break;
      a[i] = a[child] as number;
      i = child;
    }
    a[i] = x;
  }
}

/**
 * A keyword field's values by document number, each string as a small integer code: with the
 * lexical index's keys and the graph's `Labels`, a filter's test reads typed arrays only, no
 * document object. Measured at 100k (bench:api's filtered queries), the filter reached through
 * each document's object cost ~0.4 µs an ask, and a filtered BM25 query asks up to ~15,000: 2-7 ms
 * a query, now 0.5-2 ms.
 */
class Column {
  /** By document number: 0 no string value, -1 a list of values (in `lists`), else the value's code. */
  private codes = new Int32Array(1_024);
  private readonly byValue = new Map<string, number>();
  /** By code - 1. */
  private readonly values: string[] = [];
  private readonly lists = new Map<number, readonly string[]>();

  /** The code of a value (0 if no document ever held it as a single value). */
  codeOf(value: string): number {
    return this.byValue.get(value) ?? 0;
  }

  set(ord: number, value: FieldValue | undefined): void {
    if (ord >= this.codes.length) {
      const grown = new Int32Array(Math.max(ord + 1, this.codes.length * 2));
      grown.set(this.codes);
      this.codes = grown;
    }
    this.lists.delete(ord);
    if (typeof value === 'string') {
      let code = this.byValue.get(value);
      if (code === undefined) {
        this.values.push(value);
        this.byValue.set(value, (code = this.values.length));
      }
      this.codes[ord] = code;
    } else if (Array.isArray(value)) {
      this.codes[ord] = -1;
      this.lists.set(ord, value);
    } else this.codes[ord] = 0;
  }

  /** Document `ord`'s value when it is a single string. */
  text(ord: number): string | undefined {
    const code = this.codes[ord] ?? 0;
    return code > 0 ? this.values[code - 1] : undefined;
  }

  /** Whether document `ord` holds `value` (whose code is `code`), as a single value or in a list. */
  holds(ord: number, code: number, value: string): boolean {
    const held = this.codes[ord] as number;
    if (held === -1) return (this.lists.get(ord) as readonly string[]).includes(value);
    return code !== 0 && held === code;
  }
}

/**
 * The documents' vectors, packed one after another into large arrays in the order they are read,
 * rather than each in an allocation of its own: an exact scan then reads memory mostly in order.
 * Measured at 100k hybrid vectors (5,000 candidates of one run, spread over the whole index): the
 * model part's multiply-adds took 8-10 ms over separately allocated vectors, 6-7 ms over a slab in
 * document order, ~3 ms over the candidates packed together. In the stack (bench:api, 100k, 50
 * callers, with `nonZeroRuns`) a search's CPU in query-api went from 7.7 to 6.7 ms, 213 to 243
 * requests a second: fewer objects for the GC too. A replaced or removed document's vector stays
 * until `wasteful`, when the index copies the live ones into a new slab; space is never reused
 * in place, so a vector read during a search cannot change under it.
 */
class VectorSlab {
  private readonly size: number;
  private chunk = new Float32Array(0);
  private used = 0;
  private live = 0;
  private garbage = 0;

  /** `size`: floats per array. */
  constructor(size: number) {
    this.size = size;
  }

  /** A copy of `values` in the slab (a view into one of its arrays). */
  add(values: ArrayLike<number>): Float32Array {
    const n = values.length;
    if (this.used + n > this.chunk.length) {
      this.chunk = new Float32Array(Math.max(this.size, n));
      this.used = 0;
    }
    const view = this.chunk.subarray(this.used, this.used + n);
    view.set(values);
    this.used += n;
    this.live += n;
    return view;
  }

  /** A vector no document holds any more. */
  drop(vector: Float32Array | null): void {
    if (!vector) return;
    this.live -= vector.length;
    this.garbage += vector.length;
  }

  /** Whether freed vectors are a quarter of the live ones (and more than a few arrays' worth). */
  wasteful(): boolean {
    return this.garbage > Math.max(4 * this.size, this.live / 4);
  }
}

/**
 * Graph labels to documents. Labels are handed out in order, so these are arrays by label, and
 * the filtered graph walk's callback reads a document's number from a typed array.
 */
class Labels {
  private docs: (LiveDoc | undefined)[] = [];
  private ords = new Int32Array(0);
  size = 0;

  get(label: number): LiveDoc | undefined {
    return this.docs[label];
  }

  /** The document number at a label, or -1. */
  ord(label: number): number {
    return label < this.ords.length ? (this.ords[label] as number) : -1;
  }

  set(label: number, doc: LiveDoc): void {
    if (label >= this.ords.length) {
      const grown = new Int32Array(Math.max(label + 1, this.ords.length * 2, 1_024)).fill(-1);
      grown.set(this.ords);
      this.ords = grown;
    }
    if (this.docs[label] === undefined) this.size++;
    this.docs[label] = doc;
    this.ords[label] = doc.ord;
  }

  delete(label: number): void {
    if (this.docs[label] === undefined) return;
    this.docs[label] = undefined;
    this.ords[label] = -1;
    this.size--;
  }

  clear(): void {
    this.docs = [];
    this.ords = new Int32Array(0);
    this.size = 0;
  }
}

/** The k best (score descending, id ascending on ties), kept sorted as offers arrive. */
class TopK {
  private readonly k: number;
  private readonly items: { doc: LiveDoc; cos: number }[] = [];
  constructor(k: number) {
    this.k = k;
  }
  size(): number {
    return this.items.length;
  }
  offer(doc: LiveDoc, cos: number): void {
    const items = this.items;
    if (items.length === this.k) {
      const last = items[items.length - 1] as { doc: LiveDoc; cos: number };
      if (cos < last.cos || (cos === last.cos && doc.id >= last.doc.id)) return;
      items.pop();
    }
    let i = items.length;
    while (i > 0) {
      const prev = items[i - 1] as { doc: LiveDoc; cos: number };
      if (prev.cos > cos || (prev.cos === cos && prev.doc.id < doc.id)) break;
      i--;
    }
    items.splice(i, 0, { doc, cos });
  }
  hits(): VectorHit[] {
    return this.items.map(({ doc, cos }) => ({
      id: doc.id,
      score: Math.min(1, Math.max(0, (cos + 1) / 2)),
      fields: doc.fields,
      text: doc.text,
    }));
  }
}

function postingKey(field: string, value: string): string {
  return `${field}\u0000${value}`;
}

function hit(doc: LiveDoc, score: number): VectorHit {
  return { id: doc.id, score, fields: doc.fields, text: doc.text };
}

/**
 * The query's non-zero dimensions as [start, end) runs, gaps of under RUN_GAP zeros bridged: a
 * hybrid query is one dense run (the model's part) and a few single dimensions (the hashing
 * part's words). A loop over a run reads memory in order; gathering index by index did not
 * (measured: 5,000 hybrid vectors, 9-11 ms gathered, 6-8 ms by runs).
 */
function nonZeroRuns(nonZero: Int32Array): Int32Array {
  const runs: number[] = [];
  for (let j = 0; j < nonZero.length; j++) {
    const i = nonZero[j] as number;
    if (runs.length > 0 && i - (runs[runs.length - 1] as number) < RUN_GAP) runs[runs.length - 1] = i + 1;
    else runs.push(i, i + 1);
  }
  return Int32Array.from(runs);
}

/** Cosine of normalised vectors, touching only the query's non-zero dimensions (`nonZeroRuns`). */
function dot(query: Float32Array, runs: Int32Array, vector: Float32Array | null): number {
  if (!vector) return 0;
  let sum = 0;
  for (let r = 0; r < runs.length; r += 2) {
    const end = Math.min(runs[r + 1] as number, vector.length);
    for (let i = runs[r] as number; i < end; i++) sum += (query[i] as number) * (vector[i] as number);
  }
  return sum;
}

function nonZeroIndices(vector: Float32Array): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < vector.length; i++) if (vector[i] !== 0) out.push(i);
  return Int32Array.from(out);
}

/** The vector's length (its L2 norm). */
function norm(vector: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += (vector[i] as number) ** 2;
  return Math.sqrt(sum);
}

/** The vector divided by its norm, as float32 (a zero vector as it is). A loop: `Array.from`'s iterator made a search's largest garbage. */
function normalised(vector: ArrayLike<number>): Float32Array {
  const length = norm(vector);
  const out = new Float32Array(vector.length);
  for (let i = 0; i < vector.length; i++)
    out[i] = length === 0 ? (vector[i] as number) : (vector[i] as number) / length;
  return out;
}

/** Each whole (newline-ended, non-empty) line of `chunk`, in order; returns the bytes they span. */
function eachWholeLine(chunk: Buffer, visit: (line: string) => void): number {
  const end = chunk.lastIndexOf(0x0a) + 1;
  let start = 0;
  while (start < end) {
    const stop = chunk.indexOf(0x0a, start);
    if (stop > start) visit(chunk.toString('utf8', start, stop));
    start = stop + 1;
  }
  return end;
}

/** A line of the log; undefined for a line cut short by a crash (its write was never acknowledged). */
function parseOp(line: string): Op | undefined {
  try {
    return JSON.parse(line) as Op;
  } catch {
    return undefined;
  }
}

/**
 * A logged vector: `encodeEmbedding`'s form (sparse when mostly zeros: the hybrid's vectors are
 * ~3.3 KB of text instead of 8.2), or the dense base64 every log before it holds (the same as its
 * dense form). Undefined when it cannot be read.
 */
function logVector(encoded: string): Float32Array | undefined {
  if (encoded === '') return new Float32Array(0);
  try {
    return decodeEmbeddingFloats(encoded);
  } catch {
    return undefined;
  }
}

/** MurmurHash3 (x86, 32-bit) of the vector's words: tells a re-indexed vector from a node's. */
function hashWords(vector: Float32Array): number {
  const words = new Uint32Array(vector.buffer, vector.byteOffset, vector.length);
  let h = 0x9747b28c;
  for (let i = 0; i < words.length; i++) {
    let k = Math.imul(words[i] as number, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
  }
  h ^= words.length * 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

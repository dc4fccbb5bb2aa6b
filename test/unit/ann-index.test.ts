/**
 * The local HNSW store beyond the shared contract: its answers against an exact scan, exact
 * filters, writes searchable before the graph takes them in, snapshots, crashes and sharing a log.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnnVectorIndex } from '../../functions/shared/search/ann-index.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import type { VectorDocument } from '../../functions/shared/search/ports.ts';
import { cosine } from '../support/vectors.ts';

const DIM = 16;
let dir: string;
let n = 0;
const fresh = () => join(dir, `ann-${++n}.jsonl`);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tally-ann-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic pseudo-random generator, so failures reproduce. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function documents(count: number, seed = 1): VectorDocument[] {
  const rnd = random(seed);
  return Array.from({ length: count }, (_, i) => ({
    id: `d${String(i).padStart(4, '0')}`,
    vector: Array.from({ length: DIM }, () => rnd() * 2 - 1),
    fields: { status: i % 3 === 0 ? 'RESOLVED' : 'OPEN', run_id: `r${i % 50}`, n: i },
    text: `doc ${i}`,
  }));
}

const queries = (count: number) => documents(count, 99).map((d) => d.vector);

async function seeded(path: string, count: number, options = {}) {
  const index = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: 0, sparse: false, ...options });
  await index.replaceMany(documents(count));
  await index.settle();
  return index;
}

describe('local HNSW store, filtered hybrid searches', () => {
  it('answers as the exact store does, whether the filter is marked up front or asked document by document', async () => {
    const rnd = random(5);
    const words = ['amount', 'mismatch', 'missing', 'target', 'source', 'trade', 'T0105', 'ACCT2042'];
    const docs: VectorDocument[] = Array.from({ length: 800 }, (_, i) => ({
      id: `d${String(i).padStart(4, '0')}`,
      vector: Array.from({ length: DIM }, () => rnd() * 2 - 1),
      fields: {
        status: ['OPEN', 'OPEN', 'RESOLVED'][i % 3] as string,
        run_id: `r${i % 7}`,
        date: `2025-12-${String(1 + (i % 28)).padStart(2, '0')}`,
        values: [`account_id=ACCT${i % 5}`, `trade_id=T${i}`],
      },
      text: `doc ${i}`,
      lexical: Array.from({ length: 2 + Math.floor(rnd() * 10) }, () => words[Math.floor(rnd() * words.length)]).join(
        ' ',
      ),
    }));
    const path = fresh();
    const exact = LocalVectorIndex.load(path);
    await exact.replaceMany(docs);
    // Every vector half exact (no graph), so answers must be equal, not near.
    const eager = AnnVectorIndex.load(path, { exactBudget: Number.POSITIVE_INFINITY, sparse: false });
    const lazy = AnnVectorIndex.load(path, {
      exactBudget: Number.POSITIVE_INFINITY,
      sparse: false,
      eagerFilterMax: 0,
    });
    const filters: [Record<string, string>, { date?: { from?: string; to?: string } }][] = [
      [{ status: 'OPEN' }, {}],
      [{ status: 'OPEN', run_id: 'r3' }, {}],
      [{ values: 'account_id=ACCT2' }, { date: { from: '2025-12-05', to: '2025-12-20' } }],
      [{}, { date: { to: '2025-12-03' } }],
      [{ run_id: 'r9' }, {}],
    ];
    for (const [i, q] of queries(12).entries()) {
      const [filter, ranges] = filters[i % filters.length] as (typeof filters)[number];
      const text = ['amount mismatch', 'missing target trade', 'T0105', 'source ACCT2042'][i % 4] as string;
      const expected = await exact.search(q, 10, filter, { text, ranges });
      for (const index of [eager, lazy]) {
        const hits = await index.search(q, 10, filter, { text, ranges });
        expect(hits.map((h) => [h.id, h.score.toFixed(9)])).toEqual(expected.map((h) => [h.id, h.score.toFixed(9)]));
      }
    }
  });
});

describe('local HNSW store', () => {
  it('finds nearly what an exact scan finds, through the graph', async () => {
    const path = fresh();
    const index = await seeded(path, 600);
    const exact = LocalVectorIndex.load(path);

    let found = 0;
    for (const q of queries(30)) {
      const truth = new Set((await exact.search(q, 10)).map((h) => h.id));
      found += (await index.search(q, 10)).filter((h) => truth.has(h.id)).length;
    }

    expect(index.graphStats()).toMatchObject({ nodes: 600, pending: 0 });
    expect(found / 300).toBeGreaterThan(0.9);
  });

  it('returns only documents matching the filter, and all k when enough match', async () => {
    const index = await seeded(fresh(), 600);

    for (const q of queries(10)) {
      const open = await index.search(q, 10, { status: 'OPEN' });
      expect(open).toHaveLength(10);
      expect(open.every((h) => h.fields.status === 'OPEN')).toBe(true);
    }
  });

  it('answers a selective filter exactly (the graph would miss its few matches)', async () => {
    const path = fresh();
    const index = await seeded(path, 600);
    const exact = LocalVectorIndex.load(path);

    for (const q of queries(10)) {
      const filter = { run_id: 'r7', status: 'OPEN' };
      expect((await index.search(q, 10, filter)).map((h) => h.id)).toEqual(
        (await exact.search(q, 10, filter)).map((h) => h.id),
      );
    }
  });

  it('finds a document at once, before the graph has taken it in', async () => {
    const index = await seeded(fresh(), 300);
    const q = queries(1)[0] as number[];

    await index.replace({ id: 'new', vector: q, fields: { status: 'OPEN' }, text: 'just written' });

    expect(index.graphStats().pending).toBe(1); // written, not in the graph yet
    const [hit] = await index.search(q, 1);
    expect(hit).toMatchObject({ id: 'new', text: 'just written' });
    expect(hit?.score).toBeCloseTo(1, 5);
  });

  it('stops finding a replaced vector and a deleted document', async () => {
    const index = await seeded(fresh(), 300);
    const [first] = documents(1);
    const q = first?.vector as number[];

    await index.replace({ ...(first as VectorDocument), vector: q.map((x) => -x) });
    await index.settle();
    expect((await index.search(q, 1))[0]?.id).not.toBe(first?.id);

    await index.deleteWhere('run_id', 'r1');
    await index.settle();
    expect(await index.count({ run_id: 'r1' })).toBe(0);
    expect((await index.search(q, 50)).some((h) => h.fields.run_id === 'r1')).toBe(false);
  });

  it('answers exactly through replacements that make it repack its vectors', async () => {
    // 64 floats an array: 4 vectors of 16; a repack once replaced ones pass a quarter of the live ones.
    const path = fresh();
    // Exact scans only: every answer reads the slab's vectors, so a wrong copy shows.
    const index = AnnVectorIndex.load(path, {
      graphMinDocs: Number.MAX_SAFE_INTEGER,
      exactBudget: Number.POSITIVE_INFINITY,
      sparse: false,
      slabFloats: 64,
    });
    const exact = LocalVectorIndex.load(path);
    const rnd = random(17);
    for (let round = 0; round < 6; round++) {
      const docs = documents(120, round + 1).map((d) =>
        rnd() < 0.5 ? d : { ...d, vector: d.vector.map((x) => (rnd() < 0.3 ? 0 : x)) },
      );
      await index.replaceMany(docs.slice(0, 60 + round * 10));
      if (round % 2 === 1) await index.deleteWhere('run_id', `r${round}`);
      await index.settle();
      for (const q of queries(5)) {
        const got = await index.search(q, 10);
        const want = await exact.search(q, 10);
        expect(got.map((h) => h.id)).toEqual(want.map((h) => h.id));
      }
    }
    expect(index.graphStats().vectorRepacks).toBeGreaterThan(0);
  });

  it('reopens from its snapshot without re-adding the vectors', async () => {
    const path = fresh();
    const first = await seeded(path, 400, { snapshotEvery: 100 });
    const q = queries(1)[0] as number[];
    const before = await first.search(q, 5);

    const reopened = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: 0, sparse: false });
    const after = await reopened.search(q, 5);

    expect(reopened.graphStats()).toMatchObject({ nodes: 400, pending: 0 });
    expect(after.map((h) => h.id)).toEqual(before.map((h) => h.id));
  });

  it('rebuilds from the log when the snapshot is damaged', async () => {
    const path = fresh();
    await seeded(path, 300, { snapshotEvery: 100 });
    for (const name of readdirSync(dir).filter((f) => f.startsWith(`ann-${n}.jsonl.hnsw-`)))
      writeFileSync(join(dir, name), 'not a graph');

    const reopened = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: 0, sparse: false });
    await reopened.settle();

    expect(reopened.graphStats()).toMatchObject({ nodes: 300, pending: 0 });
    expect(await reopened.search(documents(1)[0]?.vector as number[], 1)).toMatchObject([{ id: 'd0000' }]);
  });

  it('skips a line cut short by a kill and keeps every acknowledged write', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path);
    await index.replace({ id: 'a', vector: [1, 0, 0, 0], fields: {}, text: 'a' });
    appendFileSync(path, '{"op":"put","doc":{"id":"cut","vec'); // the process died here

    const restarted = AnnVectorIndex.load(path);
    await restarted.replace({ id: 'b', vector: [0, 1, 0, 0], fields: {}, text: 'b' });

    const reread = AnnVectorIndex.load(path);
    expect(await reread.count()).toBe(2);
    expect((await reread.search([0, 1, 0, 0], 2)).map((h) => h.id)).toEqual(['b', 'a']);
  });

  it('counts a log as a reading instance does, without loading it, whatever the slice size', async () => {
    const path = fresh();
    expect(await AnnVectorIndex.countDocuments(path)).toBe(0); // no log yet
    const writer = AnnVectorIndex.load(path, { graphMinDocs: Number.POSITIVE_INFINITY });
    await writer.replaceMany(documents(40));
    expect(await writer.deleteWhere('run_id', 'r3')).toBe(1); // d0003
    await writer.replace({ ...(documents(1)[0] as VectorDocument), text: 'put again' });
    await writer.updateFields('d0007', { status: 'X' });
    // A put whose vector cannot be read, then a line cut short by a kill (no newline after it).
    appendFileSync(
      path,
      `\n${JSON.stringify({ op: 'put', doc: { id: 'bad', vector: 'sparse:AAAA', fields: {}, text: 'bad' } })}\n`,
    );
    appendFileSync(path, '{"op":"put","doc":{"id":"cut","vec');

    const expected = await AnnVectorIndex.load(path).count();
    expect(expected).toBe(39);
    // Slices shorter than a line, about a line long, and the whole log at once.
    for (const slice of [7, 250, 1 << 20]) expect(await AnnVectorIndex.countDocuments(path, slice)).toBe(expected);
  });

  it('sees what another instance on the same log wrote, and keeps graph nodes through compaction', async () => {
    const path = fresh();
    const reader = await seeded(path, 300);
    const writer = AnnVectorIndex.load(path);
    const q = queries(1)[0] as number[];

    await writer.replace({ id: 'other', vector: q, fields: { status: 'OPEN' }, text: 'from another thread' });
    expect((await reader.search(q, 1))[0]?.id).toBe('other');

    // Enough field updates to make the writer compact the log under the reader.
    for (let i = 0; i < 1000; i++) await writer.updateFields(`d${String(i % 300).padStart(4, '0')}`, { status: 'X' });
    await reader.settle();

    expect(reader.graphStats()).toMatchObject({ nodes: 301, pending: 0, deleted: 0 });
    expect(await reader.count({ status: 'X' })).toBe(300);
    expect((await reader.search(q, 1))[0]?.id).toBe('other');
  });
});

describe('local store, sparse postings', () => {
  const TYPES = ['amount mismatch', 'missing in target', 'duplicate in source', 'field mismatch'];
  const embedder = new HashingEmbedder();

  async function texts(count: number, seed: number): Promise<VectorDocument[]> {
    const rnd = random(seed);
    const lines = Array.from({ length: count }, (_, i) => {
      const type = TYPES[Math.floor(rnd() * TYPES.length)] as string;
      return `${type} trade T${Math.floor(rnd() * 400)} account ACCT${Math.floor(rnd() * 30)} amount ${i % 97}`;
    });
    const vectors = await embedder.embed(lines);
    return lines.map((text, i) => ({
      id: `s${String(i).padStart(4, '0')}`,
      vector: vectors[i] as number[],
      fields: { status: i % 3 === 0 ? 'RESOLVED' : 'OPEN', run_id: `r${i % 7}` },
      text,
    }));
  }

  const QUESTIONS = ['amount mismatch', 'trade T17', 'missing in target account ACCT3', 'duplicate', 'nothing shared'];
  const FILTERS: Record<string, string>[] = [{}, { status: 'OPEN' }, { run_id: 'r2', status: 'RESOLVED' }];

  /** Ids and scores equal an exact scan's, bit for bit, for every question, filter and k. */
  async function expectExact(index: AnnVectorIndex, path: string): Promise<void> {
    // The same store scanning every candidate: the scores it computes are the oracle's.
    const exact = AnnVectorIndex.load(path, { sparse: false, graphMinDocs: Number.POSITIVE_INFINITY });
    for (const [q] of await Promise.all(QUESTIONS.map((t) => embedder.embed([t])))) {
      for (const filter of FILTERS) {
        for (const k of [1, 10, 50]) {
          const truth = await exact.search(q as number[], k, filter);
          const got = await index.search(q as number[], k, filter);
          expect(got.map((h) => [h.id, h.score])).toEqual(truth.map((h) => [h.id, h.score]));
        }
      }
    }
  }

  it('answers sparse queries exactly, from the postings, without a graph', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: 0 });
    await index.replaceMany(await texts(800, 5));

    await expectExact(index, path);

    expect(index.graphStats()).toMatchObject({ nodes: 0, postings: true });
    expect(index.graphStats().sparseAnswers).toBeGreaterThan(20);
  });

  it('stays exact through replacements, deletions, field updates and another instance writing', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: 0 });
    const docs = await texts(1500, 6);
    await index.replaceMany(docs);
    await index.search(docs[0]?.vector as number[], 1);

    const writer = AnnVectorIndex.load(path);
    // Same ids, other texts: most postings go dead and are laid out again.
    await writer.replaceMany((await texts(1400, 7)).map((d, i) => ({ ...d, id: `s${String(i).padStart(4, '0')}` })));
    await writer.deleteWhere('run_id', 'r4');
    for (let i = 0; i < 60; i++) await writer.updateFields(`s${String(i * 7).padStart(4, '0')}`, { status: 'OPEN' });

    await expectExact(index, path);
    expect(index.graphStats().postings).toBe(true);
  });

  it('drops the postings for a dense document and still answers exactly', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { graphMinDocs: 1, exactBudget: Number.POSITIVE_INFINITY });
    await index.replaceMany(await texts(200, 8));
    await index.search(
      new Array(1024).fill(0).map((_, i) => (i === 3 ? 1 : 0)),
      1,
    );
    expect(index.graphStats().postings).toBe(true);

    await index.replace({ id: 'dense', vector: new Array(1024).fill(0.5), fields: { status: 'OPEN' }, text: '' });

    await expectExact(index, path);
    expect(index.graphStats().postings).toBe(false);
  });
});

describe("local store, the log's vectors", () => {
  /** The `vector` strings of the log's put lines, in order. */
  const loggedVectors = (path: string): string[] =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{"op":"put"'))
      .map((line) => (JSON.parse(line) as { doc: { vector: string } }).doc.vector);

  it('writes a mostly-zero vector in the sparse form, a dense one densely, and reads both back exactly', async () => {
    const path = fresh();
    const sparse = new Array<number>(1024).fill(0).map((_, i) => (i % 97 === 0 ? 0.1 + i / 2048 : 0));
    const dense = Array.from({ length: 1024 }, (_, i) => Math.sin(i + 1));
    const writer = AnnVectorIndex.load(path, { graphMinDocs: Number.POSITIVE_INFINITY });
    await writer.replaceMany([
      { id: 'sparse', vector: sparse, fields: {}, text: 'sparse' },
      { id: 'dense', vector: dense, fields: {}, text: 'dense' },
    ]);

    const [sparseLogged, denseLogged] = loggedVectors(path);
    expect(sparseLogged?.startsWith('sparse:')).toBe(true);
    // 11 non-zero values: a bitmap and 11 floats, against 4 KB of floats (base64: 5.5 KB).
    expect(sparseLogged?.length).toBeLessThan(300);
    expect(denseLogged).toBe(Buffer.from(new Float32Array(dense).buffer).toString('base64'));

    // Another instance and the exact store, reading the log: each vector finds itself, at cosine 1.
    for (const reader of [AnnVectorIndex.load(path), LocalVectorIndex.load(path)]) {
      const [top] = await reader.search(sparse, 1);
      expect(top?.id).toBe('sparse');
      expect(top?.score).toBeCloseTo(1, 6);
      const [other] = await reader.search(dense, 1);
      expect(other?.id).toBe('dense');
      expect(other?.score).toBeCloseTo(1, 6);
    }
  });

  it('reads a log written before the sparse form (every vector dense base64)', async () => {
    const path = fresh();
    const old = (id: string, vector: number[]) =>
      JSON.stringify({
        op: 'put',
        doc: {
          id,
          vector: Buffer.from(new Float32Array(vector).buffer).toString('base64'),
          fields: { run_id: 'r1' },
          text: id,
        },
      });
    writeFileSync(path, `${old('a', [1, 0, 0, 0])}\n${old('b', [0, 0.5, 0, 0])}\n`);

    const index = AnnVectorIndex.load(path);
    expect(await index.count({ run_id: 'r1' })).toBe(2);
    expect((await index.search([0, 1, 0, 0], 2)).map((h) => h.id)).toEqual(['b', 'a']);
    // Written on by a store that logs the new form: both kinds of line live in one log.
    await index.replace({ id: 'c', vector: [0, 0, 0, 1], fields: { run_id: 'r1' }, text: 'c' });
    const reread = LocalVectorIndex.load(path);
    expect(await reread.count({ run_id: 'r1' })).toBe(3);
    expect((await reread.search([0, 0, 0, 1], 1)).map((h) => h.id)).toEqual(['c']);
  });

  it('skips a put whose vector cannot be read, as it skips a line cut short', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path);
    await index.replace({ id: 'a', vector: [1, 0, 0, 0], fields: {}, text: 'a' });
    appendFileSync(
      path,
      `\n${JSON.stringify({ op: 'put', doc: { id: 'bad', vector: 'sparse:AAAA', fields: {}, text: 'bad' } })}\n`,
    );

    const reread = AnnVectorIndex.load(path);
    expect(await reread.count()).toBe(1);
    expect((await reread.search([1, 0, 0, 0], 2)).map((h) => h.id)).toEqual(['a']);
  });
});

describe('local store, a dense head shared by many documents (the hybrid layout)', () => {
  const HEAD = 8;
  const TAIL = 64;

  /** Documents whose first HEAD dimensions are one of `heads` distinct ones and the rest sparse words. */
  function layered(count: number, heads: number, seed: number, prefix = 'h'): VectorDocument[] {
    const rnd = random(seed);
    const shared = Array.from({ length: heads }, () => Array.from({ length: HEAD }, () => (rnd() * 2 - 1) * 0.7));
    return Array.from({ length: count }, (_, i) => {
      const vector = [...(shared[i % heads] as number[]), ...new Array<number>(TAIL).fill(0)];
      for (let w = 0; w < 1 + Math.floor(rnd() * 5); w++) vector[HEAD + Math.floor(rnd() * TAIL)] = rnd() * 2 - 0.5;
      return {
        id: `${prefix}${String(i).padStart(5, '0')}`,
        vector,
        fields: { status: i % 3 === 0 ? 'RESOLVED' : 'OPEN', run_id: `r${i % 7}` },
        text: `doc ${i}`,
      };
    });
  }

  /**
   * Against cosines computed here in float64: every hit passes the filter and carries its true
   * score (to float rounding), none better is left out, and as many come back as match (up to k).
   */
  async function expectTopK(index: AnnVectorIndex, live: Map<string, VectorDocument>, queries: number[][]) {
    const filters: Record<string, string>[] = [{}, { status: 'OPEN' }, { run_id: 'r2', status: 'RESOLVED' }];
    for (const q of queries) {
      for (const filter of filters) {
        const matching = [...live.values()]
          .filter((d) => Object.entries(filter).every(([f, v]) => d.fields[f] === v))
          .map((d) => ({ id: d.id, score: (cosine(q, d.vector) + 1) / 2 }))
          .sort((a, b) => b.score - a.score);
        for (const k of [1, 10, 50]) {
          const got = await index.search(q, k, filter);
          expect(got).toHaveLength(Math.min(k, matching.length));
          const truth = new Map(matching.map((m) => [m.id, m.score]));
          for (const hit of got) expect(Math.abs(hit.score - (truth.get(hit.id) ?? Number.NaN))).toBeLessThan(1e-6);
          expect(new Set(got.map((h) => h.id)).size).toBe(got.length);
          const kth = matching[got.length - 1]?.score ?? 0;
          expect(got[got.length - 1]?.score ?? 0).toBeGreaterThan(kth - 1e-6);
        }
      }
    }
  }

  const dense = (seed: number) => layered(6, 3, seed, 'q').map((d) => d.vector);

  it('scores every document exactly from its head and its postings, without a graph', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { denseHead: HEAD, graphMinDocs: 1 });
    const docs = layered(1200, 5, 11);
    await index.replaceMany(docs);

    await expectTopK(index, new Map(docs.map((d) => [d.id, d])), [
      ...dense(12),
      ...layered(4, 5, 11).map((d) => d.vector),
    ]);

    // 10 queries, 3 filters, 3 values of k: every search scored from the heads and postings.
    expect(index.graphStats()).toMatchObject({ nodes: 0, postings: true, heads: 5, sparseAnswers: 90 });
  });

  it('stays exact through replacements, deletions, field updates and another instance writing', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { denseHead: HEAD, graphMinDocs: 1 });
    const docs = layered(1500, 4, 13);
    await index.replaceMany(docs);
    await index.search(docs[0]?.vector as number[], 1);

    const writer = AnnVectorIndex.load(path);
    // Same ids, other vectors and heads, twice: most postings go dead and are laid out again.
    await writer.replaceMany(layered(1400, 3, 18));
    await index.search(docs[0]?.vector as number[], 1);
    const replaced = layered(1400, 6, 14);
    await writer.replaceMany(replaced);
    const live = new Map<string, VectorDocument>(docs.map((d) => [d.id, d]));
    for (const d of replaced) live.set(d.id, d);
    // Read here, the replacements laid the postings out again (`rebuild`), heads kept.
    await expectTopK(index, live, dense(19));

    await writer.deleteWhere('run_id', 'r4');
    for (let i = 0; i < 60; i++) await writer.updateFields(`h${String(i * 7).padStart(5, '0')}`, { status: 'OPEN' });

    for (const [id, d] of [...live]) if (d.fields.run_id === 'r4') live.delete(id);
    for (let i = 0; i < 60; i++) {
      const id = `h${String(i * 7).padStart(5, '0')}`;
      const d = live.get(id);
      if (d) live.set(id, { ...d, fields: { ...d.fields, status: 'OPEN' } });
    }
    await expectTopK(index, live, dense(15));
    expect(index.graphStats().postings).toBe(true);
    expect(index.graphStats().sparseAnswers).toBeGreaterThan(100);
  });

  it("remembers a filter's verdicts between searches only until a document's fields change", async () => {
    const path = fresh();
    for (const eagerFilterMax of [0, 1_000_000]) {
      const index = AnnVectorIndex.load(`${path}-${eagerFilterMax}`, { denseHead: HEAD, eagerFilterMax });
      const docs = layered(800, 4, 21);
      await index.replaceMany(docs);
      const query = docs[4]?.vector as number[]; // h00004: OPEN, run r4
      const ids = async (filter: Record<string, string>) => (await index.search(query, 5, filter)).map((h) => h.id);
      const open = await ids({ status: 'OPEN' });
      const run = await ids({ run_id: 'r4' });
      expect(open[0]).toBe('h00004');
      expect(run[0]).toBe('h00004');
      // Asked again with nothing changed: the same answers (from the kept verdicts).
      expect(await ids({ status: 'OPEN' })).toEqual(open);
      expect(await ids({ run_id: 'r4' })).toEqual(run);

      // Its fields change: the filters see it at once.
      await index.updateFields('h00004', { status: 'RESOLVED', run_id: 'r5' });
      expect(await ids({ status: 'OPEN' })).not.toContain('h00004');
      expect(await ids({ run_id: 'r4' })).not.toContain('h00004');
      expect((await ids({ status: 'RESOLVED' }))[0]).toBe('h00004');
      // A new document with the query's vector, admitted by a filter asked before.
      await index.replace({ id: 'new', vector: query, fields: { status: 'OPEN', run_id: 'r4' }, text: '' });
      expect((await ids({ status: 'OPEN' }))[0]).toBe('new');
      expect((await ids({ run_id: 'r4' }))[0]).toBe('new');
      expect(index.graphStats().sparseAnswers).toBeGreaterThan(0);
    }
  });

  it('ends a ranking once no document outside the lists visited can reach the k-th best, with the same answer', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { denseHead: HEAD, graphMinDocs: Number.POSITIVE_INFINITY });
    // Small heads (some of them pointing away from the queries) and strong words: the documents
    // holding a query's words outscore every other, whose head part is all they have.
    const worded = (count: number, seed: number, prefix: string): VectorDocument[] => {
      const rnd = random(seed);
      const heads = Array.from({ length: 4 }, (_, h) =>
        Array.from({ length: HEAD }, () => (h === 3 ? -0.1 : (rnd() * 2 - 1) * 0.15)),
      );
      return Array.from({ length: count }, (_, i) => {
        const vector = [...(heads[i % 4] as number[]), ...new Array<number>(TAIL).fill(0)];
        // One word every document holds (a long list, never visited when the bound allows) and a few rarer ones.
        vector[HEAD] = 0.3 + rnd() * 0.2;
        for (let w = 0; w < 1 + Math.floor(rnd() * 3); w++)
          vector[HEAD + 1 + Math.floor(rnd() * (TAIL - 1))] = 0.5 + rnd();
        const status = i % 3 === 0 ? 'RESOLVED' : 'OPEN';
        return {
          id: `${prefix}${String(i).padStart(5, '0')}`,
          vector,
          fields: { status, run_id: `r${i % 7}` },
          text: `doc ${i}`,
        };
      });
    };
    const docs = worded(3000, 21, 'w');
    await index.replaceMany(docs);
    const live = new Map(docs.map((d) => [d.id, d]));
    // Queries: a head, the common word and two or three rarer words.
    const asked = worded(6, 22, 'q').map((d) => d.vector);
    await expectTopK(index, live, asked);
    const early = index.graphStats().boundedAnswers;
    expect(early).toBeGreaterThan(0);

    // Through deletions (dead slots still in the lists) and replacements, still the full pass's answer.
    await index.deleteWhere('run_id', 'r2');
    for (const [id, d] of [...live]) if (d.fields.run_id === 'r2') live.delete(id);
    const replaced = worded(900, 23, 'w');
    await index.replaceMany(replaced);
    for (const d of replaced) live.set(d.id, d);
    await expectTopK(index, live, asked);
    expect(index.graphStats().boundedAnswers).toBeGreaterThan(early);
  });

  it('loads on prepare what the first search would, and answers the same after', async () => {
    const path = fresh();
    const docs = layered(1200, 5, 41);
    await AnnVectorIndex.load(path).replaceMany(docs);
    const index = AnnVectorIndex.load(path, { denseHead: HEAD });
    // Opened, it holds the documents' fields only: a writer never needs their vectors.
    expect(index.graphStats()).toMatchObject({ postings: false, heads: 0, lexical: false });

    // In slices of 4 KiB (a few documents each), and of 16 bytes (shorter than a line: read on).
    await index.prepare(4096);

    expect(index.graphStats()).toMatchObject({ postings: true, heads: 5, sparseAnswers: 0, nodes: 0, lexical: true });
    await expectTopK(index, new Map(docs.map((d) => [d.id, d])), dense(42));
    // Its word index, filled as the log was read, answers as one built by a first hybrid search.
    const hybrid = async (i: AnnVectorIndex) =>
      (await i.search(dense(43)[0] as number[], 10, {}, { text: 'doc 17' })).map((h) => [h.id, h.score]);
    const cold = AnnVectorIndex.load(path, { denseHead: HEAD });
    const expected = await hybrid(cold);
    expect(expected[0]?.[0]).toBe('h00017');
    expect(await hybrid(index)).toEqual(expected);
    const tiny = AnnVectorIndex.load(path, { denseHead: HEAD });
    await tiny.prepare(16);
    expect(await hybrid(tiny)).toEqual(expected);

    // A search while it prepares reads the rest at once; the preparing ends there.
    const racing = AnnVectorIndex.load(path, { denseHead: HEAD });
    const preparing = racing.prepare(4096);
    expect(await hybrid(racing)).toEqual(expected);
    await preparing;
    expect(await hybrid(racing)).toEqual(expected);
    expect(racing.graphStats()).toMatchObject({ postings: true, heads: 5 });
  });

  it('answers a selective filter by an exact scan without starting a graph it does not use', async () => {
    const path = fresh();
    // The default graphMinDocs (1,000): below it no graph is ever opened.
    const index = AnnVectorIndex.load(path, { denseHead: HEAD });
    // Three documents of one account among 1,200 (a search with --field/--value, or a run of
    // three breaks among many): scanning them is cheaper than the query's word lists.
    const docs = layered(1200, 5, 31).map((d, i) =>
      i % 400 === 7 ? { ...d, fields: { ...d.fields, values: ['account_id=ACCT7'] } } : d,
    );
    await index.replaceMany(docs);
    // A query of many words: its lists hold ~1,000 entries in all.
    const query = [
      ...(dense(32)[0] as number[]).slice(0, HEAD),
      ...Array.from({ length: TAIL }, (_, i) => (i % 3 === 0 ? 0.4 : 0)),
    ];
    const filter = { values: 'account_id=ACCT7' };

    const got = await index.search(query, 10, filter);

    const truth = docs
      .filter((d) => d.fields.values !== undefined)
      .map((d) => ({ id: d.id, score: (cosine(query, d.vector) + 1) / 2 }))
      .sort((a, b) => b.score - a.score);
    expect(got.map((h) => h.id)).toEqual(truth.map((t) => t.id));
    for (const [i, hit] of got.entries())
      expect(Math.abs(hit.score - (truth[i]?.score ?? Number.NaN))).toBeLessThan(1e-6);
    // No graph opened: at 100k one would take ~2 minutes of a core to build, 1.2 GB to hold, and
    // its 8 ms build slices would run between every later search, for no search that uses it.
    expect(index.graphStats()).toMatchObject({ nodes: 0, pending: 0, postings: true, sparseAnswers: 0 });
  });

  it('gives the postings up when heads are not shared, and still answers exactly', async () => {
    const path = fresh();
    const index = AnnVectorIndex.load(path, { denseHead: HEAD, graphMinDocs: Number.POSITIVE_INFINITY });
    // Every document its own head: past 4,096 of them, keeping heads saves nothing.
    const docs = layered(4200, 4200, 16);
    await index.replaceMany(docs.slice(0, 4000));
    await index.search(docs[0]?.vector as number[], 1);
    expect(index.graphStats().postings).toBe(true);

    await index.replaceMany(docs.slice(4000));

    await expectTopK(index, new Map(docs.map((d) => [d.id, d])), dense(17));
    expect(index.graphStats().postings).toBe(false);
  });
});

/**
 * One contract, two adapters: the local embedded store and OpenSearch Serverless (through a fake
 * collection on loopback that enforces AOSS's limits and records the exact requests).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@opensearch-project/opensearch';
import { AnnVectorIndex } from '../../functions/shared/search/ann-index.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import { OpenSearchVectorIndex } from '../../functions/shared/search/opensearch-index.ts';
import type { VectorIndex } from '../../functions/shared/search/ports.ts';
import { startFakeOpenSearch } from '../support/fake-opensearch.ts';

const DIM = 4;
const v = (...xs: number[]) => xs;

let dir: string;
let fake: Awaited<ReturnType<typeof startFakeOpenSearch>>;
let indexCounter = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-vectors-'));
  fake = await startFakeOpenSearch();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await fake.stop();
});

/** No exact shortcut: every search that can goes through the HNSW graph. */
const GRAPH_ONLY = { graphMinDocs: 1, exactBudget: 0, sparse: false };
/** No graph and no exact shortcut: every search the postings can answer goes through them. */
const SPARSE_ONLY = { graphMinDocs: Number.POSITIVE_INFINITY, exactBudget: 0 };

/** Lets the graph take in every document before each search, so the graph answers (not the tail scan). */
function throughGraph(index: AnnVectorIndex): VectorIndex {
  return {
    ensure: () => index.ensure(),
    replace: (doc) => index.replace(doc),
    updateFields: (id, fields) => index.updateFields(id, fields),
    deleteWhere: (field, value) => index.deleteWhere(field, value),
    count: (filter) => index.count(filter),
    replaceMany: (docs) => index.replaceMany(docs),
    search: async (vector, k, filter, options) => {
      await index.settle();
      return index.search(vector, k, filter, options);
    },
  };
}

const adapters: [string, () => VectorIndex][] = [
  ['local exact store', () => LocalVectorIndex.load(join(dir, `i${++indexCounter}.jsonl`))],
  ['local HNSW store', () => throughGraph(AnnVectorIndex.load(join(dir, `i${++indexCounter}.jsonl`), GRAPH_ONLY))],
  ['local sparse postings', () => AnnVectorIndex.load(join(dir, `i${++indexCounter}.jsonl`), SPARSE_ONLY)],
  [
    'OpenSearch Serverless',
    () =>
      new OpenSearchVectorIndex({
        client: new Client({ node: fake.url }),
        index: `idx-${++indexCounter}`,
        dimensions: DIM,
        keywordFields: ['status', 'type', 'values', 'date'],
        lookupAttempts: 1,
      }),
  ],
];

describe.each(adapters)('vector index contract: %s', (_name, make) => {
  async function seeded() {
    const index = make();
    await index.ensure();
    await index.replace({
      id: 'a',
      vector: v(1, 0, 0, 0),
      fields: { status: 'OPEN', type: 'AMOUNT_MISMATCH' },
      text: 'amount differs',
    });
    await index.replace({
      id: 'b',
      vector: v(0, 1, 0, 0),
      fields: { status: 'OPEN', type: 'MISSING_IN_TARGET' },
      text: 'missing',
    });
    await index.replace({
      id: 'c',
      vector: v(0.9, 0.1, 0, 0),
      fields: { status: 'RESOLVED', type: 'AMOUNT_MISMATCH' },
      text: 'amount again',
    });
    return index;
  }

  it('returns the nearest documents first, with scores between 0 and 1', async () => {
    const index = await seeded();

    const hits = await index.search(v(1, 0, 0, 0), 3);

    expect(hits.map((h) => h.id)).toEqual(['a', 'c', 'b']);
    expect(hits[0]?.score).toBeCloseTo(1, 5);
    expect(hits.every((h) => h.score >= 0 && h.score <= 1)).toBe(true);
    expect(hits[0]?.text).toBe('amount differs');
  });

  it('keeps one document per id when the same id is replaced', async () => {
    const index = await seeded();

    await index.replace({
      id: 'a',
      vector: v(0, 0, 1, 0),
      fields: { status: 'OPEN', type: 'AMOUNT_MISMATCH' },
      text: 'moved',
    });

    expect(await index.count()).toBe(3);
    expect((await index.search(v(0, 0, 1, 0), 1))[0]).toMatchObject({ id: 'a', text: 'moved' });
  });

  it('replaces many documents in one call, keeping one document per id', async () => {
    const index = await seeded();

    await index.replaceMany([
      { id: 'a', vector: v(0, 0, 0, 1), fields: { status: 'OPEN', type: 'AMOUNT_MISMATCH' }, text: 'a again' },
      { id: 'd', vector: v(0, 0, 1, 0), fields: { status: 'OPEN', type: 'FIELD_MISMATCH' }, text: 'new' },
    ]);

    expect(await index.count()).toBe(4);
    expect((await index.search(v(0, 0, 0, 1), 1))[0]).toMatchObject({ id: 'a', text: 'a again' });
    expect((await index.search(v(0, 0, 1, 0), 1))[0]).toMatchObject({ id: 'd', text: 'new' });
  });

  it('filters on keyword fields', async () => {
    const index = await seeded();

    const hits = await index.search(v(1, 0, 0, 0), 10, { status: 'OPEN', type: 'AMOUNT_MISMATCH' });

    expect(hits.map((h) => h.id)).toEqual(['a']);
    expect(await index.count({ type: 'AMOUNT_MISMATCH' })).toBe(2);
  });

  it('updates fields of an indexed document and keeps its vector', async () => {
    const index = await seeded();

    await index.updateFields('a', { status: 'ACKNOWLEDGED' });

    const hits = await index.search(v(1, 0, 0, 0), 1, { status: 'ACKNOWLEDGED' });
    expect(hits[0]).toMatchObject({ id: 'a', fields: { status: 'ACKNOWLEDGED', type: 'AMOUNT_MISMATCH' } });
    expect(hits[0]?.score).toBeCloseTo(1, 5);
  });

  it('ignores a field update for an unknown id', async () => {
    const index = await seeded();

    await index.updateFields('nope', { status: 'RESOLVED' });

    expect(await index.count()).toBe(3);
  });

  it('deletes every document matching a field', async () => {
    const index = await seeded();

    const deleted = await index.deleteWhere('type', 'AMOUNT_MISMATCH');

    expect(deleted).toBe(2);
    expect((await index.search(v(1, 0, 0, 0), 10)).map((h) => h.id)).toEqual(['b']);
  });

  it('hybrid: an exact word ranks a document first even when its vector is the farthest', async () => {
    const index = await seeded();
    await index.replace({
      id: 'd',
      vector: v(0, 0, 0, 1),
      fields: { status: 'OPEN', type: 'FIELD_MISMATCH' },
      text: 'account differs',
      lexical: 'trade_id T0105 account_id ACCT2042 account differs',
    });

    const hits = await index.search(v(1, 0, 0, 0), 3, undefined, { text: 'T0105' });

    expect(hits.map((h) => h.id)).toEqual(['d', 'a', 'c']);
    expect(hits[0]?.text).toBe('account differs');
    expect(hits.every((h) => h.score > 0 && h.score <= 1)).toBe(true);
  });

  it('hybrid: a query sharing no word with any document still ranks by vector', async () => {
    const index = await seeded();

    const hits = await index.search(v(0, 1, 0, 0), 2, undefined, { text: 'paying twice' });

    expect(hits.map((h) => h.id)).toEqual(['b', 'c']);
  });

  it('hybrid: the filter applies to both rankings', async () => {
    const index = await seeded();

    const hits = await index.search(v(1, 0, 0, 0), 10, { status: 'OPEN' }, { text: 'amount' });

    expect(hits.map((h) => h.id).sort()).toEqual(['a', 'b']);
    expect(hits[0]?.id).toBe('a');
  });

  it('filters on any value of a list field, and on an inclusive range', async () => {
    const index = make();
    await index.ensure();
    const doc = (id: string, date: string, values: string[]) => ({
      id,
      vector: v(1, 0, 0, 0),
      fields: { status: 'OPEN', date, values },
      text: id,
    });
    await index.replaceMany([
      doc('x', '2025-12-01', ['account_id=ACCT1', 'trade_id=T1']),
      doc('y', '2025-12-05', ['account_id=ACCT2', 'trade_id=T2']),
      doc('z', '2025-12-09', ['account_id=ACCT1', 'trade_id=T3']),
      // No date at all: outside every range.
      { id: 'w', vector: v(1, 0, 0, 0), fields: { status: 'OPEN', values: ['account_id=ACCT3'] }, text: 'w' },
    ]);

    const byAccount = await index.search(v(1, 0, 0, 0), 10, { values: 'account_id=ACCT1' });
    const byRange = await index.search(v(1, 0, 0, 0), 10, undefined, {
      ranges: { date: { from: '2025-12-01', to: '2025-12-05' } },
    });
    const fromOnly = await index.search(
      v(1, 0, 0, 0),
      10,
      { values: 'account_id=ACCT1' },
      {
        text: 'z',
        ranges: { date: { from: '2025-12-02' } },
      },
    );

    expect(byAccount.map((h) => h.id).sort()).toEqual(['x', 'z']);
    expect(byRange.map((h) => h.id).sort()).toEqual(['x', 'y']);
    expect(fromOnly.map((h) => h.id)).toEqual(['z']);
    expect(await index.count({ values: 'trade_id=T2' })).toBe(1);
    expect(await index.deleteWhere('values', 'account_id=ACCT1')).toBe(2);
    expect(await index.count()).toBe(2);
  });

  it('can be ensured twice', async () => {
    const index = make();
    await index.ensure();
    await index.ensure();
    expect(await index.count()).toBe(0);
  });
});

describe('OpenSearch Serverless adapter requests', () => {
  it('replaces in bulk with find + delete + index, never a custom id, upsert or refresh', async () => {
    const index = new OpenSearchVectorIndex({
      client: new Client({ node: fake.url }),
      index: 'bulk-audit',
      dimensions: DIM,
      keywordFields: ['status'],
      lookupAttempts: 1,
    });
    await index.ensure();
    await index.replace({ id: 'x', vector: v(1, 0, 0, 0), fields: { status: 'OPEN' }, text: 'old' });
    const before = fake.requests.length;

    await index.replaceMany([
      { id: 'x', vector: v(0, 1, 0, 0), fields: { status: 'OPEN' }, text: 'new' },
      { id: 'y', vector: v(0, 0, 3, 0), fields: { status: 'OPEN' }, text: 'y' },
    ]);

    const bulks = fake.requests.slice(before).filter((r) => r.path.endsWith('/_bulk'));
    const actions = bulks.flatMap((r) =>
      (r.body as Record<string, { _id?: string }>[]).filter((l) => !('doc_id' in l)),
    );
    expect(actions.filter((a) => 'delete' in a)).toHaveLength(1);
    expect(actions.filter((a) => 'index' in a).every((a) => a.index?._id === undefined)).toBe(true);
    expect(actions.some((a) => 'update' in a)).toBe(false);
    expect(bulks.some((r) => r.query.includes('refresh'))).toBe(false);
    expect(await index.count()).toBe(2);
    expect((await index.search(v(0, 0, 1, 0), 1))[0]).toMatchObject({ id: 'y' });
  });

  it('creates a faiss knn index, never sends custom ids, upserts or refresh', async () => {
    const index = new OpenSearchVectorIndex({
      client: new Client({ node: fake.url }),
      index: 'audit',
      dimensions: DIM,
      keywordFields: ['status'],
      lookupAttempts: 1,
    });
    const before = fake.requests.length;

    await index.ensure();
    await index.replace({ id: 'x', vector: v(2, 0, 0, 0), fields: { status: 'OPEN' }, text: 't' });
    await index.replace({ id: 'x', vector: v(0, 2, 0, 0), fields: { status: 'OPEN' }, text: 't' });
    await index.updateFields('x', { status: 'RESOLVED' });

    const sent = fake.requests.slice(before);
    const create = sent.find((r) => r.method === 'PUT' && r.path === '/audit');
    expect(create?.body).toMatchObject({
      settings: { index: { knn: true } },
      mappings: {
        properties: {
          doc_id: { type: 'keyword' },
          vector: { type: 'knn_vector', dimension: DIM, method: { engine: 'faiss', space_type: 'innerproduct' } },
        },
      },
    });
    expect(
      sent
        .filter((r) => r.path.startsWith('/audit/_doc') && r.method !== 'DELETE')
        .every((r) => r.method === 'POST' && r.path === '/audit/_doc'),
    ).toBe(true);
    expect(sent.some((r) => r.query.includes('refresh') || r.path.includes('_update'))).toBe(false);
    // Replace is find + delete + index: the second replace deleted the first document.
    expect(sent.filter((r) => r.method === 'DELETE')).toHaveLength(2);
    const indexed = sent
      .filter((r) => r.method === 'POST' && r.path === '/audit/_doc')
      .map((r) => r.body as { doc_id: string; vector: number[] });
    expect(indexed.every((d) => d.doc_id === 'x')).toBe(true);
    expect(indexed[0]?.vector).toEqual([1, 0, 0, 0]);
  });
});

describe('OpenSearch Serverless hybrid search requests', () => {
  it('sends a match query on the lexical text beside the knn query, both with the same filter, and fuses them', async () => {
    const index = new OpenSearchVectorIndex({
      client: new Client({ node: fake.url }),
      index: 'hybrid-audit',
      dimensions: DIM,
      keywordFields: ['status', 'values', 'business_date'],
      lookupAttempts: 1,
    });
    await index.ensure();
    await index.replaceMany([
      {
        id: 'near',
        vector: v(1, 0, 0, 0),
        fields: { status: 'OPEN', business_date: '2025-12-10', values: ['trade_id=T1'] },
        text: 'near',
      },
      {
        id: 'exact',
        vector: v(0, 0, 0, 1),
        fields: { status: 'OPEN', business_date: '2025-12-10', values: ['trade_id=T0105'] },
        text: 'the summary',
        lexical: 'trade_id T0105 amount differs',
      },
    ]);
    const before = fake.requests.length;

    const hits = await index.search(
      v(1, 0, 0, 0),
      5,
      { status: 'OPEN' },
      {
        text: 'T0105',
        ranges: { business_date: { from: '2025-12-01', to: '2025-12-31' } },
      },
    );

    const searches = fake.requests
      .slice(before)
      .filter((r) => r.path === '/hybrid-audit/_search')
      .map((r) => r.body as { size: number; query: Record<string, unknown> });
    const filter = [
      { term: { 'fields.status': 'OPEN' } },
      { range: { 'fields.business_date': { gte: '2025-12-01', lte: '2025-12-31' } } },
    ];
    expect(searches).toHaveLength(2);
    expect(searches).toContainEqual(
      expect.objectContaining({
        query: { knn: { vector: expect.objectContaining({ filter: { bool: { filter } } }) } },
      }),
    );
    expect(searches).toContainEqual(
      expect.objectContaining({ query: { bool: { must: [{ match: { lexical: { query: 'T0105' } } }], filter } } }),
    );
    // Both rankings are read deeper than k, so a document low in one still counts.
    expect(searches.every((s) => s.size >= 50)).toBe(true);
    expect(hits.map((h) => h.id)).toEqual(['exact', 'near']);
    expect(hits[0]).toMatchObject({ text: 'the summary', fields: { values: ['trade_id=T0105'] } });
  });

  it('maps the lexical text as analysed text and indexes it (the summary when none is given)', async () => {
    const index = new OpenSearchVectorIndex({
      client: new Client({ node: fake.url }),
      index: 'lexical-audit',
      dimensions: DIM,
      keywordFields: ['status'],
      lookupAttempts: 1,
    });
    const before = fake.requests.length;

    await index.ensure();
    await index.replace({ id: 'x', vector: v(1, 0, 0, 0), fields: { status: 'OPEN' }, text: 'just a summary' });

    const sent = fake.requests.slice(before);
    const create = sent.find((r) => r.method === 'PUT' && r.path === '/lexical-audit');
    expect(create?.body).toMatchObject({ mappings: { properties: { lexical: { type: 'text' } } } });
    const indexed = sent.find((r) => r.method === 'POST' && r.path === '/lexical-audit/_doc');
    expect(indexed?.body).toMatchObject({ doc_id: 'x', lexical: 'just a summary' });
  });

  it('without query words sends the knn query alone, as before', async () => {
    const index = new OpenSearchVectorIndex({
      client: new Client({ node: fake.url }),
      index: 'vector-only-audit',
      dimensions: DIM,
      keywordFields: ['status'],
      lookupAttempts: 1,
    });
    await index.ensure();
    const before = fake.requests.length;

    await index.search(v(1, 0, 0, 0), 3, { status: 'OPEN' });

    const searches = fake.requests.slice(before).filter((r) => r.path === '/vector-only-audit/_search');
    expect(searches).toHaveLength(1);
    expect(searches[0]?.body).toMatchObject({ size: 3, query: { knn: { vector: { k: 3 } } } });
  });
});

describe.each([
  ['exact', (path: string) => LocalVectorIndex.load(path)],
  ['HNSW', (path: string) => throughGraph(AnnVectorIndex.load(path, GRAPH_ONLY))],
  ['sparse postings', (path: string) => AnnVectorIndex.load(path, SPARSE_ONLY)],
])('local %s store', (name, load) => {
  it('keeps its documents across restarts', async () => {
    const path = join(dir, `persist-${name}.jsonl`);
    const first = load(path);
    await first.replace({ id: 'p', vector: v(0, 0, 0, 1), fields: { status: 'OPEN' }, text: 'kept' });
    await first.updateFields('p', { status: 'RESOLVED' });

    const reopened = load(path);

    expect(await reopened.search(v(0, 0, 0, 1), 1)).toMatchObject([
      { id: 'p', fields: { status: 'RESOLVED' }, text: 'kept' },
    ]);
  });
});

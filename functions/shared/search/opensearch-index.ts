/**
 * Vector index on an OpenSearch Serverless VECTORSEARCH collection.
 *
 * AOSS limits shape every call here: no custom document `_id` (our id lives in the keyword field
 * `doc_id`), no upserts (replace = find + delete + index), no `refresh` (new documents become
 * searchable after seconds — readers tolerate the lag, and updateFields retries its lookup).
 */
import { sleep } from '../retry.ts';
import type { Client } from '@opensearch-project/opensearch';
import { fuseHybrid, fusionDepth, type LexicalHit } from './fusion.ts';
import type { FieldValue, SearchOptions, VectorDocument, VectorHit, VectorIndex } from './ports.ts';
import { hypot } from './vector-norm.ts';

export interface OpenSearchIndexOptions {
  readonly client: Client;
  readonly index: string;
  readonly dimensions: number;
  /** Fields indexed as keywords for filtering. */
  readonly keywordFields: readonly string[];
  /** Lookups of a just-written document retry this many times, a second apart. */
  readonly lookupAttempts?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

interface Source {
  doc_id: string;
  vector?: number[];
  text: string;
  /** Analysed (standard analyzer) for the `match` half of hybrid search. */
  lexical?: string;
  fields: Record<string, FieldValue>;
}

const MAX_MATCHES = 100;
/** Documents per `_bulk` request: ~1,000 vectors of 1024 floats stay well under AOSS's request size limit. */
const BULK_CHUNK = 500;

/** Some documents of a bulk replace were not indexed: which, and why. */
export class BulkIndexError extends Error {
  readonly failed: ReadonlyMap<string, string>;
  constructor(failed: ReadonlyMap<string, string>) {
    super(`${failed.size} document(s) not indexed: ${[...failed.values()][0]}`);
    this.name = 'BulkIndexError';
    this.failed = failed;
  }
}

interface BulkItem {
  status: number;
  error?: { type?: string; reason?: string };
}

function bulkItems(body: unknown): BulkItem[] {
  const items = (body as { items?: Record<string, BulkItem>[] }).items ?? [];
  return items.map((item) => Object.values(item)[0] as BulkItem);
}

export class OpenSearchVectorIndex implements VectorIndex {
  private readonly options: OpenSearchIndexOptions;
  constructor(options: OpenSearchIndexOptions) {
    this.options = options;
  }

  async ensure(): Promise<void> {
    const { client, index } = this.options;
    const exists = await client.indices.exists({ index });
    if (exists.body) return;
    const fieldProps = Object.fromEntries(this.options.keywordFields.map((f) => [f, { type: 'keyword' as const }]));
    try {
      await client.indices.create({
        index,
        body: {
          settings: { index: { knn: true } },
          mappings: {
            properties: {
              doc_id: { type: 'keyword' },
              text: { type: 'text', index: false },
              lexical: { type: 'text' },
              fields: { properties: fieldProps },
              // faiss + inner product over normalised vectors is cosine similarity, and lets the
              // knn query filter efficiently (AOSS supports both).
              vector: {
                type: 'knn_vector',
                dimension: this.options.dimensions,
                method: { name: 'hnsw', engine: 'faiss', space_type: 'innerproduct' },
              },
            },
          },
        },
      });
    } catch (error) {
      // Two cold starts racing to create the index: the loser finds it there.
      if (!String((error as Error).message).includes('resource_already_exists')) throw error;
    }
  }

  async replace(doc: VectorDocument): Promise<void> {
    for (const hit of await this.find(doc.id)) await this.deleteRaw(hit._id);
    await this.options.client.index({
      index: this.options.index,
      body: source(doc),
    });
  }

  /**
   * Replaces many documents in two `_bulk` calls per chunk: deletes of what exists under their
   * ids, then index actions without `_id` (AOSS assigns it). Items that fail are named in a
   * BulkIndexError, so each caller's record fails or succeeds on its own.
   */
  async replaceMany(docs: readonly VectorDocument[]): Promise<void> {
    const failed = new Map<string, string>();
    for (let i = 0; i < docs.length; i += BULK_CHUNK) {
      const chunk = docs.slice(i, i + BULK_CHUNK);
      const existing = await this.findMany(chunk.map((d) => d.id));
      if (existing.length > 0) {
        const response = await this.options.client.bulk({
          index: this.options.index,
          body: existing.map((rawId) => ({ delete: { _index: this.options.index, _id: rawId } })),
        });
        // A delete of something already gone (a concurrent replace) reached its goal.
        const bad = bulkItems(response.body).find((item) => item.error && item.status !== 404);
        if (bad) throw new Error(`bulk delete failed: ${bad.error?.type ?? bad.status}`);
      }
      const response = await this.options.client.bulk({
        index: this.options.index,
        body: chunk.flatMap((doc) => [{ index: { _index: this.options.index } }, source(doc)]),
      });
      bulkItems(response.body).forEach((item, j) => {
        if (item.error) failed.set((chunk[j] as VectorDocument).id, item.error.reason ?? item.error.type ?? 'failed');
      });
    }
    if (failed.size > 0) throw new BulkIndexError(failed);
  }

  async updateFields(id: string, fields: Readonly<Record<string, FieldValue>>): Promise<void> {
    const attempts = this.options.lookupAttempts ?? 3;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const hits = await this.find(id, true);
      const first = hits[0];
      if (first) {
        for (const hit of hits) await this.deleteRaw(hit._id);
        await this.options.client.index({
          index: this.options.index,
          body: { ...first._source, fields: { ...first._source.fields, ...fields } },
        });
        return;
      }
      // A fixed wait, not a backoff: AOSS makes a new document searchable after about a second.
      if (attempt < attempts - 1) await (this.options.sleep ?? sleep)(1000);
    }
  }

  async deleteWhere(field: string, value: string): Promise<number> {
    const response = await this.options.client
      .search({
        index: this.options.index,
        body: { size: 1000, _source: false, query: { term: { [`fields.${field}`]: value } } },
      })
      .catch(noIndex(EMPTY));
    const hits = (response.body.hits.hits ?? []) as { _id: string }[];
    for (const hit of hits) await this.deleteRaw(hit._id);
    return hits.length;
  }

  /**
   * Vector search: one `knn` query. With `options.text`, hybrid: a `match` query on the analysed
   * lexical text runs beside the `knn` query (both filtered alike, in parallel) and the adapter
   * fuses their rankings (RRF, fusion.ts). Fusing here, not in a search pipeline, keeps AOSS's
   * feature set out of the way (hybrid query pipelines are not in every AOSS collection type)
   * and gives the same ranking as the local store.
   */
  async search(
    vector: number[],
    k: number,
    filter: Readonly<Record<string, string>> = {},
    options: SearchOptions = {},
  ): Promise<VectorHit[]> {
    const conditions = filterClauses(filter, options.ranges);
    if (options.text === undefined) return this.knn(vector, k, conditions);
    const depth = fusionDepth(k);
    const [byVector, byWords] = await Promise.all([
      this.knn(vector, depth, conditions),
      this.match(options.text, depth, conditions),
    ]);
    return fuseHybrid(options.text, byVector, byWords, k);
  }

  private async knn(vector: number[], k: number, conditions: object[]): Promise<VectorHit[]> {
    const knn = {
      vector: normalise(vector),
      k,
      ...(conditions.length > 0 ? { filter: { bool: { filter: conditions } } } : {}),
    };
    const response = await this.options.client
      .search({
        index: this.options.index,
        body: { size: k, _source: { excludes: ['vector'] }, query: { knn: { vector: knn } } },
      })
      .catch(noIndex(EMPTY));
    return ((response.body.hits.hits ?? []) as { _score: number; _source: Source }[]).map((h) => ({
      id: h._source.doc_id,
      // faiss inner product scores are 1 + cos for cos >= 0: map back to the [0, 1] scale.
      score: h._score >= 1 ? h._score / 2 : h._score / (1 + h._score) / 2,
      fields: h._source.fields,
      text: h._source.text,
    }));
  }

  private async match(text: string, size: number, conditions: object[]): Promise<LexicalHit[]> {
    const response = await this.options.client
      .search({
        index: this.options.index,
        body: {
          size,
          _source: { excludes: ['vector'] },
          query: { bool: { must: [{ match: { lexical: { query: text } } }], filter: conditions } },
        },
      })
      .catch(noIndex(EMPTY));
    return ((response.body.hits.hits ?? []) as { _score: number; _source: Source }[]).map((h) => ({
      id: h._source.doc_id,
      score: h._score,
      fields: h._source.fields,
      text: h._source.text,
      lexical: h._source.lexical ?? h._source.text,
    }));
  }

  async count(filter: Readonly<Record<string, string>> = {}): Promise<number> {
    const terms = filterClauses(filter);
    const response = await this.options.client
      .count({
        index: this.options.index,
        body: { query: terms.length ? { bool: { filter: terms } } : { match_all: {} } },
      })
      .catch(noIndex({ body: { count: 0 } }));
    return response.body.count as number;
  }

  private async find(id: string, withSource = false): Promise<{ _id: string; _source: Source }[]> {
    const response = await this.options.client
      .search({
        index: this.options.index,
        body: { size: MAX_MATCHES, _source: withSource, query: { term: { doc_id: id } } },
      })
      .catch(noIndex(EMPTY));
    return (response.body.hits.hits ?? []) as { _id: string; _source: Source }[];
  }

  private async findMany(ids: readonly string[]): Promise<string[]> {
    const response = await this.options.client.search({
      index: this.options.index,
      body: { size: ids.length * MAX_MATCHES, _source: false, query: { terms: { doc_id: [...ids] } } },
    });
    return ((response.body.hits.hits ?? []) as { _id: string }[]).map((h) => h._id);
  }

  private async deleteRaw(rawId: string): Promise<void> {
    try {
      await this.options.client.delete({ index: this.options.index, id: rawId });
    } catch (error) {
      // Already gone (a concurrent replace): the goal is reached.
      if ((error as { meta?: { statusCode?: number } }).meta?.statusCode !== 404) throw error;
    }
  }
}

function source(doc: VectorDocument): Source {
  return {
    doc_id: doc.id,
    vector: normalise(doc.vector),
    text: doc.text,
    lexical: doc.lexical ?? doc.text,
    fields: { ...doc.fields },
  };
}

/** Filter clauses on the keyword fields: a term per equality (any value of a list matches), a range per bound. */
function filterClauses(filter: Readonly<Record<string, string>>, ranges: SearchOptions['ranges'] = {}): object[] {
  return [
    ...Object.entries(filter).map(([f, v]) => ({ term: { [`fields.${f}`]: v } })),
    ...Object.entries(ranges)
      .filter(([, r]) => r.from !== undefined || r.to !== undefined)
      .map(([f, r]) => ({
        range: {
          [`fields.${f}`]: {
            ...(r.from !== undefined ? { gte: r.from } : {}),
            ...(r.to !== undefined ? { lte: r.to } : {}),
          },
        },
      })),
  ];
}

/** What a search of an index with no documents answers. */
const EMPTY = { body: { hits: { hits: [] as unknown[] } } };

/**
 * Indexes are created by their first writer (ensure): until then, readers see an index with no
 * documents (no policy passages, no search hits) rather than an error.
 */
function noIndex<T>(empty: T) {
  return (error: unknown): T => {
    const e = error as { meta?: { statusCode?: number; body?: { error?: { type?: string } } }; message?: string };
    const type = e.meta?.body?.error?.type ?? '';
    if (
      e.meta?.statusCode === 404 &&
      (type === 'index_not_found_exception' || String(e.message).includes('index_not_found'))
    )
      return empty;
    throw error;
  };
}

function normalise(vector: number[]): number[] {
  const norm = hypot(vector);
  return norm === 0 ? vector : vector.map((v) => v / norm);
}

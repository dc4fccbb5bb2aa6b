/**
 * Vector index on an OpenSearch Serverless VECTORSEARCH collection.
 *
 * AOSS limits shape every call here: no custom document `_id` (our id lives in the keyword field
 * `doc_id`), no upserts (replace = find + delete + index), no `refresh` (new documents become
 * searchable after seconds — readers tolerate the lag, and updateFields retries its lookup).
 */
import type { Client } from '@opensearch-project/opensearch';
import type { FieldValue, VectorDocument, VectorHit, VectorIndex } from './ports.ts';

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
  fields: Record<string, FieldValue>;
}

const MAX_MATCHES = 100;

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
      body: {
        doc_id: doc.id,
        vector: normalise(doc.vector),
        text: doc.text,
        fields: { ...doc.fields },
      } satisfies Source,
    });
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
      if (attempt < attempts - 1) await (this.options.sleep ?? defaultSleep)(1000);
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

  async search(vector: number[], k: number, filter: Readonly<Record<string, string>> = {}): Promise<VectorHit[]> {
    const terms = Object.entries(filter).map(([f, v]) => ({ term: { [`fields.${f}`]: v } }));
    const knn = { vector: normalise(vector), k, ...(terms.length > 0 ? { filter: { bool: { filter: terms } } } : {}) };
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

  async count(filter: Readonly<Record<string, string>> = {}): Promise<number> {
    const terms = Object.entries(filter).map(([f, v]) => ({ term: { [`fields.${f}`]: v } }));
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

  private async deleteRaw(rawId: string): Promise<void> {
    try {
      await this.options.client.delete({ index: this.options.index, id: rawId });
    } catch (error) {
      // Already gone (a concurrent replace): the goal is reached.
      if ((error as { meta?: { statusCode?: number } }).meta?.statusCode !== 404) throw error;
    }
  }
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
  const norm = Math.hypot(...vector);
  return norm === 0 ? vector : vector.map((v) => v / norm);
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

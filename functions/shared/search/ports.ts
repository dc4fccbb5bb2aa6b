/**
 * Embeddings and vector search behind two small interfaces, so triage, ingest and the query
 * API never know whether vectors live in OpenSearch Serverless or in the local embedded store.
 */

export interface Embedder {
  /** What produced the vectors: recorded with each indexed document. */
  readonly id: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<number[][]>;
  /**
   * Starts what the first `embed` would wait for (a model's load), without waiting for it: called
   * when a function builds its dependencies, so the first message does not pay for it.
   */
  prepare?(): void;
}

/** A list of strings is a multi-valued keyword: an equality filter matches any of its values. */
export type FieldValue = string | number | boolean | null | readonly string[];

/** Inclusive bounds on a keyword field, compared as text (ISO dates order correctly). */
export interface FieldRange {
  readonly from?: string | undefined;
  readonly to?: string | undefined;
}

export interface SearchOptions {
  /**
   * The query's words. Given, the index also ranks documents lexically (BM25 over their
   * `lexical` text) and fuses both rankings by reciprocal rank fusion (fusion.ts): an exact id
   * ranks first, a paraphrase is still found by its vector. Scores are then fused scores in [0, 1].
   */
  readonly text?: string | undefined;
  /** Range conditions, applied with the equality filter. */
  readonly ranges?: Readonly<Record<string, FieldRange>> | undefined;
}

export interface VectorDocument {
  /** Our own id (OpenSearch Serverless rejects custom _id values): kept in a keyword field. */
  readonly id: string;
  readonly vector: number[];
  /** Filterable keyword fields (type, status, severity, dataset, date, run, document, section...). */
  readonly fields: Readonly<Record<string, FieldValue>>;
  /** Text shown with a hit (a passage, an exception summary). */
  readonly text: string;
  /** Words a lexical query matches (ids, accounts, amounts, the summary); absent: `text`. */
  readonly lexical?: string;
}

export interface VectorHit {
  readonly id: string;
  /** Higher is closer; cosine similarity mapped to [0, 1]. */
  readonly score: number;
  readonly fields: Readonly<Record<string, FieldValue>>;
  readonly text: string;
}

export interface VectorIndex {
  /** Creates the index if it does not exist. */
  ensure(): Promise<void>;
  /** Replaces every document with the same id (find + delete + index: no upserts in AOSS). */
  replace(doc: VectorDocument): Promise<void>;
  /** `replace` for many documents in one write (OpenSearch `_bulk`, one append locally). */
  replaceMany(docs: readonly VectorDocument[]): Promise<void>;
  /** Changes fields of an indexed document, keeping its vector. No-op when absent. */
  updateFields(id: string, fields: Readonly<Record<string, FieldValue>>): Promise<void>;
  /** Deletes every document whose field `field` equals `value` (e.g. all passages of a document). */
  deleteWhere(field: string, value: string): Promise<number>;
  /**
   * k nearest documents whose fields equal every given filter value (and lie in every range), or
   * with `options.text` the k best by fused vector and lexical rank. Readers tolerate seconds of
   * lag on AWS.
   */
  search(
    vector: number[],
    k: number,
    filter?: Readonly<Record<string, string>>,
    options?: SearchOptions,
  ): Promise<VectorHit[]>;
  /** Number of documents matching the filter (or all). */
  count(filter?: Readonly<Record<string, string>>): Promise<number>;
  /**
   * Loads now what the first search would (the local index: every document's vector and the
   * word index, ~20 s a thread at 100k hybrid exceptions, in slices between the thread's other
   * work); absent where a search loads nothing.
   */
  prepare?(): Promise<void>;
}

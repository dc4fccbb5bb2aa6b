/**
 * Embeddings and vector search behind two small interfaces, so triage, ingest and the query
 * API never know whether vectors live in OpenSearch Serverless or in the local embedded store.
 */

export interface Embedder {
  /** What produced the vectors: recorded with each indexed document. */
  readonly id: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<number[][]>;
}

export type FieldValue = string | number | boolean | null;

export interface VectorDocument {
  /** Our own id (OpenSearch Serverless rejects custom _id values): kept in a keyword field. */
  readonly id: string;
  readonly vector: number[];
  /** Filterable keyword fields (type, status, severity, dataset, date, run, document, section...). */
  readonly fields: Readonly<Record<string, FieldValue>>;
  /** Text shown with a hit (a passage, an exception summary). */
  readonly text: string;
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
  /** k nearest documents whose fields equal every given filter value. Readers tolerate seconds of lag on AWS. */
  search(vector: number[], k: number, filter?: Readonly<Record<string, string>>): Promise<VectorHit[]>;
  /** Number of documents matching the filter (or all). */
  count(filter?: Readonly<Record<string, string>>): Promise<number>;
}

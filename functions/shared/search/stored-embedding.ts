/**
 * An exception's vector kept on its table item, so that each region's stream consumer (and
 * `tally reindex`) can rebuild its search document without calling a model: the table is the
 * source of truth, the index a projection of it. Attribute `embedding`: the vector as
 * little-endian float32, base64 (4 bytes a dimension: 1,024 dimensions are ~5.5 KB of the item's
 * 400 KB); `embedding_model`: the embedder's id, so vectors of another model are never mixed in.
 */
export const EMBEDDING_ATTRIBUTE = 'embedding';
export const EMBEDDING_MODEL_ATTRIBUTE = 'embedding_model';

export interface StoredEmbedding {
  readonly vector: number[];
  readonly model: string;
}

export function encodeEmbedding(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}

export function decodeEmbedding(encoded: string): number[] {
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0)
    throw new Error(`a stored embedding is whole float32 values; this one has ${bytes.length} bytes`);
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

/** The embedding on an item, when it carries one of `model` (anything else is rebuilt, not reused). */
export function storedEmbedding(item: Readonly<Record<string, unknown>>): StoredEmbedding | undefined {
  const encoded = item[EMBEDDING_ATTRIBUTE];
  const model = item[EMBEDDING_MODEL_ATTRIBUTE];
  if (typeof encoded !== 'string' || typeof model !== 'string') return undefined;
  return { vector: decodeEmbedding(encoded), model };
}

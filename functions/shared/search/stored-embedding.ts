/**
 * An exception's vector kept on its table item, so that each region's stream consumer (and
 * `tally reindex`) can rebuild its search document without calling a model: the table is the
 * source of truth, the index a projection of it. Attribute `embedding_model`: the embedder's id,
 * so vectors of another model are never mixed in. Attribute `embedding`: the vector as float32
 * (exact to float32 either way), a string in one of two forms:
 * - dense: the little-endian float32 values, base64 (4 bytes a dimension: 1,024 dimensions are
 *   ~5.5 KB of the item's 400 KB). Every vector stored before the sparse form, and any vector
 *   with few zeros (Titan's, OpenAI's) is written this way.
 * - sparse: `sparse:` and the base64 of [dimensions as uint32 LE][a bitmap of the non-zero
 *   dimensions, bit i%8 of byte i/8][their float32 values, in order]. The hashing embedder's
 *   1,024 dimensions hold ~60 non-zero values, hybrid's 1,536 ~580 (its semantic half is dense):
 *   3.3 KB of text instead of 8.2 KB. That string was most of a triaged item (13 KB of which 8.2 KB
 *   the vector), and every pattern member's triage write carries it: the SDK serialises it a
 *   character at a time, the emulator parses and stores it, on AWS it is billed write capacity.
 * The prefix is outside base64's alphabet, so the two forms never read as each other.
 */
import { endianness } from 'node:os';

export const EMBEDDING_ATTRIBUTE = 'embedding';
export const EMBEDDING_MODEL_ATTRIBUTE = 'embedding_model';

const SPARSE_PREFIX = 'sparse:';
const LITTLE_ENDIAN = endianness() === 'LE';

export interface StoredEmbedding {
  readonly vector: number[];
  readonly model: string;
}

/** The shorter exact form of `vector`: sparse when enough of it is zero, dense otherwise. */
export function encodeEmbedding(vector: ArrayLike<number>): string {
  const dimensions = vector.length;
  let nonZero = 0;
  for (let i = 0; i < dimensions; i++) if (vector[i] !== 0) nonZero++;
  const bitmapBytes = Math.ceil(dimensions / 8);
  if (4 + bitmapBytes + 4 * nonZero >= 4 * dimensions) return encodeDense(vector);
  const bytes = Buffer.alloc(4 + bitmapBytes + 4 * nonZero);
  bytes.writeUInt32LE(dimensions, 0);
  let at = 4 + bitmapBytes;
  for (let i = 0; i < dimensions; i++) {
    const x = vector[i] as number;
    if (x === 0) continue;
    bytes[4 + (i >> 3)] = (bytes[4 + (i >> 3)] as number) | (1 << (i & 7));
    bytes.writeFloatLE(x, at);
    at += 4;
  }
  return SPARSE_PREFIX + bytes.toString('base64');
}

function encodeDense(vector: ArrayLike<number>): string {
  const bytes = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i] as number, i * 4);
  return bytes.toString('base64');
}

export function decodeEmbedding(encoded: string): number[] {
  return Array.from(decodeEmbeddingFloats(encoded));
}

/**
 * `decodeEmbedding` as float32 values, the form they were stored in (the local index keeps them
 * so). The array may be a view of a temporary buffer: copy it to keep it.
 */
export function decodeEmbeddingFloats(encoded: string): Float32Array {
  if (encoded.startsWith(SPARSE_PREFIX))
    return decodeSparse(Buffer.from(encoded.slice(SPARSE_PREFIX.length), 'base64'));
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0)
    throw new Error(`a stored embedding is whole float32 values; this one has ${bytes.length} bytes`);
  // Where floats are little-endian, the decoded bytes themselves: a dense log's every line pays
  // this when the local index reads it, and for 1,024 dimensions a view is ~4.5 µs, a new array
  // ~8.5 (allocating it), value by value ~11. A view needs 4-byte alignment, which a pooled
  // Buffer may lack: then a copy.
  if (LITTLE_ENDIAN)
    return bytes.byteOffset % 4 === 0
      ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
      : new Float32Array(Uint8Array.prototype.slice.call(bytes).buffer);
  const vector = new Float32Array(bytes.length / 4);
  for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
  return vector;
}

function decodeSparse(bytes: Buffer): Float32Array {
  const dimensions = bytes.length >= 4 ? bytes.readUInt32LE(0) : 0;
  const bitmapBytes = Math.ceil(dimensions / 8);
  const valueBytes = bytes.length - 4 - bitmapBytes;
  if (dimensions === 0 || valueBytes < 0 || valueBytes % 4 !== 0)
    throw new Error(
      `a sparse stored embedding is a dimension count, a bitmap and float32 values; this one has ${bytes.length} bytes`,
    );
  const vector = new Float32Array(dimensions);
  let at = 4 + bitmapBytes;
  for (let i = 0; i < dimensions; i++) {
    if (((bytes[4 + (i >> 3)] as number) & (1 << (i & 7))) === 0) continue;
    if (at + 4 > bytes.length) throw new Error('a sparse stored embedding has fewer values than its bitmap marks');
    vector[i] = bytes.readFloatLE(at);
    at += 4;
  }
  if (at !== bytes.length) throw new Error('a sparse stored embedding has more values than its bitmap marks');
  return vector;
}

/** The embedding on an item, when it carries one of `model` (anything else is rebuilt, not reused). */
export function storedEmbedding(item: Readonly<Record<string, unknown>>): StoredEmbedding | undefined {
  const encoded = item[EMBEDDING_ATTRIBUTE];
  const model = item[EMBEDDING_MODEL_ATTRIBUTE];
  if (typeof encoded !== 'string' || typeof model !== 'string') return undefined;
  return { vector: decodeEmbedding(encoded), model };
}

/**
 * Which embedder a local index's vectors come from, recorded beside its log
 * (`<index>.jsonl.embedder.json`). Vectors of two embedders cannot be compared: a hashing vector
 * (1024 dimensions) and a hybrid one (1536) differ in size, and two embedders of one size still
 * live in different spaces. Opening an index with another embedder is refused at once, naming
 * both and what to do, rather than answering searches with nonsense.
 *
 * An index written before this record existed is adopted when its first vector has the
 * embedder's size (the hashing default was the only offline embedder then), refused otherwise.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../config.ts';
import { ENV } from '../resources.ts';
import { decodeEmbeddingFloats } from './stored-embedding.ts';
/** Which embedder made (or will make) the vectors. */
export interface EmbedderIdentity {
  readonly id: string;
  readonly dimensions: number;
}

interface IndexMeta {
  embedder: string;
  dimensions: number;
}

/** Longest prefix of the log read to find the first vector (a put line of 1536 floats is ~8 KiB). */
const HEAD_BYTES = 256 * 1024;

export class IndexEmbedderMismatchError extends ConfigError {
  constructor(path: string, found: IndexMeta, wanted: EmbedderIdentity) {
    super(
      `the local vector index ${path} holds vectors of ${found.embedder} (${found.dimensions} dimensions), ` +
        `but ${ENV.embedder} selects ${wanted.id} (${wanted.dimensions} dimensions): ` +
        `set ${ENV.embedder} back to the embedder that built it, or delete ${path} and its ` +
        `${path}.embedder.json so it is rebuilt (the local stack re-indexes policies when it starts; ` +
        `re-run reconciliations to re-index exceptions)`,
    );
    this.name = 'IndexEmbedderMismatchError';
  }
}

export function metaPath(indexPath: string): string {
  return `${indexPath}.embedder.json`;
}

/** Records the embedder of a new index, adopts an old one of the same size, refuses any other. */
export function checkLocalIndexEmbedder(indexPath: string, embedder: EmbedderIdentity): void {
  const wanted: IndexMeta = { embedder: embedder.id, dimensions: embedder.dimensions };
  const recorded = readMeta(indexPath);
  if (recorded) {
    if (recorded.embedder !== wanted.embedder || recorded.dimensions !== wanted.dimensions)
      throw new IndexEmbedderMismatchError(indexPath, recorded, embedder);
    return;
  }
  const dimensions = firstVectorDimensions(indexPath);
  if (dimensions !== null && dimensions !== wanted.dimensions)
    throw new IndexEmbedderMismatchError(indexPath, { embedder: 'an earlier embedder', dimensions }, embedder);
  // Written whole and renamed into place: another thread opening the index reads all of it or none.
  mkdirSync(dirname(indexPath), { recursive: true });
  const tmp = `${metaPath(indexPath)}.${randomUUID()}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(wanted)}\n`);
  renameSync(tmp, metaPath(indexPath));
}

/**
 * The embedder id recorded for a local index ('hashing-bow-1024' for an index written before the
 * record existed, whose vectors are the then-only offline embedder's), or null when it holds none.
 */
export function recordedEmbedderId(indexPath: string): string | null {
  const recorded = readMeta(indexPath);
  if (recorded) return recorded.embedder;
  const dimensions = firstVectorDimensions(indexPath);
  return dimensions === null ? null : `hashing-bow-${dimensions}`;
}

function readMeta(indexPath: string): IndexMeta | null {
  try {
    const meta = JSON.parse(readFileSync(metaPath(indexPath), 'utf8')) as Partial<IndexMeta>;
    if (typeof meta.embedder === 'string' && typeof meta.dimensions === 'number')
      return { embedder: meta.embedder, dimensions: meta.dimensions };
  } catch {
    // None yet (or unreadable): treat the index as unrecorded, and look at its vectors.
  }
  return null;
}

/** The size of the first stored vector, or null when the log holds none. */
function firstVectorDimensions(indexPath: string): number | null {
  if (!existsSync(indexPath)) return null;
  const fd = openSync(indexPath, 'r');
  try {
    const head = Buffer.alloc(HEAD_BYTES);
    const read = readSync(fd, head, 0, HEAD_BYTES, 0);
    for (const line of head.toString('utf8', 0, read).split('\n')) {
      if (!line.startsWith('{"op":"put"')) continue;
      try {
        const op = JSON.parse(line) as { doc: { vector: string } };
        // In either stored form (the log writes a mostly-zero vector sparse: stored-embedding.ts).
        return decodeEmbeddingFloats(op.doc.vector).length;
      } catch {
        // cut short (a crash, or the end of the head): try the next line
      }
    }
    return null;
  } finally {
    closeSync(fd);
  }
}

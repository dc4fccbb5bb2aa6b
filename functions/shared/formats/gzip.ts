/**
 * Gzip is recognised by its bytes (RFC 1952 magic 1f 8b), whatever the file is called or claims
 * to be, and inflated as a stream: a compressed extract is never held whole in memory.
 */
import { Buffer } from 'node:buffer';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

export type Chunk = Uint8Array | string;

export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Thrown when the gzip stream itself is damaged (truncated, bad checksum). */
export class GzipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GzipError';
  }
}

/**
 * `input` as it is, or inflated when its first bytes are gzip's magic. A reader that stops early
 * (a sample read, an error) closes `input` (a file's stream: its descriptor) whatever the path.
 */
export async function* gunzipIfCompressed(input: AsyncIterable<Chunk>): AsyncGenerator<Chunk> {
  const iterator = input[Symbol.asyncIterator]();
  try {
    yield* inflateIfCompressed(iterator);
  } finally {
    await iterator.return?.();
  }
}

async function* inflateIfCompressed(iterator: AsyncIterator<Chunk>): AsyncGenerator<Chunk> {
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  // Enough bytes to see the magic (a stream may deliver them one at a time).
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      yield* held;
      return;
    }
    if (typeof next.value === 'string') {
      yield* held;
      yield next.value;
      yield* { [Symbol.asyncIterator]: () => iterator };
      return;
    }
    held.push(next.value);
    heldBytes += next.value.length;
    if (heldBytes >= 2) break;
  }
  const head = held.length === 1 ? (held[0] as Uint8Array) : Buffer.concat(held);
  const rest = { [Symbol.asyncIterator]: () => iterator };
  if (!isGzip(head)) {
    yield* held;
    yield* rest;
    return;
  }
  async function* compressed(): AsyncGenerator<Uint8Array> {
    yield* held;
    for await (const chunk of rest) yield typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
  }
  const gunzip = createGunzip();
  const inflated = Readable.from(compressed()).pipe(gunzip);
  try {
    for await (const chunk of inflated) yield chunk as Buffer;
  } catch (error) {
    throw new GzipError(`gzip data is damaged: ${(error as Error).message}`);
  }
}

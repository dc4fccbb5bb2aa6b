/** Findings chunks in memory, and findings to fill them, for the chunk and store tests. */
import { Readable } from 'node:stream';
import type { ChunkObjects } from '../../functions/recon/chunks.ts';
import type { Finding } from '../../functions/recon/findings.ts';
import { ObjectMissingError } from '../../functions/shared/ports.ts';

export function memoryChunks(): ChunkObjects & { objects: Map<string, Uint8Array> } {
  const objects = new Map<string, Uint8Array>();
  return {
    objects,
    async put(bucket, key, body) {
      objects.set(`${bucket}/${key}`, body);
    },
    async get(bucket, key) {
      const body = objects.get(`${bucket}/${key}`);
      if (!body) throw new ObjectMissingError({ bucket, key, etag: '' });
      return Readable.from([body]);
    },
  };
}

export function finding(i: number, overrides: Partial<Finding> = {}): Finding {
  return {
    type: 'AMOUNT_MISMATCH',
    key: { trade_id: `T${i}` },
    keyText: `T${i}`,
    source: { trade_id: `T${i}`, amount: '10.00' },
    target: { trade_id: `T${i}`, amount: '12.50' },
    diffs: [{ field: 'amount', source: '10.00', target: '12.50', delta: '2.50' }],
    lines: { source: [i + 2], target: [i + 2] },
    severity: 'MEDIUM',
    ...overrides,
  };
}

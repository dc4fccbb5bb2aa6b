/** `tally reindex`: the index rebuilt from the table, in segments, resumable from its checkpoint. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { NO_MASKING } from '../../functions/shared/masking.ts';
import type { VectorDocument, VectorIndex } from '../../functions/shared/search/ports.ts';
import { encodeEmbedding } from '../../functions/shared/search/stored-embedding.ts';
import { dynamoScanPage, reindex, type Checkpoint } from '../../scripts/cli/reindex.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
  for (let i = 0; i < 60; i++)
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.exceptions,
        Item: {
          exception_id: `exc_${String(i).padStart(3, '0')}`,
          run_id: 'run-1',
          dataset: 'trades',
          business_date: '2025-12-10',
          exception_type: 'AMOUNT_MISMATCH',
          key: { trade_id: `T${i}` },
          source: null,
          target: null,
          diffs: [],
          status: 'OPEN',
          // Every third one was never triaged: it has no vector.
          ...(i % 3 === 0 ? {} : { embedding: encodeEmbedding([i, 1]), embedding_model: 'test-model' }),
        },
      }),
    );
});
afterAll(async () => {
  await dynamo.stop();
});

function memoryIndex() {
  const docs = new Map<string, VectorDocument>();
  return {
    docs,
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async (doc: VectorDocument) => void docs.set(doc.id, doc)),
    replaceMany: vi.fn(async () => undefined),
    updateFields: vi.fn(async () => undefined),
    deleteWhere: vi.fn(async () => 0),
    search: vi.fn(async () => []),
    count: vi.fn(async () => docs.size),
  } satisfies VectorIndex & { docs: Map<string, VectorDocument> };
}

const project = (index: VectorIndex) => ({
  index,
  policies: { forDataset: async () => ({ masker: NO_MASKING }) },
  embedderId: 'test-model',
});

describe('tally reindex', () => {
  it('indexes every exception with a stored vector, in parallel segments', async () => {
    const index = memoryIndex();
    const lines: string[] = [];

    const counts = await reindex({
      table: dynamo.names.tables.exceptions,
      scan: dynamoScanPage(dynamo.doc, dynamo.names.tables.exceptions, 7),
      project: project(index),
      segments: 3,
      checkpointFile: join(mkdtempSync(join(tmpdir(), 'reindex-')), 'cp.json'),
      progress: (l) => lines.push(l),
    });

    expect(counts).toMatchObject({ scanned: 60, indexed: 40, fields: 20 });
    expect(index.docs.size).toBe(40);
    expect(lines.at(-1)).toMatch(/60 items scanned, 40 indexed, 20 not triaged .* 3\/3 segments done/);
  });

  it('an interrupted run goes on from its checkpoint, and finishes with the same result', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'reindex-')), 'cp.json');
    const table = dynamo.names.tables.exceptions;
    const first = memoryIndex();
    let pages = 0;
    const interrupted = reindex({
      table,
      scan: dynamoScanPage(dynamo.doc, table, 5),
      project: project(first),
      segments: 2,
      checkpointFile: file,
      afterPage: () => {
        if (++pages === 4) throw new Error('interrupted');
      },
    });
    await expect(interrupted).rejects.toThrow('interrupted');
    expect(existsSync(file)).toBe(true);

    const second = memoryIndex();
    const lines: string[] = [];
    const counts = await reindex({
      table,
      scan: dynamoScanPage(dynamo.doc, table, 5),
      project: project(second),
      segments: 2,
      checkpointFile: file,
      progress: (l) => lines.push(l),
    });

    expect(lines[0]).toMatch(/resuming .* items already done/);
    // The second run scanned only what the first had not checkpointed, and the totals add up.
    expect(counts.scanned).toBe(60);
    expect(second.docs.size).toBeLessThan(40);
    expect(new Set([...first.docs.keys(), ...second.docs.keys()]).size).toBe(40);
    expect(existsSync(file)).toBe(false);
  });

  it('refuses a checkpoint of another segmentation; --dry-run writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reindex-'));
    const table = dynamo.names.tables.exceptions;
    const { writeFileSync } = await import('node:fs');
    const saved: Checkpoint = {
      table,
      totalSegments: 4,
      segments: [],
      counts: { scanned: 0, indexed: 0, fields: 0, removed: 0, skipped: 0 },
    };
    writeFileSync(join(dir, 'cp.json'), JSON.stringify(saved));
    const index = memoryIndex();
    const options = { table, scan: dynamoScanPage(dynamo.doc, table), project: project(index), segments: 2 };

    await expect(reindex({ ...options, checkpointFile: join(dir, 'cp.json') })).rejects.toThrow(
      /same --segments, or --restart/,
    );
    const counts = await reindex({ ...options, checkpointFile: join(dir, 'dry.json'), dryRun: true });

    expect(counts).toMatchObject({ indexed: 40, fields: 20 });
    expect(index.replace).not.toHaveBeenCalled();
    expect(existsSync(join(dir, 'dry.json'))).toBe(false);
  });
});

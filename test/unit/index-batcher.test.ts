/** Batched embedding and indexing: one call for many callers, each failing or succeeding on its own. */
import { describe, expect, it, vi } from 'vitest';
import { IndexBatcher } from '../../functions/shared/search/index-batcher.ts';
import { BulkIndexError } from '../../functions/shared/search/opensearch-index.ts';
import type { Embedder, VectorDocument, VectorIndex } from '../../functions/shared/search/ports.ts';

function fakes() {
  const embedder: Embedder = {
    id: 'fake',
    dimensions: 2,
    embed: vi.fn(async (texts: string[]) => texts.map((t) => [t.length, 1])),
  };
  const index = {
    ensure: vi.fn(async () => undefined),
    replace: vi.fn(async () => undefined),
    replaceMany: vi.fn(async (_docs: readonly VectorDocument[]) => undefined),
    updateFields: vi.fn(async () => undefined),
    deleteWhere: vi.fn(async () => 0),
    search: vi.fn(async () => []),
    count: vi.fn(async () => 0),
  } satisfies VectorIndex;
  return { embedder, index };
}

const doc = (id: string) => (vector: number[]) => ({ id, vector, fields: {}, text: id });

describe('IndexBatcher', () => {
  it('embeds and writes concurrent documents in one call each', async () => {
    const { embedder, index } = fakes();
    const batcher = new IndexBatcher(embedder, index);

    await Promise.all(['a', 'bb', 'ccc'].map((t) => batcher.add(t, doc(t))));

    expect(embedder.embed).toHaveBeenCalledTimes(1);
    expect(embedder.embed).toHaveBeenCalledWith(['a', 'bb', 'ccc']);
    expect(index.replaceMany).toHaveBeenCalledTimes(1);
    expect(index.replaceMany.mock.calls[0]?.[0].map((d) => [d.id, d.vector])).toEqual([
      ['a', [1, 1]],
      ['bb', [2, 1]],
      ['ccc', [3, 1]],
    ]);
    expect(index.ensure).toHaveBeenCalledTimes(1);
  });

  it('writes documents already embedded with the flush, embedding only the others', async () => {
    const { embedder, index } = fakes();
    const batcher = new IndexBatcher(embedder, index);

    await Promise.all([
      batcher.addDocument({ id: 'pre', vector: [9, 9], fields: {}, text: 'pre' }),
      batcher.add('bb', doc('bb')),
    ]);

    expect(embedder.embed).toHaveBeenCalledTimes(1);
    expect(embedder.embed).toHaveBeenCalledWith(['bb']);
    expect(index.replaceMany.mock.calls[0]?.[0].map((d) => [d.id, d.vector])).toEqual([
      ['pre', [9, 9]],
      ['bb', [2, 1]],
    ]);
  });

  it('calls no embedder for a flush of documents already embedded', async () => {
    const { embedder, index } = fakes();
    const batcher = new IndexBatcher(embedder, index);

    await batcher.addDocument({ id: 'pre', vector: [9, 9], fields: {}, text: 'pre' });

    expect(embedder.embed).not.toHaveBeenCalled();
    expect(index.replaceMany).toHaveBeenCalledTimes(1);
  });

  it('flushes as soon as a batch is full', async () => {
    const { embedder, index } = fakes();
    const batcher = new IndexBatcher(embedder, index, { maxBatch: 2, windowMs: 60_000 });

    await Promise.all(['a', 'b', 'c', 'd'].map((t) => batcher.add(t, doc(t))));

    expect(index.replaceMany).toHaveBeenCalledTimes(2);
  });

  it('fails only the documents a bulk write names', async () => {
    const { embedder, index } = fakes();
    index.replaceMany.mockRejectedValueOnce(new BulkIndexError(new Map([['b', 'mapper_parsing_exception']])));
    const batcher = new IndexBatcher(embedder, index);

    const results = await Promise.allSettled(['a', 'b', 'c'].map((t) => batcher.add(t, doc(t))));

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toContain('mapper_parsing_exception');
  });

  it('fails every document of a flush whose embedding failed, and carries on with the next', async () => {
    const { embedder, index } = fakes();
    vi.mocked(embedder.embed).mockRejectedValueOnce(new Error('throttled'));
    const batcher = new IndexBatcher(embedder, index);

    const first = await Promise.allSettled(['a', 'b'].map((t) => batcher.add(t, doc(t))));
    await batcher.add('c', doc('c'));

    expect(first.every((r) => r.status === 'rejected')).toBe(true);
    expect(index.replaceMany).toHaveBeenCalledTimes(1);
    expect(index.replaceMany.mock.calls[0]?.[0].map((d) => d.id)).toEqual(['c']);
  });
});

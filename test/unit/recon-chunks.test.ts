import { gunzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ChunkWriter, chunkKey, readChunk, writeChunks } from '../../functions/recon/chunks.ts';
import { PermanentError } from '../../functions/shared/errors.ts';
import type { StoreRequest } from '../../functions/shared/messages.ts';
import { finding, memoryChunks } from '../support/chunks.ts';
import { PatternAccumulator } from '../../functions/shared/patterns/accumulator.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { readFileSync } from 'node:fs';

const RUN = { run_id: 'run-1', dataset: 'trades', business_date: '2025-12-10', bucket: 'tally-data' };

function recordingQueue() {
  const sent: StoreRequest[] = [];
  return { sent, send: async (messages: StoreRequest[]) => void sent.push(...messages) };
}

describe('findings chunks', () => {
  it('are named results/{run_id}/part-NNNNN.jsonl.gz, numbered from 0', () => {
    expect(chunkKey('run-1', 0)).toBe('results/run-1/part-00000.jsonl.gz');
    expect(chunkKey('run-1', 42)).toBe('results/run-1/part-00042.jsonl.gz');
  });

  it('split the findings at the chunk size and queue one message per chunk, each after its object is written', async () => {
    const chunks = memoryChunks();
    const queue = recordingQueue();
    const seenWhenQueued: boolean[] = [];
    const send = queue.send;
    queue.send = async (messages) => {
      for (const m of messages) seenWhenQueued.push(chunks.objects.has(`${m.bucket}/${m.key}`));
      await send(messages);
    };
    const findings = Array.from({ length: 12 }, (_, i) => finding(i));

    const messages = await writeChunks({ objects: chunks, queue, chunkFindings: 5 }, RUN, findings);

    expect(messages.map((m) => [m.key, m.chunk, m.findings])).toEqual([
      ['results/run-1/part-00000.jsonl.gz', 0, 5],
      ['results/run-1/part-00001.jsonl.gz', 1, 5],
      ['results/run-1/part-00002.jsonl.gz', 2, 2],
    ]);
    expect(queue.sent).toEqual(messages);
    expect(seenWhenQueued).toEqual([true, true, true]);
    const back = [];
    for (const m of messages) back.push(...(await readChunk(await chunks.get(m.bucket, m.key), m.key)));
    expect(back).toEqual(findings);
  });

  it('queue a full chunk while the engine is still finding (storing overlaps comparing)', async () => {
    const queue = recordingQueue();
    const writer = new ChunkWriter({ objects: memoryChunks(), queue, chunkFindings: 2 }, RUN);

    await writer.add(finding(0));
    await writer.add(finding(1));

    expect(queue.sent.map((m) => m.chunk)).toEqual([0]);
    await writer.add(finding(2));
    expect(await writer.finish()).toHaveLength(2);
  });

  it('hold gzip JSON Lines, one finding per line as JSON.stringify writes it', async () => {
    const chunks = memoryChunks();
    await writeChunks({ objects: chunks, queue: recordingQueue(), chunkFindings: 10 }, RUN, [finding(1), finding(2)]);

    const text = gunzipSync(
      chunks.objects.get('tally-data/results/run-1/part-00000.jsonl.gz') as Uint8Array,
    ).toString();

    expect(text).toBe(`${JSON.stringify(finding(1))}\n${JSON.stringify(finding(2))}\n`);
  });

  it('give a run without findings one empty chunk: its store message is what completes the run', async () => {
    const chunks = memoryChunks();
    const messages = await writeChunks({ objects: chunks, queue: recordingQueue(), chunkFindings: 5 }, RUN, []);

    expect(messages).toEqual([{ ...RUN, key: 'results/run-1/part-00000.jsonl.gz', chunk: 0, findings: 0 }]);
    expect(await readChunk(await chunks.get(RUN.bucket, messages[0]?.key as string), 'k')).toEqual([]);
  });

  it('are read from plain JSON Lines too (the SQL engine writes objects of its own)', async () => {
    const text = `${JSON.stringify(finding(1))}\n\n${JSON.stringify(finding(2, { reason: 'r', severity: 'HIGH' }))}`;

    const back = await readChunk(Readable.from([Buffer.from(text)]), 'plain');

    expect(back).toEqual([finding(1), finding(2, { reason: 'r', severity: 'HIGH' })]);
  });

  it.each([
    ['not JSON', '{"type":'],
    ['not a finding', JSON.stringify({ ...finding(1), type: 'NOT_A_TYPE' })],
    ['damaged gzip', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01])],
  ])('refuse a chunk that is %s, permanently (retrying cannot help)', async (_, body) => {
    const read = readChunk(Readable.from([typeof body === 'string' ? Buffer.from(body) : body]), 'results/x');

    await expect(read).rejects.toBeInstanceOf(PermanentError);
    await expect(read).rejects.toMatchObject({ code: 'BAD_CHUNK' });
  });

  it('with break patterns, count each finding in its pattern and write its patternId, which readChunk keeps', async () => {
    const policy = parseReconPolicy(
      readFileSync(new URL('../../policies/datasets/trades.md', import.meta.url), 'utf8'),
    );
    const patterns = new PatternAccumulator(policy, { runId: 'run-1', dataset: 'trades', businessDate: '2025-12-10' });
    const chunks = memoryChunks();
    const writer = new ChunkWriter({ objects: chunks, queue: recordingQueue(), chunkFindings: 2 }, RUN);
    const patternChunks = memoryChunks();
    const withPatterns = new ChunkWriter(
      { objects: patternChunks, queue: recordingQueue(), chunkFindings: 2, patterns },
      { ...RUN, run_id: 'run-2' },
    );
    const findings = [finding(0), finding(1), finding(2, { type: 'MISSING_IN_TARGET', target: null, diffs: [] })];

    for (const f of findings) {
      await writer.add(f);
      await withPatterns.add(f);
    }
    const [first, second] = await withPatterns.finish();
    await writer.finish();

    const back = [
      ...(await readChunk(await patternChunks.get('tally-data', first?.key as string), 'c0')),
      ...(await readChunk(await patternChunks.get('tally-data', second?.key as string), 'c1')),
    ];
    const ids = back.map((f) => f.patternId);
    expect(ids[0]).toMatch(/^pat_[0-9a-f]{16}$/);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(back.map(({ patternId: _, ...f }) => f)).toEqual(findings);
    expect(patterns.counts(2)).toEqual({ patterns: 1, members: 2, singletons: 1 });
    // Without patterns, the findings go as they came.
    const plain = await readChunk(await chunks.get('tally-data', chunkKey('run-1', 0)), 'plain');
    expect(plain.every((f) => f.patternId === undefined)).toBe(true);
  });

  it('refuse a chunk size that is not a positive integer', () => {
    expect(() => new ChunkWriter({ objects: memoryChunks(), queue: recordingQueue(), chunkFindings: 0 }, RUN)).toThrow(
      RangeError,
    );
  });
});

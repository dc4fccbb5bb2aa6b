/**
 * A run's findings in chunks: the engines write them under `results/{run_id}/` as gzip JSON Lines
 * (one Finding per line, as JSON.stringify writes it) and queue one store message per chunk; the
 * store consumer (functions/store/) reads a chunk back and writes its exceptions. Chunks bound what
 * one consumer holds and lets many store a run at once; a chunk, not a run, is what is retried.
 *
 * Chunk numbers are the order the engine found the findings in: for a run's pinned inputs and
 * policy the engine finds the same findings in the same order, so a re-claimed run rewrites the
 * same chunks under the same keys.
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { z } from 'zod';
import { PermanentError } from '../shared/errors.ts';
import { gunzipIfCompressed, GzipError } from '../shared/formats/gzip.ts';
import type { StoreRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import { PREFIXES } from '../shared/resources.ts';
import type { PatternAccumulator } from '../shared/patterns/accumulator.ts';
import { EXCEPTION_TYPES, SEVERITIES } from '../shared/types.ts';
import type { Finding } from './findings.ts';

/**
 * Findings per chunk unless configured: ~1 MB of JSON before gzip, about a second of writes. Smaller
 * chunks spread a run over more store workers sooner: the 300k-row bench (5,322 exceptions) was all
 * stored 7.5 s after the upload with 1,000 against 9.2 s with 5,000 (quiet machine, 4 workers).
 */
export const DEFAULT_CHUNK_FINDINGS = 1000;

const gzipAsync = promisify(gzip);

/** Where chunks are kept: S3 on AWS and locally (adapters/s3-results.ts), a map in tests. */
export interface ChunkObjects {
  put(bucket: string, key: string, body: Uint8Array): Promise<void>;
  /** The object's bytes; ObjectMissingError when there is none. */
  get(bucket: string, key: string): Promise<AsyncIterable<Uint8Array>>;
}

/** The run a chunk belongs to, as its store message names it. */
export type ChunkRun = Pick<StoreRequest, 'run_id' | 'dataset' | 'business_date' | 'bucket'>;

/** Every object of a run's results is under this prefix (the SQL engine's too). */
export function resultsPrefix(runId: string): string {
  return `${PREFIXES.results}${runId}/`;
}

/** `results/{run_id}/part-00042.jsonl.gz`. */
export function chunkKey(runId: string, chunk: number): string {
  return `${resultsPrefix(runId)}part-${String(chunk).padStart(5, '0')}.jsonl.gz`;
}

export async function encodeChunk(findings: readonly Finding[]): Promise<Uint8Array> {
  return gzipAsync(findings.map((f) => `${JSON.stringify(f)}\n`).join(''));
}

/**
 * Collects findings into chunks: each full chunk is written and its store message queued at once,
 * so storing starts while the engine goes on. `add` is a FindingSink (awaited: a slow bucket holds
 * the engine back rather than piling chunks up in memory). With `patterns`, each finding is counted
 * in its break pattern and goes into its chunk with its `patternId`.
 */
export class ChunkWriter {
  private readonly objects: ChunkObjects;
  private readonly queue: MessageQueue<StoreRequest>;
  private readonly run: ChunkRun;
  private readonly size: number;
  private pending: Finding[] = [];
  private readonly written: StoreRequest[] = [];
  /** Called after each chunk is written and queued (the crash test's point, progress). */
  private readonly onChunk: ((message: StoreRequest) => void) | undefined;
  private readonly patterns: PatternAccumulator | undefined;

  constructor(
    deps: {
      objects: ChunkObjects;
      queue: MessageQueue<StoreRequest>;
      chunkFindings: number;
      patterns?: PatternAccumulator;
    },
    run: ChunkRun,
    onChunk?: (message: StoreRequest) => void,
  ) {
    if (!Number.isInteger(deps.chunkFindings) || deps.chunkFindings < 1)
      throw new RangeError(`chunk size must be a positive integer, not ${deps.chunkFindings}`);
    this.objects = deps.objects;
    this.queue = deps.queue;
    this.run = run;
    this.size = deps.chunkFindings;
    this.onChunk = onChunk;
    this.patterns = deps.patterns;
  }

  readonly add = async (finding: Finding): Promise<void> => {
    this.pending.push(this.patterns === undefined ? finding : { ...finding, patternId: this.patterns.add(finding) });
    if (this.pending.length >= this.size) await this.flush();
  };

  /**
   * Writes the last, partial chunk and returns every chunk's message. A run without findings
   * still has one (empty) chunk: its store message is what completes the run.
   */
  async finish(): Promise<StoreRequest[]> {
    if (this.pending.length > 0 || this.written.length === 0) await this.flush();
    return [...this.written];
  }

  private async flush(): Promise<void> {
    const findings = this.pending;
    this.pending = [];
    const chunk = this.written.length;
    const message: StoreRequest = {
      ...this.run,
      key: chunkKey(this.run.run_id, chunk),
      chunk,
      findings: findings.length,
    };
    await this.objects.put(message.bucket, message.key, await encodeChunk(findings));
    await queueChunks(this.queue, [message]);
    this.written.push(message);
    this.onChunk?.(message);
  }
}

/** Writes the findings in chunks and queues each; returns the chunks' messages. */
export async function writeChunks(
  deps: { objects: ChunkObjects; queue: MessageQueue<StoreRequest>; chunkFindings: number },
  run: ChunkRun,
  findings: AsyncIterable<Finding> | Iterable<Finding>,
): Promise<StoreRequest[]> {
  const writer = new ChunkWriter(deps, run);
  for await (const finding of findings) await writer.add(finding);
  return writer.finish();
}

/** Queues store messages for chunks already written (the SQL engine's output, a nudge). */
export async function queueChunks(queue: MessageQueue<StoreRequest>, messages: StoreRequest[]): Promise<void> {
  await queue.send(messages);
}

const row = z.record(z.string(), z.string());
const findingSchema = z.object({
  type: z.enum(EXCEPTION_TYPES),
  key: row,
  keyText: z.string(),
  source: row.nullable(),
  target: row.nullable(),
  diffs: z.array(z.object({ field: z.string(), source: z.string(), target: z.string(), delta: z.string().optional() })),
  lines: z.object({ source: z.array(z.number()), target: z.array(z.number()) }),
  reason: z.string().optional(),
  severity: z.enum(SEVERITIES),
  patternId: z.string().optional(),
});

/**
 * A chunk's findings, from gzip or plain JSON Lines (the SQL engine's objects are either). A line
 * that is not a Finding is permanent: the chunk can never be stored as it is.
 */
export async function readChunk(bytes: AsyncIterable<Uint8Array | string>, where: string): Promise<Finding[]> {
  const decoder = new TextDecoder();
  let text = '';
  try {
    for await (const part of gunzipIfCompressed(bytes))
      text += typeof part === 'string' ? part : decoder.decode(part, { stream: true });
  } catch (error) {
    // A damaged object does not heal: retrying cannot help.
    if (error instanceof GzipError) throw new PermanentError('BAD_CHUNK', `${where}: ${error.message}`);
    throw error;
  }
  text += decoder.decode();
  const findings: Finding[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new PermanentError('BAD_CHUNK', `${where} line ${i + 1} is not JSON`);
    }
    const parsed = findingSchema.safeParse(json);
    if (!parsed.success)
      throw new PermanentError(
        'BAD_CHUNK',
        `${where} line ${i + 1} is not a finding: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
      );
    findings.push(parsed.data as Finding);
  }
  return findings;
}

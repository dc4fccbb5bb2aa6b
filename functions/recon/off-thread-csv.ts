/**
 * A CSV side read on a worker thread: the stream's bytes go to `parse-worker.ts`, which inflates,
 * decodes and splits them with the one CSV reader and sends back each decoded block with its
 * rows' positions; this thread only runs the row rules and the matching. Both sides start at
 * once, so the target is decoded while the source index is being built, and each side's next
 * blocks while this thread works on the current one: the second core does the decoding.
 *
 * The same records reach the sink in the same order as with `readCsvInto` on this thread, and
 * the reader's errors come back as the same error classes, so the engine cannot tell the two
 * apart. Read-ahead is bounded (`AHEAD_BYTES` of input not yet handed over), so memory stays
 * bounded however large the file.
 *
 * Used when the worker's source file sits next to this one (running from the TypeScript
 * sources: the CLI, the local stack, the benchmark); a bundle without it reads on its own thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CsvFileError, type CsvErrorCode, type CsvReadOptions, type CsvRecord, type CsvSink } from '../shared/csv.ts';
import { GzipError, type Chunk } from '../shared/formats/gzip.ts';

/** What the worker posts: rows of one text, the end, or the error the reader threw. */
export type WorkerMessage =
  | { kind: 'rows'; text: string | undefined; rows: Int32Array; records: CsvRecord[]; read: number }
  | { kind: 'done'; read: number }
  | { kind: 'error'; name: string; code?: string; message: string; line?: number };

/** What the main thread posts: input chunks, then the end of the input. */
export type MainMessage = { kind: 'chunk'; chunk: Uint8Array | string } | { kind: 'end' };

/** A row of `rows` is three numbers: start, end, line; a start of -1 is `records[end]`. */
export const QUOTED = -1;

const WORKER_URL = new URL('./parse-worker.ts', import.meta.url);
/** Input bytes sent to the worker and not yet handed to the sink, at most (a few decoded blocks). */
const AHEAD_BYTES = 8 << 20;

let available: boolean | undefined;
/** Whether sides can be read on a worker thread here (see the header). */
export function offThreadAvailable(): boolean {
  available ??= WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
  return available;
}

/** One side being read on a worker; `into` hands its records to a sink. */
export class OffThreadCsv {
  private readonly worker: Worker;
  private readonly messages: WorkerMessage[] = [];
  private wakeReader: (() => void) | undefined;
  private wakePump: (() => void) | undefined;
  private posted = 0;
  private handed = 0;
  private streamError: { error: unknown } | undefined;
  private closed = false;
  private readonly iterator: AsyncIterator<Chunk>;

  constructor(stream: AsyncIterable<Chunk>, options: CsvReadOptions) {
    this.worker = new Worker(WORKER_URL, { workerData: options });
    this.worker.on('message', (m: WorkerMessage) => {
      this.messages.push(m);
      this.wakeReader?.();
    });
    this.worker.on('error', (error) => {
      this.messages.push({ kind: 'error', name: 'Error', message: error.message });
      this.wakeReader?.();
    });
    this.iterator = stream[Symbol.asyncIterator]();
    void this.pump();
  }

  /** Sends the stream to the worker, never more than `AHEAD_BYTES` ahead of the sink. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        while (this.posted - this.handed > AHEAD_BYTES && !this.closed)
          await new Promise<void>((resolve) => (this.wakePump = resolve));
        if (this.closed) return;
        const next = await this.iterator.next();
        if (this.closed) return;
        if (next.done) break;
        const chunk = next.value;
        this.posted += chunk.length;
        // Copied: a file stream's chunks are slices of a shared pool that cannot be transferred.
        this.worker.postMessage({ kind: 'chunk', chunk } satisfies MainMessage);
      }
    } catch (error) {
      // Delivered once the rows read before it are handed over, as the reader on this thread would.
      this.streamError = { error };
    }
    if (!this.closed) this.worker.postMessage({ kind: 'end' } satisfies MainMessage);
  }

  private async next(): Promise<WorkerMessage> {
    while (this.messages.length === 0) await new Promise<void>((resolve) => (this.wakeReader = resolve));
    return this.messages.shift() as WorkerMessage;
  }

  /** Hands every record to `sink`, in order; throws what the reader (or the stream) threw. */
  async into(sink: CsvSink): Promise<void> {
    for (;;) {
      const m = await this.next();
      if (m.kind === 'done') break;
      if (m.kind === 'error') {
        if (this.streamError) throw this.streamError.error;
        if (m.name === 'CsvFileError') throw new CsvFileError(m.code as CsvErrorCode, m.message, m.line);
        if (m.name === 'GzipError') throw new GzipError(m.message);
        throw new Error(m.message);
      }
      const { text, rows, records } = m;
      for (let i = 0; i < rows.length; i += 3) {
        const start = rows[i] as number;
        if (start === QUOTED) sink.record(records[rows[i + 1] as number] as (typeof records)[number]);
        else sink.plain(text as string, start, rows[i + 1] as number, rows[i + 2] as number);
      }
      this.handed = m.read;
      this.wakePump?.();
    }
    if (this.streamError) throw this.streamError.error;
  }

  /** Stops the worker and the stream (after the side is read, or when the run fails). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakePump?.();
    await Promise.allSettled([this.worker.terminate(), this.iterator.return?.()]);
  }
}

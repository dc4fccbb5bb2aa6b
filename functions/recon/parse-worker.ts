/**
 * Worker thread of `off-thread-csv.ts`: inflates (gzip) and parses a CSV side with the one CSV
 * reader, and posts its records back a decoded block at a time: the block's text once, and per
 * row its start, end and line (unquoted rows) or the record (quoted or damaged ones).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CsvFileError, readCsvInto, type CsvReadOptions, type CsvRecord, type CsvSink } from '../shared/csv.ts';
import { gunzipIfCompressed, GzipError } from '../shared/formats/gzip.ts';
import { QUOTED, type MainMessage, type WorkerMessage } from './off-thread-csv.ts';

const port = parentPort;
if (port === null) throw new Error('parse-worker.ts runs as a worker thread');
const options = workerData as CsvReadOptions;

const chunks: (Uint8Array | string | null)[] = [];
let wake: (() => void) | undefined;
let read = 0;
port.on('message', (m: MainMessage) => {
  chunks.push(m.kind === 'chunk' ? m.chunk : null);
  wake?.();
});

async function* input(): AsyncGenerator<Uint8Array | string> {
  for (;;) {
    while (chunks.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    const chunk = chunks.shift() as Uint8Array | string | null;
    if (chunk === null) return;
    read += chunk.length;
    yield chunk;
  }
}

let text: string | undefined;
let rows = new Int32Array(3 * 8192);
let used = 0;
let plainRows = false;
let records: CsvRecord[] = [];

function flush(): void {
  if (used === 0) return;
  const out = rows.slice(0, used);
  port?.postMessage(
    { kind: 'rows', text: plainRows ? text : undefined, rows: out, records, read } satisfies WorkerMessage,
    [out.buffer],
  );
  used = 0;
  plainRows = false;
  records = [];
}

function room(): void {
  if (used + 3 <= rows.length) return;
  const bigger = new Int32Array(rows.length * 2);
  bigger.set(rows);
  rows = bigger;
}

const sink: CsvSink = {
  plain(buf, start, end, line) {
    // A block's rows go in one message, so its text crosses once.
    if (buf !== text) {
      flush();
      text = buf;
    }
    room();
    plainRows = true;
    rows[used++] = start;
    rows[used++] = end;
    rows[used++] = line;
  },
  record(record) {
    room();
    rows[used++] = QUOTED;
    rows[used++] = records.length;
    rows[used++] = record.line;
    records.push(record);
  },
};

readCsvInto(gunzipIfCompressed(input()), sink, options).then(
  () => {
    flush();
    port.postMessage({ kind: 'done', read } satisfies WorkerMessage);
  },
  (error: unknown) => {
    flush();
    const e = error as Error & { code?: string; line?: number };
    port.postMessage({
      kind: 'error',
      name: error instanceof CsvFileError ? 'CsvFileError' : error instanceof GzipError ? 'GzipError' : 'Error',
      ...(e.code === undefined ? {} : { code: e.code }),
      message: e.message,
      ...(e.line === undefined ? {} : { line: e.line }),
    } satisfies WorkerMessage);
  },
);

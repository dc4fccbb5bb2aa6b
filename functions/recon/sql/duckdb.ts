/**
 * The SQL engine on embedded DuckDB: the compiled policy (`compile.ts`) over the two files, for
 * the CLI (`npx tally recon --engine sql`) and the local stack. Imported only by them, and only
 * dynamically (`loadDuckdbRunner`), so `@duckdb/node-api`, a native module, never enters a Lambda
 * bundle (test/unit/recon-sql-bundle.test.ts checks the built recon bundle).
 *
 * Files are read by DuckDB itself (read_csv / read_parquet; gzip by its magic bytes), in
 * DuckDB's strict CSV mode: a record the engine's reader would flag as damaged (text after a
 * closing quote, more fields than the header allows) lands in a rejects table and becomes an
 * INVALID_RECORD, as it does in the engine. A file DuckDB's reader fails or misreads is read by
 * the engine's own reader into the same table instead (readCsvIntoTables, readJsonLinesIntoTable).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { readCsvInto, splitPlain, fieldsWith, type CsvSink } from '../../shared/csv.ts';
import { ReconInputError } from '../../shared/extract.ts';
import { gunzipIfCompressed } from '../../shared/formats/gzip.ts';
import { readJsonLinesInto } from '../../shared/formats/jsonl.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import type { Side } from '../../shared/types.ts';
import type { FindingSink, ReconInput, ReconOptions, ReconResult, ReconSummary } from '../engine.ts';
import type { Finding } from '../findings.ts';
import { compileRecon, EXTRA_FIELDS, rawFromColumns, rawFromJsonLines, type SideLayout } from './compile.ts';
import { duckdb as dialect } from './dialect.ts';
import { checkParquetColumns, probeHeaderLine, readerError } from './probe.ts';
import { summaryFromRows, type TextRow } from './summary.ts';

/** A side as a file on disk (read in place) or as a stream (copied to a temporary file first). */
export type SqlInput = { readonly name: string; readonly path: string } | ReconInput;

export interface SqlReconOptions {
  /** Where streamed inputs and DuckDB's spill files go (default: os.tmpdir()). */
  readonly tmpDir?: string;
  /** DuckDB's memory limit, e.g. '1GB' (default: DuckDB's, 80% of RAM). */
  readonly memoryLimit?: string;
  /** Told when a side is read by the in-memory engine's reader (slower), and why. */
  readonly note?: ReconOptions['note'];
}

/** What the local stack and the CLI hold: reconcile two sides on DuckDB. */
export type SqlReconciler = (
  source: SqlInput,
  target: SqlInput,
  policy: ReconPolicy,
  options?: SqlReconOptions,
) => Promise<ReconResult>;

const P: Record<Side, 's' | 't'> = { source: 's', target: 't' };
/** A null marker no field can hold: empty fields stay '' and absent ones NULL. */
const NO_NULL = '\u0001\u0002\u0003';

/**
 * As `reconcileSql`, handing each finding to an awaited sink (the in-memory engine's
 * `reconcileInto` shape, so the CLI and the run's chunk writer take either engine). DuckDB's
 * findings are fetched into memory first; only the sink's side streams.
 */
export async function reconcileSqlInto(
  source: SqlInput,
  target: SqlInput,
  policy: ReconPolicy,
  sink: FindingSink,
  options: SqlReconOptions = {},
): Promise<ReconSummary> {
  const result = await reconcileSql(source, target, policy, options);
  for (const finding of result.findings) await sink(finding);
  return result.summary;
}

export async function reconcileSql(
  source: SqlInput,
  target: SqlInput,
  policy: ReconPolicy,
  options: SqlReconOptions = {},
): Promise<ReconResult> {
  const started = performance.now();
  const work = mkdtempSync(join(options.tmpDir ?? tmpdir(), 'tally-sql-'));
  const instance = await instanceFor(options);
  const db = await instance.connect();
  try {
    const files = {
      source: await onDisk(source, work, 'source'),
      target: await onDisk(target, work, 'target'),
    };
    const layouts = {} as Record<Side, SideLayout>;
    for (const side of ['source', 'target'] as const) {
      const file = files[side];
      const readByEngine = (why: string) =>
        options.note?.(`${side} read by the in-memory engine's reader, not DuckDB's (slower)`, {
          side,
          file: file.name,
          why,
        });
      layouts[side] = { header: await loadRaw(db, file.path, file.name, policy, side, readByEngine) };
    }
    const compiled = compileRecon(policy, layouts, dialect);
    for (const stage of compiled.stages) await db.run(`CREATE OR REPLACE TEMP TABLE ${stage.name} AS ${stage.sql}`);
    // In a fixed order: a run claimed again after a crash must cut the same chunks (chunks.ts),
    // and DuckDB's parallel plans give no order of their own.
    const findingRows = await rows(db, `${compiled.findings} ORDER BY type, finding`);
    const findings = findingRows.map((r) => findingFromJson(r.finding as string));
    const summaryRows = {
      counts: (await rows(db, compiled.counts))[0] ?? {},
      exceptions: await rows(db, 'SELECT type, count(*) AS n FROM findings GROUP BY type'),
      fieldStats: await rows(db, compiled.fieldStats),
      controlTotals: compiled.controlTotals === undefined ? undefined : await rows(db, compiled.controlTotals),
      amountTotals: compiled.amountTotals === undefined ? undefined : await rows(db, compiled.amountTotals),
    };
    const summary = summaryFromRows(policy, summaryRows, Math.round(performance.now() - started));
    return { findings, summary };
  } finally {
    db.closeSync();
    rmSync(work, { recursive: true, force: true });
  }
}

const instances = new Map<string, Promise<DuckDBInstance>>();

/**
 * One DuckDB instance per process and settings (a run gets its own connection, and its tables are
 * temporary to it): opening an instance costs more than a small run.
 */
function instanceFor(options: SqlReconOptions): Promise<DuckDBInstance> {
  const spill = join(options.tmpDir ?? tmpdir(), 'tally-duckdb-spill');
  const id = `${spill}\0${options.memoryLimit ?? ''}`;
  let instance = instances.get(id);
  if (instance === undefined) {
    instance = import('@duckdb/node-api').then(({ DuckDBInstance }) =>
      DuckDBInstance.create(':memory:', {
        temp_directory: spill,
        ...(options.memoryLimit === undefined ? {} : { memory_limit: options.memoryLimit }),
      }),
    );
    instances.set(id, instance);
  }
  return instance;
}

/** A finding as the SQL wrote it: a JSON object in the `Finding` shape. */
export function findingFromJson(text: string): Finding {
  return JSON.parse(text) as Finding;
}

async function rows(db: DuckDBConnection, sql: string): Promise<TextRow[]> {
  const reader = await db.runAndReadAll(sql);
  return reader.getRowObjectsJson() as TextRow[];
}

async function onDisk(input: SqlInput, work: string, side: Side): Promise<{ name: string; path: string }> {
  if ('path' in input) return input;
  const path = join(work, `${side}-${randomUUID()}`);
  await pipeline(Readable.from(input.stream), createWriteStream(path));
  return { name: input.name, path };
}

function isGzipFile(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    return readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

const lit = dialect.literal;

/** Creates `{p}_raw` for a side; returns its header. */
async function loadRaw(
  db: DuckDBConnection,
  path: string,
  name: string,
  policy: ReconPolicy,
  side: Side,
  readByEngine: (why: string) => void,
): Promise<string[]> {
  const p = P[side];
  const options = policy.sides[side];
  const compression = isGzipFile(path) ? 'gzip' : 'none';
  try {
    if (options.format === 'parquet') {
      const described = await rows(db, `DESCRIBE SELECT * FROM read_parquet(${lit(path)})`);
      const names = described.map((r) => r.column_name as string);
      const header = checkParquetColumns(names, name, policy, side);
      // Doubles as their shortest text without a trailing ".0" (the engine's doubleText).
      const columns = described.map((r, i) =>
        /^(DOUBLE|FLOAT|REAL)$/.test(String(r.column_type))
          ? `regexp_replace(CAST(${ident(names[i] as string)} AS VARCHAR), '\\.0$', '') AS c${i}`
          : `CAST(${ident(names[i] as string)} AS VARCHAR) AS c${i}`,
      );
      const extras = Array.from({ length: EXTRA_FIELDS }, (_, i) => `CAST(NULL AS VARCHAR) AS x${i + 1}`);
      await db.run(
        `CREATE OR REPLACE TEMP TABLE ${p}_read AS SELECT ${[...columns, ...extras].join(', ')} FROM read_parquet(${lit(path)})`,
      );
      await db.run(
        `CREATE OR REPLACE TEMP TABLE ${p}_raw AS ${rawFromColumns(`${p}_read`, names.length, { ordinal: 'rowid + 1', fixedWidth: true }, dialect)}`,
      );
      return header;
    }
    const { header, line: headerLine } = await probeHeaderLine(createReadStream(path), name, policy, side);
    if (options.format === 'jsonl') {
      const lines = `read_csv(${lit(path)}, columns = {'line': 'VARCHAR'}, header = false, delim = ${lit('\u0001\u0002\u0003\u0004')}, quote = '', escape = '', auto_detect = false, strict_mode = false, null_padding = true, nullstr = ${lit(NO_NULL)}, compression = ${lit(compression)})`;
      // DuckDB's line reader also breaks lines at a carriage return alone, which the engine's
      // reader takes as white space; and it fails a line over its max_line_size.
      const why = (await hasLoneCarriageReturn(path))
        ? 'a line ends in a carriage return alone'
        : await failureOf(db, `CREATE OR REPLACE TEMP TABLE ${p}_read AS SELECT line FROM ${lines}`);
      if (why !== undefined) {
        readByEngine(why);
        await readJsonLinesIntoTable(db, path, name, p);
      }
      await db.run(
        `CREATE OR REPLACE TEMP TABLE ${p}_raw AS ${rawFromJsonLines(`${p}_read`, header, 'rowid + 1', dialect)}`,
      );
      return header;
    }
    const n = header.length;
    const columns = [
      ...Array.from({ length: n }, (_, i) => `'c${i}': 'VARCHAR'`),
      ...Array.from({ length: EXTRA_FIELDS }, (_, i) => `'x${i + 1}': 'VARCHAR'`),
    ];
    const read = `read_csv(${lit(path)}, header = true, columns = {${columns.join(', ')}}, delim = ${lit(options.delimiter)}, quote = '"', escape = '"', null_padding = true, nullstr = ${lit(NO_NULL)}, strict_mode = true, auto_detect = false, store_rejects = true, rejects_table = '${p}_rejects', rejects_scan = '${p}_scans', encoding = ${lit(options.encoding)}, compression = ${lit(compression)}, max_line_size = 67108864)`;
    // DuckDB's reader takes the first line as the header: one after blank lines is read by ours.
    // It also reads white space between a quote and the delimiter as no text (`"ACC1" ,`).
    const why =
      headerLine !== 1
        ? 'blank lines before the header'
        : (await hasSpaceBesideQuote(path, options.delimiter, options.encoding))
          ? 'spaces between a quote and the delimiter'
          : ((await failureOf(db, `CREATE OR REPLACE TEMP TABLE ${p}_read AS SELECT * FROM ${read}`)) ??
            (await cutReject(db, p)));
    if (why !== undefined) {
      readByEngine(why);
      const rejects = await readCsvIntoTables(db, path, name, options, p, n);
      await db.run(
        `CREATE OR REPLACE TEMP TABLE ${p}_raw AS ${rawFromColumns(`${p}_read`, n, { ordinal: 'rowid + 1', rejects }, dialect, options.delimiter)}`,
      );
      return header;
    }
    // A quote never closed runs to the end of the file: the engine refuses such a file.
    const unclosed = await rows(
      db,
      `SELECT line FROM ${p}_rejects WHERE error_type = 'UNQUOTED VALUE' AND (length(csv_line) - length(replace(csv_line, '"', ''))) % 2 = 1 ORDER BY line LIMIT 1`,
    );
    if (unclosed[0] !== undefined)
      throw new ReconInputError(
        'CSV_UNCLOSED_QUOTE',
        name,
        `quoted field opened on line ${unclosed[0].line} is never closed`,
        Number(unclosed[0].line),
      );
    // One reject per record (DuckDB may list a record under several errors).
    const rejects = `(SELECT line AS line_no, any_value(csv_line) AS line_text,
        CASE WHEN bool_or(error_type = 'UNQUOTED VALUE')
             THEN 'unexpected text after a closing quote in field ' || CAST(min(column_idx) FILTER (WHERE error_type = 'UNQUOTED VALUE') AS VARCHAR)
             WHEN bool_and(error_type = 'TOO MANY COLUMNS') THEN NULL
             ELSE 'record is damaged: ' || any_value(error_message) END AS reason
        FROM ${p}_rejects GROUP BY line)`;
    await db.run(
      `CREATE OR REPLACE TEMP TABLE ${p}_raw AS ${rawFromColumns(`${p}_read`, n, { ordinal: 'rowid + 1', rejects }, dialect, options.delimiter)}`,
    );
    return header;
  } catch (error) {
    throw readerError(error, name);
  }
}

/** What DuckDB's rejects table keeps of a record's text, in bytes. */
const REJECT_LINE_BYTES = 10_000;

/**
 * Why a side DuckDB read must be read again by the engine's reader: a damaged record longer than
 * its rejects table keeps, whose fields, field count and quotes would be read from a cut text.
 */
async function cutReject(db: DuckDBConnection, p: string): Promise<string | undefined> {
  const cut = await rows(
    db,
    `SELECT 1 AS cut FROM ${p}_rejects WHERE strlen(csv_line) >= ${REJECT_LINE_BYTES} LIMIT 1`,
  );
  return cut.length === 0
    ? undefined
    : `a damaged record over ${REJECT_LINE_BYTES} bytes (DuckDB's rejects keep no more of it)`;
}

/** Runs a read; DuckDB's error when it fails it (the side is then read by the engine's reader). */
async function failureOf(db: DuckDBConnection, sql: string): Promise<string | undefined> {
  try {
    await db.run(sql);
    return undefined;
  } catch (error) {
    return `DuckDB's reader failed: ${String((error as Error).message).split('\n')[0]}`;
  }
}

/** Whether a line break of the file is a carriage return alone (one ending the file is none). */
async function hasLoneCarriageReturn(path: string): Promise<boolean> {
  let crEnded = false;
  for await (const chunk of gunzipIfCompressed(createReadStream(path))) {
    const bytes =
      typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (bytes.length === 0) continue;
    if (crEnded && bytes[0] !== 10) return true;
    crEnded = false;
    for (let at = bytes.indexOf(13); at !== -1; at = bytes.indexOf(13, at + 1)) {
      if (at === bytes.length - 1) crEnded = true;
      else if (bytes[at + 1] !== 10) return true;
    }
  }
  return false;
}

/**
 * Whether a quote of the CSV file has spaces between it and a delimiter or line break
 * (`"ACC1" ,`, `, "ACC1"`). DuckDB reads such a field as ACC1; the engine's reader refuses the
 * first (text after a closing quote) and keeps the second's quotes, as RFC 4180 has it (spaces
 * are part of a field). Errs towards true, as a quoted field's own text may look alike: a true
 * only costs the engine's slower reader. Scanning 62 MB took 0.06-0.15 s; a 51 MB file of quoted
 * fields with spaces inside them, 0.3 s against DuckDB's 0.8 s read (RESULTS.md).
 */
export async function hasSpaceBesideQuote(path: string, delimiter: string, encoding: string): Promise<boolean> {
  const delim = Buffer.from(delimiter, encoding === 'latin-1' ? 'latin1' : 'utf8');
  const closingThenSpace = Buffer.from('" ');
  const spaceThenOpening = Buffer.from(' "');
  // Examines `bytes` (the previous chunk's tail, then a chunk). Spaces running to the end of a
  // chunk are decided with the next, in whose bytes the tail is carried over.
  const found = (bytes: Buffer, atFileStart: boolean, atFileEnd: boolean): boolean => {
    for (let at = bytes.indexOf(closingThenSpace); at !== -1; at = bytes.indexOf(closingThenSpace, at + 1)) {
      let end = at + 1;
      while (end < bytes.length && bytes[end] === 32) end++;
      if (end === bytes.length ? atFileEnd : bytes[end] === 10 || bytes[end] === 13 || startsWith(bytes, end, delim))
        return true;
    }
    for (let at = bytes.indexOf(spaceThenOpening); at !== -1; at = bytes.indexOf(spaceThenOpening, at + 1)) {
      let start = at;
      while (start > 0 && bytes[start - 1] === 32) start--;
      if (start === 0 ? atFileStart : bytes[start - 1] === 10 || endsWith(bytes, start, delim)) return true;
    }
    return false;
  };
  let tail = Buffer.alloc(0);
  let atFileStart = true;
  for await (const chunk of gunzipIfCompressed(createReadStream(path))) {
    const bytes = Buffer.concat([
      tail,
      typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    ]);
    if (found(bytes, atFileStart, false)) return true;
    // Carried over: trailing spaces, the byte before them and a delimiter's width before that.
    let from = bytes.length;
    while (from > 0 && bytes[from - 1] === 32) from--;
    from = Math.max(0, from - 1 - delim.length);
    atFileStart &&= from === 0;
    tail = Buffer.from(bytes.subarray(from));
  }
  return found(tail, atFileStart, true);
}

// Byte by byte: a subarray a call made the scan of a quoted file 35% slower, Buffer#compare
// over a range (a native call a match) 85% slower.
function startsWith(bytes: Buffer, at: number, text: Buffer): boolean {
  if (at + text.length > bytes.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text[i]) return false;
  return true;
}

function endsWith(bytes: Buffer, at: number, text: Buffer): boolean {
  return at >= text.length && startsWith(bytes, at - text.length, text);
}

/** A JSON Lines side's lines read by the engine's reader (jsonl.ts) into `{p}_read`. */
async function readJsonLinesIntoTable(db: DuckDBConnection, path: string, name: string, p: string): Promise<void> {
  await db.run(`CREATE OR REPLACE TEMP TABLE ${p}_read (line VARCHAR)`);
  const lines = await db.createAppender(`${p}_read`, 'main', 'temp');
  try {
    await readJsonLinesInto(gunzipIfCompressed(createReadStream(path)), {
      line(buf, start, end) {
        lines.appendVarchar(buf.slice(start, end));
        lines.endRow();
      },
    });
  } catch (error) {
    throw readerError(error, name);
  } finally {
    lines.closeSync();
  }
}

/**
 * A CSV side DuckDB's reader cannot read as the engine's reader does, read by the engine's
 * reader (csv.ts) into `{p}_read` instead, its damaged records into `{p}_damaged`; returns the
 * rejects relation `rawFromColumns` takes. DuckDB's reader fails some files the engine reads: a
 * quoted line break in some files ("the parallel scanner does not support null_padding in
 * conjunction with quoted new lines"), CRLF and LF mixed, a carriage return inside an unquoted
 * field, Latin-1 bytes 0x80-0x9F ("File is not latin-1 encoded"); it takes a blank first line
 * for the header; and it reads spaces beside a quote as no text (hasSpaceBesideQuote). Such files are rare, and this path reads at the engine's own speed, so the
 * common file keeps DuckDB's parallel reader.
 */
async function readCsvIntoTables(
  db: DuckDBConnection,
  path: string,
  name: string,
  options: ReconPolicy['sides'][Side],
  p: string,
  n: number,
): Promise<string> {
  const width = n + EXTRA_FIELDS;
  const columns = [
    ...Array.from({ length: n }, (_, i) => `c${i}`),
    ...Array.from({ length: EXTRA_FIELDS }, (_, i) => `x${i + 1}`),
  ];
  await db.run(`CREATE OR REPLACE TEMP TABLE ${p}_read (${columns.map((c) => `${c} VARCHAR`).join(', ')})`);
  await db.run(`CREATE OR REPLACE TEMP TABLE ${p}_damaged (line_no BIGINT, line_text VARCHAR, reason VARCHAR)`);
  const rows = await db.createAppender(`${p}_read`, 'main', 'temp');
  const damaged = await db.createAppender(`${p}_damaged`, 'main', 'temp');
  const quoted = (field: string) => `"${field.replaceAll('"', '""')}"`;
  let header = true;
  const onRecord = (fields: string[], line: number, error: string | undefined) => {
    if (header) {
      header = false;
      return;
    }
    // As DuckDB's rejects: the record's text, its fields read back from it (and a reason).
    if (error !== undefined || fields.length > width) {
      damaged.appendBigInt(BigInt(line));
      damaged.appendVarchar(fields.map(quoted).join(options.delimiter));
      if (error === undefined) damaged.appendNull();
      else damaged.appendVarchar(error);
      damaged.endRow();
      return;
    }
    for (let i = 0; i < width; i++) {
      const field = fields[i];
      if (field === undefined) rows.appendNull();
      else rows.appendVarchar(field);
    }
    rows.endRow();
  };
  const sink: CsvSink = {
    plain: (buf, start, end, line) => onRecord(splitPlain(buf, start, end, options.delimiter), line, undefined),
    record: (record) => onRecord(fieldsWith(record, options.delimiter), record.line, record.error),
  };
  try {
    await readCsvInto(gunzipIfCompressed(createReadStream(path)), sink, {
      delimiter: options.delimiter,
      encoding: options.encoding,
    });
  } catch (error) {
    throw readerError(error, name);
  } finally {
    rows.closeSync();
    damaged.closeSync();
  }
  return `(SELECT line_no, line_text, reason FROM ${p}_damaged)`;
}

const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;

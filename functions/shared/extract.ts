/**
 * What makes an extract (CSV, JSON Lines or Parquet) acceptable before any reconciliation: UTF-8, a readable structure,
 * a header with unique, non-empty names that include every column the policy needs.
 */
import { CR_ONLY_LINES, CsvFileError, fieldsOf, fieldsWith, readCsvInto, type CsvRecord, type CsvSink } from './csv.ts';
import { gunzipIfCompressed, GzipError } from './formats/gzip.ts';
import { JsonLinesFileError, parseJsonObject, readJsonLinesInto, type JsonLinesSink } from './formats/jsonl.ts';
import { ParquetFileError, readParquetInto, type ParquetSink } from './formats/parquet.ts';
import { DELIMITERS, requiredColumns, type ReconPolicy } from './policy.ts';
import type { Side } from './types.ts';

export type ReconErrorCode =
  | 'FILE_EMPTY'
  | 'EMPTY_FILE'
  | 'HEADER_INVALID'
  | 'MISSING_COLUMNS'
  | 'NOT_JSON_LINES'
  | 'RECORD_TOO_LARGE'
  | 'PARQUET_INVALID'
  | CsvFileError['code'];

/** The file cannot be reconciled at all. Names the file, the line and what was expected. */
export class ReconInputError extends Error {
  readonly code: ReconErrorCode;
  readonly file: string;
  readonly line: number | undefined;
  /** What is wrong, without the file and line the message starts with. */
  readonly reason: string;
  constructor(code: ReconErrorCode, file: string, reason: string, line?: number) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${reason}`);
    this.name = 'ReconInputError';
    this.code = code;
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** Why a file with nothing in it, not even a header, is refused (FILE_EMPTY): what was expected. */
function emptyFileReason(policy: ReconPolicy, side: Side): string {
  const { format } = policy.sides[side];
  const columns = requiredColumns(policy, side).join(', ');
  return format === 'csv'
    ? `file is empty; expected a header row with columns ${columns}`
    : `file is empty; expected ${format === 'jsonl' ? 'one JSON object per line' : 'a Parquet file'} with fields ${columns}`;
}

/**
 * The columns of a side whose file held nothing, not even a header. JSON Lines has no header: with
 * no lines it is a side with no rows, which a policy may allow (`allow_empty_sides`), read under the
 * policy's columns. Anything else is FILE_EMPTY. Both engines ask here; intake says the same.
 */
export function columnsOfEmptyFile(policy: ReconPolicy, side: Side, file: string): string[] {
  if (policy.sides[side].format === 'jsonl' && policy.allowEmptySides) return requiredColumns(policy, side);
  throw new ReconInputError('FILE_EMPTY', file, emptyFileReason(policy, side));
}

/** Normalised header names (trimmed, lower-case, no BOM), or a ReconInputError naming the problem. */
export function checkHeader(record: CsvRecord, file: string, policy: ReconPolicy, side: Side = 'source'): string[] {
  if (record.error)
    throw new ReconInputError('HEADER_INVALID', file, `header row is damaged: ${record.error}`, record.line);
  const raw = fieldsOf(record);
  // CR alone ends no record: a file with classic Mac line endings is one long header.
  if (raw.some((f) => /\r(?!\n)/.test(f)))
    throw new ReconInputError('HEADER_INVALID', file, CR_ONLY_LINES, record.line);
  const names = raw.map((f) =>
    f
      .replace(/^\uFEFF/, '')
      .trim()
      .toLowerCase(),
  );
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    if (name === '')
      throw new ReconInputError(
        'HEADER_INVALID',
        file,
        `header column ${i + 1} has no name; every column needs a name`,
        record.line,
      );
    const before = seen.get(name);
    if (before !== undefined)
      throw new ReconInputError(
        'HEADER_INVALID',
        file,
        `column "${name}" appears twice (columns ${before + 1} and ${i + 1}); column names must be unique`,
        record.line,
      );
    seen.set(name, i);
  });
  const required = requiredColumns(policy, side);
  const missing = required.filter((c) => !seen.has(c));
  if (missing.length > 0) {
    const hint = delimiterHint(names, policy.sides[side].delimiter);
    throw new ReconInputError(
      'MISSING_COLUMNS',
      file,
      `missing required column(s) ${missing.join(', ')}; expected columns ${required.join(', ')}, found ${names.join(', ')}${hint}`,
      record.line,
    );
  }
  return names;
}

const DELIMITER_NAMES: Readonly<Record<(typeof DELIMITERS)[number], string>> = {
  ',': 'comma',
  ';': 'semicolon',
  '\t': 'tab',
  '|': 'pipe',
};

/**
 * A header read as one column that another delimiter would split: the file and the policy
 * disagree on the delimiter, and the "missing" columns are all there. Says which.
 */
function delimiterHint(names: readonly string[], expected: string): string {
  if (names.length !== 1) return '';
  const name = names[0] ?? '';
  const other = DELIMITERS.find((d) => d !== expected && name.includes(d));
  if (other === undefined) return '';
  const called = (d: string) => DELIMITER_NAMES[d as (typeof DELIMITERS)[number]] ?? JSON.stringify(d);
  return ` (the header looks ${called(other)}-delimited; this side's policy reads ${called(expected)}-delimited files: set its "delimiter" to ${JSON.stringify(other)}, or export the file ${called(expected)}-delimited)`;
}

/**
 * A rejection's message is what is wrong, without the file and line: the file record holds both
 * (its bucket and key, error.line), and fileErrorText (tables/files.ts) puts the line in front.
 */
export type ValidationResult =
  { ok: true; rows: number; header: string[] } | { ok: false; code: string; message: string; line?: number };

/** Checks the header, counts the data rows after it: a CSV side. */
class CsvCounter implements CsvSink {
  header: string[] | undefined;
  rows = 0;
  private readonly file: string;
  private readonly policy: ReconPolicy;
  private readonly side: Side;
  constructor(file: string, policy: ReconPolicy, side: Side) {
    this.file = file;
    this.policy = policy;
    this.side = side;
  }
  private get delimiter(): string {
    return this.policy.sides[this.side].delimiter;
  }
  plain(buf: string, start: number, end: number, line: number): void {
    if (this.header === undefined)
      this.header = checkHeader(
        { line, fields: fieldsWith({ line, plain: buf.slice(start, end) }, this.delimiter) },
        this.file,
        this.policy,
        this.side,
      );
    else this.rows++;
  }
  record(record: CsvRecord): void {
    if (this.header === undefined)
      this.header = checkHeader(
        record.fields === undefined ? { line: record.line, fields: fieldsWith(record, this.delimiter) } : record,
        this.file,
        this.policy,
        this.side,
      );
    else this.rows++;
  }
}

/**
 * The lines of a JSON Lines side whose names validation reads: enough to tell the wrong file
 * (CSV saved as .jsonl, another system's field names) from a sparse one, and cheap on any file
 * (parsing 1,000 lines takes ~1 ms; recon reads every line anyway).
 */
export const JSONL_SAMPLE_LINES = 1000;

/**
 * Counts the objects of a JSON Lines side, and gathers the field names of its first
 * {@link JSONL_SAMPLE_LINES} lines: JSON Lines has no header, so those stand in for one (for
 * its key fields: a compared field may be absent where it is empty). A line
 * that is not an object is recon's INVALID_RECORD (a row problem, as a ragged CSV row is), not a
 * reason to refuse the file — unless no line of the sample is one.
 */
class JsonLinesCounter implements JsonLinesSink {
  rows = 0;
  objects = 0;
  readonly names = new Set<string>();
  /** The first sampled line that is not an object, and why. */
  notObject: { line: number; reason: string } | undefined;
  /** Stop reading after the sample (the caller has read the whole file with recon's readers). */
  private readonly sampleOnly: boolean;
  constructor(sampleOnly: boolean) {
    this.sampleOnly = sampleOnly;
  }
  line(buf: string, start: number, end: number, line: number): void {
    if (++this.rows > JSONL_SAMPLE_LINES) {
      if (this.sampleOnly) throw new SampleRead();
      return;
    }
    const parsed = parseJsonObject(buf.slice(start, end));
    if (!parsed.ok) {
      this.notObject ??= { line, reason: parsed.reason };
      return;
    }
    this.objects++;
    // As recon reads them (side-loader.ts): trimmed, case-insensitive.
    for (const name of parsed.values.keys()) this.names.add(name.trim().toLowerCase());
  }

  /** Why the side cannot be reconciled for its names, or undefined. */
  problem(required: readonly string[], keys: readonly string[]): ValidationResult | undefined {
    if (this.rows === 0) return undefined;
    const sampled = Math.min(this.rows, JSONL_SAMPLE_LINES);
    const lines = sampled === 1 ? 'the only line' : `the first ${sampled} lines`;
    if (this.objects === 0) {
      const first = this.notObject as { line: number; reason: string };
      return {
        ok: false,
        code: 'NOT_JSON_LINES',
        message: `${sampled === 1 ? 'its only line is not' : `none of ${lines} is`} a JSON object (${first.reason}); expected one JSON object per line with fields ${required.join(', ')}`,
        line: first.line,
      };
    }
    // A compared field may be left out where it is empty (writers that omit nulls), so only a key
    // field no sampled object has says the file is not what the policy reads.
    const missing = keys.filter((c) => !this.names.has(c));
    if (missing.length === 0) return undefined;
    return {
      ok: false,
      code: 'MISSING_COLUMNS',
      message: `no object on ${lines} has key field(s) ${missing.join(', ')}; expected fields ${required.join(', ')}, found ${[...this.names].join(', ')} (the policy's column names for this side may differ from the file's)`,
    };
  }
}

/** Thrown by a sample-only JSON Lines count to stop reading once its sample is read. */
class SampleRead extends Error {}

/** Checks a Parquet side's columns and counts its rows. */
class ParquetCounter implements ParquetSink {
  header: string[] | undefined;
  rows = 0;
  private readonly file: string;
  private readonly policy: ReconPolicy;
  private readonly side: Side;
  constructor(file: string, policy: ReconPolicy, side: Side) {
    this.file = file;
    this.policy = policy;
    this.side = side;
  }
  parquetColumns(names: string[]): void {
    const header = names.map((n) => n.trim().toLowerCase());
    const required = requiredColumns(this.policy, this.side);
    const missing = required.filter((c) => !header.includes(c));
    if (missing.length > 0)
      throw new ReconInputError(
        'MISSING_COLUMNS',
        this.file,
        `missing required column(s) ${missing.join(', ')}; expected columns ${required.join(', ')}, found ${header.join(', ')}`,
      );
    this.header = header;
  }
  parquetRow(): void {
    this.rows++;
  }
}

/**
 * Reads the whole extract once with recon's readers (the side's format and CSV options, gzip
 * detected from the bytes), so a file that passes here reads the same in recon: counts data rows
 * and fails on anything that would stop recon (encoding, structure, header, columns). Row-level
 * problems (a bad amount, a ragged row, a line that is not a JSON object) are not file errors:
 * recon reports them as INVALID_RECORD exceptions.
 */
export async function validateExtract(
  stream: AsyncIterable<Uint8Array | string>,
  file: string,
  policy: ReconPolicy,
  side: Side = 'source',
  options: {
    /**
     * Read a JSON Lines side no further than its sample (its verdict needs no more), for a caller
     * that has already read the file whole with recon's readers (`tally recon`): `rows` is then at
     * most one more than the sample.
     */
    readonly jsonlSampleOnly?: boolean;
  } = {},
): Promise<ValidationResult> {
  const format = policy.sides[side];
  const input = gunzipIfCompressed(stream);
  let counted: { header: string[] | undefined; rows: number };
  try {
    if (format.format === 'jsonl') {
      const counter = new JsonLinesCounter(options.jsonlSampleOnly === true);
      await readJsonLinesInto(input, counter).catch((error: unknown) => {
        if (!(error instanceof SampleRead)) throw error;
      });
      const problem = counter.problem(
        requiredColumns(policy, side),
        policy.keys.map((k) => k[side]),
      );
      if (problem !== undefined) return problem;
      // No header to miss: an empty JSON Lines file is a side with no rows.
      counted = { header: requiredColumns(policy, side), rows: counter.rows };
    } else if (format.format === 'parquet') {
      const counter = new ParquetCounter(file, policy, side);
      await readParquetInto(input, counter);
      counted = counter;
    } else {
      const counter = new CsvCounter(file, policy, side);
      await readCsvInto(input, counter, { delimiter: format.delimiter, encoding: format.encoding });
      counted = counter;
    }
  } catch (error) {
    if (error instanceof ReconInputError)
      return {
        ok: false,
        code: error.code,
        message: error.reason,
        ...(error.line === undefined ? {} : { line: error.line }),
      };
    if (error instanceof CsvFileError || error instanceof JsonLinesFileError || error instanceof ParquetFileError)
      return {
        ok: false,
        code: error.code,
        message: error.message,
        ...(error.line === undefined ? {} : { line: error.line }),
      };
    if (error instanceof GzipError) return { ok: false, code: 'FILE_UNREADABLE', message: error.message };
    throw error;
  }
  if (counted.header === undefined) {
    return {
      ok: false,
      code: 'FILE_EMPTY',
      message: emptyFileReason(policy, side),
      line: 1,
    };
  }
  if (counted.rows === 0 && !policy.allowEmptySides) {
    return {
      ok: false,
      code: 'EMPTY_FILE',
      message: `file has ${format.format === 'csv' ? 'a header but no data rows' : format.format === 'jsonl' ? 'no lines' : 'no rows'}; expected at least one row (a policy that expects empty days sets "allow_empty_sides": true)`,
    };
  }
  return { ok: true, rows: counted.rows, header: counted.header };
}

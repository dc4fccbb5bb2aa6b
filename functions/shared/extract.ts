/**
 * What makes a CSV extract acceptable before any reconciliation: UTF-8, a readable structure,
 * a header with unique, non-empty names that include every column the policy needs.
 */
import { Buffer } from 'node:buffer';
import { CsvFileError, fieldsOf, readCsvInto, type CsvRecord, type CsvSink } from './csv.ts';
import { requiredColumns, type ReconPolicy } from './policy.ts';
import type { Side } from './types.ts';

export type ReconErrorCode =
  | 'FILE_EMPTY'
  | 'EMPTY_FILE'
  | 'HEADER_INVALID'
  | 'MISSING_COLUMNS'
  | 'RECORD_TOO_LARGE'
  | 'PARQUET_INVALID'
  | CsvFileError['code'];

/** The file cannot be reconciled at all. Names the file, the line and what was expected. */
export class ReconInputError extends Error {
  readonly code: ReconErrorCode;
  readonly file: string;
  readonly line: number | undefined;
  constructor(code: ReconErrorCode, file: string, message: string, line?: number) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.name = 'ReconInputError';
    this.code = code;
    this.file = file;
    this.line = line;
  }
}

/** Normalised header names (trimmed, lower-case, no BOM), or a ReconInputError naming the problem. */
export function checkHeader(record: CsvRecord, file: string, policy: ReconPolicy, side: Side = 'source'): string[] {
  if (record.error)
    throw new ReconInputError('HEADER_INVALID', file, `header row is damaged: ${record.error}`, record.line);
  const names = fieldsOf(record).map((f) =>
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
    const hint =
      names.length === 1 && (names[0] ?? '').includes(';') && policy.sides[side].delimiter === ','
        ? ' (the header looks semicolon-delimited; files must be comma-delimited)'
        : '';
    throw new ReconInputError(
      'MISSING_COLUMNS',
      file,
      `missing required column(s) ${missing.join(', ')}; expected columns ${required.join(', ')}, found ${names.join(', ')}${hint}`,
      record.line,
    );
  }
  return names;
}

export type ValidationResult =
  { ok: true; rows: number; header: string[] } | { ok: false; code: string; message: string; line?: number };

/** Checks the header, counts the data rows after it. */
class ExtractCounter implements CsvSink {
  header: string[] | undefined;
  rows = 0;
  private readonly file: string;
  private readonly policy: ReconPolicy;
  constructor(file: string, policy: ReconPolicy) {
    this.file = file;
    this.policy = policy;
  }
  plain(buf: string, start: number, end: number, line: number): void {
    if (this.header === undefined)
      this.header = checkHeader({ line, plain: buf.slice(start, end) }, this.file, this.policy);
    else this.rows++;
  }
  record(record: CsvRecord): void {
    if (this.header === undefined) this.header = checkHeader(record, this.file, this.policy);
    else this.rows++;
  }
}

/**
 * Reads the whole extract once with recon's reader (`readCsvInto`), so a file that passes here
 * reads the same in recon: counts data rows and fails on anything that would stop recon
 * (encoding, structure, header). Row-level problems (a bad amount, a ragged row) are not file
 * errors: recon reports them as INVALID_RECORD exceptions.
 */
export async function validateExtract(
  stream: AsyncIterable<Uint8Array | string>,
  file: string,
  policy: ReconPolicy,
): Promise<ValidationResult> {
  const counter = new ExtractCounter(file, policy);
  try {
    await readCsvInto(refusingGzip(stream, file), counter);
  } catch (error) {
    if (error instanceof ReconInputError)
      return {
        ok: false,
        code: error.code,
        message: error.message,
        ...(error.line === undefined ? {} : { line: error.line }),
      };
    if (error instanceof CsvFileError)
      return {
        ok: false,
        code: error.code,
        message: `${file}${error.line === undefined ? '' : `:${error.line}`}: ${error.message}`,
        ...(error.line === undefined ? {} : { line: error.line }),
      };
    throw error;
  }
  if (counter.header === undefined) {
    return {
      ok: false,
      code: 'FILE_EMPTY',
      message: `${file}: file is empty; expected a header row with columns ${requiredColumns(policy).join(', ')}`,
      line: 1,
    };
  }
  if (counter.rows === 0 && !policy.allowEmptySides) {
    return {
      ok: false,
      code: 'EMPTY_FILE',
      message: `${file}: file has a header but no data rows; expected at least one row (a policy that expects empty days sets "allow_empty_sides": true)`,
    };
  }
  return { ok: true, rows: counter.rows, header: counter.header };
}

/**
 * Passes `stream` through, or fails on gzip's magic bytes (1f 8b, RFC 1952) at its start: a
 * compressed extract would otherwise be reported as "not valid UTF-8", which hides the fix.
 */
async function* refusingGzip(
  stream: AsyncIterable<Uint8Array | string>,
  file: string,
): AsyncGenerator<Uint8Array | string> {
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let checked = false;
  for await (const chunk of stream) {
    if (checked) {
      yield chunk;
      continue;
    }
    if (typeof chunk === 'string') {
      checked = true;
    } else {
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < 2) continue;
      const head = held.length === 1 ? chunk : Buffer.concat(held);
      if (head[0] === 0x1f && head[1] === 0x8b)
        throw new ReconInputError(
          'ENCODING',
          file,
          'file is gzip-compressed; expected plain-text UTF-8 CSV (decompress it before uploading)',
          1,
        );
      checked = true;
    }
    yield* held.splice(0);
    if (typeof chunk === 'string') yield chunk;
  }
  yield* held;
}

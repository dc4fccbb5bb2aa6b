/**
 * Streaming CSV reader (RFC 4180 plus the habits of real bank extracts).
 *
 * Why not csv-parse on the hot path: reconciling two 1M-row extracts must stay within 2x of
 * DuckDB (see `npm run bench:recon`), and csv-parse's per-character state machine is several
 * times slower than scanning unquoted lines with indexOf. csv-parse remains the oracle: the fuzz
 * suite checks this reader against it on random input.
 *
 * Semantics: UTF-8 only (a UTF-8 BOM is dropped; UTF-16 and invalid bytes fail the file), comma
 * delimiter, `"` quoting with `""` escapes, quoted fields may hold commas, quotes and newlines,
 * LF and CRLF both end a record, blank lines are skipped (but counted for line numbers), a quote
 * inside an unquoted field is kept literally. Structural damage that only affects one record
 * (text after a closing quote, a NUL byte) is reported on that record so the caller can reject
 * the row and keep going; damage that makes the rest of the file unreadable (an unclosed quote,
 * a record over `maxRecordBytes`, bad encoding) throws `CsvFileError` with the line.
 */

/**
 * One record. Lines without quotes keep their raw text in `plain` and are split only when
 * someone needs the fields (`fieldsOf`): most rows of a reconciliation are compared whole and
 * never need splitting, which saves an array and a string per field per row.
 */
export type CsvRecord =
  | { readonly line: number; readonly plain: string; readonly fields?: undefined; readonly error?: string }
  | { readonly line: number; readonly plain?: undefined; readonly fields: string[]; readonly error?: string };

export function fieldsOf(record: CsvRecord): string[] {
  return record.fields ?? splitPlain(record.plain, 0, record.plain.length);
}

export type CsvErrorCode =
  | 'ENCODING'
  | 'CSV_UNCLOSED_QUOTE'
  | 'CSV_RECORD_TOO_LARGE'
  | 'FILE_UNREADABLE';

export class CsvFileError extends Error {
  readonly code: CsvErrorCode;
  readonly line: number | undefined;
  constructor(code: CsvErrorCode, message: string, line?: number) {
    super(message);
    this.name = 'CsvFileError';
    this.code = code;
    this.line = line;
  }
}

export interface CsvReadOptions {
  /** A record still incomplete after this many characters fails the file (guards memory). */
  readonly maxRecordChars?: number;
}

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;
const DEFAULT_MAX_RECORD_CHARS = 16 * 1024 * 1024;

type Chunk = Uint8Array | string;

/**
 * Reads CSV records from a byte stream, yielding them in batches (one per input chunk) so the
 * per-record cost stays a function call, not a promise.
 */
export async function* readCsv(input: AsyncIterable<Chunk>, options: CsvReadOptions = {}): AsyncGenerator<CsvRecord[]> {
  const parser = new CsvParser(options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let first = true;
  for await (const chunk of input) {
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
    } else {
      if (first) checkByteOrderMark(chunk);
      text = decode(decoder, chunk, parser.line, true);
    }
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    first = false;
    const batch = parser.push(text, false);
    if (batch.length > 0) yield batch;
  }
  const tail = decode(decoder, new Uint8Array(0), parser.line, false);
  const batch = parser.push(tail, true);
  if (batch.length > 0) yield batch;
}

function checkByteOrderMark(bytes: Uint8Array): void {
  if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    throw new CsvFileError('ENCODING', 'file is UTF-16 encoded; expected UTF-8', 1);
  }
}

function decode(decoder: TextDecoder, bytes: Uint8Array, line: number, stream: boolean): string {
  try {
    return decoder.decode(bytes, { stream });
  } catch {
    throw new CsvFileError('ENCODING', `file is not valid UTF-8 (at or after line ${line}); expected UTF-8`, line);
  }
}

/** Incremental parser; exported for tests that feed it strings directly. */
export class CsvParser {
  /** Line number of the next unread character. */
  line = 1;
  private pending = '';
  private readonly maxRecordChars: number;

  constructor(maxRecordChars = DEFAULT_MAX_RECORD_CHARS) {
    this.maxRecordChars = maxRecordChars;
  }

  push(text: string, final: boolean): CsvRecord[] {
    const buf = this.pending.length > 0 ? this.pending + text : text;
    const out: CsvRecord[] = [];
    const len = buf.length;
    let pos = 0;
    let nextQuote = buf.indexOf('"');
    const hasNul = buf.indexOf('\0') !== -1;
    while (pos < len) {
      const nl = buf.indexOf('\n', pos);
      if (nl === -1 && !final) break;
      const end = nl === -1 ? len : nl;
      if (nextQuote !== -1 && nextQuote < pos) nextQuote = buf.indexOf('"', pos);
      if (nextQuote === -1 || nextQuote > end) {
        // Fast path: no quote on this line.
        let lineEnd = end;
        if (lineEnd > pos && buf.charCodeAt(lineEnd - 1) === CR) lineEnd--;
        if (lineEnd > pos) {
          const plain = buf.slice(pos, lineEnd);
          out.push(hasNul && plain.includes('\0') ? { line: this.line, plain, error: 'record contains a NUL byte' } : { line: this.line, plain });
        }
        this.line++;
        pos = end + 1;
        continue;
      }
      const parsed = this.parseQuoted(buf, pos, final);
      if (parsed === undefined) break; // need more input
      if (hasNul && parsed.record.error === undefined && parsed.record.fields.some((f) => f.includes('\0'))) {
        out.push({ ...parsed.record, error: 'record contains a NUL byte' });
      } else {
        out.push(parsed.record);
      }
      pos = parsed.next;
    }
    this.pending = pos < len ? buf.slice(pos) : '';
    if (this.pending.length > this.maxRecordChars) {
      throw new CsvFileError('CSV_RECORD_TOO_LARGE', `record starting at line ${this.line} exceeds ${this.maxRecordChars} characters (an unclosed quote?)`, this.line);
    }
    return out;
  }

  /**
   * Parses one record that contains a quote, starting at `start`. Returns undefined when the
   * record is not complete in `buf` and more input may come.
   */
  private parseQuoted(buf: string, start: number, final: boolean): { record: CsvRecord; next: number } | undefined {
    const len = buf.length;
    const fields: string[] = [];
    const startLine = this.line;
    let newlines = 0;
    let error: string | undefined;
    let i = start;
    for (;;) {
      // At the start of a field.
      if (i < len && buf.charCodeAt(i) === QUOTE) {
        let value = '';
        let from = i + 1;
        for (;;) {
          const q = buf.indexOf('"', from);
          if (q === -1) {
            if (!final) return undefined;
            throw new CsvFileError('CSV_UNCLOSED_QUOTE', `quoted field opened on line ${startLine + countNewlines(buf, start, i)} is never closed`, startLine);
          }
          if (q + 1 >= len && !final) return undefined; // cannot tell "" from " yet
          value += buf.slice(from, q);
          if (buf.charCodeAt(q + 1) === QUOTE) {
            value += '"';
            from = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        newlines += countNewlines(value, 0, value.length);
        // After a closing quote only a delimiter or the end of the record may follow.
        if (i < len && buf.charCodeAt(i) !== COMMA && buf.charCodeAt(i) !== LF && !(buf.charCodeAt(i) === CR && (i + 1 >= len || buf.charCodeAt(i + 1) === LF))) {
          error ??= `unexpected text after a closing quote in field ${fields.length + 1}`;
          let j = i;
          while (j < len && buf.charCodeAt(j) !== COMMA && buf.charCodeAt(j) !== LF) j++;
          if (j >= len && !final) return undefined;
          value += buf.slice(i, j);
          i = j;
        }
        fields.push(value);
      } else {
        let j = i;
        while (j < len) {
          const c = buf.charCodeAt(j);
          if (c === COMMA || c === LF) break;
          j++;
        }
        if (j >= len && !final) return undefined;
        let fieldEnd = j;
        if ((j >= len || buf.charCodeAt(j) === LF) && fieldEnd > i && buf.charCodeAt(fieldEnd - 1) === CR) fieldEnd--;
        fields.push(buf.slice(i, fieldEnd));
        i = j;
      }
      // Now at a delimiter, a record end, or the end of input.
      if (i < len && buf.charCodeAt(i) === COMMA) {
        i++;
        continue;
      }
      if (i < len && buf.charCodeAt(i) === CR) i++;
      if (i < len && buf.charCodeAt(i) === LF) {
        i++;
        newlines++;
      } else if (i < len) {
        continue;
      } else if (!final) {
        return undefined;
      }
      this.line = startLine + newlines;
      return { record: error === undefined ? { line: startLine, fields } : { line: startLine, fields, error }, next: i };
    }
  }
}

export function splitPlain(buf: string, start: number, end: number): string[] {
  const fields: string[] = [];
  let from = start;
  for (;;) {
    const comma = buf.indexOf(',', from);
    if (comma === -1 || comma >= end) {
      fields.push(buf.slice(from, end));
      return fields;
    }
    fields.push(buf.slice(from, comma));
    from = comma + 1;
  }
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

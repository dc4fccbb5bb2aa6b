/**
 * Streaming CSV reader (RFC 4180 plus the habits of real bank extracts).
 *
 * Why not csv-parse on the hot path: reconciling two 1M-row extracts must stay within 2x of
 * DuckDB (see `npm run bench:recon`), and csv-parse's per-character state machine is several
 * times slower than scanning unquoted lines with indexOf. csv-parse remains the oracle: the fuzz
 * suite checks this reader against it on random input.
 *
 * Semantics: UTF-8 by default (a UTF-8 BOM is dropped; UTF-16 and invalid bytes fail the file) or
 * Latin-1 when asked (every byte is a character), comma delimiter unless another is given (`;`,
 * tab, `|`), `"` quoting with `""` escapes, quoted fields may hold commas, quotes and newlines,
 * LF and CRLF both end a record, blank lines are skipped (but counted for line numbers), a quote
 * inside an unquoted field is kept literally. Structural damage that only affects one record
 * (text after a closing quote, a NUL byte) is reported on that record so the caller can reject
 * the row and keep going; damage that makes the rest of the file unreadable (an unclosed quote,
 * a record over `maxRecordBytes`, bad encoding) throws `CsvFileError` with the line.
 */
import { Buffer, isAscii, isUtf8 } from 'node:buffer';
import { incompleteTail, invalidUtf8Position, notUtf8Reason } from './formats/utf8.ts';

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

/** {@link fieldsOf} for a file with another delimiter. */
export function fieldsWith(record: CsvRecord, delimiter: string): string[] {
  return record.fields ?? splitPlain(record.plain, 0, record.plain.length, delimiter);
}

export type CsvErrorCode =
  'ENCODING' | 'CSV_UNCLOSED_QUOTE' | 'CSV_RECORD_TOO_LARGE' | 'FILE_UNREADABLE' | 'HEADER_INVALID';

/** Why a file whose lines end in CR alone cannot be read: it is one record, whose header holds it all. */
export const CR_ONLY_LINES =
  'lines end with a carriage return alone (CR, classic Mac line endings); expected LF or CRLF line endings';

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
  /** One character: `,` (default), `;`, tab or `|`. */
  readonly delimiter?: string;
  /** `utf-8` (default, validated) or `latin-1` (ISO-8859-1: every byte is its own character). */
  readonly encoding?: 'utf-8' | 'latin-1';
}

const QUOTE = 34;
const LF = 10;
const CR = 13;
const DEFAULT_MAX_RECORD_CHARS = 16 * 1024 * 1024;

type Chunk = Uint8Array | string;

/**
 * Receives records as the parser finds them, without a record object per line: the hot path of a
 * reconciliation reads an unquoted line in place (`plain`) and allocates nothing for it.
 */
export interface CsvSink {
  /** An unquoted, undamaged record: `buf` from `start` to `end` (line break excluded). */
  plain(buf: string, start: number, end: number, line: number): void;
  /** Any other record: one with quotes, or one with an `error`. */
  record(record: CsvRecord): void;
}

/** Input is decoded in blocks of about this many bytes. */
const BLOCK_BYTES = 1 << 20;
/** A decoded block is parsed in steps of at least this many characters as more input arrives. */
const STEP_CHARS = 1 << 16;

const startsWithBom = (b: Uint8Array): boolean => b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;

/**
 * Reads CSV records from a byte stream into `sink`, in file order: the one reader of extracts
 * (recon's engine and ingest's validation both use it). Each input chunk is validated as it
 * comes, but small chunks (a file stream's 64 KiB, an S3 body's 16 KiB) are decoded in blocks of about 1 MiB: one string per block, held outside
 * the JavaScript heap, instead of many small ones the garbage collector has to move. A block is
 * parsed step by step while the next one is read, so reading and parsing still overlap.
 */
export async function readCsvInto(
  input: AsyncIterable<Chunk>,
  sink: CsvSink,
  options: CsvReadOptions = {},
): Promise<void> {
  const maxRecordChars = options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  const parser = new CsvParser(maxRecordChars, options.delimiter);
  const latin1 = options.encoding === 'latin-1';
  const decoder: ByteDecoder = latin1 ? new Latin1Decoder() : new Utf8Decoder();
  /** Validated bytes of the block being read. */
  let parts: Buffer[] = [];
  let partsBytes = 0;
  let ascii = true;
  /** The decoded block being parsed, from `readyPos`. It ends where an input chunk ended. */
  let ready = '';
  let readyPos = 0;
  /** Parses up to `chars` more of the decoded block. */
  const step = (chars: number): void => {
    if (readyPos === ready.length) return;
    const end = Math.min(ready.length, readyPos + chars);
    // Only the end of the block is where an input chunk ended: check the record limit there.
    parser.feedRange(ready, readyPos, end, sink, end === ready.length);
    readyPos = end;
  };
  /** Parses the rest of the decoded block, then makes the bytes read since the next block. */
  const nextBlock = (): void => {
    step(ready.length);
    if (partsBytes === 0) return;
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, partsBytes);
    ready = ascii ? bytes.toString('latin1') : bytes.toString('utf8');
    readyPos = 0;
    parts = [];
    partsBytes = 0;
    ascii = true;
  };
  /** Parses everything read so far. */
  const parseAll = (): void => {
    nextBlock();
    step(ready.length);
  };
  let first = true;
  // The file's first bytes, until there are enough to say what the file is (checkFileKind):
  // whatever the chunks (a stream may start with an empty or a one-byte one).
  let head: Uint8Array | undefined = NO_BYTES;
  for await (const chunk of input) {
    if (typeof chunk === 'string') {
      parseAll();
      parser.feed(first && chunk.charCodeAt(0) === 0xfeff ? chunk.slice(1) : chunk, false, sink);
      first = false;
      continue;
    }
    let bytes: Buffer;
    try {
      if (head !== undefined) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        if (head.length >= FILE_KIND_BYTES) {
          checkFileKind(head, latin1);
          head = undefined;
        }
      }
      bytes = decoder.take(chunk); // drops a stream-leading BOM
    } catch (error) {
      if (!(error instanceof NotUtf8Error)) throw error;
      // The line of the bad byte: everything before this chunk parsed, then counted into it.
      parseAll();
      const at = invalidUtf8Position(error.bytes, parser.line + parser.pendingNewlines);
      throw encodingError(at.line, at.byte);
    }
    first = false;
    if (bytes.length === 0) continue;
    // Parsing in larger steps must not let a record grow past the limit unnoticed at the end of
    // an input chunk. While the unparsed text cannot hold such a record, the end of an earlier
    // chunk cannot have been such a place; when it could, everything up to the end of this chunk
    // is parsed now and checked there (a byte is at most one character, so the bound is safe).
    const unparsed = parser.pendingLength + (ready.length - readyPos) + partsBytes + bytes.length;
    parts.push(bytes);
    partsBytes += bytes.length;
    ascii &&= decoder.ascii;
    if (unparsed > maxRecordChars) parseAll();
    else if (partsBytes >= BLOCK_BYTES) nextBlock();
    else step(Math.max(bytes.length, STEP_CHARS));
  }
  if (head !== undefined) checkFileKind(head, latin1);
  parseAll();
  try {
    decoder.end();
  } catch (error) {
    if (!(error instanceof NotUtf8Error)) throw error;
    throw encodingError(parser.line + parser.pendingNewlines, error.bytes[0]);
  }
  parser.feed('', true, sink);
}

/** How many of a file's first bytes say what it is (checkFileKind). */
const FILE_KIND_BYTES = 4;
const NO_BYTES = new Uint8Array(0);

/**
 * What the first bytes say a file is, when it is not text a CSV reader can take: UTF-16 (with a
 * byte-order mark, or ASCII text with every other byte zero), a ZIP archive (an .xlsx workbook
 * is one). Such files otherwise fail later with a reason that hides what they are ("missing
 * columns" of garbled names, "not valid UTF-8").
 */
function checkFileKind(bytes: Uint8Array, latin1: boolean): void {
  const [a, b, c, d] = bytes;
  if (!latin1 && bytes.length >= 2 && ((a === 0xff && b === 0xfe) || (a === 0xfe && b === 0xff)))
    throw new CsvFileError('ENCODING', 'file is UTF-16 encoded; expected UTF-8', 1);
  if (bytes.length >= 4 && ((b === 0 && d === 0 && a !== 0 && c !== 0) || (a === 0 && c === 0 && b !== 0 && d !== 0)))
    throw new CsvFileError(
      'ENCODING',
      `file looks UTF-16 ${b === 0 ? 'LE' : 'BE'} encoded (every other byte is zero) with no byte-order mark; expected UTF-8 (export it again as UTF-8 CSV)`,
      1,
    );
  if (a === 0x50 && b === 0x4b && c === 0x03 && d === 0x04)
    throw new CsvFileError(
      'FILE_UNREADABLE',
      'file is a ZIP archive (an Excel .xlsx workbook is one); expected CSV text (save the sheet as CSV, or unzip the archive; gzip is read as it is)',
      1,
    );
}

const LATIN1_HINT = ' (a Latin-1 or Windows-1252 export? the policy can read this side as "encoding": "latin-1")';

function encodingError(line: number, byte: number | undefined): CsvFileError {
  return new CsvFileError('ENCODING', notUtf8Reason(byte, LATIN1_HINT), line);
}

/** Bytes that are not UTF-8: where they are is worked out by the caller, which knows the line. */
class NotUtf8Error extends Error {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    super('not valid UTF-8');
    this.name = 'NotUtf8Error';
    this.bytes = bytes;
  }
}

interface ByteDecoder {
  readonly ascii: boolean;
  take(chunk: Uint8Array): Buffer;
  /** The end of the stream: throws NotUtf8Error for bytes still waiting for their character. */
  end(): void;
}

/** Latin-1 has no invalid bytes and no multi-byte characters: every chunk is taken whole. */
class Latin1Decoder {
  /** Latin-1 text is decoded as Latin-1 whatever its bytes. */
  readonly ascii = true;
  take(chunk: Uint8Array): Buffer {
    return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  end(): void {}
}

/**
 * Streaming UTF-8 decoder with the behaviour of `new TextDecoder('utf-8', { fatal: true })` in
 * stream mode (invalid bytes fail the chunk they are found in, a BOM at the very start of the
 * stream is dropped, an incomplete sequence at the end fails), but several times faster on the
 * common case: an ASCII chunk is copied as Latin-1, any other chunk is validated with simdutf
 * (`isUtf8`) and converted whole. A sequence split across chunks waits for the next chunk.
 */
class Utf8Decoder {
  private carry: Buffer | undefined;
  private started = false;
  /** Whether the bytes `take` returned last are all ASCII. */
  ascii = true;

  /**
   * The complete characters `chunk` ends (with what an earlier chunk left over), validated, as
   * bytes. A stream-leading BOM is dropped.
   */
  take(chunk: Uint8Array): Buffer {
    let bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.carry !== undefined) {
      bytes = Buffer.concat([this.carry, bytes]);
      this.carry = undefined;
    }
    const tail = incompleteTail(bytes);
    if (tail > 0) {
      this.carry = Buffer.from(bytes.subarray(bytes.length - tail));
      bytes = bytes.subarray(0, bytes.length - tail);
    }
    this.ascii = isAscii(bytes);
    if (!this.ascii && !isUtf8(bytes)) throw new NotUtf8Error(bytes);
    if (!this.started && bytes.length > 0) {
      this.started = true;
      if (startsWithBom(bytes)) bytes = bytes.subarray(3);
    }
    return bytes;
  }

  /** The end of the stream: bytes still waiting for the rest of their character are an error. */
  end(): void {
    if (this.carry !== undefined) throw new NotUtf8Error(this.carry);
  }
}

type QuotedRecord = {
  readonly line: number;
  readonly plain?: undefined;
  readonly fields: string[];
  readonly error?: string;
};

/** Incremental parser; exported for tests that feed it strings directly. */
export class CsvParser {
  /** Line number of the next unread character. */
  line = 1;
  private pending = '';
  private readonly maxRecordChars: number;
  /** The delimiter's char code. */
  private readonly delim: number;

  constructor(maxRecordChars = DEFAULT_MAX_RECORD_CHARS, delimiter = ',') {
    this.maxRecordChars = maxRecordChars;
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r')
      throw new RangeError(
        `CSV delimiter must be one character other than a quote or a line break, got ${JSON.stringify(delimiter)}`,
      );
    this.delim = delimiter.charCodeAt(0);
  }

  /** Characters held back because their record is not complete yet. */
  get pendingLength(): number {
    return this.pending.length;
  }

  /** Line feeds in the characters held back (a quoted field's): `line` is where they begin. */
  get pendingNewlines(): number {
    let count = 0;
    for (let i = this.pending.indexOf('\n'); i !== -1; i = this.pending.indexOf('\n', i + 1)) count++;
    return count;
  }

  /** Parses `text`, the next piece of input (`final`: the last), handing each record to `sink`. */
  feed(text: string, final: boolean, sink: CsvSink): void {
    this.scan(this.pending.length > 0 ? this.pending + text : text, final, sink);
    this.checkPending();
  }

  /**
   * `feed(text.slice(start, end), false, sink)` without copying a large `text`: the record left
   * over from the last feed is completed on its own, and the rest is scanned where it is. With
   * `check` false the record limit is not checked (the caller knows `end` is not where an input
   * chunk ended).
   */
  feedRange(text: string, start: number, end: number, sink: CsvSink, check: boolean): void {
    if (this.pending.length > 0) {
      const nl = text.indexOf('\n', start);
      if (nl !== -1 && nl < end) {
        const head = this.pending + text.slice(start, nl + 1);
        this.pending = '';
        this.scan(head, false, sink);
        start = nl + 1;
      }
    }
    if (start < end) {
      const rest = start === 0 && end === text.length ? text : text.slice(start, end);
      this.scan(this.pending.length > 0 ? this.pending + rest : rest, false, sink);
    }
    if (check) this.checkPending();
  }

  private checkPending(): void {
    if (this.pending.length > this.maxRecordChars) {
      // A file with CR-only line endings is one record: too large once the file is, but what
      // is wrong is its line endings (checkHeader says so of a smaller one).
      if (this.line === 1 && /\r(?!\n)/.test(this.pending)) throw new CsvFileError('HEADER_INVALID', CR_ONLY_LINES, 1);
      throw new CsvFileError(
        'CSV_RECORD_TOO_LARGE',
        `record exceeds ${this.maxRecordChars} characters (an unclosed quote?)`,
        this.line,
      );
    }
  }

  private scan(buf: string, final: boolean, sink: CsvSink): void {
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
          const nul = hasNul ? buf.indexOf('\0', pos) : -1;
          if (nul !== -1 && nul < lineEnd)
            sink.record({ line: this.line, plain: buf.slice(pos, lineEnd), error: 'record contains a NUL byte' });
          else sink.plain(buf, pos, lineEnd, this.line);
        }
        this.line++;
        pos = end + 1;
        continue;
      }
      const parsed = this.parseQuoted(buf, pos, final);
      if (parsed === undefined) break; // need more input
      if (hasNul && parsed.record.error === undefined && parsed.record.fields.some((f) => f.includes('\0'))) {
        sink.record({ ...parsed.record, error: 'record contains a NUL byte' });
      } else {
        sink.record(parsed.record);
      }
      pos = parsed.next;
    }
    this.pending = pos < len ? buf.slice(pos) : '';
  }

  /**
   * Parses one record that contains a quote, starting at `start`. Returns undefined when the
   * record is not complete in `buf` and more input may come.
   */
  private parseQuoted(buf: string, start: number, final: boolean): { record: QuotedRecord; next: number } | undefined {
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
            throw new CsvFileError(
              'CSV_UNCLOSED_QUOTE',
              `quoted field opened on line ${startLine + countNewlines(buf, start, i)} is never closed`,
              startLine,
            );
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
        if (
          i < len &&
          buf.charCodeAt(i) !== this.delim &&
          buf.charCodeAt(i) !== LF &&
          !(buf.charCodeAt(i) === CR && (i + 1 >= len || buf.charCodeAt(i + 1) === LF))
        ) {
          error ??= `unexpected text after a closing quote in field ${fields.length + 1}`;
          let j = i;
          while (j < len && buf.charCodeAt(j) !== this.delim && buf.charCodeAt(j) !== LF) j++;
          if (j >= len && !final) return undefined;
          value += buf.slice(i, j);
          i = j;
        }
        fields.push(value);
      } else {
        let j = i;
        while (j < len) {
          const c = buf.charCodeAt(j);
          if (c === this.delim || c === LF) break;
          j++;
        }
        if (j >= len && !final) return undefined;
        let fieldEnd = j;
        if ((j >= len || buf.charCodeAt(j) === LF) && fieldEnd > i && buf.charCodeAt(fieldEnd - 1) === CR) fieldEnd--;
        fields.push(buf.slice(i, fieldEnd));
        i = j;
      }
      // Now at a delimiter, a record end, or the end of input.
      if (i < len && buf.charCodeAt(i) === this.delim) {
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
      return {
        record: error === undefined ? { line: startLine, fields } : { line: startLine, fields, error },
        next: i,
      };
    }
  }
}

export function splitPlain(buf: string, start: number, end: number, delimiter = ','): string[] {
  const fields: string[] = [];
  let from = start;
  for (;;) {
    const comma = buf.indexOf(delimiter, from);
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

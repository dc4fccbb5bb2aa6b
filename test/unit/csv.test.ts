import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import {
  CR_ONLY_LINES,
  CsvFileError,
  CsvParser,
  fieldsOf,
  readCsvInto,
  type CsvRecord,
  type CsvSink,
} from '../../functions/shared/csv.ts';

type Chunk = Uint8Array | string;

const encoder = new TextEncoder();

async function* streamOf(chunks: readonly Chunk[]): AsyncGenerator<Chunk> {
  for (const chunk of chunks) yield chunk;
}

/** Collects what the reader hands its sink as `CsvRecord` objects, in order. */
class RecordCollector implements CsvSink {
  readonly out: CsvRecord[] = [];
  plain(buf: string, start: number, end: number, line: number): void {
    this.out.push({ line, plain: buf.slice(start, end) });
  }
  record(record: CsvRecord): void {
    this.out.push(record);
  }
}

async function readAll(chunks: readonly Chunk[], maxRecordChars?: number): Promise<CsvRecord[]> {
  const collector = new RecordCollector();
  const options = maxRecordChars === undefined ? {} : { maxRecordChars };
  await readCsvInto(streamOf(chunks), collector, options);
  return collector.out;
}

/** A CsvParser fed `pieces` one by one, then the end of input. */
function parsePieces(pieces: readonly string[]): CsvRecord[] {
  const parser = new CsvParser();
  const collector = new RecordCollector();
  for (const piece of pieces) parser.feed(piece, false, collector);
  parser.feed('', true, collector);
  return collector.out;
}

function readText(text: string): Promise<CsvRecord[]> {
  return readAll([encoder.encode(text)]);
}

/** Splits bytes into chunks of `size` bytes (1 = byte by byte). */
function chunked(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

function table(records: readonly CsvRecord[]): string[][] {
  return records.map(fieldsOf);
}

async function readError(chunks: readonly Chunk[], maxRecordChars?: number): Promise<CsvFileError> {
  try {
    await readAll(chunks, maxRecordChars);
  } catch (error) {
    if (error instanceof CsvFileError) return error;
    throw error;
  }
  throw new Error('expected readCsvInto to fail with CsvFileError');
}

describe('readCsvInto record boundaries', () => {
  it('reads LF and CRLF files to the same fields and line numbers', async () => {
    // Prepare
    const lf = 'trade_id,amount\nT1,1.00\nT2,2.00\n';
    const crlf = lf.replaceAll('\n', '\r\n');
    // Act
    const [a, b] = await Promise.all([readText(lf), readText(crlf)]);
    // Assess
    expect(table(b)).toEqual([
      ['trade_id', 'amount'],
      ['T1', '1.00'],
      ['T2', '2.00'],
    ]);
    expect(table(a)).toEqual(table(b));
    expect(b.map((r) => r.line)).toEqual([1, 2, 3]);
    expect(b.every((r) => r.error === undefined)).toBe(true);
  });

  it('emits a last record that has no trailing newline', async () => {
    const records = await readText('a,b\r\nc,d');
    expect(table(records)).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('keeps commas, doubled quotes and newlines inside quoted fields', async () => {
    // Act
    const records = await readText('id,note\n1,"a, b"\n2,"say ""hi"""\n3,"line one\nline two"\n4,""\n');
    // Assess
    expect(table(records)).toEqual([
      ['id', 'note'],
      ['1', 'a, b'],
      ['2', 'say "hi"'],
      ['3', 'line one\nline two'],
      ['4', ''],
    ]);
  });

  it('keeps line numbers right for records after a quoted newline', async () => {
    // Prepare: record 2 spans lines 2-4.
    const text = 'id,note\n1,"x\ny\nz"\n2,plain\n3,"p\r\nq"\r\n4,last\n';
    // Act
    const records = await readText(text);
    // Assess
    expect(records.map((r) => r.line)).toEqual([1, 2, 5, 6, 8]);
    expect(fieldsOf(records[3] as CsvRecord)).toEqual(['3', 'p\r\nq']);
  });

  it('skips blank lines but counts them for line numbers', async () => {
    const records = await readText('h\n\nA\r\n\r\n\nB\n\n');
    expect(table(records)).toEqual([['h'], ['A'], ['B']]);
    expect(records.map((r) => r.line)).toEqual([1, 3, 6]);
  });

  it('keeps a quote inside an unquoted field literally', async () => {
    const records = await readText('a,b"c,d\n');
    expect(table(records)).toEqual([['a', 'b"c', 'd']]);
    expect(records[0]?.error).toBeUndefined();
  });

  it('keeps empty fields, including a trailing one', async () => {
    const records = await readText(',a,,\n"",x\n');
    expect(table(records)).toEqual([
      ['', 'a', '', ''],
      ['', 'x'],
    ]);
  });
});

describe('readCsvInto encodings', () => {
  it('strips a UTF-8 byte-order mark from the first field', async () => {
    // Prepare
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('trade_id,amount\nT1,1\n')]);
    // Act
    const whole = await readAll([bytes]);
    const byByte = await readAll(chunked(bytes, 1));
    const asString = await readAll(['\uFEFFtrade_id,amount\nT1,1\n']);
    // Assess
    expect(fieldsOf(whole[0] as CsvRecord)).toEqual(['trade_id', 'amount']);
    expect(table(byByte)).toEqual(table(whole));
    expect(table(asString)).toEqual(table(whole));
  });

  it('drops exactly one byte-order mark, however the bytes are chunked', async () => {
    // Prepare: a second U+FEFF is content, not a mark.
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, ...encoder.encode('a\n')]);
    // Act
    const whole = await readAll([bytes]);
    const byByte = await readAll(chunked(bytes, 1));
    // Assess
    expect(table(byByte)).toEqual([['\uFEFFa']]);
    expect(table(whole)).toEqual(table(byByte));
  });

  it('decodes multi-byte UTF-8 split across chunks', async () => {
    const bytes = encoder.encode('name,city\nRené,Zürich €5 😀\n');
    const records = await readAll(chunked(bytes, 1));
    expect(table(records)).toEqual([
      ['name', 'city'],
      ['René', 'Zürich €5 😀'],
    ]);
  });

  it.each([
    ['UTF-16 LE', [0xff, 0xfe]],
    ['UTF-16 BE', [0xfe, 0xff]],
  ])('fails a %s file (byte-order mark) with ENCODING', async (_name, bom) => {
    // Prepare
    const littleEndian = Buffer.from('trade_id,amount\n', 'utf16le');
    const body = bom[0] === 0xff ? littleEndian : Buffer.from(littleEndian).swap16();
    const bytes = new Uint8Array([...bom, ...body]);
    // Act
    const error = await readError([bytes]);
    // Assess
    expect(error.code).toBe('ENCODING');
    expect(error.message).toMatch(/UTF-16/);
    expect(error.line).toBe(1);
  });

  it('fails a UTF-16 file fed byte by byte with ENCODING too', async () => {
    const bytes = new Uint8Array([0xff, 0xfe, ...Buffer.from('a,b\n', 'utf16le')]);
    const error = await readError(chunked(bytes, 1));
    expect(error.code).toBe('ENCODING');
  });

  it('fails a Latin-1 byte (0xE9 alone) with ENCODING and a line', async () => {
    // Prepare: "café" in Latin-1 on line 2.
    const bytes = new Uint8Array([...encoder.encode('name\n'), 0x63, 0x61, 0x66, 0xe9, ...encoder.encode('\n')]);
    // Act
    const error = await readError([bytes]);
    // Assess
    expect(error.code).toBe('ENCODING');
    expect(error.line).toBeGreaterThanOrEqual(1);
  });

  it('names the line and the byte that are not UTF-8, whatever the chunks (and says how to read Latin-1)', async () => {
    // Line 4 holds "Zürich" in Latin-1, after a quoted field that spans lines 2-3.
    const bytes = new Uint8Array([
      ...encoder.encode('name,city\n"a\nb",x\nc,Z'),
      0xfc,
      ...encoder.encode('rich\nd,y\n'),
    ]);
    const seen = new Set<string>();
    for (const size of [1, 2, 3, 5, 8, 13, bytes.length]) {
      const error = await readError(chunked(bytes, size));
      seen.add(`${error.code} ${error.line} ${error.message}`);
    }

    expect([...seen]).toEqual([
      'ENCODING 4 file is not valid UTF-8 (byte 0xFC); expected UTF-8 (a Latin-1 or Windows-1252 export? the policy can read this side as "encoding": "latin-1")',
    ]);
  });

  it('says a file is UTF-16 without a byte-order mark, or a ZIP archive, instead of a garbled header', async () => {
    const utf16 = await readError([new Uint8Array(Buffer.from('name,city\n', 'utf16le'))]);
    const zip = await readError([new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00])]);

    expect(utf16).toMatchObject({ code: 'ENCODING', line: 1 });
    expect(utf16.message).toMatch(/^file looks UTF-16 LE encoded \(every other byte is zero\) with no byte-order mark/);
    expect(zip).toMatchObject({ code: 'FILE_UNREADABLE', line: 1 });
    expect(zip.message).toMatch(/^file is a ZIP archive \(an Excel \.xlsx workbook is one\)/);
  });

  it('says what a file is from its first bytes however they are chunked (an empty or a one-byte first chunk)', async () => {
    const utf16 = new Uint8Array(Buffer.from('name,city\n', 'utf16le'));
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00]);

    for (const bytes of [utf16, zip]) {
      const whole = await readError([bytes]);
      for (const chunks of [[new Uint8Array(0), bytes], chunked(bytes, 1), chunked(bytes, 3)])
        expect(await readError(chunks)).toMatchObject({ code: whole.code, line: 1, message: whole.message });
    }
  });

  it('says a file with CR-only line endings is one, also once it is larger than a record may be', async () => {
    const text = `name,city\r${'a,b\r'.repeat(100)}`;

    const large = await readError([encoder.encode(text)], 64);

    expect(large).toMatchObject({ code: 'HEADER_INVALID', line: 1, message: CR_ONLY_LINES });
  });

  it('fails a Latin-1 byte at the very end of the file with ENCODING', async () => {
    const bytes = new Uint8Array([...encoder.encode('name\ncaf'), 0xe9]);
    expect((await readError([bytes])).code).toBe('ENCODING');
    expect((await readError(chunked(bytes, 1))).code).toBe('ENCODING');
  });
});

describe('readCsvInto structural damage', () => {
  it('fails an unclosed quote with CSV_UNCLOSED_QUOTE and the line it opened on', async () => {
    // Act
    const error = await readError([encoder.encode('a,b\nc,d\ne,"never closed\nmore\n')]);
    // Assess
    expect(error.code).toBe('CSV_UNCLOSED_QUOTE');
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/line 3/);
  });

  it('fails an unclosed quote the same way when fed byte by byte', async () => {
    const error = await readError(chunked(encoder.encode('a,b\nc,"open\n'), 1));
    expect(error.code).toBe('CSV_UNCLOSED_QUOTE');
    expect(error.line).toBe(2);
  });

  it('marks only the record holding a NUL byte', async () => {
    // Act
    const records = await readText('h1,h2\nT1,ok\nT2,bad\0value\nT3,"quoted\0nul"\nT4,ok\n');
    // Assess
    expect(records.map((r) => r.error === undefined)).toEqual([true, true, false, false, true]);
    expect(records[2]?.error).toMatch(/NUL/);
    expect(records[2]?.line).toBe(3);
    expect(records[3]?.error).toMatch(/NUL/);
  });

  it('marks only the record with text after a closing quote', async () => {
    // Act
    const records = await readText('h1,h2,h3\nT1,"ab"cd,x\nT2,"ok",y\n');
    // Assess
    expect(records[1]?.error).toMatch(/after a closing quote/);
    expect(records[1]?.line).toBe(2);
    expect(fieldsOf(records[1] as CsvRecord)).toHaveLength(3);
    expect(records[2]?.error).toBeUndefined();
    expect(fieldsOf(records[2] as CsvRecord)).toEqual(['T2', 'ok', 'y']);
  });

  it('fails a record longer than maxRecordChars with CSV_RECORD_TOO_LARGE', async () => {
    const chunks = ['h\n', '"', 'x'.repeat(600), 'x'.repeat(600)];
    const error = await readError(chunks, 1000);
    expect(error.code).toBe('CSV_RECORD_TOO_LARGE');
    expect(error.line).toBe(2);
  });
});

describe('readCsvInto chunking', () => {
  it('parses a record split across one-byte chunks the same as one chunk', async () => {
    // Prepare
    const text = 'id,note,amount\r\n1,"a, ""b""\r\nc",1.00\r\n\r\n2,plain,"1,250.50"\r\n3,x"y,\0\r\n4,"q"z,5';
    const bytes = encoder.encode(text);
    // Act
    const whole = await readAll([bytes]);
    const byByte = await readAll(chunked(bytes, 1));
    const byStringChar = await readAll([...text]);
    // Assess
    expect(byByte).toEqual(whole);
    expect(byStringChar).toEqual(whole);
    expect(whole.map((r) => r.line)).toEqual([1, 2, 5, 6, 7]);
  });

  it('CsvParser fed a string in pieces matches one feed', () => {
    const text = 'a,"b\nc"\r\nd,e\n';
    const whole = parsePieces([text]);
    expect(parsePieces([...text])).toEqual(whole);
    expect(table(whole)).toEqual([
      ['a', 'b\nc'],
      ['d', 'e'],
    ]);
  });

  it('parses a 2 MB quoted field holding commas and newlines', async () => {
    // Prepare
    const big = 'x,y\n'.repeat(512 * 1024);
    const bytes = encoder.encode(`id,blob,tail\n1,"${big}",end\n2,small,end\n`);
    // Act
    const records = await readAll(chunked(bytes, 64 * 1024));
    // Assess
    expect(records).toHaveLength(3);
    expect(fieldsOf(records[1] as CsvRecord)[1]).toBe(big);
    expect(fieldsOf(records[1] as CsvRecord)[2]).toBe('end');
    expect(records[2]?.line).toBe(3 + 512 * 1024);
  });

  it('parses a 2 MB unquoted field', async () => {
    const big = 'z'.repeat(2 * 1024 * 1024);
    const records = await readAll(chunked(encoder.encode(`id,blob\n1,${big}\n`), 64 * 1024));
    expect(fieldsOf(records[1] as CsvRecord)).toEqual(['1', big]);
  });
});

describe('readCsvInto fuzz', () => {
  const piece = fc.constantFrom('a', 'B', 'z', 'é', '€', ' ', '  ', ',', '"', '""', '\n', '\r\n', 'x y', '1.50');
  const field = fc.array(piece, { maxLength: 6 }).map((parts) => parts.join(''));
  const record = fc.array(field, { minLength: 1, maxLength: 5 });
  const document = fc.record({
    records: fc.array(record, { minLength: 1, maxLength: 8 }),
    eol: fc.constantFrom('\n', '\r\n'),
    trailingEol: fc.boolean(),
    quoteAll: fc.boolean(),
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
  });

  function render(fields: string[], quoteAll: boolean): string {
    const needsQuotes = (f: string) => quoteAll || /[",\r\n]/.test(f) || (fields.length === 1 && f === '');
    return fields.map((f) => (needsQuotes(f) ? `"${f.replaceAll('"', '""')}"` : f)).join(',');
  }

  it('agrees with csv-parse on well-formed CSV chunked at random points', async () => {
    await fc.assert(
      fc.asyncProperty(document, async ({ records, eol, trailingEol, quoteAll, cuts }) => {
        // Prepare
        const text = records.map((r) => render(r, quoteAll)).join(eol) + (trailingEol ? eol : '');
        const expected = parse(text, {
          relax_quotes: true,
          skip_empty_lines: true,
          relax_column_count: true,
        }) as string[][];
        // Act
        const actual = await readAll(splitAt(encoder.encode(text), cuts));
        // Assess
        expect(table(actual)).toEqual(expected);
        expect(actual.every((r) => r.error === undefined)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  const interestingBytes = fc.uint8Array({ maxLength: 120 }).map((raw) => {
    const alphabet = [
      0x22, 0x2c, 0x0a, 0x0d, 0x00, 0x61, 0x20, 0xe9, 0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0xff, 0xfe, 0xe2, 0x82, 0xac,
    ];
    return raw.map((b) => alphabet[b % alphabet.length] as number);
  });

  it('accepts exactly the bytes a fatal TextDecoder accepts, and reads them as that text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          interestingBytes,
          fc.string({ unit: 'binary' }).map((t) => encoder.encode(t)),
        ),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        async (bytes, cuts) => {
          // Prepare
          let text: string | undefined;
          try {
            text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
          } catch {
            text = undefined;
          }
          // Act
          let outcome: CsvRecord[] | string;
          let message = '';
          try {
            outcome = await readAll(splitAt(bytes, cuts));
          } catch (error) {
            if (!(error instanceof CsvFileError)) throw error;
            outcome = error.code;
            message = error.message;
          }
          // Assess
          if (text === undefined) {
            expect(outcome).toBe('ENCODING');
          } else if (typeof outcome !== 'string') {
            const fromText = await readAll([text]).catch((error: CsvFileError) => error.code);
            expect(outcome).toEqual(fromText);
          } else if (outcome === 'ENCODING') {
            // The one exception, by design: valid UTF-8 whose first bytes read as UTF-16 without a
            // byte-order mark (every other byte zero: 00 22 00 22 is the fuzzer's) is called so.
            expect(message).toMatch(/UTF-16/);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('either yields records or throws CsvFileError on arbitrary bytes, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 200 }), interestingBytes),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        async (bytes, cuts) => {
          // Act
          const outcome = async (chunks: Uint8Array[]) => {
            try {
              return { records: await readAll(chunks) };
            } catch (error) {
              expect(error).toBeInstanceOf(CsvFileError);
              return { code: (error as CsvFileError).code };
            }
          };
          const whole = await outcome([bytes]);
          const split = await outcome(splitAt(bytes, cuts));
          // Assess
          expect(split).toEqual(whole);
          if (whole.records) {
            const lines = whole.records.map((r) => r.line);
            expect(lines).toEqual([...lines].sort((a, b) => a - b));
            expect(new Set(lines).size).toBe(lines.length);
            for (const r of whole.records) expect(fieldsOf(r).every((f) => typeof f === 'string')).toBe(true);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

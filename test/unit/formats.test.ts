/** Fuzz tests for the JSON Lines, Parquet, gzip and number-text readers: typed errors only. */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gunzipIfCompressed, GzipError } from '../../functions/shared/formats/gzip.ts';
import {
  JsonLinesFileError,
  parseFlatObject,
  parseJsonObject,
  parseJsonObjectWithJsonParse,
  readJsonLinesInto,
} from '../../functions/shared/formats/jsonl.ts';
import { compileDateFormat } from '../../functions/shared/policy.ts';
import { JS_WHITESPACE } from '../../functions/recon/sql/dialect.ts';
import { doubleText, plainNumberText } from '../../functions/shared/formats/number-text.ts';
import { ParquetFileError, readParquetInto } from '../../functions/shared/formats/parquet.ts';
import { parseDecimal, parseDecimalFully, parseDecimalWith } from '../../functions/shared/decimal.ts';

const chunked = (bytes: Uint8Array, size: number) => {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return Readable.from(out);
};

describe('plainNumberText', () => {
  it.each([
    ['1250.10', '1250.10'],
    ['1.5e-7', '0.00000015'],
    ['12E2', '1200'],
    ['-1.25E+1', '-12.5'],
    ['0e5', '0'],
    ['1e-1', '0.1'],
    ['abc', undefined],
    ['1e999999', undefined],
  ])('%s is %s', (text, plain) => {
    expect(plainNumberText(text)).toBe(plain);
  });

  it('keeps every JSON number exactly: the same value, and a decimal the one parser reads', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (value) => {
        const lexeme = JSON.stringify(value);
        const plain = plainNumberText(lexeme) as string;
        expect(Number(plain)).toBe(Object.is(value, -0) ? 0 : value);
        expect(doubleText(value)).not.toMatch(/e/i);
        if (plain.replace(/[-.]/g, '').length <= 38) expect(parseDecimal(plain).ok).toBe(true);
      }),
    );
  });
});

describe('JSON Lines', () => {
  it('parses any line into values or a reason, never throws', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (line) => {
          const parsed = parseJsonObject(line);
          if (parsed.ok) for (const v of parsed.values.values()) expect(v === null || typeof v === 'string').toBe(true);
          else expect(parsed.reason).toMatch(/^line is not/);
        },
      ),
    );
  });

  it('reads any bytes into lines or fails with a typed error and a line, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 40 }), async (bytes, size) => {
        let lines = 0;
        try {
          await readJsonLinesInto(chunked(bytes, size), { line: () => void lines++ }, { maxLineChars: 100 });
        } catch (error) {
          expect(error).toBeInstanceOf(JsonLinesFileError);
          expect((error as JsonLinesFileError).line).toBeGreaterThan(0);
        }
      }),
    );
  });

  it("lists exactly the characters trim removes as the SQL engine's white space (its trim, a JSON key's padding)", () => {
    let trimmed = '';
    for (let c = 0; c <= 0xffff; c++) if (String.fromCharCode(c).trim() === '') trimmed += String.fromCharCode(c);
    expect(trimmed).toBe(JS_WHITESPACE);
  });

  it('finds the same lines whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.jsonValue().map((v) => JSON.stringify({ v })),
          { maxLength: 20 },
        ),
        fc.constantFrom('\n', '\r\n'),
        fc.integer({ min: 1, max: 17 }),
        async (rows, eol, size) => {
          const seen: string[] = [];
          await readJsonLinesInto(chunked(Buffer.from(rows.join(eol) + eol), size), {
            line: (buf, start, end) => void seen.push(buf.slice(start, end)),
          });
          expect(seen).toEqual(rows);
        },
      ),
    );
  });
});

describe('Parquet', () => {
  it('fails random bytes, and bytes between PAR1 magics, with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), async (bytes, framed) => {
        const file = framed ? Buffer.concat([Buffer.from('PAR1'), bytes, Buffer.from('PAR1')]) : Buffer.from(bytes);
        const error = await readParquetInto(Readable.from([file]), {
          parquetColumns: () => {},
          parquetRow: () => {},
        }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ParquetFileError);
      }),
    );
  });
});

describe('gzip detection', () => {
  it('passes plain bytes through untouched and inflates gzip, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 500 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 9 }),
        async (bytes, zip, size) => {
          const plain = Buffer.from(bytes);
          const isGzipAlready = plain[0] === 0x1f && plain[1] === 0x8b;
          fc.pre(!isGzipAlready);
          const out: Buffer[] = [];
          for await (const c of gunzipIfCompressed(chunked(zip ? gzipSync(plain) : plain, size)))
            out.push(Buffer.from(c as Uint8Array));
          expect(Buffer.concat(out).equals(plain)).toBe(true);
        },
      ),
    );
  });

  it('fails damaged gzip with a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 100 }), async (tail) => {
        const damaged = Buffer.concat([Buffer.from([0x1f, 0x8b]), tail]);
        try {
          for await (const _ of gunzipIfCompressed(chunked(damaged, 5))) void _;
        } catch (error) {
          expect(error).toBeInstanceOf(GzipError);
        }
      }),
    );
  });
});

describe('fast paths agree with their oracles', () => {
  it('parseFlatObject reads a line as JSON.parse does, or leaves it to JSON.parse', () => {
    const flat = fc.dictionary(
      fc.string(),
      fc.oneof(
        fc.string(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
        fc.integer(),
      ),
    );
    const text = fc.oneof(
      flat.map((o) => JSON.stringify(o)),
      flat.map((o) => JSON.stringify(o, null, 1)),
      fc.string().map((s) => `{"a":${s}}`),
      fc.string(),
    );
    fc.assert(
      fc.property(text, (line) => {
        const fast = parseFlatObject(line);
        const slow = parseJsonObjectWithJsonParse(line);
        if (fast !== undefined) {
          expect(slow.ok).toBe(true);
          if (slow.ok) expect([...fast]).toEqual([...slow.values]);
        }
        expect(parseJsonObject(line)).toEqual(slow.ok ? { ...slow, simple: fast !== undefined } : slow);
      }),
      { numRuns: 2000 },
    );
  });

  it('parseDecimal takes its fast path only where the full parser agrees', () => {
    const text = fc.stringMatching(/^[ +\-(]?[0-9.,]{0,45}[ )]?$/);
    fc.assert(
      fc.property(text, (raw) => {
        expect(parseDecimal(raw)).toEqual(parseDecimalFully(raw));
      }),
      { numRuns: 5000 },
    );
  });

  it('a decimal comma reads as the same decimal with a point', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^-?[0-9.,]{1,20}$/), (raw) => {
        const swapped = [...raw].map((c) => (c === ',' ? '.' : c === '.' ? ',' : c)).join('');
        const a = parseDecimalWith(raw, ',');
        const b = parseDecimalFully(swapped);
        expect(a.ok).toBe(b.ok);
        if (a.ok && b.ok) expect(a.value).toEqual(b.value);
      }),
      { numRuns: 3000 },
    );
  });

  it('dates read to the day Date.UTC gives, and impossible dates are refused', () => {
    const iso = compileDateFormat('YYYY-MM-DD');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 31 }),
        (y, m, d) => {
          const text = `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
          const date = new Date(0);
          date.setUTCFullYear(y, m - 1, d);
          const real = date.getUTCDate() === d;
          const days = iso?.parse(text);
          if (!real) expect(days).toBeUndefined();
          else expect(days).toBe(Math.round(date.getTime() / 86_400_000));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { ReconInputError, validateExtract } from '../../functions/shared/extract.ts';
import { reconcile } from '../../functions/recon/engine.ts';

const POLICY_TEXT = readFileSync(new URL('../../policies/recon-policy.md', import.meta.url), 'utf8');
const policy = parseReconPolicy(POLICY_TEXT);
const HEADER = 'trade_id,account_id,trade_date,amount';

function streamOf(content: string | Uint8Array, chunkSize?: number): Readable {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const chunks: Buffer[] = [];
  if (chunkSize === undefined) chunks.push(bytes);
  else for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

describe('validateExtract accepts a readable extract', () => {
  it('counts the seed sample rows', async () => {
    const sample = readFileSync(new URL('../../scripts/local/sample/target.csv', import.meta.url));
    const result = await validateExtract(streamOf(sample), 'target.csv', policy);
    expect(result).toEqual({ ok: true, rows: 19, header: ['trade_id', 'account_id', 'trade_date', 'amount'] });
  });

  it('counts data rows, not blank lines or quoted newlines, whatever the chunking', async () => {
    // Prepare
    const text = `\uFEFF${HEADER},Note\r\nT1,A1,2025-12-01,1.00,"two\r\nlines"\r\n\r\nT2,A2,2025-12-02,2.00,x\r\n`;
    // Act
    const whole = await validateExtract(streamOf(text), 'x.csv', policy);
    const byByte = await validateExtract(streamOf(text, 1), 'x.csv', policy);
    // Assess
    expect(whole).toEqual({ ok: true, rows: 2, header: ['trade_id', 'account_id', 'trade_date', 'amount', 'note'] });
    expect(byByte).toEqual(whole);
  });

  it('counts a header-only file as zero rows when the policy allows empty sides', async () => {
    const allowing = parseReconPolicy(
      POLICY_TEXT.replace('"policy_version"', '"allow_empty_sides": true,\n  "policy_version"'),
    );
    expect(allowing.allowEmptySides).toBe(true);
    expect(await validateExtract(streamOf(`${HEADER}\n`), 'x.csv', allowing)).toMatchObject({ ok: true, rows: 0 });
  });

  it('leaves row-level problems to recon', async () => {
    const result = await validateExtract(
      streamOf(`${HEADER}\nT1,A1\nT2,A2,2025-12-02,1E5\n,A3,2025-12-03,\0\n`),
      'x.csv',
      policy,
    );
    expect(result).toMatchObject({ ok: true, rows: 3 });
  });
});

describe('validateExtract rejects an extract recon cannot read', () => {
  it.each([
    ['a missing column', 'trade_id,account_id,amount\nT1,A1,1\n', 'MISSING_COLUMNS', 1, /trade_date/],
    ['a semicolon delimiter', 'trade_id;account_id;trade_date;amount\n', 'MISSING_COLUMNS', 1, /semicolon/],
    ['a duplicate header', `${HEADER},AMOUNT\n`, 'HEADER_INVALID', 1, /appears twice/],
    ['an empty header name', `${HEADER},,x\n`, 'HEADER_INVALID', 1, /column 5 has no name/],
    ['a damaged header', `\n\n${HEADER},"x"y\n`, 'HEADER_INVALID', 3, /damaged/],
    [
      'an unclosed quote',
      `${HEADER}\nT1,A1,2025-12-01,1\nT2,"A2,2025-12-02,2\n`,
      'CSV_UNCLOSED_QUOTE',
      3,
      /never closed/,
    ],
    ['an empty file', '', 'FILE_EMPTY', 1, /file is empty/],
    ['only blank lines', '\r\n\n', 'FILE_EMPTY', 1, /file is empty/],
  ])('rejects %s', async (_name, content, code, line, message) => {
    // Act
    const result = await validateExtract(streamOf(content), 'in/x.csv', policy);
    // Assess
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe(code);
    expect(result.line).toBe(line);
    expect(result.message).toMatch(message);
    // The reason alone: the file record holds the file and the line (fileErrorText says the line).
    expect(result.message).not.toContain('in/x.csv');
  });

  it.each([
    ['UTF-16 LE', new Uint8Array([0xff, 0xfe, ...Buffer.from(`${HEADER}\n`, 'utf16le')])],
    ['UTF-16 BE', new Uint8Array([0xfe, 0xff, ...Buffer.from(Buffer.from(`${HEADER}\n`, 'utf16le')).swap16()])],
    ['Latin-1', Buffer.from(`${HEADER}\nT1,Caf\u00e9,2025-12-01,1\n`, 'latin1')],
  ])('rejects a %s file with ENCODING and a line', async (_name, bytes) => {
    const result = await validateExtract(streamOf(bytes), 'x.csv', policy);
    expect(result).toMatchObject({ ok: false, code: 'ENCODING' });
    if (!result.ok) {
      expect(result.line).toBeGreaterThanOrEqual(1);
      // The reason alone: the file record holds the file and the line.
      expect(result.message).toMatch(/^[^:]*UTF-8/);
      expect(result.message).not.toContain('x.csv');
    }
  });
});

describe('validateExtract and recon read a file alike', () => {
  const good = `${HEADER}\nT1,A1,2025-12-01,1.00\n`;
  const bad = Buffer.concat([
    Buffer.from(`${HEADER}\n${'T0,A0,2025-12-01,1.00\n'.repeat(5000)}`),
    Buffer.from([0x63, 0xe9, 0x0a]),
  ]);
  it.each([
    ['a Latin-1 byte far into the file', bad, 1000],
    ['a Latin-1 byte far into the file, read in small chunks', bad, 7],
    ['an unclosed quote', `${HEADER}\nT1,A1,2025-12-01,1\nT2,"A2,2025-12-02,2\n`, undefined],
    ['a damaged header after blank lines', `\n\n${HEADER},"x"y\n`, undefined],
    ['an empty file', '', undefined],
  ])('with the same code and line for %s', async (_name, content, chunkSize) => {
    // Act
    const validation = await validateExtract(streamOf(content, chunkSize), 'x.csv', policy);
    const recon = await reconcile(
      { name: 'x.csv', stream: streamOf(content, chunkSize) },
      { name: 'y.csv', stream: streamOf(good) },
      policy,
    ).catch((error: unknown) => error);
    // Assess
    expect(recon).toBeInstanceOf(ReconInputError);
    expect(validation).toMatchObject({ ok: false, code: (recon as ReconInputError).code });
    if (!validation.ok && (recon as ReconInputError).line !== undefined)
      expect(validation.line).toBe((recon as ReconInputError).line);
  });
});

describe('validateExtract refuses what cannot be a day of data', () => {
  it.each([
    ['a header and a line break', `${HEADER}\n`],
    ['a header without a line break', HEADER],
    ['a header and blank lines', `${HEADER}\r\n\r\n\n`],
  ])('rejects %s as EMPTY_FILE unless the policy allows empty sides', async (_name, content) => {
    const result = await validateExtract(streamOf(content), 'x.csv', policy);

    expect(policy.allowEmptySides).toBe(false);
    expect(result).toMatchObject({ ok: false, code: 'EMPTY_FILE' });
    expect(result.ok === false && result.message).toMatch(/^file has a header but no data rows.*allow_empty_sides/);
  });

  it.each([1, 2, 1024])('reads a gzip-compressed file as recon does (chunks of %i bytes)', async (chunkSize) => {
    const gzipped = gzipSync(`${HEADER}\nT1,A1,2025-12-01,1.00\n`);

    const result = await validateExtract(streamOf(gzipped, chunkSize), 'x.csv.gz', policy);

    expect(result).toMatchObject({ ok: true, rows: 1 });
  });

  it('rejects a truncated gzip file as unreadable', async () => {
    const gzipped = gzipSync(`${HEADER}\nT1,A1,2025-12-01,1.00\n`);

    const result = await validateExtract(streamOf(gzipped.subarray(0, gzipped.length - 8)), 'x.csv.gz', policy);

    expect(result).toMatchObject({ ok: false, code: 'FILE_UNREADABLE' });
  });

  it('reads a file that only starts like gzip in its first byte', async () => {
    // 0x1f alone (a control character) is not gzip's magic; the file is judged as CSV.
    const result = await validateExtract(streamOf(`\u001f${HEADER}\nT1,A1,2025-12-01,1.00\n`, 1), 'x.csv', policy);

    expect(result).toMatchObject({ ok: false, code: 'MISSING_COLUMNS' });
  });
});

describe('validateExtract reads each side in the format its policy names', () => {
  const payments = parseReconPolicy(
    readFileSync(new URL('../../policies/datasets/payments.md', import.meta.url), 'utf8'),
  );
  const sample = (file: string) =>
    readFileSync(new URL(`../../scripts/local/sample/payments/${file}`, import.meta.url));

  it('counts the rows of a semicolon-separated source and a JSON Lines target, gzipped or not', async () => {
    const source = await validateExtract(streamOf(sample('source.csv')), 'source.csv', payments, 'source');
    const target = await validateExtract(streamOf(sample('target.jsonl'), 7), 'target.jsonl', payments, 'target');
    const gzipped = await validateExtract(streamOf(gzipSync(sample('target.jsonl'))), 't.jsonl.gz', payments, 'target');

    expect(source).toMatchObject({ ok: true, rows: 13 });
    expect(target).toMatchObject({ ok: true, rows: 14 });
    expect(gzipped).toMatchObject({ ok: true, rows: 14 });
  });

  it('checks a CSV header with the side delimiter: a comma-separated source misses the mapped columns', async () => {
    const result = await validateExtract(
      streamOf('PaymentRef,ValueDate,Ccy,Amt,Status\nP1,01/12/2025,EUR,"1,00",S\n'),
      'source.csv',
      payments,
      'source',
    );

    expect(result).toMatchObject({ ok: false, code: 'MISSING_COLUMNS', line: 1 });
    expect(result.ok === false && result.message).toContain(
      `(the header looks comma-delimited; this side's policy reads semicolon-delimited files: set its "delimiter" to ",", or export the file semicolon-delimited)`,
    );
  });

  it('rejects a file whose lines end with CR alone for its line endings, not for a column appearing twice', async () => {
    const result = await validateExtract(
      streamOf('PaymentRef;ValueDate;Ccy;Amt;Status\rP1;01/12/2025;EUR;1,00;S\rP2;01/12/2025;EUR;1,00;S\r'),
      'source.csv',
      payments,
      'source',
    );

    expect(result).toMatchObject({ ok: false, code: 'HEADER_INVALID', line: 1 });
    expect(result.ok === false && result.message).toMatch(/lines end with a carriage return alone \(CR/);
  });

  it('rejects a JSON Lines side that is not UTF-8 with the line, and one with no lines as empty', async () => {
    const bad = Buffer.concat([
      Buffer.from('{"payment_id":"P1"}\n{"payment_id":"'),
      Buffer.from([0xff]),
      Buffer.from('"}\n'),
    ]);

    const unreadable = await validateExtract(streamOf(bad), 'target.jsonl', payments, 'target');
    const empty = await validateExtract(streamOf('\n\n'), 'target.jsonl', payments, 'target');

    expect(unreadable).toMatchObject({ ok: false, code: 'ENCODING', line: 2 });
    expect(unreadable.ok === false && unreadable.message).toBe(
      'file is not valid UTF-8 (byte 0xFF); expected UTF-8 (JSON Lines is always UTF-8)',
    );
    expect(empty).toMatchObject({ ok: false, code: 'EMPTY_FILE' });
    expect(empty.ok === false && empty.message).toMatch(/has no lines; expected at least one row/);
  });

  it('accepts a JSON Lines side with no lines when the policy allows empty sides', async () => {
    const allowing = parseReconPolicy(
      readFileSync(new URL('../../policies/datasets/payments.md', import.meta.url), 'utf8').replace(
        '"target": { "format": "jsonl" },',
        '"target": { "format": "jsonl" },\n  "allow_empty_sides": true,',
      ),
    );

    expect(await validateExtract(streamOf(''), 'target.jsonl', allowing, 'target')).toMatchObject({
      ok: true,
      rows: 0,
    });
  });

  it('rejects a JSON Lines side none of whose first objects has its key, or any policy field, naming what it found', async () => {
    const lines = ['{"PaymentRef":"P1","value_date":"2025-12-01","currency":"EUR","amount":1,"status":"S"}'];
    // A key absent from one object but present in another is a sparse file, not a wrong one.
    lines.push('{"payment_id":"P2","value_date":"2025-12-01","currency":"EUR","amount":1}');
    // A compared field no object has (its writer leaves out empty values) is read as empty.
    const noStatus = '{"payment_id":"P3","value_date":"2025-12-01","currency":"EUR","amount":1}';

    const sparse = await validateExtract(streamOf(lines.join('\n')), 'target.jsonl', payments, 'target');
    const omitted = await validateExtract(streamOf(noStatus), 'target.jsonl', payments, 'target');
    const wrong = await validateExtract(streamOf(lines[0] as string), 'target.jsonl', payments, 'target');

    expect(sparse).toMatchObject({ ok: true, rows: 2 });
    expect(omitted).toMatchObject({ ok: true, rows: 1 });
    expect(wrong).toMatchObject({ ok: false, code: 'MISSING_COLUMNS' });
    expect(wrong.ok === false && wrong.message).toBe(
      "no object on the only line has key field(s) payment_id; expected fields payment_id, value_date, currency, status, amount, found paymentref, value_date, currency, amount, status (the policy's column names for this side may differ from the file's)",
    );
  });

  it('reads a JSON Lines side only to its sample when told the file was read whole, with the same verdict', async () => {
    const object = (i: number, key = 'payment_id') =>
      `{"${key}":"P${i}","value_date":"2025-12-01","currency":"EUR","amount":1,"status":"S"}\n`;
    const good = Array.from({ length: 5000 }, (_, i) => object(i)).join('');
    const wrong = Array.from({ length: 5000 }, (_, i) => object(i, 'ref')).join('');
    const chunks: { read: number } = { read: 0 };
    const counted = (text: string) =>
      Readable.from(
        (function* () {
          for (let i = 0; i < text.length; i += 4096) {
            chunks.read++;
            yield Buffer.from(text.slice(i, i + 4096));
          }
        })(),
      );

    const sampled = await validateExtract(counted(good), 'target.jsonl', payments, 'target', { jsonlSampleOnly: true });
    const sampledReads = chunks.read;
    const whole = await validateExtract(counted(good), 'target.jsonl', payments, 'target');
    const wrongSampled = await validateExtract(streamOf(wrong), 'target.jsonl', payments, 'target', {
      jsonlSampleOnly: true,
    });

    expect(sampled).toMatchObject({ ok: true });
    expect(whole).toMatchObject({ ok: true, rows: 5000 });
    // About 1,000 of 5,000 lines' chunks read (lines are ~90 bytes: ~24 of ~110 chunks).
    expect(sampledReads).toBeLessThan((chunks.read - sampledReads) / 3);
    expect(wrongSampled).toEqual(await validateExtract(streamOf(wrong), 'target.jsonl', payments, 'target'));
    expect(wrongSampled).toMatchObject({ ok: false, code: 'MISSING_COLUMNS' });
  });

  it('closes the file when it stops at the sample, gzipped or not, and however the chunks fall', async () => {
    const text = Array.from({ length: 3000 }, (_, i) => `{"payment_id":"P${i}"}\n`).join('');
    for (const bytes of [Buffer.from(text), gzipSync(text)])
      for (const size of [bytes.length, 1024]) {
        let closed = false;
        const file = (async function* () {
          try {
            for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
          } finally {
            closed = true;
          }
        })();
        const result = await validateExtract(file, 'target.jsonl', payments, 'target', { jsonlSampleOnly: true });
        expect(result, `${bytes.length} bytes in chunks of ${size}`).toMatchObject({ ok: true });
        expect(closed, `${bytes.length} bytes in chunks of ${size}`).toBe(true);
      }
  });

  it('rejects CSV sent as JSON Lines: no line of the sample is an object', async () => {
    const csvText = 'payment_id,value_date,currency,amount\nP1,2025-12-01,EUR,1.00\n';

    const result = await validateExtract(streamOf(csvText), 'target.jsonl', payments, 'target');

    expect(result).toMatchObject({ ok: false, code: 'NOT_JSON_LINES', line: 1 });
    expect(result.ok === false && result.message).toMatch(
      /^none of the first 2 lines is a JSON object \(line is not valid JSON/,
    );
  });

  it('rejects a Parquet side that is not Parquet', async () => {
    const parquet = parseReconPolicy(
      POLICY_TEXT.replace('"policy_version"', '"source": { "format": "parquet" },\n  "policy_version"'),
    );

    const result = await validateExtract(streamOf(`${HEADER}\nT1,A1,2025-12-01,1.00\n`), 'source.parquet', parquet);

    expect(result).toMatchObject({ ok: false, code: 'PARQUET_INVALID' });
    expect(result.ok === false && result.message).toMatch(/^file is not Parquet/);
  });
});

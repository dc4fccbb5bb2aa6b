/**
 * The engine under long-form policies: column mapping, normalisers, equivalents, typed fields
 * and their tolerances, file formats (CSV options, gzip, JSON Lines, Parquet), one exception per
 * key, thresholds and outcomes, control totals.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JSON_MAX_DEPTH } from '../../functions/shared/formats/jsonl.ts';
// Every run also partitioned under small memory budgets, and checked against the run in memory.
import { reconcile } from '../support/recon-modes.ts';
import { parquetMetadata } from 'hyparquet';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { ReconInputError, type Finding, type ReconResult } from '../../functions/recon/engine.ts';

function policyOf(settings: Record<string, unknown>): ReconPolicy {
  return parseReconPolicy(
    `# P\n\n\`\`\`json tally-policy\n${JSON.stringify({ policy_version: 't', ...settings })}\n\`\`\`\n`,
  );
}

const input = (name: string, content: string | Uint8Array, chunk = 7) => {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) chunks.push(bytes.subarray(i, i + chunk));
  return { name, stream: Readable.from(chunks) };
};

function run(policy: ReconPolicy, source: string | Uint8Array, target: string | Uint8Array): Promise<ReconResult> {
  return reconcile(input('source', source), input('target', target), policy);
}

const lines = (...l: string[]) => `${l.join('\n')}\n`;
const kinds = (r: ReconResult) => r.findings.map((f) => `${f.type} ${f.keyText}`).sort();
function only(r: ReconResult): Finding {
  expect(r.findings).toHaveLength(1);
  return r.findings[0] as Finding;
}

/** id + one field of the given shape, same column names on both sides. */
function oneField(field: Record<string, unknown>, extra: Record<string, unknown> = {}): ReconPolicy {
  return policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v', ...field }], ...extra });
}

describe('column mapping', () => {
  it('reads each side by its own column names and reports by the field names', async () => {
    // Prepare
    const policy = policyOf({
      key: [{ field: 'payment_id', source: 'PaymentRef', target: 'payment_id' }],
      fields: [{ field: 'amount', source: 'Amt', target: 'amount', type: 'decimal' }],
      amount_field: 'amount',
    });
    // Act
    const result = await run(
      policy,
      lines('Other,Amt,PaymentRef', 'x,10.00,P1', 'y,5.00,P2'),
      lines('payment_id,amount', 'P1,10.00', 'P2,6.00'),
    );
    // Assess
    const f = only(result);
    expect(f.type).toBe('AMOUNT_MISMATCH');
    expect(f.key).toEqual({ payment_id: 'P2' });
    expect(f.diffs).toEqual([{ field: 'amount', source: '5.00', target: '6.00', delta: '1.00' }]);
    expect(f.source).toEqual({ other: 'y', amt: '5.00', paymentref: 'P2' });
    expect(result.summary.matched).toBe(1);
  });

  it("rejects a file missing a mapped column, naming that side's column", async () => {
    const policy = policyOf({ key: [{ field: 'id', source: 'Ref' }], fields: [] });
    await expect(run(policy, lines('id', 'A'), lines('id', 'A'))).rejects.toMatchObject({
      code: 'MISSING_COLUMNS',
      message: expect.stringContaining('missing required column(s) ref'),
    });
  });
});

describe('key normalisers', () => {
  it.each([
    [['upper'], 'ab1', 'AB1'],
    [['lower'], 'AB1', 'ab1'],
    // As JavaScript maps them (full mappings, a final sigma), in both engines.
    [['upper'], 'Straße', 'STRASSE'],
    [['upper'], 'ﬁn', 'FIN'],
    [['lower'], 'ΟΔΟΣ', 'οδος'],
    [['strip_leading_zeros'], '000123', '123'],
    [['trim'], ' 7 ', '7'],
  ])('%j matches %s with %s', async (normalize, a, b) => {
    const policy = policyOf({ key: [{ field: 'id', normalize }], fields: [] });
    const result = await run(policy, lines('id', a), lines('id', b));
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });

  it('keeps case significant without a normaliser', async () => {
    const result = await run(policyOf({ key: [{ field: 'id' }], fields: [] }), lines('id', 'ab'), lines('id', 'AB'));
    expect(kinds(result)).toEqual(['MISSING_IN_SOURCE AB', 'MISSING_IN_TARGET ab']);
  });

  it('normalises each part of a composite key', async () => {
    const policy = policyOf({
      key: [
        { field: 'a', normalize: ['upper'] },
        { field: 'b', normalize: ['strip_leading_zeros'] },
      ],
      fields: [],
    });
    const result = await run(policy, lines('a,b', 'x,01'), lines('a,b', '"X",1'));
    expect(result.summary.matched).toBe(1);
  });
});

describe('text fields', () => {
  it.each([
    [['upper'], 'usd', 'USD', 0],
    [['lower'], 'USD', 'usd', 0],
    [['strip_leading_zeros'], '0042', '42', 0],
    [[], ' USD ', 'USD', 0],
    [[], 'usd', 'USD', 1],
  ])('normalize %j: %j vs %j gives %i break(s)', async (normalize, a, b, breaks) => {
    const result = await run(oneField({ normalize }), lines('id,v', `1,${a}`), lines('id,v', `1,${b}`));
    expect(result.findings).toHaveLength(breaks);
  });

  it('treats the values of one equivalence group as equal, and counts no difference', async () => {
    const policy = oneField({
      normalize: ['upper'],
      equivalents: [
        ['SETTLED', 'STL', 'S'],
        ['PENDING', 'PND', 'P'],
      ],
    });
    const result = await run(
      policy,
      lines('id,v', '1,stl', '2,S', '3,P', '4,X'),
      lines('id,v', '1,SETTLED', '2,stl', '3,SETTLED', '4,X'),
    );
    const f = only(result);
    expect(f.type).toBe('FIELD_MISMATCH');
    expect(f.diffs).toEqual([{ field: 'v', source: 'P', target: 'SETTLED' }]);
    expect(result.summary.fields.v).toEqual({ unequal: 1, within_tolerance: 0 });
  });
});

describe('decimal tolerance: |s - t| <= absolute + relative x max(|s|, |t|)', () => {
  it.each([
    [{ absolute: '0.01' }, '10.00', '10.01', true],
    [{ absolute: '0.01' }, '10.00', '10.011', false],
    [{ absolute: '0.01' }, '-10.00', '-9.99', true],
    [{ relative: '0.001' }, '999', '1000', true], // exactly at the bound: 0.001 x 1000 = 1
    [{ relative: '0.001' }, '999', '1000.001', false],
    [{ relative: '0.001' }, '-1000', '-999', true], // max of the magnitudes
    [{ absolute: '0.5', relative: '0.001' }, '1000', '1001.5', true], // 0.5 + 1.0015 >= 1.5
    [{ absolute: '0.5', relative: '0.001' }, '1000', '1001.51', false], // 0.5 + 1.00151 < 1.51
    [{}, '1.0', '1.00', true],
    [{}, '1.0', '1.01', false],
  ])('tolerance %j: %s vs %s agrees: %s', async (tolerance, a, b, agrees) => {
    const policy = oneField({ type: 'decimal', tolerance }, { amount_field: 'v' });
    const result = await run(policy, lines('id,v', `1,${a}`), lines('id,v', `1,${b}`));
    expect(result.findings.length === 0).toBe(agrees);
    if (!agrees) expect(only(result).type).toBe('AMOUNT_MISMATCH');
  });

  it('counts unequal values, those within tolerance and the largest difference per field', async () => {
    const policy = oneField({ type: 'decimal', tolerance: { absolute: '1' } });
    const result = await run(
      policy,
      lines('id,v', '1,10', '2,10', '3,10', '4,10'),
      lines('id,v', '1,10.00', '2,10.5', '3,13', '4,9'),
    );
    expect(result.summary.fields.v).toEqual({ unequal: 3, within_tolerance: 2, largest_difference: '3' });
    expect(only(result).diffs).toEqual([{ field: 'v', source: '10', target: '13', delta: '3' }]);
  });

  it('rejects a value of a decimal field that is not a decimal, naming the field', async () => {
    const result = await run(oneField({ type: 'decimal' }), lines('id,v', '1,1E5'), lines('id,v', '1,100000'));
    const f = only(result);
    expect(f.type).toBe('INVALID_RECORD');
    expect(f.reason).toMatch(/^v: value "1E5" is not a decimal number/);
  });

  it('quotes a value in a reason as JSON does: a quote, a backslash and a control character escaped', async () => {
    const bad = ['1"2', 'a\\b', '3\u001f', '4\u000e5'];
    for (const type of ['decimal', 'integer', 'date'] as const) {
      const result = await run(
        oneField({ type, ...(type === 'date' ? { source_format: 'YYYY-MM-DD', target_format: 'YYYY-MM-DD' } : {}) }),
        lines('id,v', ...bad.map((v, i) => `${i},"${v.replaceAll('"', '""')}"`)),
        lines('id,v', ...bad.map((_, i) => `${i},${type === 'date' ? '2025-01-01' : '1'}`)),
      );
      expect(result.findings.map((f) => f.reason?.match(/^v: value (".*") (is|has)/)?.[1]).sort()).toEqual(
        bad.map((v) => JSON.stringify(v)).sort(),
      );
    }
  });

  it('compares an empty value only equal to an empty value', async () => {
    const result = await run(oneField({ type: 'decimal' }), lines('id,v', '1,', '2,'), lines('id,v', '1,', '2,3'));
    expect(kinds(result)).toEqual(['FIELD_MISMATCH 2']);
  });
});

describe('date fields', () => {
  const dated = (extra: Record<string, unknown> = {}) =>
    oneField({ type: 'date', source_format: 'DD/MM/YYYY', target_format: 'YYYY-MM-DD', ...extra });

  it('reads each side in its own format', async () => {
    const result = await run(dated(), lines('id,v', '1,31/12/2025'), lines('id,v', '1,2025-12-31'));
    expect(result.findings).toEqual([]);
  });

  it('reports a difference in days as the delta', async () => {
    const result = await run(dated(), lines('id,v', '1,31/12/2025'), lines('id,v', '1,2026-01-02'));
    expect(only(result).diffs).toEqual([{ field: 'v', source: '31/12/2025', target: '2026-01-02', delta: '2' }]);
  });

  it.each([
    ['2025-12-31', true],
    ['2025-12-30', true],
    ['2026-01-01', true],
    ['2025-12-29', false],
    ['2026-01-02', false],
  ])('tolerance_days 1: 31/12/2025 vs %s agrees: %s', async (t, agrees) => {
    const result = await run(dated({ tolerance_days: 1 }), lines('id,v', '1,31/12/2025'), lines('id,v', `1,${t}`));
    expect(result.findings.length === 0).toBe(agrees);
  });

  it("rejects a date that is not in the side's format or not on the calendar", async () => {
    const result = await run(
      dated(),
      lines('id,v', '1,2025-12-31', '2,30/02/2025'),
      lines('id,v', '1,2025-12-31', '2,2025-02-28'),
    );
    expect(result.findings.map((f) => [f.type, f.reason])).toEqual([
      ['INVALID_RECORD', 'v: value "2025-12-31" is not a date in the format DD/MM/YYYY'],
      ['INVALID_RECORD', 'v: value "30/02/2025" is not a date in the format DD/MM/YYYY'],
    ]);
  });
});

describe('integer fields and the exception type', () => {
  const policy = policyOf({
    key: [{ field: 'id' }],
    fields: [{ field: 'qty', type: 'integer' }, { field: 'amount', type: 'decimal' }, { field: 'ccy' }],
    amount_field: 'amount',
    severity_rules: [{ exception_type: 'FIELD_MISMATCH', min_abs_delta: '100', severity: 'HIGH' }],
    default_severity: 'LOW',
  });
  const header = 'id,qty,amount,ccy';

  it('reports an integer difference with its delta, and rejects a non-integer', async () => {
    const result = await run(policy, lines(header, '1,10,1.00,EUR', '2,1.5,1.00,EUR'), lines(header, '1,+12,1.00,EUR'));
    expect(kinds(result)).toEqual(['FIELD_MISMATCH 1', 'INVALID_RECORD source:3']);
    expect(result.findings.find((f) => f.type === 'FIELD_MISMATCH')?.diffs).toEqual([
      { field: 'qty', source: '10', target: '+12', delta: '2' },
    ]);
  });

  it('reports a difference of integers beyond 21 digits exactly', async () => {
    const big = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'qty', type: 'integer' }] });
    const result = await run(
      big,
      lines('id,qty', '1,99999999999999999999999', '2,-1234567890123456789012345678901234567'),
      lines('id,qty', '1,1', '2,1234567890123456789012345678901234567'),
    );
    expect(result.findings.map((f) => f.diffs[0]?.delta)).toEqual([
      '-99999999999999999999998',
      '2469135780246913578024691357802469134',
    ]);
  });

  it('is AMOUNT_MISMATCH only when the amount is the one field that breaks; else FIELD_MISMATCH listing all', async () => {
    const result = await run(
      policy,
      lines(header, '1,1,1.00,EUR', '2,1,1.00,EUR'),
      lines(header, '1,1,2.00,EUR', '2,1,201.00,USD'),
    );
    const [a, b] = [...result.findings].sort((x, y) => x.keyText.localeCompare(y.keyText));
    expect(a?.type).toBe('AMOUNT_MISMATCH');
    expect(b?.type).toBe('FIELD_MISMATCH');
    expect(b?.diffs).toEqual([
      { field: 'ccy', source: 'EUR', target: 'USD' },
      { field: 'amount', source: '1.00', target: '201.00', delta: '200.00' },
    ]);
    // The amount's delta still sets the severity of a FIELD_MISMATCH.
    expect(b?.severity).toBe('HIGH');
  });
});

describe('CSV options', () => {
  const opts = (source: Record<string, unknown>, target: Record<string, unknown> = {}) =>
    oneField(
      { type: 'decimal' },
      { source: { format: 'csv', ...source }, target: { format: 'csv', ...target }, amount_field: 'v' },
    );

  it.each([
    [';', 'id;v\n1;10.5\n'],
    ['\t', 'id\tv\n1\t10.5\n'],
    ['|', 'id|v\n1|10.5\n'],
    [',', 'id,v\n1,"10.5"\n'],
  ])('reads the %j delimiter', async (delimiter, text) => {
    const result = await run(opts({ delimiter }), text, lines('id,v', '1,10.50'));
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });

  it('reads quoted fields holding the delimiter', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'n' }], source: { delimiter: ';' } });
    const result = await run(policy, 'id;n\n1;"a;b"\n', 'id,n\n1,a;b\n');
    expect(result.findings).toEqual([]);
  });

  it('reads a decimal comma, with the point as thousands separator', async () => {
    const result = await run(
      opts({ delimiter: ';', decimal_separator: ',' }),
      'id;v\n1;1.234,56\n2;-0,5\n3;1,234.56\n',
      lines('id,v', '1,1234.56', '2,-0.50', '3,1234.56'),
    );
    expect(kinds(result)).toEqual(['INVALID_RECORD source:4']);
    expect(only(result).reason).toMatch(/"1,234.56" is not a decimal number \(expected e\.g\. 1250,50/);
  });

  it('reads Latin-1 when told to, and refuses the same bytes as UTF-8', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'city' }], source: { encoding: 'latin-1' } });
    const latin1 = Buffer.from('id,city\n1,Zürich\n', 'latin1');
    const result = await run(policy, latin1, lines('id,city', '1,Zürich'));
    expect(result.findings).toEqual([]);
    const utf8 = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'city' }] });
    await expect(run(utf8, latin1, lines('id,city', '1,Zürich'))).rejects.toMatchObject({ code: 'ENCODING' });
  });

  // DuckDB's CSV reader fails each of these files or misreads it: the SQL engine reads such a
  // file with the engine's reader (recon-sql-equivalence runs these on DuckDB).
  const text = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
  it.each([
    ['a quoted line break beside a column of no field', 'id,v,c\nA,x,"ab\ncd"\nB,y,ok\n'],
    ['CRLF and LF mixed', 'id,v\r\nA,x\nB,y\r\n'],
    ['a blank line before the header', '\nid,v\nA,x\n\nB,y\n'],
  ])('reads a file with %s', async (_case, source) => {
    const result = await run(text, source, lines('id,v', 'A,x', 'B,q'));
    expect(kinds(result)).toEqual(['FIELD_MISMATCH B']);
    expect(only(result).diffs).toEqual([{ field: 'v', source: 'y', target: 'q' }]);
    expect(result.summary.rows).toEqual({ source: 2, target: 2 });
  });

  it('shows at most eight fields past the header of a record with too many, and counts the rest', async () => {
    const extras = (n: number) => Array.from({ length: n }, (_, i) => `e${i + 1}`).join(',');
    const result = await run(text, `id,v\nA,x,${extras(8)}\nB,y,${extras(9)}\nC,z,${extras(30_000)}\n`, lines('id,v'));
    const shown = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`_extra_${i + 1}`, `e${i + 1}`]));
    expect(result.findings.map((f) => f.source)).toEqual([
      { id: 'A', v: 'x', ...shown(8) },
      { id: 'B', v: 'y', ...shown(8), _extra_more: '1 more field' },
      { id: 'C', v: 'z', ...shown(8), _extra_more: '29992 more fields' },
    ]);
  });

  it('refuses a damaged record over 10,000 bytes as any other (DuckDB keeps only that much of it)', async () => {
    // Cut at 10,000 bytes, the record's text holds an odd number of quotes: a quote never closed.
    const long = `B,yyy${',"a"'.repeat(3000)},"a"b`;
    const result = await run(text, `id,v\nA,x\n${long}\nC,q\n`, lines('id,v', 'A,x', 'C,q'));
    expect(kinds(result)).toEqual(['INVALID_RECORD source:3']);
    expect(only(result).reason).toBe('unexpected text after a closing quote in field 3003');
  });

  it('takes spaces beside a quote as text, as RFC 4180 does (DuckDB reads them as none)', async () => {
    const result = await run(
      text,
      'id,v\nA,"x" \nB, "y"\nC,"z"\nD,"w"  ,\n',
      lines('id,v', 'A,x', 'B,y', 'C,z', 'D,w'),
    );
    expect(kinds(result)).toEqual([
      'FIELD_MISMATCH B',
      'INVALID_RECORD source:2',
      'INVALID_RECORD source:5',
      'MISSING_IN_SOURCE A',
      'MISSING_IN_SOURCE D',
    ]);
    expect(result.findings.find((f) => f.type === 'FIELD_MISMATCH')?.diffs).toEqual([
      { field: 'v', source: '"y"', target: 'y' },
    ]);
    expect(result.findings.filter((f) => f.type === 'INVALID_RECORD').map((f) => f.reason)).toEqual([
      'unexpected text after a closing quote in field 2',
      'unexpected text after a closing quote in field 2',
    ]);
  });

  it("refuses such a file's damaged records as any file's, with the engine's reasons", async () => {
    const result = await run(text, '\nid,v\nA,x\nB,"y"z\nC,q,extra\n', lines('id,v', 'A,x', 'B,y', 'C,q'));
    expect(kinds(result)).toEqual([
      'INVALID_RECORD source:4',
      'INVALID_RECORD source:5',
      'MISSING_IN_SOURCE B',
      'MISSING_IN_SOURCE C',
    ]);
    expect(result.findings.filter((f) => f.type === 'INVALID_RECORD').map((f) => f.reason)).toEqual([
      'unexpected text after a closing quote in field 2',
      'expected 2 fields, found 3',
    ]);
  });

  it('keeps a carriage return alone inside an unquoted field as part of it', async () => {
    const result = await run(text, 'id,v\nA,x\rq\nB,y\n', lines('id,v', 'A,x', 'B,y'));
    expect(kinds(result)).toEqual(['FIELD_MISMATCH A']);
    expect(only(result).diffs).toEqual([{ field: 'v', source: 'x\rq', target: 'x' }]);
  });

  it('reads the Latin-1 bytes 0x80-0x9F as the characters U+0080-U+009F', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'city' }], source: { encoding: 'latin-1' } });
    const source = Buffer.concat([Buffer.from('id,city\n1,'), Buffer.from([0x80, 0x93, 0x9f]), Buffer.from('\n2,b\n')]);
    const result = await run(policy, source, lines('id,city', '1,\u0080\u0093\u009f', '2,c'));
    expect(kinds(result)).toEqual(['FIELD_MISMATCH 2']);
  });

  it('reads a gzip-compressed file by its bytes, in small chunks', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
    const rows = Array.from({ length: 2000 }, (_, i) => `${i},v${i}`);
    const result = await run(policy, gzipSync(lines('id,v', ...rows)), lines('id,v', ...rows));
    expect(result.summary.matched).toBe(2000);
    expect(result.findings).toEqual([]);
  });

  it('fails a damaged gzip file as unreadable, naming the file', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [] });
    const broken = gzipSync(lines('id', '1', '2')).subarray(0, 15);
    const error = await run(policy, broken, lines('id', '1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReconInputError);
    expect(error).toMatchObject({ code: 'FILE_UNREADABLE', file: 'source' });
  });
});

describe('JSON Lines', () => {
  const policy = policyOf({
    key: [{ field: 'id' }],
    fields: [{ field: 'amount', type: 'decimal' }, { field: 'note' }],
    amount_field: 'amount',
    target: { format: 'jsonl' },
  });

  it('takes numbers from their source text, never through a binary float', async () => {
    const result = await run(
      policy,
      lines('id,amount,note', '1,1250.10,a', '2,0.3,b', '3,1500,c', '4,12345678901234567890.12,d'),
      lines(
        '{"id":"1","amount":1250.10,"note":"a"}',
        '{"id":"2","amount":0.30000000000000004,"note":"b"}',
        '{"id":"3","amount":1.5e3,"note":"c","extra":true}',
        '{"id":"4","amount":12345678901234567890.12,"note":"d"}',
      ),
    );
    const f = only(result);
    expect(f.keyText).toBe('2');
    expect(f.diffs).toEqual([
      { field: 'amount', source: '0.3', target: '0.30000000000000004', delta: '0.00000000000000004' },
    ]);
    expect(f.target).toEqual({ id: '2', amount: '0.30000000000000004', note: 'b' });
    expect(result.summary.matched).toBe(3);
  });

  it('rejects a line that is not a JSON object, with its line; blank lines count', async () => {
    const result = await run(
      policy,
      lines('id,amount,note', '1,1,a', '2,2,b'),
      '{"id":"1","amount":1,"note":"a"}\n\n{"id": 2, "amount": }\n[1]\n{"id":"2","amount":"2","note":null}\n',
    );
    expect(result.findings.map((f) => [f.type, f.lines.target, f.reason?.slice(0, 30)])).toEqual([
      ['FIELD_MISMATCH', [5], undefined],
      ['INVALID_RECORD', [3], 'line is not valid JSON (Unexpe'],
      ['INVALID_RECORD', [4], 'line is not a JSON object; exp'],
    ]);
    expect(result.summary.rows.target).toBe(4);
  });

  it('refuses what JSON refuses even where a lenient reader reads it: NaN, Infinity, a trailing comma, half a surrogate pair', async () => {
    const refused = [
      '{"id":"1","amount":NaN,"note":"a"}',
      '{"id":"2","amount":-Infinity,"note":"a"}',
      '{"id":"3","amount":1,"note":"a",}',
      '{"id":"4","amount":1,"note":["a",]}',
      '{"id":"5","amount":1,"note":"\\ud800"}',
      '{"id":"6","amount":1,"\\udc00note":"a"}',
    ];
    const result = await run(
      policy,
      lines('id,amount,note', '7,1,"NaN, Infinity,}"'),
      lines(...refused, '{"id":"7","amount":1,"note":"NaN, Infinity,}"}'),
    );
    expect(result.findings.map((f) => [f.type, f.lines.target, f.reason?.slice(0, 22)])).toEqual(
      refused.map((_, i) => ['INVALID_RECORD', [i + 1], 'line is not valid JSON']),
    );
    expect(result.summary.matched).toBe(1);
  });

  it('ends a line at LF or CRLF only: a carriage return alone is white space', async () => {
    const result = await run(
      policy,
      lines('id,amount,note', '1,1,a', '2,2,b', '3,3,c'),
      '{"id":"1",\r"amount":1,"note":"a"}\r\n{"id":"2","amount":2,"note":"b"}\r{"id":"3","amount":3,"note":"c"}\n',
    );
    expect(result.findings.map((f) => [f.type, f.keyText])).toEqual([
      ['MISSING_IN_TARGET', '2'],
      ['MISSING_IN_TARGET', '3'],
      ['INVALID_RECORD', 'target:2'],
    ]);
    expect(result.summary.matched).toBe(1);
  });

  it('reads a line longer than DuckDB reads by default (2 MB)', async () => {
    // 3 MB in fields under the field limit; in 64 KiB chunks, as a file is read (7-byte chunks
    // would take minutes to join).
    const note = 'n'.repeat(60_000);
    const others = Array.from({ length: 50 }, (_, i) => `"other${i}":"${note}"`).join(',');
    const result = await reconcile(
      input('source', lines('id,amount,note', `1,1,${note}`), 65536),
      input('target', lines(`{"id":"1","amount":1,"note":"${note}",${others}}`), 65536),
      policy,
    );
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });

  it("reads a column from the object's own members only: a nested key of the same name is not the column", async () => {
    const result = await run(
      policy,
      lines('id,amount,note', '1,1,a', '2,2,b', '3,3,c', '4,4,d'),
      lines(
        '{"meta":{"amount":9,"id":"x"},"id":"1","amount":1,"note":"a"}',
        '{"id":"2","fees":[{"amount":7},{"note":"z"}],"amount":2,"note":"b"}',
        '{"id":"3","note":"c","detail":{"inner":{"amount":8}}}',
        '{"id":"4","note":"brackets { [ in text ] }, \\"amount\\": 5","amount":4}',
      ),
    );
    expect(result.findings.map((f) => [f.type, f.keyText, f.lines.target, f.reason?.slice(0, 23)])).toEqual([
      ['FIELD_MISMATCH', '4', [4], undefined],
      // Its only amount is nested: the row has none (and is not also missing from the target).
      ['INVALID_RECORD', 'target:3', [3], 'amount: amount is empty'],
    ]);
    // Row 4's amount is its own 4, not the 5 in its note's text.
    expect(result.findings[0]?.diffs.map((d) => d.field)).toEqual(['note']);
    expect(result.summary.matched).toBe(2);
  });

  it('refuses a row that names a column twice among its own keys, in any letter case, rather than pick a value', async () => {
    const result = await run(
      policy,
      lines('id,amount,note', '1,1,a', '2,2,b', '3,3,c', '4,4,d'),
      lines(
        '{"id":"1","amount":1,"note":"a","amount":1}',
        '{"id":"2","amount":2,"note":"b","AMOUNT":9}',
        '{"id":"3","amount":3,"note":"c","other":1,"Other":2}',
        '{"id":"4","amount":4,"note":"d"," Note ":"e"}',
      ),
    );
    expect(result.findings.map((f) => [f.type, f.keyText, f.lines.target, f.reason])).toEqual([
      ['MISSING_IN_TARGET', '1', [], undefined],
      ['MISSING_IN_TARGET', '2', [], undefined],
      ['MISSING_IN_TARGET', '4', [], undefined],
      [
        'INVALID_RECORD',
        'target:1',
        [1],
        'field "amount" appears more than once in the object; expected each field once',
      ],
      [
        'INVALID_RECORD',
        'target:2',
        [2],
        'field "amount" appears more than once in the object; expected each field once',
      ],
      [
        'INVALID_RECORD',
        'target:4',
        [4],
        'field "note" appears more than once in the object; expected each field once',
      ],
    ]);
    // Shown as the line it was, so both values can be seen.
    expect(result.findings[4]?.target).toEqual({ _line: '{"id":"2","amount":2,"note":"b","AMOUNT":9}' });
    // A key no column reads may repeat (row 3 matched).
    expect(result.summary.matched).toBe(1);
  });

  it('reads a key written with escapes or padded with any white space as the column it names', async () => {
    // Python's json.dumps escapes every non-ASCII character (ensure_ascii); JSON.parse decodes
    // them, so both engines must read `\u0061mount` as amount and a no-break space as padding.
    const accented = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'montant_é', type: 'decimal' }, { field: 'note' }],
      amount_field: 'montant_é',
      target: { format: 'jsonl' },
    });
    const result = await run(
      accented,
      lines('id,montant_é,note', '1,1,a', '2,2,b', '3,3,c', '4,4,d', '5,5,e'),
      lines(
        '{"id":"1","montant_\\u00e9":1,"note":"a"}',
        '{"id":"2","MONTANT_\\u00C9":2,"\\u00a0note\\t":"b"}',
        '{"\\u0069\\u0064":"3","montant_é":3,"\u2003note\u00a0":"c"}',
        '{"id":"4","montant_é":4,"note":"d","montant_\\u00e9":4}',
        '{"id":"5","montant_é":5,"not\\u0065":"e"}',
      ),
    );
    expect(result.findings.map((f) => [f.type, f.keyText, f.reason?.slice(0, 28)])).toEqual([
      ['MISSING_IN_TARGET', '4', undefined],
      ['INVALID_RECORD', 'target:4', 'field "montant_é" appears mo'],
    ]);
    expect(result.summary.matched).toBe(4);
  });

  it(`refuses a row nesting deeper than ${JSON_MAX_DEPTH} levels, and reads one at the limit`, async () => {
    const nest = (levels: number) => `${'{"n":'.repeat(levels - 1)}1${'}'.repeat(levels - 1)}`;
    const result = await run(
      policy,
      lines('id,amount,note', '1,1,a', '2,2,b'),
      lines(
        `{"id":"1","deep":${nest(JSON_MAX_DEPTH)},"amount":1,"note":"a"}`,
        `{"id":"2","deep":${nest(JSON_MAX_DEPTH + 1)},"amount":2,"note":"b"}`,
      ),
    );
    expect(result.findings.map((f) => [f.type, f.keyText, f.reason])).toEqual([
      ['MISSING_IN_TARGET', '2', undefined],
      [
        'INVALID_RECORD',
        'target:2',
        `line nests objects or arrays more than ${JSON_MAX_DEPTH} levels deep; expected at most ${JSON_MAX_DEPTH}`,
      ],
    ]);
  });

  it('reads random objects, nested and with repeated keys, as JSON.parse reads them or refuses them', async () => {
    // Values of every kind, keys of the columns' names in mixed case at any depth: both engines
    // (recon-sql-equivalence.test.ts runs these cases on DuckDB too) must read or refuse alike.
    // A key's characters are sometimes escaped (`\u0061`, either hex case) and its padding any
    // white space JSON.parse and trim agree on, as written or escaped.
    const escaped = (c: string, upper: boolean) => {
      const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
      return `\\u${upper ? hex.toUpperCase() : hex}`;
    };
    const written = (text: string) =>
      fc
        .array(fc.tuple(fc.boolean(), fc.boolean()), { minLength: text.length, maxLength: text.length })
        .map((how) => [...text].map((c, i) => (how[i]?.[0] ? escaped(c, how[i][1]) : c)).join(''));
    const padding = fc.constantFrom('', '', ' ', '\\t', '\u00a0', '\\u3000', '\u2028');
    const name = fc
      .tuple(padding, fc.constantFrom('id', 'ID', 'amount', 'Amount', 'note', 'x', 'X'), padding)
      .chain(([before, text, after]) => written(text).map((w) => `${before}${w}${after}`));
    const scalar = fc.oneof(
      fc.constantFrom('"1"', '"2"', '1', '2.50', '-3e2', 'true', 'null', '"a,\\"amount\\":1"', '"{["'),
    );
    const { tree } = fc.letrec((t) => ({
      tree: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        scalar,
        fc.array(t('tree'), { maxLength: 3 }).map((a) => `[${a.join(',')}]`),
        fc
          .array(fc.tuple(name, t('tree')), { maxLength: 3 })
          .map((m) => `{${m.map(([k, v]) => `"${k}":${v}`).join(',')}}`),
      ),
    }));
    const line = fc
      .array(fc.tuple(name, tree), { minLength: 1, maxLength: 6 })
      .map((m) => `{${m.map(([k, v]) => `"${k}": ${v}`).join(', ')}}`);
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 5 }), async (targetLines) => {
        const result = await run(policy, lines('id,amount,note', '1,1,a', '2,2.5,b'), lines(...targetLines));
        expect(result.summary.rows.target).toBe(targetLines.length);
      }),
      { numRuns: 30 },
    );
  });

  it('reads a side with no lines as no rows where the policy allows empty sides, and fails it as empty where not', async () => {
    const allowing = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'amount', type: 'decimal' }, { field: 'note' }],
      amount_field: 'amount',
      target: { format: 'jsonl' },
      allow_empty_sides: true,
    });

    const result = await run(allowing, lines('id,amount,note', '1,1,a'), '\n');

    expect(kinds(result)).toEqual(['MISSING_IN_TARGET 1']);
    expect(result.summary.rows).toMatchObject({ source: 1, target: 0 });
    await expect(run(policy, lines('id,amount,note', '1,1,a'), '')).rejects.toMatchObject({ code: 'FILE_EMPTY' });
  });

  it('fails a file that is not UTF-8 with its line', async () => {
    const bad = Buffer.concat([
      Buffer.from('{"id":"1","amount":1,"note":"a"}\n{"id":"'),
      Buffer.from([0xff]),
      Buffer.from('"}\n'),
    ]);
    await expect(run(policy, lines('id,amount,note', '1,1,a'), bad)).rejects.toMatchObject({
      code: 'ENCODING',
      line: 2,
    });
  });
});

describe('Parquet', () => {
  let dir: string;
  let file: Buffer;
  let nullAmount: Buffer;
  const policy = policyOf({
    key: [{ field: 'id' }],
    fields: [
      { field: 'amount', type: 'decimal' },
      { field: 'big', type: 'decimal' },
      { field: 'd', type: 'date' },
      { field: 'x', type: 'decimal' },
      { field: 'note' },
    ],
    amount_field: 'amount',
    target: { format: 'parquet' },
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-parquet-'));
    const instance = await DuckDBInstance.create(':memory:');
    const db = await instance.connect();
    const select = `SELECT 'P' || i AS id,
        CAST(CAST(i AS DECIMAL(18,2)) / 100 AS DECIMAL(18,2)) AS amount,
        CAST(i AS DECIMAL(38,4)) * 1000000000000000 + 0.0001 AS big,
        DATE '2025-01-01' + CAST(i AS INTEGER) AS d,
        i / 4.0::DOUBLE AS x,
        CASE WHEN i % 7 = 0 THEN NULL ELSE 'n' || i END AS note
      FROM range(5000) t(i)`;
    await db.run(`COPY (${select}) TO '${dir}/t.parquet' (FORMAT parquet, ROW_GROUP_SIZE 1000)`);
    await db.run(
      `COPY (SELECT 'P1' AS id, CAST(NULL AS DECIMAL(18,2)) AS amount, 1.0 AS big, DATE '2025-01-01' AS d, 1.0::DOUBLE AS x, 'a' AS note) TO '${dir}/null.parquet' (FORMAT parquet)`,
    );
    db.closeSync();
    instance.closeSync();
    file = readFileSync(`${dir}/t.parquet`);
    nullAmount = readFileSync(`${dir}/null.parquet`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function csvTwin(): string {
    const rows = ['id,amount,big,d,x,note'];
    for (let i = 0; i < 5000; i++) {
      const d = new Date(Date.UTC(2025, 0, 1 + i)).toISOString().slice(0, 10);
      const big = `${BigInt(i) * 1_000_000_000_000_000n}.0001`;
      rows.push(`P${i},${(i / 100).toFixed(2)},${big},${d},${i / 4},${i % 7 === 0 ? '' : `n${i}`}`);
    }
    return lines(...rows);
  }

  it('has several row groups (the fixture is what the test needs)', () => {
    const meta = parquetMetadata(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer);
    expect(meta.row_groups.length).toBeGreaterThan(1);
  });

  it('reads DECIMAL exactly, DATE as a date, DOUBLE by its shortest text and null as empty, across row groups', async () => {
    const result = await run(policy, csvTwin(), file);
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(5000);
    expect(result.summary.rows.target).toBe(5000);
  });

  it('shows a mismatch with the Parquet row as text and its row number', async () => {
    const twin = csvTwin().replace('\nP4998,49.98,', '\nP4998,49.99,');
    const f = only(await run(policy, twin, file));
    expect(f.diffs).toEqual([{ field: 'amount', source: '49.99', target: '49.98', delta: '-0.01' }]);
    expect(f.lines.target).toEqual([4999]);
    expect(f.target).toMatchObject({ id: 'P4998', big: '4998000000000000000.0001', d: '2038-09-08', x: '1249.5' });
  });

  it('rejects a row with a null amount as INVALID_RECORD with its row number', async () => {
    const f = only(await run(policy, lines('id,amount,big,d,x,note', 'P1,1.00,1.0,2025-01-01,1,a'), nullAmount));
    expect(f).toMatchObject({ type: 'INVALID_RECORD', lines: { source: [2], target: [1] } });
    expect(f.reason).toMatch(/amount is empty/);
  });

  it('fails a file that is not Parquet with a typed error', async () => {
    await expect(run(policy, lines('id,amount,big,d,x,note'), 'id,amount\n')).rejects.toMatchObject({
      code: 'PARQUET_INVALID',
      file: 'target',
    });
  });
});

describe('one exception per key', () => {
  it('accounts for every row exactly once across formats', async () => {
    const policy = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'amount', type: 'decimal' }],
      amount_field: 'amount',
      target: { format: 'jsonl' },
    });
    const result = await run(
      policy,
      lines('id,amount', '1,1', '2,x', '3,3', '3,3'),
      lines('{"id":"1","amount":"y"}', '{"id":"2","amount":2}', '{"id":"3","amount":3}', '{"id":"4","amount":4}'),
    );
    expect(kinds(result)).toEqual([
      'DUPLICATE_IN_SOURCE 3',
      'INVALID_RECORD source:3',
      'INVALID_RECORD target:1',
      'MISSING_IN_SOURCE 4',
    ]);
    const lineCount = (side: 'source' | 'target') =>
      result.findings.reduce((n, f) => n + f.lines[side].length, 0) + result.summary.matched;
    expect(lineCount('source')).toBe(result.summary.rows.source);
    expect(lineCount('target')).toBe(result.summary.rows.target);
  });
});

describe('thresholds and the outcome', () => {
  const base = { key: [{ field: 'id' }], fields: [{ field: 'amount', type: 'decimal' }], amount_field: 'amount' };
  const source = lines('id,amount', ...Array.from({ length: 100 }, (_, i) => `${i},10`));
  const target = (breaks: number, missing = 0) =>
    lines('id,amount', ...Array.from({ length: 100 - missing }, (_, i) => `${i},${i < breaks ? '11' : '10'}`));

  it('with no thresholds: PASS without exceptions, FAIL with any', async () => {
    expect((await run(policyOf(base), source, target(0))).summary.outcome).toBe('PASS');
    const failed = (await run(policyOf(base), source, target(1))).summary;
    expect(failed.outcome).toBe('FAIL');
    expect(failed.thresholds_crossed).toHaveLength(1);
  });

  it.each([
    [0, 'PASS'],
    [1, 'PASS'], // 1/100 is not above warn 0.01
    [2, 'WARN'],
    [5, 'WARN'], // exactly the fail limit is not above it
    [6, 'FAIL'],
  ])('break_rate: %i breaks in 100 keys is %s', async (breaks, outcome) => {
    const policy = policyOf({ ...base, thresholds: { warn: { break_rate: '0.01' }, fail: { break_rate: '0.05' } } });
    const summary = (await run(policy, source, target(breaks))).summary;
    expect(summary.outcome).toBe(outcome);
    expect(summary.break_rate).toBe((breaks / 100).toFixed(6));
    expect(summary.match_rate).toBe(((100 - breaks) / 100).toFixed(6));
  });

  it('fails on the first exception of a type limited to 0, naming the condition', async () => {
    const policy = policyOf({
      ...base,
      thresholds: { fail: { exceptions: { MISSING_IN_TARGET: 0 } }, warn: { break_rate: '0.5' } },
    });
    const summary = (await run(policy, source, target(0, 1))).summary;
    expect(summary.outcome).toBe('FAIL');
    expect(summary.thresholds_crossed).toEqual([
      { level: 'fail', condition: 'exceptions.MISSING_IN_TARGET', limit: '0', actual: '1' },
    ]);
  });

  it('warns on a net amount difference above its limit', async () => {
    const policy = policyOf({ ...base, thresholds: { warn: { net_amount_difference: '2' } } });
    expect((await run(policy, source, target(2))).summary.outcome).toBe('PASS'); // exactly 2
    const summary = (await run(policy, source, target(3))).summary;
    expect(summary.outcome).toBe('WARN');
    expect(summary.amount_totals).toEqual({ source: '1000', target: '1003', net_difference: '3' });
  });
});

describe('control totals', () => {
  it('counts rows and sums per group on each side, grouping by normalised values', async () => {
    const policy = policyOf({
      key: [{ field: 'id' }],
      fields: [
        { field: 'amount', type: 'decimal' },
        { field: 'ccy', source: 'currency', normalize: ['upper'] },
      ],
      amount_field: 'amount',
      source: { delimiter: ';', decimal_separator: ',' },
      control_totals: { group_by: ['ccy'], sum: ['amount'] },
    });
    const result = await run(
      policy,
      'id;amount;currency\n1;1,50;eur\n2;2,00;EUR\n3;10;usd\n4;bad;usd\n',
      lines('id,amount,ccy', '1,1.50,EUR', '2,2.25,EUR', '5,7,GBP'),
    );
    expect(result.summary.control_totals).toEqual([
      {
        group: { ccy: 'EUR' },
        source: { rows: 2, sums: { amount: '3.50' } },
        target: { rows: 2, sums: { amount: '3.75' } },
        difference: { rows: 0, sums: { amount: '0.25' } },
      },
      {
        group: { ccy: 'GBP' },
        source: { rows: 0, sums: { amount: '0' } },
        target: { rows: 1, sums: { amount: '7' } },
        difference: { rows: 1, sums: { amount: '7' } },
      },
      {
        group: { ccy: 'USD' },
        source: { rows: 1, sums: { amount: '10' } },
        target: { rows: 0, sums: { amount: '0' } },
        difference: { rows: -1, sums: { amount: '-10' } },
      },
    ]);
  });
});

import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Every run also partitioned under small memory budgets, and checked against the run in memory.
import { reconcile } from '../support/recon-modes.ts';
import fc from 'fast-check';
import { parse } from 'csv-parse/sync';
import { absDecimal, compareDecimal, decimal, parseDecimal, subtractDecimal } from '../../functions/shared/decimal.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import {
  ReconInputError,
  MAX_FIELD_CHARS,
  type Finding,
  type ReconInput,
  type ReconResult,
} from '../../functions/recon/engine.ts';
import { exceptionId } from '../../functions/shared/exceptions.ts';
import { toExceptionRecord } from '../../functions/recon/exception-record.ts';
import { generatePair, type GeneratedPair } from '../../scripts/bench/generate.ts';
import { SIDES } from '../../functions/shared/types.ts';

const repo = (path: string) => new URL(`../../${path}`, import.meta.url);
const policy = parseReconPolicy(readFileSync(repo('policies/recon-policy.md'), 'utf8'));
const HEADER = 'trade_id,account_id,trade_date,amount';

function inputInPieces(name: string, content: string, cuts: readonly number[]): ReconInput {
  const bytes = Buffer.from(content, 'utf8');
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  return { name, stream: Readable.from(chunks) };
}

function input(name: string, content: string | Uint8Array, chunkSize?: number): ReconInput {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const chunks: Buffer[] = [];
  if (chunkSize === undefined) chunks.push(bytes);
  else for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return { name, stream: Readable.from(chunks) };
}

function csv(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function run(source: string | Uint8Array, target: string | Uint8Array): Promise<ReconResult> {
  return reconcile(input('source.csv', source), input('target.csv', target), policy);
}

/** "TYPE key" per finding, sorted: the shape of a result at a glance. */
function kinds(result: ReconResult): string[] {
  return result.findings.map((f) => `${f.type} ${f.keyText}`).sort();
}

function only(result: ReconResult, type?: string): Finding {
  const found = type === undefined ? result.findings : result.findings.filter((f) => f.type === type);
  expect(found).toHaveLength(1);
  return found[0] as Finding;
}

async function inputError(source: string | Uint8Array, target: string | Uint8Array): Promise<ReconInputError> {
  try {
    await run(source, target);
  } catch (error) {
    if (error instanceof ReconInputError) return error;
    throw error;
  }
  throw new Error('expected reconcile to fail with ReconInputError');
}

function withoutDuration(result: ReconResult): unknown {
  const { duration_ms: _ignored, ...summary } = result.summary;
  return { findings: result.findings, summary };
}

describe('reconcile on the seed sample', () => {
  let result: ReconResult;
  beforeAll(async () => {
    result = await reconcile(
      { name: 'source.csv', stream: createReadStream(repo('scripts/local/sample/source.csv')) },
      { name: 'target.csv', stream: createReadStream(repo('scripts/local/sample/target.csv')) },
      policy,
    );
  });

  it('finds exactly the planted breaks and nothing else', () => {
    expect(kinds(result)).toEqual([
      'AMOUNT_MISMATCH T0005',
      'AMOUNT_MISMATCH T0018',
      'DUPLICATE_IN_TARGET T0012',
      'MISSING_IN_TARGET T0007',
      'MISSING_IN_TARGET T0014',
    ]);
  });

  it('reports each amount mismatch with source, target and signed delta', () => {
    const byKey = Object.fromEntries(
      result.findings.filter((f) => f.type === 'AMOUNT_MISMATCH').map((f) => [f.keyText, f]),
    );
    expect(byKey.T0005?.diffs).toEqual([{ field: 'amount', source: '450.00', target: '475.00', delta: '25.00' }]);
    expect(byKey.T0018?.diffs).toEqual([{ field: 'amount', source: '310.00', target: '295.00', delta: '-15.00' }]);
    expect(byKey.T0005?.severity).toBe('MEDIUM');
    expect(byKey.T0005?.lines).toEqual({ source: [6], target: [6] });
  });

  it('reports the target duplicate once, listing both target lines', () => {
    const dup = only(result, 'DUPLICATE_IN_TARGET');
    expect(dup.key).toEqual({ trade_id: 'T0012' });
    expect(dup.lines.target).toEqual([12, 13]);
    expect(dup.lines.source).toEqual([13]);
    expect(dup.severity).toBe('HIGH');
  });

  it('reports missing trades with their source row and HIGH severity', () => {
    const t7 = result.findings.find((f) => f.keyText === 'T0007');
    expect(t7?.source).toEqual({
      trade_id: 'T0007',
      account_id: 'ACCT1002',
      trade_date: '2025-12-04',
      amount: '600.00',
    });
    expect(t7?.target).toBeNull();
    expect(t7?.lines).toEqual({ source: [8], target: [] });
    expect(t7?.severity).toBe('HIGH');
  });

  it('summarises rows, matches and exception counts', () => {
    expect(result.summary.rows).toEqual({ source: 20, target: 19 });
    expect(result.summary.matched).toBe(15);
    expect(result.summary.exceptions).toEqual({ AMOUNT_MISMATCH: 2, MISSING_IN_TARGET: 2, DUPLICATE_IN_TARGET: 1 });
    expect(result.summary.rejected).toEqual({ source: 0, target: 0 });
  });

  it('gives the same findings when both files arrive one byte at a time', async () => {
    const source = readFileSync(repo('scripts/local/sample/source.csv'));
    const target = readFileSync(repo('scripts/local/sample/target.csv'));
    const byByte = await reconcile(input('source.csv', source, 1), input('target.csv', target, 1), policy);
    expect(withoutDuration(byByte)).toEqual(withoutDuration(result));
  });
});

describe('reconcile tolerates layout differences that are not breaks', () => {
  it('trims keys before matching', async () => {
    const result = await run(
      csv(HEADER, 'T1,A1,2025-12-01,10.00'),
      csv(HEADER, '  T1 ,A1,2025-12-01,10.00', '"\tT2",A1,2025-12-01,1.00'),
    );
    expect(kinds(result)).toEqual(['MISSING_IN_SOURCE T2']);
    expect(result.summary.matched).toBe(1);
  });

  it('matches headers case-insensitively and trimmed, with a BOM not part of the first name', async () => {
    // Prepare
    const target = new Uint8Array([
      0xef,
      0xbb,
      0xbf,
      ...Buffer.from(csv(' Trade_ID ,ACCOUNT_id, Trade_Date,AMOUNT ', 'T1,A1,2025-12-01,10.00')),
    ]);
    // Act
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), target);
    // Assess
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });

  it('matches when column order differs and extra columns are present', async () => {
    const target = csv(
      'desk,amount,currency,trade_date,trade_id,account_id',
      'FX,10.00,USD,2025-12-01,T1,A1',
      'EQ,5.00,EUR,2025-12-02,T2,A2',
    );
    const result = await run(csv(`${HEADER},note`, 'T1,A1,2025-12-01,10.00,n1', 'T2,A2,2025-12-02,5.00,n2'), target);
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(2);
  });

  it('does not match identical raw lines whose columns mean different things', async () => {
    // Prepare: same text, but the target swaps account_id and trade_date.
    const result = await run(
      csv(HEADER, 'T1,A1,2025-12-01,10.00'),
      csv('trade_id,trade_date,account_id,amount', 'T1,A1,2025-12-01,10.00'),
    );
    // Assess
    const finding = only(result, 'FIELD_MISMATCH');
    expect(finding.diffs.map((d) => d.field)).toEqual(['account_id', 'trade_date']);
  });

  it('matches a CRLF target against an LF source', async () => {
    const rows = ['T1,A1,2025-12-01,10.00', 'T2,A2,2025-12-02,"1,250.50"'];
    const result = await run(csv(HEADER, ...rows), `${[HEADER, ...rows].join('\r\n')}\r\n`);
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(2);
  });

  it('treats quoted and unquoted spellings of the same row as a match', async () => {
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, '"T1","A1","2025-12-01","10.00"'));
    expect(result.findings).toEqual([]);
  });

  it.each([
    ['1250.50', '"1,250.50"'],
    ['1250.50', ' 1250.50 '],
    ['1250.50', '+1250.5'],
    ['1250.50', '1250.5000'],
    ['-300.00', '(300.00)'],
    ['123', '00123'],
    ['0.3', '0.30'],
  ])('treats amount %s and %s as equal', async (a, b) => {
    const result = await run(csv(HEADER, `T1,A1,2025-12-01,${a}`), csv(HEADER, `T1,A1,2025-12-01,${b}`));
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });

  it('treats surrounding whitespace in text fields as insignificant', async () => {
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 'T1, A1 ,2025-12-01 ,10.00'));
    expect(result.findings).toEqual([]);
  });
});

describe('reconcile amount tolerance', () => {
  it.each(['10.01', '9.99', '10.010000'])(
    'keeps a difference of exactly 0.01 within tolerance (%s vs 10.00)',
    async (target) => {
      const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, `T1,A1,2025-12-01,${target}`));
      expect(result.findings).toEqual([]);
    },
  );

  it.each([
    ['10.011', '0.011'],
    ['9.989', '-0.011'],
  ])('breaks on a difference of 0.011 (%s vs 10.00)', async (target, delta) => {
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, `T1,A1,2025-12-01,${target}`));
    const finding = only(result, 'AMOUNT_MISMATCH');
    expect(finding.diffs).toEqual([{ field: 'amount', source: '10.00', target, delta }]);
  });

  it('compares huge amounts exactly', async () => {
    const result = await run(
      csv(HEADER, 'T1,A1,2025-12-01,9007199254740993.00'),
      csv(HEADER, 'T1,A1,2025-12-01,9007199254740992.99'),
    );
    expect(result.findings).toEqual([]);
    const broken = await run(
      csv(HEADER, 'T1,A1,2025-12-01,9007199254740993.00'),
      csv(HEADER, 'T1,A1,2025-12-01,9007199254740992.98'),
    );
    expect(only(broken, 'AMOUNT_MISMATCH').diffs[0]?.delta).toBe('-0.02');
  });

  it.each([
    ['plain', `T1,A1,2025-12-01,${'9'.repeat(39)}`],
    ['quoted', `T1,"A1",2025-12-01,"${'9'.repeat(39)}"`],
  ])('rejects a %s amount with more digits than a decimal holds instead of failing the run', async (_how, row) => {
    const result = await run(csv(HEADER, row), csv(HEADER, `T1,A1,2025-12-01,${'9'.repeat(38)}`));

    // One exception for the key: the target's row rides on the source row's INVALID_RECORD.
    const invalid = only(result, 'INVALID_RECORD');
    expect(invalid.reason).toMatch(/more than 38 digits/);
    expect(invalid.lines).toEqual({ source: [2], target: [2] });
  });
});

describe('reconcile mismatches and missing rows', () => {
  it('reports AMOUNT_MISMATCH when only the amount differs', async () => {
    const finding = only(await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 'T1,A1,2025-12-01,12.50')));
    expect(finding.type).toBe('AMOUNT_MISMATCH');
    expect(finding.source).toEqual({ trade_id: 'T1', account_id: 'A1', trade_date: '2025-12-01', amount: '10.00' });
    expect(finding.target?.amount).toBe('12.50');
  });

  it('reports FIELD_MISMATCH listing account_id when the account differs', async () => {
    const finding = only(await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 'T1,A2,2025-12-01,10.005')));
    expect(finding.type).toBe('FIELD_MISMATCH');
    expect(finding.diffs).toEqual([{ field: 'account_id', source: 'A1', target: 'A2' }]);
    expect(finding.severity).toBe('MEDIUM');
  });

  it('reports FIELD_MISMATCH listing account_id and amount when both differ', async () => {
    const finding = only(await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 'T1,A2,2025-12-01,5000.00')));
    expect(finding.type).toBe('FIELD_MISMATCH');
    expect(finding.diffs).toEqual([
      { field: 'account_id', source: 'A1', target: 'A2' },
      { field: 'amount', source: '10.00', target: '5000.00', delta: '4990.00' },
    ]);
  });

  it('reports FIELD_MISMATCH when the trade date differs', async () => {
    const finding = only(await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 'T1,A1,2025-12-02,10.00')));
    expect(finding.type).toBe('FIELD_MISMATCH');
    expect(finding.diffs.map((d) => d.field)).toEqual(['trade_date']);
  });

  it('treats key case as significant', async () => {
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00'), csv(HEADER, 't1,A1,2025-12-01,10.00'));
    expect(kinds(result)).toEqual(['MISSING_IN_SOURCE t1', 'MISSING_IN_TARGET T1']);
  });

  it('reports MISSING_IN_SOURCE with the target row and line', async () => {
    const result = await run(
      csv(HEADER, 'T1,A1,2025-12-01,10.00'),
      csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T9,A9,2025-12-09,9.00'),
    );
    const finding = only(result);
    expect(finding.type).toBe('MISSING_IN_SOURCE');
    expect(finding.source).toBeNull();
    expect(finding.target).toEqual({ trade_id: 'T9', account_id: 'A9', trade_date: '2025-12-09', amount: '9.00' });
    expect(finding.lines).toEqual({ source: [], target: [3] });
    expect(finding.severity).toBe('HIGH');
  });
});

describe('reconcile duplicates', () => {
  it('reports one DUPLICATE_IN_SOURCE per key and not also a mismatch', async () => {
    // Prepare: duplicated in source, amount differs in target.
    const result = await run(
      csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T2,A2,2025-12-01,1.00', 'T1,A1,2025-12-01,10.00'),
      csv(HEADER, 'T2,A2,2025-12-01,1.00', 'T1,A1,2025-12-01,99.00'),
    );
    // Assess
    const finding = only(result);
    expect(finding.type).toBe('DUPLICATE_IN_SOURCE');
    expect(finding.lines).toEqual({ source: [2, 4], target: [3] });
    expect(finding.severity).toBe('MEDIUM');
    expect(result.summary.matched).toBe(1);
  });

  it('reports a source duplicate missing from the target only as a duplicate', async () => {
    const result = await run(csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T1,A1,2025-12-01,10.00'), csv(HEADER));
    expect(kinds(result)).toEqual(['DUPLICATE_IN_SOURCE T1']);
    expect(only(result).lines).toEqual({ source: [2, 3], target: [] });
  });

  it('reports a target duplicate missing from the source only as a duplicate', async () => {
    const result = await run(csv(HEADER), csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T1,A1,2025-12-01,10.00'));
    expect(kinds(result)).toEqual(['DUPLICATE_IN_TARGET T1']);
    expect(only(result).lines).toEqual({ source: [], target: [2, 3] });
  });

  it('reports two findings when a key is duplicated on both sides, each with its own lines', async () => {
    const row = 'T1,A1,2025-12-01,10.00';
    const result = await run(csv(HEADER, row, row), csv(HEADER, 'T0,A0,2025-12-01,1.00', row, row));
    expect(kinds(result)).toEqual(['DUPLICATE_IN_SOURCE T1', 'DUPLICATE_IN_TARGET T1', 'MISSING_IN_SOURCE T0']);
    expect(only(result, 'DUPLICATE_IN_SOURCE').lines).toEqual({ source: [2, 3], target: [] });
    expect(only(result, 'DUPLICATE_IN_TARGET').lines).toEqual({ source: [], target: [3, 4] });
  });

  it('reports a key repeated three times as one finding with three lines', async () => {
    const row = 'T1,A1,2025-12-01,10.00';
    const result = await run(
      csv(HEADER, row),
      csv(HEADER, row, 'T2,A2,2025-12-02,2.00', ` T1 ,A1,2025-12-01,10.00`, row),
    );
    const dup = only(result, 'DUPLICATE_IN_TARGET');
    expect(dup.lines).toEqual({ source: [2], target: [2, 4, 5] });
    expect(kinds(result)).toEqual(['DUPLICATE_IN_TARGET T1', 'MISSING_IN_SOURCE T2']);
  });
});

describe('reconcile rejects unreadable rows as INVALID_RECORD', () => {
  const good = 'T1,A1,2025-12-01,10.00';

  it.each([
    ['a short ragged row', 'T2,A2,2025-12-02', /expected 4 fields, found 3/],
    ['a long ragged row', 'T2,A2,2025-12-02,1.00,extra', /expected 4 fields, found 5/],
    ['an empty key', '   ,A2,2025-12-02,1.00', /key column trade_id is empty/],
    ['an exponent amount', 'T2,A2,2025-12-02,1E5', /amount.*not a decimal/],
    ['an empty amount', 'T2,A2,2025-12-02,', /amount.*empty/],
    ['a hex amount', 'T2,A2,2025-12-02,0x1F', /amount.*not a decimal/],
    ['a formula amount', `T2,A2,2025-12-02,=cmd|'/C calc'!A0`, /amount.*not a decimal/],
    ['a quoted bad amount', 'T2,A2,2025-12-02,"$1,000"', /amount.*not a decimal/],
    ['a NUL byte', 'T2,A\u00002,2025-12-02,1.00', /NUL/],
    ['text after a closing quote', 'T2,"A2"x,2025-12-02,1.00', /after a closing quote/],
  ])('rejects %s with its line and reason', async (_name, bad, reason) => {
    // Act
    const result = await run(
      csv(HEADER, good, bad, 'T3,A3,2025-12-03,3.00'),
      csv(HEADER, good, 'T3,A3,2025-12-03,3.00'),
    );
    // Assess
    const finding = only(result, 'INVALID_RECORD');
    expect(finding.reason).toMatch(reason);
    expect(finding.key).toEqual({ side: 'source', line: '3' });
    expect(finding.lines).toEqual({ source: [3], target: [] });
    expect(finding.severity).toBe('LOW');
    expect(finding.source).not.toBeNull();
    expect(result.findings).toHaveLength(1);
    expect(result.summary.matched).toBe(2);
    expect(result.summary.rejected).toEqual({ source: 1, target: 0 });
    expect(result.summary.rows).toEqual({ source: 3, target: 2 });
  });

  it('puts the target counterpart of a rejected source row on its INVALID_RECORD: one exception per key', async () => {
    const result = await run(csv(HEADER, 'T2,A2,2025-12-02,n/a'), csv(HEADER, 'T2,A2,2025-12-02,1.00'));
    expect(kinds(result)).toEqual(['INVALID_RECORD source:2']);
    const invalid = only(result, 'INVALID_RECORD');
    expect(invalid.target).toEqual({ trade_id: 'T2', account_id: 'A2', trade_date: '2025-12-02', amount: '1.00' });
    expect(invalid.lines).toEqual({ source: [2], target: [2] });
  });

  it('puts the source counterpart of a rejected target row on its INVALID_RECORD', async () => {
    const result = await run(csv(HEADER, 'T2,A2,2025-12-02,1.00'), csv(HEADER, 'T2,A2,2025-12-02,n/a'));
    expect(kinds(result)).toEqual(['INVALID_RECORD target:2']);
    expect(only(result).source?.amount).toBe('1.00');
    expect(only(result).lines).toEqual({ source: [2], target: [2] });
  });

  it('still reports the counterpart when the rejected row has no readable key', async () => {
    const result = await run(csv(HEADER, ' ,A2,2025-12-02,1.00', 'T3,A3'), csv(HEADER, 'T3,A3,2025-12-02,1.00'));
    expect(kinds(result)).toEqual(['INVALID_RECORD source:2', 'INVALID_RECORD source:3', 'MISSING_IN_SOURCE T3']);
  });

  it('rejects a target row too, keyed by side and line', async () => {
    const result = await run(csv(HEADER, good), csv(HEADER, '', good, 'T2,A2,2025-12-02,1E5'));
    const finding = only(result, 'INVALID_RECORD');
    expect(finding.key).toEqual({ side: 'target', line: '4' });
    expect(finding.target?.amount).toBe('1E5');
  });

  it('reports the line where a record with a quoted newline starts', async () => {
    const result = await run(
      csv(HEADER, good),
      csv(HEADER, 'T0,"multi\nline",2025-12-01,1.00', good, 'T2,A2,2025-12-02'),
    );
    expect(only(result, 'INVALID_RECORD').lines.target).toEqual([5]);
    expect(only(result, 'MISSING_IN_SOURCE').lines.target).toEqual([2]);
  });

  it("rejects a row with a field longer than the stored limit, carrying the other side's row of its key", async () => {
    const huge = 'x'.repeat(MAX_FIELD_CHARS + 1);
    const result = await run(
      csv(HEADER, good, `T2,${huge},2025-12-02,1.00`),
      csv(HEADER, good, 'T2,A2,2025-12-02,1.00'),
    );
    const finding = only(result, 'INVALID_RECORD');
    expect(finding.reason).toMatch(/longer than/);
    expect((finding.source?.account_id ?? '').length).toBeLessThan(1000);
    // Its field count is right, so its key is read: no MISSING_IN_SOURCE of its own for T2.
    expect(finding.target).toMatchObject({ trade_id: 'T2', account_id: 'A2' });
    expect(result.findings.map((f) => f.type)).toEqual(['INVALID_RECORD']);
  });

  it('counts the field limit in UTF-16 units and cuts a shown field at 256 characters, an emoji being one', async () => {
    // Both engines alike (recon-sql-equivalence.test.ts runs this on DuckDB, whose length and
    // substr count characters): 32,769 emoji are over the limit, and a cut never splits one.
    const emoji = '\u{1F600}';
    const over = emoji.repeat(MAX_FIELD_CHARS / 2 + 1);
    const under = `${emoji.repeat(MAX_FIELD_CHARS / 2 - 1)}xx`;
    const result = await run(
      csv(HEADER, `T1,${over},2025-12-01,1.00`, `T2,${under},2025-12-02,1.00`, `T3,${emoji.repeat(300)},2025-12-03,x`),
      csv(HEADER, `T1,A,2025-12-01,1.00`, `T2,${under},2025-12-02,1.00`, `T3,A,2025-12-03,1.00`),
    );
    const invalid = result.findings.filter((f) => f.type === 'INVALID_RECORD');
    expect(invalid.map((f) => [f.keyText, f.reason?.slice(0, 21)])).toEqual([
      ['source:2', 'a field is longer tha'],
      ['source:4', 'amount: amount "x" is'],
    ]);
    expect(invalid[1]?.source?.account_id).toBe(`${emoji.repeat(256)}…`);
    expect(result.summary.matched).toBe(1);
  });

  it('says a line of only spaces or tabs is one, not "expected 4 fields, found 1"', async () => {
    const result = await run(csv(HEADER, good, '   \t '), csv(HEADER, good));
    const finding = only(result, 'INVALID_RECORD');
    expect(finding.reason).toBe('line holds only spaces or tabs; expected 4 fields');
    expect(finding.lines.source).toEqual([3]);
  });

  it('treats a formula in account_id as plain data that still matches', async () => {
    const row = `T1,=cmd|'/C calc'!A0,2025-12-01,10.00`;
    const result = await run(csv(HEADER, row), csv(HEADER, ` T1 ,=cmd|'/C calc'!A0,2025-12-01,10.0`));
    expect(result.findings).toEqual([]);
    expect(result.summary.matched).toBe(1);
  });
});

describe('reconcile rejects files it cannot reconcile', () => {
  const good = csv(HEADER, 'T1,A1,2025-12-01,10.00');

  it('fails a semicolon-delimited file with MISSING_COLUMNS and says so', async () => {
    const error = await inputError(good, csv('trade_id;account_id;trade_date;amount', 'T1;A1;2025-12-01;10.00'));
    expect(error.code).toBe('MISSING_COLUMNS');
    expect(error.file).toBe('target.csv');
    expect(error.message).toMatch(/semicolon/);
  });

  it('names the file and the expected columns when a column is missing', async () => {
    const error = await inputError(csv('trade_id,account_id,amount', 'T1,A1,10.00'), good);
    expect(error.code).toBe('MISSING_COLUMNS');
    expect(error.file).toBe('source.csv');
    expect(error.line).toBe(1);
    expect(error.message).toContain('source.csv');
    expect(error.message).toContain('trade_date');
    expect(error.message).toContain('trade_id, account_id, trade_date, amount');
  });

  it('fails a duplicate header name with HEADER_INVALID', async () => {
    const error = await inputError(good, csv(`${HEADER},Amount`, 'T1,A1,2025-12-01,10.00,10.00'));
    expect(error.code).toBe('HEADER_INVALID');
    expect(error.message).toMatch(/"amount" appears twice/);
  });

  it('fails an empty header name with HEADER_INVALID', async () => {
    const error = await inputError(csv(`${HEADER}, `, 'T1,A1,2025-12-01,10.00,x'), good);
    expect(error.code).toBe('HEADER_INVALID');
    expect(error.message).toMatch(/column 5 has no name/);
  });

  it.each([
    ['an empty file', ''],
    ['a file of blank lines', '\n\r\n\n'],
  ])('fails %s with FILE_EMPTY', async (_name, content) => {
    const error = await inputError(good, content);
    expect(error.code).toBe('FILE_EMPTY');
    expect(error.file).toBe('target.csv');
    expect(error.message).toMatch(/trade_id, account_id, trade_date, amount/);
  });

  it('reconciles a header-only file as zero rows, everything missing on it', async () => {
    // Act
    const result = await run(csv(HEADER), csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T2,A2,2025-12-02,2.00'));
    // Assess
    expect(result.summary.rows).toEqual({ source: 0, target: 2 });
    expect(kinds(result)).toEqual(['MISSING_IN_SOURCE T1', 'MISSING_IN_SOURCE T2']);
  });

  it('fails a UTF-16 file with ENCODING naming the file', async () => {
    const utf16 = new Uint8Array([0xff, 0xfe, ...Buffer.from(good, 'utf16le')]);
    const error = await inputError(good, utf16);
    expect(error.code).toBe('ENCODING');
    expect(error.file).toBe('target.csv');
  });

  it('fails a Latin-1 file with ENCODING', async () => {
    const latin1 = Buffer.from(csv(HEADER, 'T1,Caf\u00e9,2025-12-01,10.00'), 'latin1');
    expect((await inputError(latin1, good)).code).toBe('ENCODING');
  });

  it('fails an unclosed quote with CSV_UNCLOSED_QUOTE and its line', async () => {
    const error = await inputError(
      good,
      csv(HEADER, 'T1,A1,2025-12-01,10.00', 'T2,"A2,2025-12-02,1.00', 'T3,A3,2025-12-03,3.00'),
    );
    expect(error.code).toBe('CSV_UNCLOSED_QUOTE');
    expect(error.line).toBe(3);
    expect(error.message).toMatch(/^target\.csv:3: /);
  });
});

describe('reconcile severity follows the policy rules', () => {
  it.each([
    ['0.02', 'MEDIUM'],
    ['999.99', 'MEDIUM'],
    ['1000', 'HIGH'],
    ['-1000.00', 'HIGH'],
    ['99999.99', 'HIGH'],
    ['100000', 'CRITICAL'],
    ['-250000.00', 'CRITICAL'],
  ])('gives an amount delta of %s severity %s', async (delta, severity) => {
    // Prepare: target = 500000.00 + delta.
    const target = (500_000_00n + BigInt(Math.round(Number(delta) * 100))).toString();
    const amount = `${target.slice(0, -2)}.${target.slice(-2)}`;
    // Act
    const finding = only(
      await run(csv(HEADER, 'T1,A1,2025-12-01,500000.00'), csv(HEADER, `T1,A1,2025-12-01,${amount}`)),
    );
    // Assess
    expect(finding.type).toBe('AMOUNT_MISMATCH');
    expect(finding.severity).toBe(severity);
  });

  it('gives missing, duplicate, field and invalid findings their policy severity', async () => {
    const result = await run(
      csv(
        HEADER,
        'T1,A1,2025-12-01,1.00',
        'T2,A2,2025-12-01,1.00',
        'T2,A2,2025-12-01,1.00',
        'T4,A4,2025-12-01,1.00',
        'T5,A5,2025-12-01,x',
      ),
      csv(HEADER, 'T3,A3,2025-12-01,1.00', 'T3,A3,2025-12-01,1.00', 'T4,B4,2025-12-01,1.00', 'T6,A6,2025-12-01,1.00'),
    );
    const severities = Object.fromEntries(result.findings.map((f) => [`${f.type} ${f.keyText}`, f.severity]));
    expect(severities).toEqual({
      'MISSING_IN_TARGET T1': 'HIGH',
      'DUPLICATE_IN_SOURCE T2': 'MEDIUM',
      'DUPLICATE_IN_TARGET T3': 'HIGH',
      'FIELD_MISMATCH T4': 'MEDIUM',
      'MISSING_IN_SOURCE T6': 'HIGH',
      'INVALID_RECORD source:6': 'LOW',
    });
  });
});

describe('reconcile accounting on a generated pair', () => {
  let dir: string;
  let pair: GeneratedPair;
  let result: ReconResult;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tally-recon-test-'));
    pair = await generatePair(dir, 2000, 7);
    result = await reconcile(
      { name: pair.sourcePath, stream: createReadStream(pair.sourcePath, { highWaterMark: 4096 }) },
      { name: pair.targetPath, stream: createReadStream(pair.targetPath, { highWaterMark: 4096 }) },
      policy,
    );
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('accounts for every row on each side exactly once', () => {
    for (const side of SIDES) {
      const inFindings = result.findings.reduce((n, f) => n + f.lines[side].length, 0);
      expect(result.summary.rows[side]).toBe(result.summary.matched + inFindings);
      const lines = result.findings.flatMap((f) => f.lines[side]);
      expect(new Set(lines).size).toBe(lines.length);
    }
  });

  it('finds exactly the exceptions the generator planted', () => {
    const planted = Object.fromEntries(Object.entries(pair.planted).filter(([, n]) => n > 0));
    expect(Object.values(planted).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(result.summary.exceptions).toEqual(planted);
  });

  it('counts the summary exceptions from the findings', () => {
    const counted: Record<string, number> = {};
    for (const f of result.findings) counted[f.type] = (counted[f.type] ?? 0) + 1;
    expect(result.summary.exceptions).toEqual(counted);
    expect(result.summary.rejected.source).toBe(pair.planted.INVALID_RECORD);
  });

  it('gives the same result on a second run', async () => {
    const again = await reconcile(
      { name: pair.sourcePath, stream: createReadStream(pair.sourcePath) },
      { name: pair.targetPath, stream: createReadStream(pair.targetPath) },
      policy,
    );
    expect(withoutDuration(again)).toEqual(withoutDuration(result));
  });
});

describe('exception ids', () => {
  it('are stable across runs for the same dataset, date, type and key', async () => {
    // Prepare
    const source = csv(HEADER, 'T1,A1,2025-12-01,10.00');
    const target = csv(HEADER, 'T1,A1,2025-12-01,11.00');
    const ctx = { runId: 'run-1', dataset: 'trades', businessDate: '2025-12-01', now: '2025-12-02T00:00:00Z' };
    // Act
    const first = toExceptionRecord(only(await run(source, target)), ctx);
    const second = toExceptionRecord(only(await run(source, target)), {
      ...ctx,
      runId: 'run-2',
      now: '2025-12-03T00:00:00Z',
    });
    // Assess
    expect(first.exception_id).toMatch(/^[0-9a-f]{32}$/);
    expect(second.exception_id).toBe(first.exception_id);
    expect(first.exception_id).toBe(exceptionId('trades', '2025-12-01', 'AMOUNT_MISMATCH', 'T1'));
  });

  it('differ when the dataset, date, type or key differs', () => {
    const base = exceptionId('trades', '2025-12-01', 'AMOUNT_MISMATCH', 'T1');
    const variants = [
      exceptionId('trades-eu', '2025-12-01', 'AMOUNT_MISMATCH', 'T1'),
      exceptionId('trades', '2025-12-02', 'AMOUNT_MISMATCH', 'T1'),
      exceptionId('trades', '2025-12-01', 'FIELD_MISMATCH', 'T1'),
      exceptionId('trades', '2025-12-01', 'AMOUNT_MISMATCH', 'T2'),
      // The separator keeps field boundaries: shifting text between fields changes the id.
      exceptionId('trades2', '025-12-01', 'AMOUNT_MISMATCH', 'T1'),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
  });
});

describe('reconcile against a naive reference model', () => {
  const COLUMNS = ['trade_id', 'account_id', 'trade_date', 'amount'] as const;
  const row = fc.record({
    trade_id: fc.constantFrom('T1', 'T2', 'T3', 'T4', ' T1', 'T2 ', '', 't1'),
    account_id: fc.constantFrom('A1', 'A2', ' A1 ', 'A,1', 'say "A"'),
    trade_date: fc.constantFrom('2025-12-01', '2025-12-02'),
    amount: fc.constantFrom(
      '10.00',
      '10',
      '10.01',
      '9.99',
      '10.011',
      '1,000.00',
      '1000',
      '(5.00)',
      '-5',
      '+10.0',
      '1E5',
      '',
      'n/a',
      '99999999999999999999.99',
    ),
    ragged: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, -1, 1),
    quoteAll: fc.boolean(),
  });
  const side = fc.record({
    rows: fc.array(row, { maxLength: 10 }),
    order: fc.shuffledSubarray([0, 1, 2, 3], { minLength: 4, maxLength: 4 }),
    extra: fc.boolean(),
    eol: fc.constantFrom('\n', '\r\n'),
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
  });
  type Side = typeof side extends fc.Arbitrary<infer T> ? T : never;

  function quote(field: string, always: boolean): string {
    return always || /[",\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
  }

  function render(s: Side): string {
    const header = [...s.order.map((i) => COLUMNS[i] as string), ...(s.extra ? ['note'] : [])];
    const lines = [header.join(',')];
    for (const r of s.rows) {
      const fields: string[] = header.map((c) => (c === 'note' ? 'n' : r[c as (typeof COLUMNS)[number]]));
      if (r.ragged < 0) fields.pop();
      if (r.ragged > 0) fields.push('x');
      lines.push(fields.map((f) => quote(f, r.quoteAll)).join(','));
    }
    return lines.join(s.eol) + s.eol;
  }

  /** What the policy says should be found, computed the slow, obvious way. */
  function expected(source: Side, target: Side): string[] {
    const load = (s: Side) => {
      const [header, ...records] = parse(render(s), {
        relax_quotes: true,
        skip_empty_lines: true,
        relax_column_count: true,
      }) as string[][];
      const names = (header ?? []).map((h) => h.trim().toLowerCase());
      const valid = new Map<string, Record<string, string>[]>();
      /** Keys of invalid rows whose key could be read (only their amount is bad). */
      const invalidKeys = new Set<string>();
      let invalid = 0;
      for (const fields of records) {
        const rec = Object.fromEntries(names.map((n, i) => [n, fields[i] ?? '']));
        const key = (rec.trade_id ?? '').trim();
        if (fields.length !== names.length || key === '' || !parseDecimal(rec.amount ?? '').ok) {
          invalid++;
          if (fields.length === names.length && key !== '') invalidKeys.add(key);
        } else valid.set(key, [...(valid.get(key) ?? []), rec]);
      }
      return { valid, invalid, invalidKeys };
    };
    const s = load(source);
    const t = load(target);
    const out: string[] = [];
    for (const key of new Set([...s.valid.keys(), ...t.valid.keys()])) {
      const sr = s.valid.get(key) ?? [];
      const tr = t.valid.get(key) ?? [];
      if (sr.length > 1) out.push(`DUPLICATE_IN_SOURCE ${key}`);
      if (tr.length > 1) out.push(`DUPLICATE_IN_TARGET ${key}`);
      if (sr.length > 1 || tr.length > 1) continue;
      const a = sr[0];
      const b = tr[0];
      // One exception per key: a row whose counterpart was rejected rides on that INVALID_RECORD.
      if (!b) {
        if (!t.invalidKeys.has(key)) out.push(`MISSING_IN_TARGET ${key}`);
      } else if (!a) {
        if (!s.invalidKeys.has(key)) out.push(`MISSING_IN_SOURCE ${key}`);
      } else {
        const textDiffers = ['account_id', 'trade_date'].some((c) => (a[c] ?? '').trim() !== (b[c] ?? '').trim());
        const delta = subtractDecimal(decimal(b.amount ?? ''), decimal(a.amount ?? ''));
        const amountDiffers = compareDecimal(absDecimal(delta), decimal('0.01')) > 0;
        if (textDiffers) out.push(`FIELD_MISMATCH ${key}`);
        else if (amountDiffers) out.push(`AMOUNT_MISMATCH ${key}`);
      }
    }
    for (let i = 0; i < s.invalid; i++) out.push('INVALID_RECORD source');
    for (let i = 0; i < t.invalid; i++) out.push('INVALID_RECORD target');
    return out.sort();
  }

  it('finds what the reference finds, accounts for every row, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(side, side, async (source, target) => {
        // Act
        const result = await reconcile(
          inputInPieces('s.csv', render(source), source.cuts),
          inputInPieces('t.csv', render(target), target.cuts),
          policy,
        );
        const whole = await reconcile(input('s.csv', render(source)), input('t.csv', render(target)), policy);
        // Assess
        const found = result.findings
          .map((f) => (f.type === 'INVALID_RECORD' ? `${f.type} ${f.key.side}` : `${f.type} ${f.keyText}`))
          .sort();
        expect(found).toEqual(expected(source, target));
        expect(withoutDuration(result)).toEqual(withoutDuration(whole));
        for (const s of SIDES) {
          expect(result.summary.rows[s]).toBe(
            result.summary.matched + result.findings.reduce((n, f) => n + f.lines[s].length, 0),
          );
        }
      }),
      { numRuns: 300 },
    );
  });
});

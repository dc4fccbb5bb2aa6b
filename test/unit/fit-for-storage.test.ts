/**
 * A finding cut to one DynamoDB item's size before it is stored (functions/store/fit-for-storage.ts):
 * what is kept, what is cut, and that the row says so.
 */
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../functions/recon/findings.ts';
import {
  DIFF_CHARS,
  FINDING_BUDGET_BYTES,
  fitForStorage,
  LINES_KEPT,
  OMITTED,
  VALUE_CHARS,
} from '../../functions/store/fit-for-storage.ts';

const finding = (f: Partial<Finding>): Finding => ({
  type: 'FIELD_MISMATCH',
  key: { trade_id: 'T1' },
  keyText: 'T1',
  source: { trade_id: 'T1', amount: '1.00' },
  target: { trade_id: 'T1', amount: '2.00' },
  diffs: [],
  lines: { source: [2], target: [2] },
  severity: 'LOW',
  ...f,
});
const size = (f: Finding) => Buffer.byteLength(JSON.stringify([f.key, f.source, f.target, f.diffs, f.lines, f.reason]));

describe('fitForStorage', () => {
  it('stores a finding within the budget as it is', () => {
    const small = finding({});
    expect(fitForStorage(small)).toBe(small);
  });

  it('keeps the first line numbers of a key found on 120,000 rows, and says so on the row', () => {
    const lines = Array.from({ length: 120_000 }, (_, i) => i + 2);
    const fitted = fitForStorage(finding({ type: 'DUPLICATE_IN_SOURCE', lines: { source: lines, target: [2] } }));
    expect(fitted.lines).toEqual({ source: lines.slice(0, LINES_KEPT), target: [2] });
    expect(fitted.source).toEqual({
      trade_id: 'T1',
      amount: '1.00',
      [OMITTED]: `not stored (over DynamoDB's item size): line numbers after the first ${LINES_KEPT} of 120000`,
    });
    expect(fitted.target).toEqual({ trade_id: 'T1', amount: '2.00' });
    expect(size(fitted)).toBeLessThanOrEqual(FINDING_BUDGET_BYTES);
  });

  it('cuts long values of the rows and the diffs', () => {
    const long = (c: string) => c.repeat(65_536);
    const row = (c: string) => ({ trade_id: 'T1', a: long(c), b: long(c), c: long(c), note: 'short' });
    const fitted = fitForStorage(
      finding({ source: row('x'), target: row('y'), diffs: [{ field: 'a', source: long('x'), target: long('y') }] }),
    );
    expect(fitted.source?.a).toBe(`${'x'.repeat(VALUE_CHARS)}…`);
    expect(fitted.source?.note).toBe('short');
    expect(fitted.target?.[OMITTED]).toBe(
      `not stored (over DynamoDB's item size): the text past ${VALUE_CHARS} characters of 3 values`,
    );
    expect(fitted.diffs).toEqual([
      { field: 'a', source: `${'x'.repeat(DIFF_CHARS)}…`, target: `${'y'.repeat(DIFF_CHARS)}…` },
    ]);
    expect(size(fitted)).toBeLessThanOrEqual(FINDING_BUDGET_BYTES);
  });

  it('drops the fields after those the key and the diffs name from a row of 30,000 extra fields', () => {
    const extras = Object.fromEntries(Array.from({ length: 30_000 }, (_, i) => [`_extra_${i + 1}`, `v${i}`.repeat(3)]));
    const source = { trade_id: 'T2', amount: '1.00', ...extras };
    const fitted = fitForStorage(
      finding({
        type: 'INVALID_RECORD',
        key: { side: 'source', line: '3' },
        keyText: 'source:3',
        source,
        target: null,
        reason: 'expected 2 fields, found 30002',
      }),
    );
    const kept = Object.keys(fitted.source ?? {});
    expect(kept.slice(0, 3)).toEqual(['trade_id', 'amount', '_extra_1']);
    const dropped = 30_002 - (kept.length - 1);
    expect(dropped).toBeGreaterThan(0);
    expect(fitted.source?.[OMITTED]).toBe(`not stored (over DynamoDB's item size): ${dropped} fields`);
    expect(size(fitted)).toBeLessThanOrEqual(FINDING_BUDGET_BYTES);
    expect(size(fitted)).toBeGreaterThan(FINDING_BUDGET_BYTES - 4096);
  });

  const wide = (fields: number, chars: number) => {
    const names = Array.from({ length: fields }, (_, i) => `f${i}`);
    const row = (c: string) => ({ trade_id: 'T3', ...Object.fromEntries(names.map((n) => [n, c.repeat(chars)])) });
    const diffs = names.map((n) => ({ field: n, source: 'x'.repeat(chars), target: 'y'.repeat(chars) }));
    return finding({ source: row('x'), target: row('y'), diffs });
  };

  it('cuts the diffs further when a policy compares many fields and all differ', () => {
    const fitted = fitForStorage(wide(60, 65_536));
    expect(fitted.diffs).toHaveLength(60);
    expect(fitted.diffs[59]).toEqual({
      field: 'f59',
      source: `${'x'.repeat(VALUE_CHARS)}…`,
      target: `${'y'.repeat(VALUE_CHARS)}…`,
    });
    expect(fitted.source?.[OMITTED]).toBe(
      `not stored (over DynamoDB's item size): the text past ${VALUE_CHARS} characters of 60 values; ` +
        `the text past ${VALUE_CHARS} characters of 60 differences`,
    );
    expect(size(fitted)).toBeLessThanOrEqual(FINDING_BUDGET_BYTES);
  });

  it('keeps the differences that fit, with their fields, when even their names and short values do not', () => {
    const fitted = fitForStorage(wide(1_000, 300));
    const kept = fitted.diffs.length;
    expect(kept).toBeGreaterThan(100);
    expect(kept).toBeLessThan(1_000);
    expect(fitted.diffs.map((d) => d.field)).toEqual(Array.from({ length: kept }, (_, i) => `f${i}`));
    expect(Object.keys(fitted.target ?? {})).toEqual(['trade_id', ...fitted.diffs.map((d) => d.field), OMITTED]);
    expect(fitted.source?.[OMITTED]).toContain(
      `; ${1_000 - kept} of 1000 differences after the first ${kept}, and their fields`,
    );
    expect(size(fitted)).toBeLessThanOrEqual(FINDING_BUDGET_BYTES);
    expect(size(fitted)).toBeGreaterThan(FINDING_BUDGET_BYTES - 4096);
  });
});

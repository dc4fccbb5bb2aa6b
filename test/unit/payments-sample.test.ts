/**
 * The shipped datasets: the payments sample (semicolon CSV with decimal commas against JSON Lines,
 * different column names, day-first against ISO dates, status equivalents) reconciled through the
 * engine and through `tally recon`, and trades' per-dataset policy read as the pipeline's default.
 */
import { execFile } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
// Every run also partitioned under small memory budgets, and checked against the run in memory.
import { reconcile } from '../support/recon-modes.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

const repo = (path: string) => join(REPO_ROOT, path);
const PAYMENTS = {
  policy: repo('policies/datasets/payments.md'),
  source: repo('scripts/local/sample/payments/source.csv'),
  target: repo('scripts/local/sample/payments/target.jsonl'),
};

/** The breaks planted in the sample, one per payment, with what each shows. */
const EXPECTED = [
  ['AMOUNT_MISMATCH', 'PAY-0006', 'MEDIUM', [['amount', '5.000,00', '5100.00', '100.00']]],
  ['AMOUNT_MISMATCH', 'PAY-0014', 'HIGH', [['amount', '25.000,00', '40000.00', '15000.00']]],
  ['DUPLICATE_IN_TARGET', 'PAY-0012', 'HIGH', []],
  ['FIELD_MISMATCH', 'PAY-0007', 'MEDIUM', [['currency', 'EUR', 'GBP', undefined]]],
  ['FIELD_MISMATCH', 'PAY-0008', 'MEDIUM', [['value_date', '03/12/2025', '2025-12-06', '3']]],
  ['INVALID_RECORD', 'source:11', 'LOW', []],
  ['MISSING_IN_SOURCE', 'PAY-0010', 'MEDIUM', []],
  ['MISSING_IN_TARGET', 'PAY-0009', 'HIGH', []],
];

describe('the payments sample', () => {
  const policy = parseReconPolicy(readFileSync(PAYMENTS.policy, 'utf8'), PAYMENTS.policy);

  it('finds exactly the planted breaks, and matches what differs only within the rules', async () => {
    // Act
    const { findings, summary } = await reconcile(
      { name: PAYMENTS.source, stream: createReadStream(PAYMENTS.source) },
      { name: PAYMENTS.target, stream: createReadStream(PAYMENTS.target) },
      policy,
    );
    // Assess
    const got = findings
      .map((f) => [f.type, f.keyText, f.severity, f.diffs.map((d) => [d.field, d.source, d.target, d.delta])])
      .sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`));
    expect(got).toEqual(EXPECTED);
    // PAY-0001..0005 and 0013 match: decimal comma, lower-case key, STL, 0.04% off, a day off, P/eur.
    expect(summary.matched).toBe(6);
    expect(summary.fields.amount).toEqual({ unequal: 3, within_tolerance: 1, largest_difference: '15000.00' });
    expect(summary.fields.value_date).toEqual({ unequal: 2, within_tolerance: 1, largest_difference: '3' });
    // The invalid hub row carries the correspondent's row: one exception for PAY-0011.
    const invalid = findings.find((f) => f.type === 'INVALID_RECORD');
    expect(invalid?.lines).toEqual({ source: [11], target: [10] });
    expect(invalid?.target?.payment_id).toBe('PAY-0011');
    expect(summary.outcome).toBe('FAIL');
    expect(summary.thresholds_crossed.map((c) => `${c.level} ${c.condition}`)).toEqual([
      'fail break_rate',
      'fail exceptions.MISSING_IN_TARGET',
      'warn break_rate',
    ]);
    expect(summary.control_totals.map((g) => [g.group.currency, g.source.rows, g.target.rows])).toEqual([
      ['EUR', 8, 8],
      ['GBP', 1, 2],
      ['USD', 3, 4],
    ]);
  });

  describe('through tally recon', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-payments-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const tally = repo('scripts/cli/tally.ts');
    const run = promisify(execFile);
    const args = ['recon', '--policy', PAYMENTS.policy, '--source', PAYMENTS.source, '--target', PAYMENTS.target];

    it('writes the same exceptions, a Markdown and an HTML report, and exits 1 on FAIL', async () => {
      // Act
      const md = await run(process.execPath, [
        tally,
        ...args,
        '--date',
        '2025-12-05',
        '--report',
        join(dir, 'r.md'),
      ]).catch((e: { code: number; stdout: string; stderr: string }) => e);
      const html = await run(process.execPath, [
        tally,
        ...args,
        '--report',
        join(dir, 'r.html'),
        '--out',
        join(dir, 'x.jsonl'),
      ]).catch((e: { code: number; stdout: string }) => e);
      // Assess
      expect(md).toMatchObject({ code: 1 });
      expect(html).toMatchObject({ code: 1 });
      const records = md.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { exception_type: string; dataset: string; key: Record<string, string> });
      expect(records.map((r) => r.exception_type).sort()).toEqual(EXPECTED.map((e) => e[0]));
      expect(records.every((r) => r.dataset === 'payments')).toBe(true);
      expect(readFileSync(join(dir, 'x.jsonl'), 'utf8').trim().split('\n')).toHaveLength(EXPECTED.length);
      expect(JSON.parse(md.stderr.trim()).summary.outcome).toBe('FAIL');

      const report = readFileSync(join(dir, 'r.md'), 'utf8');
      expect(report).toContain('## Outcome: FAIL');
      expect(report).toContain('| fail | exceptions.MISSING_IN_TARGET | 0 | 1 |');
      expect(report).toContain('| amount | 3 | 1 | 2 | 15000.00 |');
      expect(report).toContain('| EUR | 8 | 8 | 0 | 132730.09 | 148174.59 | 15444.50 |');
      expect(report).toContain('| **amount (amt / amount)** | **5.000,00** | **5100.00** |');
      const page = readFileSync(join(dir, 'r.html'), 'utf8');
      expect(page).toMatch(/^<!doctype html>/);
      expect(page).toContain('<span class="FAIL">FAIL</span>');
      expect(page).toContain('<tr class="diff"><td>amount (amt / amount)</td><td>5.000,00</td><td>5100.00</td></tr>');
      expect(page).not.toMatch(/<script|<link|src=/);
    });

    it('exits 0 on PASS, 2 on an unreadable input or a bad --report name', async () => {
      const same = await run(process.execPath, [
        tally,
        'recon',
        '--policy',
        PAYMENTS.policy,
        '--source',
        PAYMENTS.target,
        '--target',
        PAYMENTS.target,
      ]).catch((e: { code: number; stderr: string }) => e);
      // The target read as the hub's CSV has none of its columns: unreadable for this policy.
      expect(same).toMatchObject({ code: 2 });
      expect((same as { stderr: string }).stderr).toContain('MISSING_COLUMNS');
      const badName = await run(process.execPath, [tally, ...args, '--report', join(dir, 'r.pdf')]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect(badName).toMatchObject({ code: 2 });
      expect((badName as { stderr: string }).stderr).toContain('--report must name a .md or .html file');
      const missing = await run(process.execPath, [
        tally,
        'recon',
        '--policy',
        PAYMENTS.policy,
        '--target',
        PAYMENTS.target,
        '--source',
        join(dir, 'nope.csv'),
      ]).catch((e: { code: number; stderr: string }) => e);
      expect(missing).toMatchObject({ code: 2 });
      expect((missing as { stderr: string }).stderr).toContain('FILE_UNREADABLE');

      const pass = await run(process.execPath, [
        tally,
        'recon',
        '--policy',
        repo('policies/datasets/trades.md'),
        '--source',
        repo('scripts/local/sample/source.csv'),
        '--target',
        repo('scripts/local/sample/source.csv'),
      ]);
      expect(JSON.parse(pass.stderr.trim()).summary.outcome).toBe('PASS');
    });
  });
});

describe("trades' per-dataset policy", () => {
  it('states what the pipeline default (the short form) states, and finds the same breaks', async () => {
    const long = parseReconPolicy(readFileSync(repo('policies/datasets/trades.md'), 'utf8'));
    const short = parseReconPolicy(readFileSync(repo('policies/recon-policy.md'), 'utf8'));
    expect(long.dataset).toBe('trades');
    // Date formats hold parse functions: compare their patterns (JSON drops functions).
    const engineView = (p: typeof long) =>
      JSON.stringify(
        {
          sides: p.sides,
          keys: p.keys,
          fields: p.fields,
          amountField: p.amountField,
          thresholds: p.thresholds,
          severityRules: p.severityRules,
          defaultSeverity: p.defaultSeverity,
          allowEmptySides: p.allowEmptySides,
        },
        (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Map ? [...v] : v),
      );
    expect(engineView(long)).toEqual(engineView(short));
    const sample = (name: string) => ({ name, stream: createReadStream(repo(`scripts/local/sample/${name}`)) });
    const a = await reconcile(sample('source.csv'), sample('target.csv'), long);
    const b = await reconcile(sample('source.csv'), sample('target.csv'), short);
    expect(a.findings).toEqual(b.findings);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decimal, formatDecimal } from '../../functions/shared/decimal.ts';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { amountBreak, FindingBuilder, severityOf, type LoadedSide } from '../../functions/recon/findings.ts';

const policy = parseReconPolicy(readFileSync(new URL('../../policies/recon-policy.md', import.meta.url), 'utf8'));
const header = ['trade_id', 'account_id', 'trade_date', 'amount'];
const source: LoadedSide = { side: 'source', header };
const target: LoadedSide = { side: 'target', header };
const columns = { text: [1, 2], amount: 3 };

function policyWith(settings: Record<string, unknown>): ReconPolicy {
  const json = {
    policy_version: 't',
    key_columns: ['trade_id'],
    compared_fields: ['account_id', 'amount'],
    amount_field: 'amount',
    severity_rules: [],
    default_severity: 'LOW',
    ...settings,
  };
  return parseReconPolicy(`# P\n\n\`\`\`json tally-policy\n${JSON.stringify(json)}\n\`\`\`\n`);
}

describe('amountBreak applies the policy tolerance', () => {
  it.each([
    ['10.00', '10.01', undefined],
    ['10.00', '9.99', undefined],
    ['10.00', '10.010', undefined],
    ['10.00', '10.011', '0.011'],
    ['10.00', '9.98', '-0.02'],
  ])('%s vs %s breaks by %s', (a, b, delta) => {
    const d = amountBreak(decimal(a), decimal(b), policy);
    expect(d === undefined ? undefined : formatDecimal(d)).toBe(delta);
  });

  it('reads the tolerance from the policy, zero when it has none', () => {
    const strict = policyWith({});
    const loose = policyWith({ amount_tolerance: { absolute: '5' } });
    expect(amountBreak(decimal('1'), decimal('1.001'), strict)).toBeDefined();
    expect(amountBreak(decimal('1'), decimal('6'), loose)).toBeUndefined();
    expect(amountBreak(decimal('1'), decimal('6.01'), loose)).toBeDefined();
  });
});

describe('FindingBuilder', () => {
  it('compares trimmed text fields and amounts within tolerance as agreeing', () => {
    const build = new FindingBuilder(policy);
    const finding = build.compare(
      'T1',
      source,
      { line: 2, text: 'T1,A1,2025-12-01,10.00' },
      columns,
      target,
      { line: 3, text: ['T1', ' A1 ', '2025-12-01', '10.01'] },
      columns,
    );
    expect(finding).toBeUndefined();
  });

  it('reports an amount beyond tolerance as AMOUNT_MISMATCH with the severity its delta earns', () => {
    // Act
    const finding = new FindingBuilder(policy).compare(
      'T1',
      source,
      { line: 2, text: 'T1,A1,2025-12-01,10.00' },
      columns,
      target,
      { line: 3, text: 'T1,A1,2025-12-01,1010.00' },
      columns,
    );
    // Assess
    expect(finding?.type).toBe('AMOUNT_MISMATCH');
    expect(finding?.diffs).toEqual([{ field: 'amount', source: '10.00', target: '1010.00', delta: '1000.00' }]);
    expect(finding?.severity).toBe(severityOf('AMOUNT_MISMATCH', policy, decimal('1000.00')));
    expect(finding?.lines).toEqual({ source: [2], target: [3] });
  });

  it('gives each run the severities of its own policy', () => {
    // Prepare: two policies that disagree on the severity of a missing row.
    const high = policyWith({ severity_rules: [{ exception_type: 'MISSING_IN_TARGET', severity: 'HIGH' }] });
    const low = policyWith({ severity_rules: [{ exception_type: 'MISSING_IN_TARGET', severity: 'LOW' }] });
    const entry = { line: 2, text: 'T1,A1,2025-12-01,1.00' };
    // Act
    const a = new FindingBuilder(high).missing('MISSING_IN_TARGET', 'T1', source, entry);
    const b = new FindingBuilder(low).missing('MISSING_IN_TARGET', 'T1', source, entry);
    const c = new FindingBuilder(high).missing('MISSING_IN_TARGET', 'T1', source, entry);
    // Assess
    expect([a.severity, b.severity, c.severity]).toEqual(['HIGH', 'LOW', 'HIGH']);
    expect(a.key).toEqual({ trade_id: 'T1' });
    expect(a.target).toBeNull();
  });

  it('names extra fields of an invalid row and cuts long ones', () => {
    const finding = new FindingBuilder(policy).invalidRecord(
      'target',
      ['a', 'b'],
      ['1', 'x'.repeat(300), 'more'],
      7,
      'expected 2 fields, found 3',
    );
    expect(finding.keyText).toBe('target:7');
    expect(finding.target).toEqual({ a: '1', b: `${'x'.repeat(256)}…`, _extra_1: 'more' });
    expect(finding.lines).toEqual({ source: [], target: [7] });
  });
});

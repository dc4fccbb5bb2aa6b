import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PolicyError, parseReconPolicy, requiredColumns } from '../../functions/shared/policy.ts';
import { formatDecimal } from '../../functions/shared/decimal.ts';
import { loadReconPolicyFile } from '../../functions/shared/recon-policy-file.ts';

const markdown = readFileSync(new URL('../../policies/recon-policy.md', import.meta.url), 'utf8');

const settings = {
  policy_version: 'test.1',
  key_columns: ['trade_id'],
  compared_fields: ['account_id', 'amount'],
  amount_field: 'amount',
  amount_tolerance: { absolute: '0.01' },
  severity_rules: [{ exception_type: 'AMOUNT_MISMATCH', min_abs_delta: '1000', severity: 'HIGH' }],
  default_severity: 'MEDIUM',
};

function documentWith(json: string): string {
  return `# Policy\n\nProse.\n\n\`\`\`json tally-policy\n${json}\n\`\`\`\n\nMore prose.\n`;
}

function policyError(text: string): PolicyError {
  try {
    parseReconPolicy(text, 'test-policy.md');
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('expected parseReconPolicy to fail with PolicyError');
}

describe('parseReconPolicy on the real policy', () => {
  it('reads the settings the engine runs under', () => {
    // Act
    const policy = parseReconPolicy(markdown);
    // Assess
    expect(policy.policyVersion).toBe('2026.1');
    expect(policy.keyColumns).toEqual(['trade_id']);
    expect(policy.textFields).toEqual(['account_id', 'trade_date']);
    expect(policy.amountField).toBe('amount');
    expect(formatDecimal(policy.amountTolerance)).toBe('0.01');
    expect(policy.defaultSeverity).toBe('MEDIUM');
    expect(policy.severityRules[0]).toMatchObject({ exceptionType: 'AMOUNT_MISMATCH', severity: 'CRITICAL' });
    expect(formatDecimal(policy.severityRules[0]?.minAbsDelta ?? { units: 0n, scale: 0 })).toBe('100000');
    expect(policy.severityRules).toHaveLength(9);
    expect(requiredColumns(policy)).toEqual(['trade_id', 'account_id', 'trade_date', 'amount']);
  });

  it('hashes the whole document, so a prose edit changes the hash', () => {
    const policy = parseReconPolicy(markdown);
    expect(policy.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(parseReconPolicy(markdown).hash).toBe(policy.hash);
    expect(parseReconPolicy(`${markdown}\n`).hash).not.toBe(policy.hash);
  });

  it('is frozen', () => {
    const policy = parseReconPolicy(markdown);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.keyColumns)).toBe(true);
  });

  it('loads from the repository path', () => {
    expect(loadReconPolicyFile().hash).toBe(parseReconPolicy(markdown).hash);
  });

  it('normalises column names to trimmed lower case', () => {
    const policy = parseReconPolicy(
      documentWith(
        JSON.stringify({
          ...settings,
          key_columns: [' Trade_ID '],
          compared_fields: ['Account_Id', 'AMOUNT'],
          amount_field: 'Amount',
        }),
      ),
    );
    expect(policy.keyColumns).toEqual(['trade_id']);
    expect(policy.textFields).toEqual(['account_id']);
    expect(policy.amountField).toBe('amount');
  });

  it('defaults the tolerance to zero when none is given', () => {
    const { amount_tolerance: _omit, ...rest } = settings;
    expect(formatDecimal(parseReconPolicy(documentWith(JSON.stringify(rest))).amountTolerance)).toBe('0');
  });
});

describe('parseReconPolicy rejects a broken policy with a clear PolicyError', () => {
  it('fails when there is no tally-policy block', () => {
    const error = policyError(markdown.replace('```json tally-policy', '```json'));
    expect(error.code).toBe('POLICY_INVALID');
    expect(error.message).toMatch(/^test-policy\.md: no ```json tally-policy block found/);
  });

  it('fails when the block is not valid JSON', () => {
    const error = policyError(documentWith('{ "policy_version": "x", }'));
    expect(error.message).toMatch(/test-policy\.md: the tally-policy block is not valid JSON/);
  });

  it('fails on an unknown setting, naming it', () => {
    const error = policyError(documentWith(JSON.stringify({ ...settings, amount_tolerence: { absolute: '1' } })));
    expect(error.message).toMatch(/invalid settings/);
    expect(error.message).toContain('amount_tolerence');
  });

  it('fails when amount_field is not a compared field', () => {
    const error = policyError(documentWith(JSON.stringify({ ...settings, compared_fields: ['account_id'] })));
    expect(error.message).toMatch(/amount_field "amount" must also be listed in compared_fields/);
  });

  it('fails when a key column is also a compared field', () => {
    const error = policyError(documentWith(JSON.stringify({ ...settings, compared_fields: ['trade_id', 'amount'] })));
    expect(error.message).toMatch(/trade_id cannot be both a key column and a compared field/);
  });

  it.each([
    ['a non-decimal tolerance', { amount_tolerance: { absolute: '1E-2' } }, 'amount_tolerance.absolute'],
    [
      'an unknown exception type',
      { severity_rules: [{ exception_type: 'AMOUNT_MISMATCHH', severity: 'HIGH' }] },
      'severity_rules.0.exception_type',
    ],
    ['an unknown severity', { default_severity: 'URGENT' }, 'default_severity'],
    ['no key columns', { key_columns: [] }, 'key_columns'],
    ['an empty column name', { compared_fields: ['  ', 'amount'] }, 'compared_fields.0'],
  ])('fails on %s, naming the setting', (_name, override, path) => {
    const error = policyError(documentWith(JSON.stringify({ ...settings, ...override })));
    expect(error).toBeInstanceOf(PolicyError);
    expect(error.message).toContain(path);
  });
});

describe('allow_empty_sides', () => {
  it('is off unless the policy says so, and then on', () => {
    expect(parseReconPolicy(documentWith(JSON.stringify(settings))).allowEmptySides).toBe(false);
    expect(
      parseReconPolicy(documentWith(JSON.stringify({ ...settings, allow_empty_sides: true }))).allowEmptySides,
    ).toBe(true);
  });

  it('must be a boolean', () => {
    expect(policyError(documentWith(JSON.stringify({ ...settings, allow_empty_sides: 'yes' }))).message).toMatch(
      /allow_empty_sides/,
    );
  });
});

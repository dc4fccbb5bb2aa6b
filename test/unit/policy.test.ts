import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compileDateFormat,
  DEFAULT_HOLD_BREAK_RATE,
  DEFAULT_HOLD_EXCEPTIONS,
  DEFAULT_LARGE_ABOVE_BYTES,
  DEFAULT_PATTERN_MIN_MEMBERS,
  isoDate,
  normalizeText,
  PolicyError,
  parseReconPolicy,
  requiredColumns,
  usesSqlEngine,
} from '../../functions/shared/policy.ts';
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

describe('PolicyError.problems', () => {
  it('lists each problem on its own, the message joining them after the file and "invalid settings"', () => {
    const both = policyError(documentWith(JSON.stringify({ key_columns: ['id'], key: [{ field: 'id' }] })));
    const notObject = policyError(documentWith('[1]'));

    expect(both.problems).toEqual([
      '(root): use either the short form (key_columns, compared_fields) or the long form (key, fields), not both',
    ]);
    expect(both.message).toBe(`test-policy.md: invalid settings: ${both.problems[0]}`);
    expect(notObject.problems).toEqual(['(root): expected a JSON object']);
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

const longForm = {
  policy_version: '2026.2',
  dataset: 'payments',
  source: { format: 'csv', delimiter: ';', decimal_separator: ',' },
  target: { format: 'jsonl' },
  key: [{ field: 'payment_id', source: 'PaymentRef', target: 'payment_id', normalize: ['trim', 'upper'] }],
  fields: [
    {
      field: 'amount',
      source: 'Amt',
      target: 'amount',
      type: 'decimal',
      tolerance: { absolute: '0.01', relative: '0.0005' },
    },
    {
      field: 'value_date',
      source: 'ValueDate',
      target: 'value_date',
      type: 'date',
      source_format: 'DD/MM/YYYY',
      target_format: 'YYYY-MM-DD',
      tolerance_days: 1,
    },
    { field: 'currency', source: 'Ccy', target: 'currency', type: 'text', normalize: ['trim', 'upper'] },
    {
      field: 'status',
      type: 'text',
      equivalents: [
        ['SETTLED', 'STL', 'S'],
        ['PENDING', 'PND', 'P'],
      ],
    },
  ],
  amount_field: 'amount',
  thresholds: { warn: { break_rate: '0.001' }, fail: { break_rate: '0.01', exceptions: { MISSING_IN_TARGET: 0 } } },
  control_totals: { group_by: ['currency'], sum: ['amount'] },
  severity_rules: [{ exception_type: 'AMOUNT_MISMATCH', min_abs_delta: '10000', severity: 'HIGH' }],
  default_severity: 'MEDIUM',
};

describe('the long form', () => {
  it('reads every setting of the contract', () => {
    // Act
    const policy = parseReconPolicy(documentWith(JSON.stringify(longForm)));
    // Assess
    expect(policy.dataset).toBe('payments');
    expect(policy.sides.source).toEqual({ format: 'csv', delimiter: ';', decimalSeparator: ',', encoding: 'utf-8' });
    expect(policy.sides.target.format).toBe('jsonl');
    expect(policy.keys).toEqual([
      { field: 'payment_id', source: 'paymentref', target: 'payment_id', normalize: ['upper'] },
    ]);
    const [amount, valueDate, currency, status] = policy.fields;
    expect(amount?.type).toBe('decimal');
    expect(formatDecimal(amount!.tolerance.absolute)).toBe('0.01');
    expect(formatDecimal(amount!.tolerance.relative)).toBe('0.0005');
    expect(valueDate?.sourceFormat.parse('31/12/2025')).toBe(valueDate?.targetFormat.parse('2025-12-31'));
    expect(valueDate?.toleranceDays).toBe(1);
    expect(currency?.normalize).toEqual(['upper']);
    expect(status?.type).toBe('text');
    expect(status?.equivalents?.get('STL')).toBe('SETTLED');
    expect(status?.equivalents?.get('P')).toBe('PENDING');
    expect(policy.amountField).toBe('amount');
    expect(policy.textFields).toEqual(['value_date', 'currency', 'status']);
    expect(requiredColumns(policy, 'source')).toEqual(['paymentref', 'valuedate', 'ccy', 'status', 'amt']);
    expect(requiredColumns(policy, 'target')).toEqual(['payment_id', 'value_date', 'currency', 'status', 'amount']);
    expect(formatDecimal(policy.thresholds!.fail!.breakRate!)).toBe('0.01');
    expect(policy.thresholds?.fail?.exceptions).toEqual({ MISSING_IN_TARGET: 0 });
    expect(policy.controlTotals).toEqual({ groupBy: ['currency'], sum: ['amount'] });
    expect(policy.symmetric).toBe(false);
  });

  it('reads the short form as the long form it abbreviates', () => {
    const policy = parseReconPolicy(markdown);
    expect(policy.keys).toEqual([{ field: 'trade_id', source: 'trade_id', target: 'trade_id', normalize: [] }]);
    expect(policy.fields.map((f) => [f.field, f.type])).toEqual([
      ['account_id', 'text'],
      ['trade_date', 'text'],
      ['amount', 'decimal'],
    ]);
    expect(formatDecimal(policy.fields[2]!.tolerance.absolute)).toBe('0.01');
    expect(formatDecimal(policy.fields[2]!.tolerance.relative)).toBe('0');
    expect(policy.sides.source.format).toBe('csv');
    expect(policy.thresholds).toBeUndefined();
    expect(policy.symmetric).toBe(true);
  });

  it('names every problem of the schema in one error, with its path and what was expected', () => {
    // Act
    const error = policyError(
      documentWith(
        JSON.stringify({
          ...longForm,
          key: [],
          fields: [{ field: 'amount', type: 'money', tolerance: { absolute: 'x' } }, { field: 3 }],
          thresholds: { warn: { break_rate: '-1' } },
          source: { format: 'xml' },
        }),
      ),
    );
    // Assess
    expect(error.message).toContain('key: Too small');
    expect(error.message).toContain('fields.0.type: Invalid option: expected one of "text"|"decimal"|"date"|"integer"');
    expect(error.message).toContain('fields.0.tolerance.absolute: must be a decimal string');
    expect(error.message).toContain('fields.1.field: Invalid input: expected string, received number');
    expect(error.message).toContain('thresholds.warn.break_rate: must not be negative');
    expect(error.message).toContain('source.format: Invalid option');
  });

  it('names a date format that lacks a part', () => {
    const error = policyError(
      documentWith(
        JSON.stringify({
          ...longForm,
          fields: [...longForm.fields, { field: 'd', type: 'date', source_format: 'DD/MM/YY' }],
        }),
      ),
    );
    expect(error.message).toContain('fields.4.source_format: must contain YYYY, MM and DD once each');
  });

  it('names every rule the settings break together in one error', () => {
    const error = policyError(
      documentWith(
        JSON.stringify({
          ...longForm,
          target: { format: 'jsonl', delimiter: ';' },
          amount_field: 'status',
          control_totals: { group_by: ['nope'], sum: ['currency'] },
          fields: [
            ...longForm.fields,
            { field: 'qty', type: 'integer', tolerance: { absolute: '1' } },
            {
              field: 'status2',
              source: 'status',
              equivalents: [
                ['A', 'B'],
                ['b', 'C'],
              ],
            },
            { field: 'fx', type: 'text', source_format: 'DD.MM.YYYY' },
          ],
        }),
      ),
    );
    expect(error.message).toContain("target.delimiter: applies to csv files only; this side's format is jsonl");
    expect(error.message).toContain('amount_field: "status" must be a field of type decimal, not text');
    expect(error.message).toContain('control_totals.group_by.0: "nope" must be a key field or a compared field');
    expect(error.message).toContain('control_totals.sum.0: "currency" must be a compared field of type decimal');
    expect(error.message).toContain('fields.4.tolerance: applies to decimal fields only; this field is integer');
    expect(error.message).toContain('source: column "status" is mapped to more than one key or field');
    expect(error.message).toContain('fields.6.source_format: applies to date fields only');
  });

  it('refuses a document that mixes the two forms', () => {
    const error = policyError(documentWith(JSON.stringify({ ...longForm, key_columns: ['x'] })));
    expect(error.message).toMatch(/either the short form .* or the long form/);
  });

  it('refuses an equivalent value in two groups (after normalising)', () => {
    const error = policyError(
      documentWith(
        JSON.stringify({
          ...longForm,
          fields: [
            { field: 'amount', type: 'decimal' },
            {
              field: 's',
              normalize: ['upper'],
              equivalents: [
                ['A', 'B'],
                ['b', 'C'],
              ],
            },
          ],
        }),
      ),
    );
    expect(error.message).toContain('fields.1.equivalents.1: "b" is already in another group');
  });
});

describe('date formats', () => {
  it.each([
    ['YYYY-MM-DD', '2024-02-29', '2024-02-29'],
    ['DD/MM/YYYY', '01/03/2025', '2025-03-01'],
    ['MM/DD/YYYY', '03/01/2025', '2025-03-01'],
    ['YYYYMMDD', '20251231', '2025-12-31'],
    ['DD.MM.YYYY', '31.12.0099', '0099-12-31'],
  ])('%s reads %s as %s', (pattern, text, iso) => {
    const days = compileDateFormat(pattern)?.parse(text);
    expect(days).toBeDefined();
    expect(isoDate(days!)).toBe(iso);
  });

  it.each([
    ['YYYY-MM-DD', '2025-02-29'],
    ['YYYY-MM-DD', '2025-13-01'],
    ['YYYY-MM-DD', '2025-1-01'],
    ['YYYY-MM-DD', '2025/01/01'],
    ['DD/MM/YYYY', '2025-01-01'],
    ['DD/MM/YYYY', '00/01/2025'],
    ['YYYY-MM-DD', '２０２５-01-01'],
  ])('%s rejects %s', (pattern, text) => {
    expect(compileDateFormat(pattern)?.parse(text)).toBeUndefined();
  });

  it('refuses a pattern without each part exactly once', () => {
    expect(compileDateFormat('DD/MM/YY')).toBeUndefined();
    expect(compileDateFormat('DD/MM/YYYY/DD')).toBeUndefined();
  });
});

describe('normalizeText', () => {
  it.each([
    [[], '  ab C ', 'ab C'],
    [['upper'], ' ab ', 'AB'],
    [['lower'], ' AB ', 'ab'],
    [['strip_leading_zeros'], ' 00123 ', '123'],
    [['strip_leading_zeros'], '000', '0'],
    [['strip_leading_zeros', 'upper'], '00ab', 'AB'],
  ] as const)('%j turns %j into %j', (normalize, value, expected) => {
    expect(normalizeText(value, normalize)).toBe(expected);
  });
});

describe('engine choice', () => {
  it('sends runs above 512 MiB of both files together to the SQL engine by default', () => {
    const policy = parseReconPolicy(documentWith(JSON.stringify(settings)));
    expect(policy.engine.largeAboveBytes).toBe(DEFAULT_LARGE_ABOVE_BYTES);
    expect(DEFAULT_LARGE_ABOVE_BYTES).toBe(536_870_912);
    expect(usesSqlEngine(policy, 256 * 1024 * 1024, 256 * 1024 * 1024)).toBe(false);
    expect(usesSqlEngine(policy, 256 * 1024 * 1024, 256 * 1024 * 1024 + 1)).toBe(true);
  });

  it('takes the size from "engine": {"large_above_bytes": N}', () => {
    const policy = parseReconPolicy(documentWith(JSON.stringify({ ...settings, engine: { large_above_bytes: 100 } })));
    expect(policy.engine.largeAboveBytes).toBe(100);
    expect(usesSqlEngine(policy, 50, 50)).toBe(false);
    expect(usesSqlEngine(policy, 50, 51)).toBe(true);
  });

  it('rejects a size that is not a whole number of bytes, and unknown engine settings', () => {
    expect(
      policyError(documentWith(JSON.stringify({ ...settings, engine: { large_above_bytes: -1 } }))).message,
    ).toContain('engine.large_above_bytes: must be a number of bytes, 0 or more');
    expect(
      policyError(documentWith(JSON.stringify({ ...settings, engine: { large_above_bytes: 1.5 } }))).message,
    ).toContain('engine.large_above_bytes');
    expect(policyError(documentWith(JSON.stringify({ ...settings, engine: { kind: 'sql' } }))).message).toContain(
      'engine',
    );
  });
});

describe('the triage block', () => {
  const parse = (triage: unknown) => parseReconPolicy(documentWith(JSON.stringify({ ...settings, triage })));

  it('holds above a break rate of 0.5 or 100,000 exceptions, and makes patterns of 10 members, by default', () => {
    const policy = parseReconPolicy(documentWith(JSON.stringify(settings)));
    expect(formatDecimal(policy.triage.holdAbove.breakRate ?? { units: 0n, scale: 0 })).toBe(DEFAULT_HOLD_BREAK_RATE);
    expect(policy.triage.holdAbove.exceptions).toBe(DEFAULT_HOLD_EXCEPTIONS);
    expect(policy.triage.patternMinMembers).toBe(DEFAULT_PATTERN_MIN_MEMBERS);
    expect([DEFAULT_HOLD_BREAK_RATE, DEFAULT_HOLD_EXCEPTIONS, DEFAULT_PATTERN_MIN_MEMBERS]).toEqual([
      '0.5',
      100_000,
      10,
    ]);
  });

  it('reads each key, the others keeping their defaults', () => {
    const policy = parse({ hold_above: { break_rate: '0.2' }, pattern_min_members: 25 });
    expect(formatDecimal(policy.triage.holdAbove.breakRate ?? { units: 0n, scale: 0 })).toBe('0.2');
    expect(policy.triage.holdAbove.exceptions).toBe(100_000);
    expect(policy.triage.patternMinMembers).toBe(25);
    expect(parse({ hold_above: { exceptions: 500 } }).triage.holdAbove).toMatchObject({ exceptions: 500 });
  });

  it('names every problem in the block', () => {
    const message = policyError(
      documentWith(
        JSON.stringify({
          ...settings,
          triage: { hold_above: { break_rate: 'half', exceptions: -1 }, pattern_min_members: 1 },
        }),
      ),
    ).message;
    expect(message).toContain('triage.hold_above.break_rate: must be a decimal string such as "0.01"');
    expect(message).toContain('triage.hold_above.exceptions: must be 0 or more');
    expect(message).toContain(
      'triage.pattern_min_members: must be at least 2 (a pattern of one member is a singleton)',
    );
    expect(policyError(documentWith(JSON.stringify({ ...settings, triage: { hold: {} } }))).message).toMatch(
      /triage: Unrecognized key: "hold"/,
    );
    expect(
      policyError(documentWith(JSON.stringify({ ...settings, triage: { pattern_min_members: 2.5 } }))).message,
    ).toContain('triage.pattern_min_members: must be a whole number of members');
    expect(
      policyError(documentWith(JSON.stringify({ ...settings, triage: { hold_above: { break_rate: '-0.1' } } })))
        .message,
    ).toContain('triage.hold_above.break_rate: must not be negative');
  });
});

describe('sensitive_fields', () => {
  it('names no column unless the policy does', () => {
    expect(parseReconPolicy(documentWith(JSON.stringify(settings))).sensitiveFields).toEqual([]);
  });

  it("covers both sides' columns of a named key or field, and any other column as named", () => {
    const policy = parseReconPolicy(
      documentWith(JSON.stringify({ ...longForm, sensitive_fields: ['Payment_ID', 'Ccy', 'client_name'] })),
    );
    expect(policy.sensitiveFields).toEqual(['ccy', 'client_name', 'currency', 'payment_id', 'paymentref']);
  });

  it('must be a list of column names', () => {
    expect(policyError(documentWith(JSON.stringify({ ...settings, sensitive_fields: 'account_id' }))).message).toMatch(
      /sensitive_fields/,
    );
    expect(policyError(documentWith(JSON.stringify({ ...settings, sensitive_fields: [''] }))).message).toMatch(
      /sensitive_fields/,
    );
  });
});

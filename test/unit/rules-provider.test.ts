import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decimal } from '../../functions/shared/decimal.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';
import { RulesProvider } from '../../functions/triage/providers/rules.ts';

const policy = parseReconPolicy(readFileSync(new URL('../../policies/recon-policy.md', import.meta.url), 'utf8'));

const amountMismatch = {
  exception_id: 'e1',
  run_id: 'r1',
  dataset: 'trades',
  business_date: '2025-12-10',
  exception_type: 'AMOUNT_MISMATCH',
  key: { trade_id: 'T0005' },
  source: { trade_id: 'T0005', amount: '450.00' },
  target: { trade_id: 'T0005', amount: '475.00' },
  diffs: [{ field: 'amount', source: '450.00', target: '475.00', delta: '25.00' }],
  lines: { source: [6], target: [6] },
  policy_severity: 'MEDIUM',
  severity: 'MEDIUM',
  status: 'OPEN',
  created_at: '2025-12-10T08:00:00Z',
  updated_at: '2025-12-10T08:00:00Z',
  version: 1,
  history: [],
} as ExceptionRecord;

async function summaryUnder(tolerance: string): Promise<string> {
  const provider = new RulesProvider({ amountTolerance: decimal(tolerance) });
  const { answer } = await provider.triage({ exception: amountMismatch, passages: [], system: '', user: '' });
  return (answer as { summary: string }).summary;
}

describe('RulesProvider', () => {
  it('quotes the tolerance of the recon policy it was given', async () => {
    // Act
    const { answer } = await new RulesProvider(policy).triage({
      exception: amountMismatch,
      passages: [],
      system: '',
      user: '',
    });
    // Assess
    expect((answer as { summary: string }).summary).toBe(
      'trade_id T0005: amount differs between source (450.00) and target (475.00), a difference of 25.00, beyond the 0.01 tolerance.',
    );
    expect(answer).toMatchObject({ severity: 'MEDIUM', policy_citations: [] });
  });

  it('follows a policy with another tolerance', async () => {
    expect(await summaryUnder('5')).toMatch(/beyond the 5 tolerance\.$/);
    expect(await summaryUnder('0.005')).toMatch(/beyond the 0\.005 tolerance\.$/);
  });
});

describe("RulesProvider under the dataset's policy", () => {
  const payments = parseReconPolicy(
    readFileSync(new URL('../../policies/datasets/payments.md', import.meta.url), 'utf8'),
    'payments.md',
    'payments',
  );
  const passage = (ref: string, document: string, section: string, type = '') => ({
    ref,
    passage_id: `${document}#${ref}`,
    document,
    section,
    text: 'text',
    exception_type: type as ExceptionRecord['exception_type'] | '',
  });

  it("quotes the dataset's tolerance with its relative part and cites the dataset's own policy section", async () => {
    const exception = { ...amountMismatch, dataset: 'payments' } as ExceptionRecord;
    const passages = [
      passage('P1', 'recon-policy.md', 'Recon › Amount mismatch (AMOUNT_MISMATCH)', 'AMOUNT_MISMATCH'),
      passage(
        'P2',
        'datasets/payments.md',
        'Payments › Exception types › Amount mismatch (AMOUNT_MISMATCH)',
        'AMOUNT_MISMATCH',
      ),
    ];
    const { answer } = await new RulesProvider(policy).triage({
      exception,
      passages,
      policy: payments,
      system: '',
      user: '',
    });
    expect((answer as { summary: string }).summary).toMatch(
      /beyond the 0\.01 \+ 0\.05% of the larger amount tolerance\.$/,
    );
    expect((answer as { policy_citations: string[] }).policy_citations).toEqual(['P2']);
  });

  it("names a missing row's amount, and an invalid record's own side even when it carries the other side's line", async () => {
    const missing = {
      ...amountMismatch,
      exception_type: 'MISSING_IN_TARGET',
      target: null,
      diffs: [],
      lines: { source: [6], target: [] },
    } as ExceptionRecord;
    const invalid = {
      ...amountMismatch,
      exception_type: 'INVALID_RECORD',
      key: { side: 'target', line: '37' },
      source: { trade_id: 'T0040', amount: '310.00' },
      target: { trade_id: 'T0040', amount: '$310.00' },
      diffs: [],
      lines: { source: [42], target: [37] },
      reason: 'amount "$310.00" is not a decimal',
    } as ExceptionRecord;
    const say = async (exception: ExceptionRecord) =>
      (
        (await new RulesProvider(policy).triage({ exception, passages: [], system: '', user: '' })).answer as {
          summary: string;
        }
      ).summary;
    expect(await say(missing)).toBe(
      'trade_id T0005 for 450.00 is in the source extract (line 6) but missing from the target.',
    );
    expect(await say(invalid)).toBe('Line 37 of the target extract was rejected: amount "$310.00" is not a decimal.');
  });
});

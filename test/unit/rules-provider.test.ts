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

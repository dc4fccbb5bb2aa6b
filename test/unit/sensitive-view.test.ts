/**
 * Sensitive values in the API's answers: in the clear for whoever works exceptions, as their
 * keyed tokens (the index's and the prompts') for a viewer — rows, diffs and the triage's text.
 */
import { describe, expect, it } from 'vitest';
import { callerFromClaims, localAdmin } from '../../functions/query-api/access.ts';
import { seesSensitiveValues, sensitiveViewFor } from '../../functions/query-api/sensitive-view.ts';
import { createMasker, isMaskToken, LOCAL_MASKING_SECRET } from '../../functions/shared/masking.ts';
import type { ReconPolicy } from '../../functions/shared/policy.ts';
import { datasetTriagePolicies } from '../../functions/triage/dataset-policy.ts';

const viewer = callerFromClaims({ email: 'v@bank.example', 'cognito:groups': '[viewer]', 'tally:datasets': '*' });
const analyst = callerFromClaims({ email: 'a@bank.example', 'cognito:groups': '[analyst]', 'tally:datasets': '*' });
const deps = {
  datasetPolicies: datasetTriagePolicies(
    {
      current: async (_bucket: string, dataset: string) =>
        ({ sensitiveFields: dataset === 'payments' ? ['account_id'] : [] }) as unknown as ReconPolicy,
    },
    'tally-data',
    LOCAL_MASKING_SECRET,
  ),
};
const record = {
  exception_id: 'e1',
  dataset: 'payments',
  key: { payment_id: 'P1', account_id: 'ACCT2042' },
  source: { payment_id: 'P1', account_id: 'ACCT2042', amount: '10.00' },
  target: { payment_id: 'P1', account_id: 'ACCT2042', amount: '12.00' },
  diffs: [{ field: 'amount', source: '10.00', target: '12.00', delta: '2.00' }],
  triage: {
    summary: 'Payment P1 for ACCT2042 differs by 2.00',
    recommended_actions: ['Call the owner of ACCT2042'],
    root_cause_hypotheses: ['fee'],
  },
};

describe('sensitive values in API answers', () => {
  it('are shown to analysts, approvers and admins, not to viewers', () => {
    expect(seesSensitiveValues(analyst)).toBe(true);
    expect(seesSensitiveValues(localAdmin('local'))).toBe(true);
    expect(seesSensitiveValues(viewer)).toBe(false);
  });

  it("a viewer sees each of the dataset's sensitive values as its token, in the rows and the triage's text", async () => {
    const token = createMasker(['account_id'], LOCAL_MASKING_SECRET).token('ACCT2042');

    const seen = await sensitiveViewFor(viewer, deps)(record);

    expect(JSON.stringify(seen)).not.toContain('ACCT2042');
    expect(isMaskToken(token)).toBe(true);
    expect(seen.key).toEqual({ payment_id: 'P1', account_id: token });
    expect((seen.source as Record<string, string>).amount).toBe('10.00');
    expect((seen.triage as { summary: string }).summary).toBe(`Payment P1 for ${token} differs by 2.00`);
    expect((seen.triage as { recommended_actions: string[] }).recommended_actions).toEqual([
      `Call the owner of ${token}`,
    ]);
  });

  it('an analyst sees the record as stored; a dataset without sensitive fields is unchanged for anyone', async () => {
    expect(await sensitiveViewFor(analyst, deps)(record)).toEqual(record);
    const trades = { ...record, dataset: 'trades' };
    expect(await sensitiveViewFor(viewer, deps)(trades)).toEqual(trades);
  });
});

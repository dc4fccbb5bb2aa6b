/**
 * Sensitive values in the API's answers: in the clear for whoever works exceptions, as their
 * keyed tokens (the index's and the prompts') for a viewer — rows, diffs and the triage's text.
 */
import { describe, expect, it } from 'vitest';
import { callerFromClaims, localAdmin } from '../../functions/query-api/access.ts';
import {
  seesSensitiveValues,
  sensitiveRunViewFor,
  sensitiveViewFor,
} from '../../functions/query-api/sensitive-view.ts';
import { createMasker, isMaskToken, LOCAL_MASKING_SECRET } from '../../functions/shared/masking.ts';
import type { ReconPolicy } from '../../functions/shared/policy.ts';
import { datasetTriagePolicies } from '../../functions/triage/dataset-policy.ts';
import { completedSummary } from '../support/runs.ts';

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

describe('sensitive values in a run summary', () => {
  // payments: account_id sensitive; cards: the account and the amount field both sensitive.
  const runDeps = {
    datasetPolicies: datasetTriagePolicies(
      {
        current: async (_bucket: string, dataset: string) =>
          (dataset === 'cards'
            ? { sensitiveFields: ['account_id', 'amount'], amountField: 'amount' }
            : {
                sensitiveFields: dataset === 'payments' ? ['account_id'] : [],
                amountField: 'amount',
              }) as unknown as ReconPolicy,
      },
      'tally-data',
      LOCAL_MASKING_SECRET,
    ),
  };
  const token = (value: string) => createMasker(['account_id'], LOCAL_MASKING_SECRET).token(value);
  const run = (dataset: string) => ({
    run_id: `run-${dataset}`,
    dataset,
    summary: {
      ...completedSummary({ AMOUNT_MISMATCH: 2 }),
      fields: {
        account_id: { unequal: 1, within_tolerance: 0, largest_difference: 'ACCT2042' },
        amount: { unequal: 2, within_tolerance: 0, largest_difference: '2.00' },
      },
      amount_totals: { source: '110.00', target: '112.00', net_difference: '2.00' },
      thresholds_crossed: [
        { level: 'fail' as const, condition: 'net_amount_difference', limit: '1.00', actual: '2.00' },
        { level: 'fail' as const, condition: 'break_rate', limit: '0.1', actual: '1.000000' },
      ],
      control_totals: [
        {
          group: { account_id: 'ACCT2042', currency: 'USD' },
          source: { rows: 1, sums: { amount: '10.00' } },
          target: { rows: 1, sums: { amount: '12.00' } },
          difference: { rows: 0, sums: { amount: '2.00' } },
        },
      ],
    },
  });

  it("a viewer sees a control total's group of a sensitive column as its token; counts and other values stay", async () => {
    const stored = run('payments');

    const seen = await sensitiveRunViewFor(viewer, runDeps)(stored);

    expect(JSON.stringify(seen)).not.toContain('ACCT2042');
    expect(seen.summary.control_totals[0]).toEqual({
      ...stored.summary.control_totals[0],
      group: { account_id: token('ACCT2042'), currency: 'USD' },
    });
    expect(seen.summary.fields.account_id).toEqual({
      unequal: 1,
      within_tolerance: 0,
      largest_difference: token('ACCT2042'),
    });
    expect(seen.summary.fields.amount).toEqual(stored.summary.fields.amount);
    expect(seen.summary.amount_totals).toEqual(stored.summary.amount_totals);
    expect(seen.summary.thresholds_crossed).toEqual(stored.summary.thresholds_crossed);
    expect(seen.summary.exceptions).toEqual({ AMOUNT_MISMATCH: 2 });
  });

  it("a sensitive amount field's sums, totals, largest difference and net difference are tokens too", async () => {
    const seen = await sensitiveRunViewFor(viewer, runDeps)(run('cards'));

    const text = JSON.stringify(seen.summary);
    for (const value of ['10.00', '12.00', '110.00', '112.00', '2.00']) expect(text).not.toContain(`"${value}"`);
    expect(seen.summary.amount_totals).toEqual({
      source: token('110.00'),
      target: token('112.00'),
      net_difference: token('2.00'),
    });
    expect(seen.summary.control_totals[0]?.difference.sums).toEqual({ amount: token('2.00') });
    expect(seen.summary.thresholds_crossed[0]).toMatchObject({ limit: '1.00', actual: token('2.00') });
    expect(seen.summary.thresholds_crossed[1]).toMatchObject({ actual: '1.000000' });
  });

  it('an analyst sees the run as stored; a dataset without sensitive fields, or a run without a summary, is unchanged', async () => {
    expect(await sensitiveRunViewFor(analyst, runDeps)(run('payments'))).toEqual(run('payments'));
    expect(await sensitiveRunViewFor(viewer, runDeps)(run('trades'))).toEqual(run('trades'));
    const running = { run_id: 'r', dataset: 'payments' };
    expect(await sensitiveRunViewFor(viewer, runDeps)(running)).toBe(running);
  });
});

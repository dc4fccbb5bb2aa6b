import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateDatasetPolicy } from '../../functions/shared/dataset-policies.ts';
import {
  editDistance,
  MATCH_WEIGHTS,
  rankMatches,
  scoreMatch,
  type MatchCandidate,
} from '../../functions/shared/match-scorer.ts';

const policyOf = (dataset: string) =>
  validateDatasetPolicy(
    dataset,
    readFileSync(join(import.meta.dirname, `../../policies/datasets/${dataset}.md`), 'utf8'),
    `${dataset}.md`,
  );
const TRADES = policyOf('trades');
const PAYMENTS = policyOf('payments');

function trade(
  id: string,
  type: 'MISSING_IN_TARGET' | 'MISSING_IN_SOURCE',
  tradeId: string,
  row: Partial<Record<'account_id' | 'trade_date' | 'amount', string>> = {},
): MatchCandidate {
  const values = { trade_id: tradeId, account_id: 'ACC1', trade_date: '2025-12-10', amount: '100.00', ...row };
  return {
    exception_id: id,
    exception_type: type,
    key: { trade_id: tradeId },
    source: type === 'MISSING_IN_TARGET' ? values : null,
    target: type === 'MISSING_IN_SOURCE' ? values : null,
  };
}

describe('editDistance', () => {
  it.each([
    ['T100', 'T100', 0],
    ['T100', 'T1OO', 2],
    ['T100', 'T1000', 1],
    ['abc', 'cba', 2],
    ['', 'abc', 3],
  ])('%s -> %s is %i edits', (a, b, edits) => {
    expect(editDistance(a, b)).toBe(edits);
    expect(editDistance(b, a)).toBe(edits);
  });

  it('stops past the bound', () => {
    expect(editDistance('AAAAAAAA', 'BBBBBBBB', 2)).toBe(3);
  });
});

describe('scoreMatch', () => {
  const s = trade('a', 'MISSING_IN_TARGET', 'T100');

  it('adds a reason for each piece of evidence', () => {
    const match = scoreMatch(s, trade('b', 'MISSING_IN_SOURCE', 'T10O'), TRADES);
    expect(match?.score).toBe(MATCH_WEIGHTS.amount + MATCH_WEIGHTS.account + MATCH_WEIGHTS.date + MATCH_WEIGHTS.key);
    expect(match?.reasons.map((r) => r.text)).toEqual([
      "amount 100.00 and 100.00 agree within the policy's tolerance",
      'same account_id ACC1',
      'same trade_date 2025-12-10',
      'keys T100 and T10O are 1 edit(s) apart',
    ]);
  });

  it("uses the policy's amount tolerance: a difference equal to it is within", () => {
    const within = scoreMatch(
      s,
      trade('b', 'MISSING_IN_SOURCE', 'ZZZZ', { amount: '100.01', account_id: 'X' }),
      TRADES,
    );
    const outside = scoreMatch(
      s,
      trade('b', 'MISSING_IN_SOURCE', 'ZZZZ', { amount: '100.02', account_id: 'X' }),
      TRADES,
    );
    expect(within?.reasons.map((r) => r.kind)).toEqual(['amount', 'date']);
    expect(outside?.reasons.map((r) => r.kind)).toEqual(['date']);
  });

  it('gives two key edits half the points, three none', () => {
    const other = { account_id: 'X', amount: '5', trade_date: '2020-01-01' };
    expect(scoreMatch(s, trade('b', 'MISSING_IN_SOURCE', 'T1OO', other), TRADES)?.score).toBe(MATCH_WEIGHTS.key / 2);
    expect(scoreMatch(s, trade('b', 'MISSING_IN_SOURCE', 'TOOO', other), TRADES)).toBeUndefined();
  });

  it("reads a date field with each side's format and its tolerance_days, and each side's decimal separator", () => {
    const source: MatchCandidate = {
      exception_id: 'p1',
      exception_type: 'MISSING_IN_TARGET',
      key: { payment_id: 'P1' },
      source: { PaymentRef: 'P1', Amt: '1.000,50', ValueDate: '10/12/2025', Ccy: 'EUR' },
      target: null,
    };
    const target = (valueDate: string, amount: string): MatchCandidate => ({
      exception_id: 'p2',
      exception_type: 'MISSING_IN_SOURCE',
      key: { payment_id: 'Q9999' },
      source: null,
      target: { payment_id: 'Q9999', amount, value_date: valueDate, currency: 'EUR' },
    });
    expect(scoreMatch(source, target('2025-12-11', '1000.50'), PAYMENTS)?.reasons.map((r) => r.kind)).toEqual([
      'amount',
      'date',
    ]);
    expect(scoreMatch(source, target('2025-12-12', '2000'), PAYMENTS)).toBeUndefined();
  });

  it('scores the same pair alike from either side', () => {
    const t = trade('b', 'MISSING_IN_SOURCE', 'T10O', { amount: '100.01' });
    expect(scoreMatch(t, s, TRADES)?.score).toBe(scoreMatch(s, t, TRADES)?.score);
  });

  it('without a policy, only the keys speak', () => {
    expect(scoreMatch(s, trade('b', 'MISSING_IN_SOURCE', 'T10O'), undefined)?.reasons.map((r) => r.kind)).toEqual([
      'key',
    ]);
  });
});

describe('rankMatches', () => {
  it('orders by score, then id, and keeps the top N', () => {
    const s = trade('a', 'MISSING_IN_TARGET', 'T100');
    const ranked = rankMatches(
      s,
      [
        trade('d', 'MISSING_IN_SOURCE', 'Z1', { amount: '1' }),
        trade('c', 'MISSING_IN_SOURCE', 'T10O'),
        trade('b', 'MISSING_IN_SOURCE', 'Z2', { amount: '1' }),
        trade('e', 'MISSING_IN_SOURCE', 'QQQQQ', { amount: '9', account_id: 'N', trade_date: '2020-01-01' }),
      ],
      TRADES,
      2,
    );
    expect(ranked.map((m) => [m.exception_id, m.score])).toEqual([
      ['c', 100],
      ['b', 40],
    ]);
  });
});

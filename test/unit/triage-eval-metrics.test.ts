/**
 * The triage evaluation's measures, each against figures worked out by hand.
 */
import { describe, expect, it } from 'vitest';
import { canonicalPassageId } from '../../scripts/tools/triage-eval/golden.ts';
import {
  factCoverage,
  groupBy,
  mentions,
  numbersIn,
  percentile,
  sectionRecall,
  severityAgreement,
  summarise,
  type ItemOutcome,
} from '../../scripts/tools/triage-eval/metrics.ts';

const SIDES = { source: ['source', 'booking system'], target: ['target', 'settlement ledger'] };

describe('severity agreement', () => {
  it('is exact on the same level, within one a level apart, neither two levels apart', () => {
    expect(severityAgreement('HIGH', 'HIGH')).toEqual({ exact: true, withinOne: true });
    expect(severityAgreement('CRITICAL', 'HIGH')).toEqual({ exact: false, withinOne: true });
    expect(severityAgreement('LOW', 'MEDIUM')).toEqual({ exact: false, withinOne: true });
    expect(severityAgreement('LOW', 'HIGH')).toEqual({ exact: false, withinOne: false });
    expect(severityAgreement('CRITICAL', 'LOW')).toEqual({ exact: false, withinOne: false });
  });
});

describe('expected-section recall', () => {
  it('is the share of the expected sections among the cited ones', () => {
    // Act
    const got = sectionRecall(['a#1', 'b#2', 'c#3'], ['a#1', 'c#3', 'x#9']);
    // Assess: 2 of 3 expected were cited; the extra citation costs nothing here.
    expect(got.recall).toBeCloseTo(2 / 3, 10);
    expect(got.missed).toEqual(['b#2']);
  });

  it('counts an expected section once and is 1 when nothing is expected', () => {
    expect(sectionRecall(['a#1', 'a#1'], ['a#1']).recall).toBe(1);
    expect(sectionRecall([], []).recall).toBe(1);
    expect(sectionRecall(['a#1'], []).recall).toBe(0);
  });

  it('folds equivalent documents together: recon-policy.md states what datasets/trades.md states', () => {
    const equivalents = [['datasets/trades.md', 'recon-policy.md']];
    expect(canonicalPassageId('recon-policy.md#policy/amount', equivalents)).toBe('datasets/trades.md#policy/amount');
    expect(canonicalPassageId('datasets/trades.md#policy/amount', equivalents)).toBe(
      'datasets/trades.md#policy/amount',
    );
    expect(canonicalPassageId('exception-handling-runbook.md#x', equivalents)).toBe('exception-handling-runbook.md#x');
  });
});

describe('fact coverage', () => {
  it('finds ids as whole words, in any case', () => {
    expect(mentions('Trade t0010 is missing', 'T0010')).toBe(true);
    expect(mentions('Trade T0010 is missing', 'T001')).toBe(false);
    expect(mentions('held at ACCT1099.', 'ACCT1099')).toBe(true);
    expect(mentions('amount "$310.00" is not', '$310.00')).toBe(true);
  });

  it('reads numbers with either separator convention, ignores signs and digits inside ids', () => {
    // Act
    const found = numbersIn('T0039: 1,250.50 booked, 5.000,00 released, (300.00) and -15.00 on line 41.');
    // Assess
    expect(found.has('1250.5')).toBe(true);
    expect(found.has('5000')).toBe(true);
    expect(found.has('300')).toBe(true);
    expect(found.has('15')).toBe(true);
    expect(found.has('41')).toBe(true);
    expect(found.has('39')).toBe(false);
  });

  it('counts the facts a summary states, and names the ones it leaves out', () => {
    // Prepare
    const facts = [
      { what: 'trade id', text: 'T0005' },
      { what: 'source amount', number: '450.00' },
      { what: 'target amount', number: '475.00' },
      { what: 'difference', number: '25.00' },
      { what: 'missing side', side: 'target' as const },
    ];
    // Act: the target amount is not stated; the side is named by the policy's word for it.
    const got = factCoverage('T0005 is booked at 450 and differs by 25.0 from the settlement ledger.', facts, SIDES);
    // Assess
    expect(got).toEqual({ covered: 4, total: 5, missed: ['target amount'] });
  });

  it('accepts any alternative of a text fact (a date either way round)', () => {
    const fact = { what: 'source value date', text: ['03/12/2025', '2025-12-03'] };
    expect(factCoverage('value date 2025-12-03 in the hub', [fact], SIDES).covered).toBe(1);
    expect(factCoverage('value date 3 December in the hub', [fact], SIDES).covered).toBe(0);
  });
});

describe('latency percentiles', () => {
  it('are nearest-rank', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 95)).toBe(5);
    expect(percentile([10, 20], 50)).toBe(10);
    // 20 values: the 95th percentile is the 19th smallest.
    expect(
      percentile(
        Array.from({ length: 20 }, (_, i) => i + 1),
        95,
      ),
    ).toBe(19);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBeNull();
  });
});

function outcome(overrides: Partial<ItemOutcome>): ItemOutcome {
  return {
    id: 'x',
    dataset: 'trades',
    exception_type: 'AMOUNT_MISMATCH',
    route: 'default',
    provider: 'rules',
    expected_severity: 'MEDIUM',
    severity: 'MEDIUM',
    severity_exact: true,
    severity_within_one: true,
    summary: '',
    citations: [],
    rejected_citations: [],
    section_recall: 1,
    sections_missed: [],
    retrieval_ceiling: 1,
    facts_covered: 1,
    facts_total: 1,
    facts_missed: [],
    latency_ms: 1,
    input_tokens: 0,
    output_tokens: 0,
    cost_micro_usd: 0,
    priced: true,
    fallbacks: [],
    ...overrides,
  };
}

describe('a group of items', () => {
  // Prepare: four answers worked out by hand.
  const items = [
    outcome({
      id: 'a',
      provider: 'm',
      citations: ['p1', 'p2'],
      section_recall: 1,
      facts_covered: 3,
      facts_total: 3,
      latency_ms: 400,
      input_tokens: 1000,
      output_tokens: 100,
      cost_micro_usd: 84,
    }),
    outcome({
      id: 'b',
      provider: 'm',
      severity: 'HIGH',
      severity_exact: false,
      severity_within_one: true,
      citations: ['p1'],
      rejected_citations: ['P9', 'bogus#x'],
      section_recall: 0.5,
      retrieval_ceiling: 0.5,
      facts_covered: 1,
      facts_total: 2,
      latency_ms: 100,
      input_tokens: 1200,
      output_tokens: 50,
      cost_micro_usd: 60,
      priced: false,
    }),
    outcome({
      id: 'c',
      severity: 'CRITICAL',
      severity_exact: false,
      severity_within_one: false,
      citations: ['p3'],
      rejected_citations: ['P7'],
      section_recall: 0,
      facts_covered: 0,
      facts_total: 4,
      latency_ms: 300,
      fallbacks: ['m failed'],
    }),
    outcome({
      id: 'd',
      citations: ['p4'],
      section_recall: 0.5,
      retrieval_ceiling: 0.5,
      facts_covered: 2,
      facts_total: 2,
      latency_ms: 200,
    }),
  ];

  it('sums to the figures worked out by hand', () => {
    // Act
    const m = summarise(items);
    // Assess
    expect(m.items).toBe(4);
    expect(m.severity_exact).toBe(0.5); // a, d
    expect(m.severity_within_one).toBe(0.75); // a, b, d
    expect(m.citations).toBe(8); // 5 valid + 3 rejected
    expect(m.citations_rejected).toBe(3);
    expect(m.citation_validity).toBe(5 / 8);
    expect(m.section_recall).toBe((1 + 0.5 + 0 + 0.5) / 4);
    expect(m.retrieval_ceiling).toBe((1 + 0.5 + 1 + 0.5) / 4);
    expect(m.fact_coverage).toBe((1 + 0.5 + 0 + 1) / 4);
    expect(m.latency_p50_ms).toBe(200); // 100, 200, 300, 400: 2nd
    expect(m.latency_p95_ms).toBe(400);
    expect([m.input_tokens, m.output_tokens, m.cost_micro_usd]).toEqual([2200, 150, 144]);
    expect(m.unpriced_answers).toBe(1);
    expect(m.fallbacks).toBe(1);
  });

  it('has no citation validity when nothing was cited', () => {
    expect(summarise([outcome({})]).citation_validity).toBeNull();
  });

  it('groups by answering provider and by route, in first-seen order', () => {
    expect([...groupBy(items, 'provider')].map(([k, v]) => [k, v.map((i) => i.id)])).toEqual([
      ['m', ['a', 'b']],
      ['rules', ['c', 'd']],
    ]);
    expect([...groupBy(items, 'route').keys()]).toEqual(['default']);
  });
});

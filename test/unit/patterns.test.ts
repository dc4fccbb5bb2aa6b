import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reconcile, type Finding, type ReconInput } from '../../functions/recon/engine.ts';
import { PatternAccumulator, DISTINCT_VALUES_CAP } from '../../functions/shared/patterns/accumulator.ts';
import {
  canonicalJson,
  magnitudeOf,
  PATTERN_ID_PATTERN,
  patternId,
  patternOf,
  reasonShape,
  roundRatio,
} from '../../functions/shared/patterns/signature.ts';
import { decimal } from '../../functions/shared/decimal.ts';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import type { PatternRecord } from '../../functions/shared/tables/patterns.ts';
import { reconcilePartitioned } from '../support/recon-modes.ts';

/** A trades policy with a currency column, as the acceptance's planted error needs. */
function policyWith(triage = ''): ReconPolicy {
  return parseReconPolicy(
    `# P\n\n\`\`\`json tally-policy\n${JSON.stringify({
      policy_version: 't.1',
      dataset: 'fx',
      key: [{ field: 'trade_id' }],
      fields: [
        { field: 'account_id' },
        { field: 'currency' },
        { field: 'trade_date', type: 'date' },
        { field: 'amount', type: 'decimal', tolerance: { absolute: '0.01' } },
      ],
      amount_field: 'amount',
      ...(triage ? { triage: JSON.parse(triage) } : {}),
    })}\n\`\`\`\n`,
  );
}

const RUN = { runId: 'run-1', dataset: 'fx', businessDate: '2026-11-30' };

function finding(partial: Partial<Finding> & Pick<Finding, 'type' | 'keyText'>): Finding {
  return {
    key: { trade_id: partial.keyText },
    source: null,
    target: null,
    diffs: [],
    lines: { source: [], target: [] },
    severity: 'MEDIUM',
    ...partial,
  };
}

function amountBreak(id: string, source: string, target: string, delta: string, currency = 'USD'): Finding {
  return finding({
    type: 'AMOUNT_MISMATCH',
    keyText: id,
    source: { trade_id: id, account_id: 'A1', currency, trade_date: '2026-11-30', amount: source },
    target: { trade_id: id, account_id: 'A1', currency, trade_date: '2026-11-30', amount: target },
    diffs: [{ field: 'amount', source, target, delta }],
  });
}

/** Deterministic pseudo-random numbers (mulberry32): the generated run is the same every time. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The acceptance's planted case: 5,000 JPY trades whose target amount is the source × 100 (a
 * unit slip), 50 random breaks of every kind among 3,000 other trades.
 */
function plantedRun(): { source: string; target: string } {
  const next = random(12);
  const header = 'trade_id,account_id,currency,trade_date,amount';
  const source = [header];
  const target = [header];
  const accounts = ['ACCT1001', 'ACCT1002', 'ACCT1003', 'ACCT1004', 'ACCT1005'];
  for (let i = 0; i < 5000; i++) {
    const amount = (Math.floor(next() * 5_000_000) + 100) * (next() < 0.3 ? -1 : 1);
    const account = accounts[Math.floor(next() * accounts.length)] as string;
    source.push(`J${i},${account},JPY,2026-11-30,${amount}`);
    target.push(`J${i},${account},JPY,2026-11-30,${amount * 100}`);
  }
  const currencies = ['USD', 'EUR', 'GBP'];
  for (let i = 0; i < 3000; i++) {
    const amount = (Math.floor(next() * 1_000_000) / 100).toFixed(2);
    const row = `O${i},${accounts[i % 5]},${currencies[i % 3]},2026-11-30,`;
    source.push(row + amount);
    if (i % 60 !== 7) {
      target.push(row + amount);
      continue;
    }
    // 50 random breaks: a random amount difference, a missing row, a date a few days off, a changed account.
    const kind = Math.floor(next() * 4);
    if (kind === 0) target.push(row + (Number(amount) + Math.floor(next() * 100_000) / 100 + 0.05).toFixed(2));
    else if (kind === 2)
      target.push(`O${i},${accounts[i % 5]},${currencies[i % 3]},2026-12-0${1 + Math.floor(next() * 8)},${amount}`);
    else if (kind === 3)
      target.push(`O${i},ACCT9${Math.floor(next() * 900)},${currencies[i % 3]},2026-11-30,${amount}`);
  }
  return { source: `${source.join('\n')}\n`, target: `${target.join('\n')}\n` };
}

const input = (name: string, text: string): ReconInput => ({ name, stream: Readable.from([Buffer.from(text)]) });

function patternsOf(findings: readonly Finding[], policy: ReconPolicy, min = policy.triage.patternMinMembers) {
  const patterns = new PatternAccumulator(policy, RUN);
  const ids = findings.map((f) => patterns.add(f));
  return { records: patterns.records(min), counts: patterns.counts(min), ids };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const next = random(seed);
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

describe('patterns of a generated run with a planted systematic error', () => {
  it('puts the 5,000 JPY amounts ×100 in one pattern, JPY its segment, and the 50 random breaks in small ones', async () => {
    // Prepare
    const policy = policyWith();
    const run = plantedRun();
    // Act
    const { findings } = await reconcile(input('source.csv', run.source), input('target.csv', run.target), policy);
    const { records, counts } = patternsOf(findings, policy);
    // Assess
    expect(findings).toHaveLength(5050);
    const big = records.filter((r) => r.size >= 1000);
    expect(big).toHaveLength(1);
    const jpy = big[0] as PatternRecord;
    expect(jpy.size).toBe(5000);
    expect(jpy.exception_type).toBe('AMOUNT_MISMATCH');
    expect(jpy.description).toBe('AMOUNT_MISMATCH: amount target = source × 100');
    expect(jpy.signature).toEqual({
      type: 'AMOUNT_MISMATCH',
      fields: ['amount'],
      shapes: { amount: { kind: 'number', ratio: '100' } },
    });
    const currency = jpy.segments.find((s) => s.field === 'currency');
    expect(currency).toMatchObject({ value: 'JPY', count: 5000 });
    expect(currency?.share).toBeGreaterThanOrEqual(0.95);
    // Accounts are spread over five: no majority, so the top three with their shares.
    expect(jpy.segments.filter((s) => s.field === 'account_id')).toHaveLength(3);
    // Trade ids and amounts are all different: no segment.
    expect(jpy.segments.some((s) => s.field === 'trade_id' || s.field === 'amount')).toBe(false);
    expect(jpy.stats['amount.ratio']).toBe('100');
    expect(Number(jpy.stats['amount.delta_min'])).toBeLessThan(0);
    expect(Number(jpy.stats['amount.delta_max'])).toBeGreaterThan(0);
    expect(jpy.stats['amount.median_of']).toBe(1001);
    expect(jpy.representatives).toHaveLength(5);
    expect([...jpy.representatives].sort()).toEqual(jpy.representatives);
    // The rest: small patterns or singletons, 50 exceptions in all.
    for (const r of records.filter((x) => x !== jpy)) expect(r.size).toBeLessThanOrEqual(50);
    expect(counts.members + counts.singletons).toBe(5050);
    expect(counts.members - 5000 + counts.singletons).toBe(50);
    expect(counts.patterns).toBe(records.length);
  });

  it('gives the same patterns when the run is partitioned (findings in another order) or shuffled', async () => {
    // Prepare
    const policy = policyWith('{"pattern_min_members": 2}');
    const run = plantedRun();
    const memory = await reconcile(input('s', run.source), input('t', run.target), policy);
    // Act
    const partitioned = await reconcilePartitioned(input('s', run.source), input('t', run.target), policy, 200_000);
    // Assess
    expect(partitioned.spilled).toBe(true);
    expect(partitioned.result.findings.map((f) => f.keyText)).not.toEqual(memory.findings.map((f) => f.keyText));
    const expected = patternsOf(memory.findings, policy);
    expect(patternsOf(partitioned.result.findings, policy).records).toEqual(expected.records);
    expect(patternsOf(shuffled(memory.findings, 3), policy).records).toEqual(expected.records);
  });
});

describe('patternOf', () => {
  const policy = policyWith();

  it('names a round ratio instead of the sign and magnitude, which grow with the amount', () => {
    const a = patternOf(amountBreak('T1', '120', '12000', '11880'), policy);
    const b = patternOf(amountBreak('T2', '-7.5', '-750', '-742.5'), policy);
    expect(a.signature).toEqual(b.signature);
    expect(a.text).toBe('AMOUNT_MISMATCH: amount target = source × 100');
  });

  it('without a ratio, keeps the sign and the power of ten of the difference', () => {
    const up = patternOf(amountBreak('T1', '450.00', '475.00', '25.00'), policy);
    const down = patternOf(amountBreak('T2', '310.00', '295.00', '-15.00'), policy);
    expect(up.signature.shapes.amount).toEqual({ kind: 'number', sign: '+', magnitude: 1 });
    expect(down.signature.shapes.amount).toEqual({ kind: 'number', sign: '-', magnitude: 1 });
    expect(up.text).toBe('AMOUNT_MISMATCH: amount higher in target by 10 to 100');
  });

  it('reads ratios close to round ones, and no others', () => {
    expect(roundRatio('1234.56', '123456')).toBe('100');
    expect(roundRatio('1234.56', '123500')).toBe('100'); // rounded on conversion: 0.04% off
    expect(roundRatio('100', '-100')).toBe('-1');
    expect(roundRatio('100', '50')).toBe('0.5');
    expect(roundRatio('5000', '5.00')).toBe('0.001');
    expect(roundRatio('100', '130')).toBeUndefined();
    expect(roundRatio('0', '100')).toBeUndefined();
    expect(roundRatio('x', '100')).toBeUndefined();
    // A side written with decimal commas (payments' hub) is read as its policy says.
    expect(roundRatio('1.250,10', '125010', [',', '.'])).toBe('100');
    expect(roundRatio('1.250,10', '125010')).toBeUndefined();
  });

  it('takes the power of ten of a decimal exactly', () => {
    expect(magnitudeOf(decimal('25.00'))).toBe(1);
    expect(magnitudeOf(decimal('-0.5'))).toBe(-1);
    expect(magnitudeOf(decimal('1000'))).toBe(3);
    expect(magnitudeOf(decimal('999.99'))).toBe(2);
  });

  it('gives dates their day offset, text "changed", and sorts the fields of a field mismatch', () => {
    const p = patternOf(
      finding({
        type: 'FIELD_MISMATCH',
        keyText: 'T1',
        diffs: [
          { field: 'trade_date', source: '2026-11-30', target: '2026-12-01', delta: '1' },
          { field: 'account_id', source: 'A1', target: 'A2' },
          { field: 'currency', source: '', target: 'JPY' },
        ],
      }),
      policy,
    );
    expect(p.signature).toEqual({
      type: 'FIELD_MISMATCH',
      fields: ['account_id', 'currency', 'trade_date'],
      shapes: {
        account_id: { kind: 'text', change: 'changed' },
        currency: { kind: 'text', change: 'filled' },
        trade_date: { kind: 'date', days: 1 },
      },
    });
    expect(p.text).toBe('FIELD_MISMATCH: account_id changed, currency empty in source, trade_date +1 day in target');
  });

  it('gives missing and duplicate exceptions their type, invalid records their side and reason code', () => {
    expect(patternOf(finding({ type: 'MISSING_IN_TARGET', keyText: 'T1' }), policy).signature).toEqual({
      type: 'MISSING_IN_TARGET',
      fields: [],
      shapes: {},
    });
    const invalid = (value: string, line: number) =>
      patternOf(
        finding({
          type: 'INVALID_RECORD',
          keyText: `source:${line}`,
          key: { side: 'source', line: String(line) },
          source: { trade_id: 'T9', amount: value },
          reason: `amount: amount ${JSON.stringify(value)} is not a decimal number (expected e.g. 1250.50)`,
        }),
        policy,
      );
    expect(invalid('12,x', 4).signature).toEqual(invalid('abc', 9).signature);
    expect(invalid('abc', 9).signature).toMatchObject({ side: 'source' });
    expect(reasonShape('line 12: "x" has 3 fields')).toBe('line N: "…" has N fields');
  });
});

describe('patternId', () => {
  const signature = patternOf(amountBreak('T1', '1', '100', '99'), policyWith()).signature;

  it('is pat_ and 16 hex digits, and depends on the dataset and the business date', () => {
    const id = patternId('fx', '2026-11-30', signature);
    expect(id).toMatch(PATTERN_ID_PATTERN);
    expect(patternId('fx', '2026-11-30', signature)).toBe(id);
    expect(patternId('fx', '2026-12-01', signature)).not.toBe(id);
    expect(patternId('trades', '2026-11-30', signature)).not.toBe(id);
  });

  it('does not depend on the order the signature was built in', () => {
    const reordered = {
      shapes: { amount: { ratio: '100', kind: 'number' } },
      fields: ['amount'],
      type: 'AMOUNT_MISMATCH',
    };
    expect(canonicalJson(reordered)).toBe(canonicalJson(signature));
    expect(patternId('fx', '2026-11-30', reordered as never)).toBe(patternId('fx', '2026-11-30', signature));
  });
});

describe('PatternAccumulator', () => {
  const policy = policyWith();

  const arbitraryFinding = fc
    .record({
      id: fc.integer({ min: 0, max: 400 }),
      kind: fc.constantFrom('ratio', 'up', 'down', 'missing', 'date'),
      amount: fc.integer({ min: 1, max: 1_000_000 }),
      account: fc.constantFrom('A1', 'A2', 'A3'),
      currency: fc.constantFrom('JPY', 'USD'),
      days: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
    })
    .map(({ id, kind, amount, account, currency, days }): Finding => {
      const row = (value: string) => ({
        trade_id: `T${id}`,
        account_id: account,
        currency,
        trade_date: '2026-11-30',
        amount: value,
      });
      const s = String(amount);
      if (kind === 'missing') return finding({ type: 'MISSING_IN_TARGET', keyText: `T${id}`, source: row(s) });
      if (kind === 'date')
        return finding({
          type: 'FIELD_MISMATCH',
          keyText: `T${id}`,
          source: row(s),
          target: { ...row(s), trade_date: 'x' },
          diffs: [{ field: 'trade_date', source: '2026-11-30', target: 'x', delta: String(days) }],
        });
      const t = kind === 'ratio' ? amount * 100 : kind === 'up' ? amount + 7 : amount - 3;
      return {
        ...amountBreak(`T${id}`, s, String(t), String(t - amount), currency),
        source: row(s),
        target: row(String(t)),
      };
    });

  it('gives the same records and counts for any order of the same findings', () => {
    fc.assert(
      fc.property(fc.array(arbitraryFinding, { maxLength: 200 }), fc.integer(), (findings, seed) => {
        const a = patternsOf(findings, policy, 2);
        const b = patternsOf(shuffled(findings, seed), policy, 2);
        expect(b.records).toEqual(a.records);
        expect(b.counts).toEqual(a.counts);
      }),
      { numRuns: 60 },
    );
  });

  it('counts members, patterns and singletons against the minimum', () => {
    const findings = [
      ...Array.from({ length: 12 }, (_, i) => amountBreak(`R${i}`, '10', '1000', '990', 'JPY')),
      ...Array.from({ length: 3 }, (_, i) => finding({ type: 'MISSING_IN_SOURCE', keyText: `M${i}` })),
      amountBreak('U1', '10', '17', '7'),
    ];
    const { counts, records, ids } = patternsOf(findings, policy, 10);
    expect(counts).toEqual({ patterns: 1, members: 12, singletons: 4 });
    expect(records.map((r) => r.size)).toEqual([12]);
    expect(new Set(ids.slice(0, 12)).size).toBe(1);
    expect(ids[0]).toBe(records[0]?.pattern_id);
    expect(records[0]?.segments[0]).toEqual({ field: 'account_id', value: 'A1', count: 12, share: 1 });
    expect(records[0]?.stats).toMatchObject({
      'amount.delta_min': '990',
      'amount.delta_max': '990',
      'amount.delta_median': '990',
      'amount.ratio': '100',
    });
    expect(records[0]?.stats['amount.median_of']).toBeUndefined();
  });

  it('drops an attribute with more distinct values than it tracks, whatever the order', () => {
    // Two members share account A1; every other account is one member's: one value past the cap.
    const findings = Array.from({ length: DISTINCT_VALUES_CAP + 2 }, (_, i) => ({
      ...amountBreak(`R${i}`, '10', '1000', '990', 'JPY'),
      source: { trade_id: `R${i}`, account_id: i < 2 ? 'A1' : `B${i}`, currency: 'JPY', trade_date: 'd', amount: '10' },
    }));
    const fields = (records: PatternRecord[]) => records[0]?.segments.map((s) => s.field);
    expect(fields(patternsOf(findings, policy, 2).records)).toEqual(['amount', 'currency', 'trade_date']);
    expect(fields(patternsOf(shuffled(findings, 5), policy, 2).records)).toEqual(['amount', 'currency', 'trade_date']);
    // One member fewer: within the cap, A1 is a value two members share.
    const fewer = patternsOf(findings.slice(0, DISTINCT_VALUES_CAP + 1), policy, 2).records[0];
    expect(fewer?.segments.find((s) => s.field === 'account_id')).toMatchObject({ value: 'A1', count: 2 });
  });
});

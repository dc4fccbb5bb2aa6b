/**
 * Bounded memory: under any memory budget the engine finds what it finds in memory. Budgets from
 * one byte (every row spills, partitions split again, three levels deep) to more than the input
 * (nothing spills), over generated inputs with duplicates, invalid rows and quoted rows in every
 * position, cut into chunks anywhere. Plus the parts: temporary files are removed (also after an
 * error), the sink is awaited, the order is fixed, the default budget.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  reconcile,
  reconcileInto,
  ReconInputError,
  type Finding,
  type ReconInput,
} from '../../functions/recon/engine.ts';
import { defaultMemoryBudgetBytes, partitionOf, PARTITIONS } from '../../functions/recon/partition.ts';
import { hashOf } from '../../functions/recon/source-index.ts';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { generatePair } from '../../scripts/bench/generate.ts';
import { reconConfig } from '../../functions/recon/config.ts';
import { ENV } from '../../functions/shared/resources.ts';
import { reconcilePartitioned, sortedFindings, withoutDuration } from '../support/recon-modes.ts';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const repo = (path: string) => join(REPO_ROOT, path);
const trades = parseReconPolicy(readFileSync(repo('policies/recon-policy.md'), 'utf8'));

function policyOf(settings: Record<string, unknown>): ReconPolicy {
  return parseReconPolicy(
    `# P\n\n\`\`\`json tally-policy\n${JSON.stringify({ policy_version: 't', ...settings })}\n\`\`\`\n`,
  );
}

/** A composite, normalised key, typed fields, control totals and a net amount threshold. */
const rich = policyOf({
  key: [
    { field: 'desk', normalize: ['upper'] },
    { field: 'id', normalize: ['strip_leading_zeros'] },
  ],
  fields: [
    { field: 'amount', type: 'decimal', tolerance: { absolute: '0.05' } },
    { field: 'ccy', normalize: ['upper'] },
    { field: 'd', type: 'date' },
  ],
  amount_field: 'amount',
  control_totals: { group_by: ['ccy'], sum: ['amount'] },
  thresholds: { warn: { net_amount_difference: '10' } },
});

function input(name: string, content: string | Uint8Array, cuts: readonly number[] = []): ReconInput {
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  return { name, stream: Readable.from(chunks) };
}

async function expectSameAsInMemory(
  policy: ReconPolicy,
  source: string | Uint8Array,
  target: string | Uint8Array,
  budget: number,
  cuts: { source?: number[]; target?: number[] } = {},
): Promise<{ spilled: boolean; findings: Finding[] }> {
  const memory = await reconcile(input('s', source, cuts.source), input('t', target, cuts.target), policy);
  const { result, spilled } = await reconcilePartitioned(
    input('s', source, cuts.source),
    input('t', target, cuts.target),
    policy,
    budget,
  );
  expect(sortedFindings(result.findings)).toEqual(sortedFindings(memory.findings));
  expect(withoutDuration(result.summary)).toEqual(withoutDuration(memory.summary));
  return { spilled, findings: result.findings };
}

// Rows over a few keys, so duplicates are common; now and then invalid, quoted or ragged.
const key = fc.constantFrom('K1', 'K2', 'K3', 'K4', 'K5', 'K6', ' K1', 'K2 ', 'K,7', 'K"8', 'K\n9', 'Kü', '');
const amount = fc.constantFrom('1.00', '1.004', '2.50', '-3', '1,250.00', 'n/a', '', '99999999999999999999.5');
const account = fc.constantFrom('A1', 'A2', ' A1 ', 'a1', '=cmd|x', 'A,B', 'Ä');
const row = fc.record({
  key,
  account,
  amount,
  ragged: fc.constantFrom(0, 0, 0, 0, 0, 1, -1),
  quoteAll: fc.boolean(),
});
const side = fc.record({
  rows: fc.array(row, { maxLength: 24 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
});

function quote(field: string, always: boolean): string {
  return always || /[",\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

type Row = { key: string; account: string; amount: string; ragged: number; quoteAll: boolean };

function render(rows: readonly Row[]): string {
  const lines = ['trade_id,account_id,trade_date,amount'];
  for (const r of rows) {
    const fields = [r.key, r.account, '2025-12-01', r.amount];
    if (r.ragged < 0) fields.pop();
    if (r.ragged > 0) fields.push('x');
    lines.push(fields.map((f) => quote(f, r.quoteAll)).join(','));
  }
  return `${lines.join('\n')}\n`;
}

describe('partitioned reconciliation', () => {
  it('finds what it finds in memory under any budget, wherever the chunks are cut', async () => {
    await fc.assert(
      fc.asyncProperty(side, side, fc.integer({ min: 1, max: 6000 }), async (s, t, budget) => {
        await expectSameAsInMemory(trades, render(s.rows), render(t.rows), budget, {
          source: s.cuts,
          target: t.cuts,
        });
      }),
      { numRuns: 150 },
    );
  });

  it('keeps composite keys, normalisers, tolerances, control totals and thresholds under any budget', async () => {
    const ccy = fc.constantFrom('usd', 'USD', 'eur', '');
    const richRow = fc.record({
      desk: fc.constantFrom('d1', 'D1', 'd2'),
      id: fc.constantFrom('1', '01', '2', '002', '3'),
      amount: fc.constantFrom('1.00', '1.04', '1.06', '500', 'bad', ''),
      ccy,
      d: fc.constantFrom('2025-12-01', '2025-12-02', 'not a date', ''),
    });
    const render2 = (rows: { desk: string; id: string; amount: string; ccy: string; d: string }[]) =>
      `desk,id,amount,ccy,d\n${rows.map((r) => [r.desk, r.id, r.amount, r.ccy, r.d].join(',')).join('\n')}\n`;
    await fc.assert(
      fc.asyncProperty(
        fc.array(richRow, { maxLength: 20 }),
        fc.array(richRow, { maxLength: 20 }),
        fc.integer({ min: 1, max: 3000 }),
        async (a, b, budget) => {
          await expectSameAsInMemory(rich, render2(a), render2(b), budget);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('finds the same on the bench generator pair, partitioned at every level or part-way', async () => {
    const dir = mkdtempSync(join(TMP, 'tally-gen-'));
    try {
      const pair = await generatePair(dir, 3000, 11);
      const source = readFileSync(pair.sourcePath);
      const target = readFileSync(pair.targetPath);
      // Small chunks: a key's rows straddle chunk and partition-file boundaries.
      const cuts = Array.from({ length: 40 }, (_, i) => i / 40 + 0.003);
      for (const budget of [1, 40_000, source.length + 100_000, 4 * source.length]) {
        const { spilled } = await expectSameAsInMemory(trades, source, target, budget, { source: cuts, target: cuts });
        expect(spilled).toBe(budget < 4 * source.length);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries JSON Lines rows escaping half a surrogate pair (refused), keys with separators, and gzip', async () => {
    const policy = policyOf({
      key: [{ field: 'id' }, { field: 'sub' }],
      fields: [{ field: 'v' }, { field: 'amount', type: 'decimal' }],
      amount_field: 'amount',
      target: { format: 'jsonl' },
    });
    const source = [
      'id,sub,v,amount',
      'a,1,x,1.00',
      'a,1,x,1.00',
      '"b,\n2",1,"multi\nline",2.00',
      'c,\u001f,lone,3.00',
      'd,1,é,bad',
      'e,1,y,5',
    ].join('\n');
    const target = [
      JSON.stringify({ id: 'a', sub: '1', v: 'x', amount: 1 }),
      '{"id":"b,\\n2","sub":"1","v":"multi\\nline","amount":"2.00"}',
      '{"id":"c","sub":"\\u001f","v":"\\ud800","amount":"3.00"}',
      '{"id":"d","sub":"1","v":"é","amount":4}',
      '{"id":"\\udfff","sub":"1","v":"\\udfff","amount":4}',
      '{"id":"\\udfff","sub":"1","v":"z","amount":4}',
      'not json',
      JSON.stringify({ id: 'e', sub: '1', v: 'y', amount: '5.00' }),
    ].join('\n');
    for (const budget of [1, 200, 2000, 1e9]) {
      const { findings } = await expectSameAsInMemory(policy, gzipSync(source), target, budget);
      // Half a surrogate pair is no character (and DuckDB refuses it): each such line is refused.
      const refused = findings.filter((f) => f.type === 'INVALID_RECORD' && f.reason?.includes('surrogate'));
      expect(refused.map((f) => f.lines.target)).toEqual([[3], [5], [6]]);
      expect(findings.some((f) => f.type === 'MISSING_IN_TARGET' && f.keyText === 'c\u001f\u001f')).toBe(true);
    }
  });

  it('reconciles the shipped samples (both datasets, CSV and JSON Lines) alike under a budget of one byte', async () => {
    const payments = parseReconPolicy(readFileSync(repo('policies/datasets/payments.md'), 'utf8'));
    const tradesDataset = parseReconPolicy(readFileSync(repo('policies/datasets/trades.md'), 'utf8'));
    const sample = (p: string) => readFileSync(repo(`scripts/local/sample/${p}`));
    const { spilled } = await expectSameAsInMemory(
      payments,
      sample('payments/source.csv'),
      sample('payments/target.jsonl'),
      1,
    );
    expect(spilled).toBe(true);
    await expectSameAsInMemory(tradesDataset, sample('source.csv'), sample('target.csv'), 1);
    await expectSameAsInMemory(tradesDataset, gzipSync(sample('source.csv')), sample('target.csv'), 300);
  });

  it('reads back rows longer than a partition read (fields just under the limit, many of them)', async () => {
    const wide = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'c0' }, { field: 'c19' }] });
    const header = ['id', ...Array.from({ length: 20 }, (_, i) => `c${i}`)].join(',');
    const long = (c: string) => Array.from({ length: 20 }, () => c.repeat(60_000)).join(',');
    const source = `${header}\nA,${long('x')}\nB,${long('é')}\nC,${long('y')}\n`;
    const target = `${header}\nA,${long('x')}\nB,${long('e')}\n"C",${long('y')}\n`;
    const { findings } = await expectSameAsInMemory(wide, source, target, 1);
    expect(findings.map((f) => `${f.type} ${f.keyText}`)).toEqual(['FIELD_MISMATCH B']);
  });

  it('reports the first source row among equal largest differences written differently, under any budget', async () => {
    // Prepare: two keys whose amount differences are both 15, written "15.00" (first row) and "15.0".
    const policy = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'amount', type: 'decimal' }],
      amount_field: 'amount',
    });
    const source = 'id,amount\nt1,(5.00)\nT1,-5\n';
    const target = 'id,amount\nT1,+10.0\nt1,10.00\n';
    // Act
    const inMemory = await reconcile(input('s', source), input('t', target), policy);
    const spilled = await reconcilePartitioned(input('s', source), input('t', target), policy, 1);
    // Assess
    expect(inMemory.summary.fields.amount?.largest_difference).toBe('15.00');
    expect(spilled.spilled).toBe(true);
    expect(withoutDuration(spilled.result.summary)).toEqual(withoutDuration(inMemory.summary));
  });

  it('gives the same order on every run with the same budget', async () => {
    const source = render(
      [...'ABCDEFGHIJKLMNOP'].map((k) => ({ key: k, account: 'A1', amount: '1.00', ragged: 0, quoteAll: false })),
    );
    const target = render(
      [...'ABCDEFGHQRSTUVWX'].map((k) => ({ key: k, account: 'A2', amount: '1.00', ragged: 0, quoteAll: false })),
    );
    const order = async () =>
      (await reconcilePartitioned(input('s', source), input('t', target), trades, 1)).result.findings.map(
        (f) => `${f.type} ${f.keyText}`,
      );
    const first = await order();
    expect(first).toHaveLength(24);
    expect(await order()).toEqual(first);
  });
});

describe('temporary files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(TMP, 'tally-spill-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are removed when a side fails after the other spilled', async () => {
    const source = render(
      [...'ABCDEFGH'].map((k) => ({ key: k, account: 'A1', amount: '1.00', ragged: 0, quoteAll: false })),
    );
    const spillDir = join(dir, 'fail');
    await expect(
      reconcileInto(input('s', source), input('t.csv', 'nothing,useful\n1,2\n'), trades, () => {}, {
        memoryBudgetBytes: 1,
        tmpDir: spillDir,
      }),
    ).rejects.toBeInstanceOf(ReconInputError);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('are removed when the sink fails while partitions remain', async () => {
    const source = render(
      [...'ABCDEFGH'].map((k) => ({ key: k, account: 'A1', amount: '1.00', ragged: 0, quoteAll: false })),
    );
    const spillDir = join(dir, 'sink');
    let calls = 0;
    await expect(
      reconcileInto(
        input('s', source),
        input('t', 'trade_id,account_id,trade_date,amount\n'),
        trades,
        async () => {
          calls++;
          expect(readdirSync(spillDir)).toHaveLength(1);
          throw new Error('store down');
        },
        { memoryBudgetBytes: 1, tmpDir: spillDir },
      ),
    ).rejects.toThrow('store down');
    expect(calls).toBe(1);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it('are never made when the run fits its budget', async () => {
    const spillDir = join(dir, 'fits');
    await reconcile(input('s', render([])), input('t', render([])), trades, { tmpDir: spillDir });
    expect(existsSync(spillDir)).toBe(false);
  });
});

describe('the sink', () => {
  it('is awaited: one finding at a time, in the order of the collected result', async () => {
    const rows = (keys: string) =>
      render([...keys].map((k) => ({ key: k, account: 'A1', amount: '1.00', ragged: 0, quoteAll: false })));
    const expected = await reconcile(input('s', rows('ABCDEF')), input('t', rows('DEFGHI')), trades);
    const seen: string[] = [];
    let inFlight = 0;
    const summary = await reconcileInto(input('s', rows('ABCDEF')), input('t', rows('DEFGHI')), trades, async (f) => {
      inFlight++;
      expect(inFlight).toBe(1);
      await new Promise((r) => setTimeout(r, 2));
      seen.push(f.keyText);
      inFlight--;
    });
    expect(seen).toEqual(expected.findings.map((f) => f.keyText));
    expect(withoutDuration(summary)).toEqual(withoutDuration(expected.summary));
  });
});

describe('the memory budget', () => {
  it('defaults to a quarter of the heap limit, at most 768 MiB', () => {
    expect(defaultMemoryBudgetBytes(2_700_000_000)).toBe(675_000_000);
    expect(defaultMemoryBudgetBytes(4144 * 2 ** 20)).toBe(768 * 2 ** 20);
    expect(defaultMemoryBudgetBytes()).toBeGreaterThan(0);
  });

  it("is read from the recon function's environment, with the temp dir, and refused when not a positive integer", () => {
    const env = {
      [ENV.storeQueueUrl]: 'q',
      [ENV.filesTable]: 'f',
      [ENV.runsTable]: 'r',
      [ENV.patternsTable]: 'p',
      [ENV.exceptionsTable]: 'e',
    };
    const config = reconConfig({ ...env, [ENV.reconMemoryBudgetBytes]: '536870912', [ENV.reconTmpDir]: '/mnt/big' });
    expect(config[ENV.reconMemoryBudgetBytes]).toBe(536870912);
    expect(config[ENV.reconTmpDir]).toBe('/mnt/big');
    expect(reconConfig(env)[ENV.reconMemoryBudgetBytes]).toBeUndefined();
    expect(() => reconConfig({ ...env, [ENV.reconMemoryBudgetBytes]: '1.5GB' })).toThrow(ENV.reconMemoryBudgetBytes);
  });

  it('spreads keys over every partition, again at the next level', () => {
    const counts = [0, 1].map(() => new Array<number>(PARTITIONS).fill(0));
    for (let i = 0; i < 16_000; i++) {
      const k = `T${String(i).padStart(9, '0')}`;
      const h = hashOf(k, 0, k.length);
      counts[0]![partitionOf(h, 0)]!++;
      // Keys of one first-level partition, split at the second level.
      if (partitionOf(h, 0) === 3) counts[1]![partitionOf(h, 1)]!++;
    }
    for (const c of counts[0]!) expect(c).toBeGreaterThan(800);
    for (const c of counts[1]!) expect(c).toBeGreaterThan(30);
  });
});

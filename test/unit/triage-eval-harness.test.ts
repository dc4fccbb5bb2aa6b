/**
 * The triage evaluation end to end, offline: the golden set built by the engine, the real chain
 * run with the fixture provider's recorded answers (rules behind it) and with rules alone, scored,
 * compared, and written as JSON and Markdown. The fixture's figures are worked out by hand from
 * scripts/tools/triage-eval/recorded-answers.json.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICIES_DIR, REPO_ROOT } from '../../functions/shared/paths.ts';
import { policyDocuments, splitIntoPassages } from '../../functions/shared/policy-corpus.ts';
import { EXCEPTION_TYPES } from '../../functions/shared/types.ts';
import { buildCases, GoldenSetError, loadGoldenSet } from '../../scripts/tools/triage-eval/golden.ts';
import { EvalUsageError, missingRequirements, parseChain } from '../../scripts/tools/triage-eval/providers.ts';
import { runEvaluation, type EvalResult } from '../../scripts/tools/triage-eval/run.ts';

// Pinned: the default embedder may change, and the recorded answers cite what hashing retrieves.
const ENV = { TALLY_EMBEDDER: 'hashing' };

describe('the golden set', () => {
  it('labels every exception the engine finds, across both datasets and every exception type', async () => {
    // Act
    const cases = await buildCases(loadGoldenSet());
    // Assess
    expect(cases.length).toBeGreaterThanOrEqual(40);
    for (const dataset of ['trades', 'payments'])
      expect(new Set(cases.filter((c) => c.dataset === dataset).map((c) => c.exception.exception_type))).toEqual(
        new Set(EXCEPTION_TYPES),
      );
  });

  it('expects only sections that exist in the policy corpus', () => {
    // Prepare
    const corpus = new Set(
      policyDocuments(POLICIES_DIR).flatMap((d) =>
        splitIntoPassages(d, readFileSync(join(POLICIES_DIR, d), 'utf8')).map((p) => p.passage_id),
      ),
    );
    // Act
    const unknown = loadGoldenSet().items.flatMap((i) => i.sections.filter((s) => !corpus.has(s)));
    // Assess
    expect(unknown).toEqual([]);
  });

  it('refuses a label the engine does not find', async () => {
    // Prepare: the real set plus one label for a trade that does not break.
    const dir = mkdtempSync(join(tmpdir(), 'tally-golden-'));
    try {
      const golden = loadGoldenSet();
      golden.items.push({ ...golden.items[0]!, id: 'trades:AMOUNT_MISMATCH:T0001' });
      golden.datasets = Object.fromEntries(
        Object.entries(golden.datasets).map(([name, d]) => [
          name,
          {
            ...d,
            source: join(REPO_ROOT, 'scripts/tools/triage-eval', d.source),
            target: join(REPO_ROOT, 'scripts/tools/triage-eval', d.target),
          },
        ]),
      );
      const path = join(dir, 'golden.json');
      writeFileSync(path, JSON.stringify(golden));
      // Act / Assess
      await expect(buildCases(loadGoldenSet(path), path)).rejects.toThrow(
        new GoldenSetError('labels without a finding: trades:AMOUNT_MISMATCH:T0001'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('provider chains', () => {
  it('parse like TALLY_TRIAGE_PROVIDERS, plus the fixture', () => {
    expect(parseChain('bedrock:amazon.nova-lite-v1:0, rules').entries).toEqual([
      { kind: 'bedrock', model: 'amazon.nova-lite-v1:0' },
      { kind: 'rules' },
    ]);
    expect(parseChain('fixture:/tmp/x.json').entries).toEqual([{ kind: 'fixture', recording: '/tmp/x.json' }]);
    expect(() => parseChain('claude')).toThrow(EvalUsageError);
    expect(() => parseChain('claude')).toThrow(/"claude" is not a provider; expected bedrock:<model id>/);
    expect(() => parseChain(' , ')).toThrow(/no provider/);
  });

  it('name what a real provider needs before anything is called', () => {
    // Act
    const none = missingRequirements(parseChain('bedrock:amazon.nova-lite-v1:0,openai:gpt-4o-mini,rules'), {
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
    });
    const ready = missingRequirements(parseChain('bedrock:amazon.nova-lite-v1:0,openai:gpt-4o-mini,rules'), {
      AWS_PROFILE: 'eval',
      AWS_REGION: 'us-east-1',
      TALLY_OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
    });
    // Assess
    expect(none).toEqual([
      expect.stringMatching(/^bedrock:amazon\.nova-lite-v1:0 needs AWS credentials \(AWS_PROFILE/),
      expect.stringMatching(/^bedrock:amazon\.nova-lite-v1:0 needs a region .*AWS_REGION/),
      expect.stringMatching(/^openai:gpt-4o-mini needs TALLY_OPENAI_BASE_URL/),
    ]);
    expect(ready).toEqual([]);
  });
});

describe('an evaluation with recorded answers against rules', () => {
  let out: string;
  let result: EvalResult;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'tally-triage-eval-'));
    result = await runEvaluation({
      providers: 'fixture',
      compare: 'rules',
      out,
      env: ENV,
      now: () => new Date('2026-01-02T03:04:05.000Z'),
    });
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const fixtureChain = () => result.report.chains[0]!;
  const rulesChain = () => result.report.chains[1]!;
  const item = (id: string) => fixtureChain().items.find((i) => i.id === id)!;

  it('scores the recorded answers as worked out by hand', () => {
    // Act
    const m = fixtureChain().by_provider['fixture:amazon.nova-lite-v1:0']!;
    // Assess: 8 recorded answers pass the chain (2 more are refused and fall back to rules).
    expect(m.items).toBe(8);
    expect(m.severity_exact).toBe(6 / 8); // T0026 one level low, source:43 two levels high
    expect(m.severity_within_one).toBe(7 / 8);
    expect(m.citations).toBe(16); // 14 valid + P42 and settlement-manual.md#cut-off-times
    expect(m.citation_validity).toBe(14 / 16);
    // Per item: 1, 2/3, 1/2, 2/3, 0, 1, 2/3, 1.
    expect(m.section_recall).toBeCloseTo(5.5 / 8, 10);
    expect(m.fact_coverage).toBeCloseTo((7 + 2 / 3) / 8, 10);
    // 820 880 950 1010 1100 1310 1430 1720 ms: the 4th and the 8th.
    expect([m.latency_p50_ms, m.latency_p95_ms]).toEqual([1010, 1720]);
    expect([m.input_tokens, m.output_tokens]).toEqual([11366, 1085]);
    // amazon.nova-lite-v1:0 at $0.06/$0.24 per million, each call rounded up to a micro-dollar:
    // 126 + 115 + 117 + 134 + 105 + 116 + 111 + 122.
    expect(m.cost_micro_usd).toBe(946);
    expect(m.unpriced_answers).toBe(0);
    expect(m.fallbacks).toBe(0);
  });

  it('shows each measure on the item that exercises it', () => {
    expect(item('trades:MISSING_IN_TARGET:T0007').rejected_citations).toEqual([
      'P42',
      'settlement-manual.md#cut-off-times',
    ]);
    expect(item('trades:AMOUNT_MISMATCH:T0026')).toMatchObject({
      severity: 'HIGH',
      severity_exact: false,
      severity_within_one: true,
    });
    expect(item('trades:INVALID_RECORD:source:43')).toMatchObject({
      severity: 'HIGH',
      severity_within_one: false,
      section_recall: 0,
    });
    expect(item('trades:FIELD_MISMATCH:T0033').facts_missed).toEqual(['target account_id']);
    // recon-policy.md is cited for T0026 and counts as datasets/trades.md.
    expect(item('trades:AMOUNT_MISMATCH:T0026').sections_missed).toEqual([
      'exception-handling-runbook.md#exception-handling-runbook/amount-mismatch-amount-mismatch/what-to-check',
    ]);
  });

  it('falls back to rules when a recorded answer is refused or missing, and counts it', () => {
    // Assess: all citations invalid; not the schema; not recorded.
    for (const [id, why] of [
      ['payments:MISSING_IN_SOURCE:PAY-0010', /no citation names a retrieved passage/],
      ['payments:DUPLICATE_IN_TARGET:PAY-0012', /does not match the schema/],
      ['trades:AMOUNT_MISMATCH:T0018', /no recorded answer for trades:AMOUNT_MISMATCH:T0018/],
    ] as const) {
      expect(item(id).provider).toBe('rules');
      expect(item(id).fallbacks).toEqual([expect.stringMatching(why)]);
    }
    expect(fixtureChain().by_provider.rules!.fallbacks).toBe(39);
    expect(fixtureChain().overall.fallbacks).toBe(39);
    expect(Object.keys(fixtureChain().by_route)).toEqual(['default']);
  });

  it('scores rules against the labels: only the invalid rows that hide a trade are misjudged', () => {
    // Act
    const m = rulesChain().overall;
    const missed = rulesChain().items.filter((i) => !i.severity_exact);
    // Assess
    expect(m.items).toBe(47);
    expect(missed.map((i) => [i.id, i.severity])).toEqual([
      ['trades:INVALID_RECORD:source:41', 'LOW'],
      ['trades:INVALID_RECORD:target:37', 'LOW'],
    ]);
    expect(m.citation_validity).toBe(1);
    expect([m.input_tokens, m.output_tokens, m.cost_micro_usd]).toEqual([0, 0, 0]);
  });

  it('lists the items the two chains answered differently', () => {
    // Assess: the 8 answered by the fixture; the refused ones fell back to the same rules answer.
    const differences = result.report.differences!;
    expect(differences.map((d) => d.id)).toEqual([
      'trades:AMOUNT_MISMATCH:T0005',
      'trades:MISSING_IN_TARGET:T0007',
      'trades:DUPLICATE_IN_TARGET:T0012',
      'trades:AMOUNT_MISMATCH:T0026',
      'trades:FIELD_MISMATCH:T0033',
      'trades:INVALID_RECORD:source:41',
      'trades:INVALID_RECORD:source:43',
      'payments:AMOUNT_MISMATCH:PAY-0014',
    ]);
    expect(differences.find((d) => d.id === 'trades:INVALID_RECORD:source:41')).toMatchObject({
      expected_severity: 'HIGH',
      a: { severity: 'HIGH', provider: 'fixture:amazon.nova-lite-v1:0' },
      b: { severity: 'LOW', provider: 'rules' },
      differs: expect.arrayContaining(['provider', 'severity']),
    });
  });

  it('writes the report as JSON and Markdown, and prints the tables', () => {
    // Assess
    expect(JSON.parse(readFileSync(result.files.json, 'utf8'))).toEqual(result.report);
    expect(result.report.generated_at).toBe('2026-01-02T03:04:05.000Z');
    expect(result.report.golden).toEqual({
      path: 'scripts/tools/triage-eval/golden.json',
      items: 47,
      by_dataset: { trades: 31, payments: 16 },
    });
    const markdown = readFileSync(result.files.markdown, 'utf8');
    expect(markdown).toContain('## fixture\n');
    expect(markdown).toContain('## rules\n');
    expect(markdown).toContain('## fixture (A) against rules (B)');
    expect(markdown).toMatch(
      /\| provider fixture:amazon\.nova-lite-v1:0 \| 8 \| 0\.750 \| 0\.875 \| 0\.875 \| 2\/16 \|/,
    );
    expect(markdown).toContain('| trades:INVALID_RECORD:source:43 | LOW | **HIGH** |');
    expect(result.text).toMatch(/^provider fixture:amazon\.nova-lite-v1:0 +8 +0\.750 +0\.875 +0\.875 +2\/16 /m);
    expect(result.text).toMatch(/^route default +47 /m);
    expect(result.text).toMatch(/^dataset trades +31 /m);
    expect(result.text).toMatch(/^dataset payments +16 /m);
    expect(result.text).toMatch(/^cost +\$0\.000946 +\$0\.000000$/m);
    expect(result.text).toContain('8 items differ:');
    expect(result.text).toContain(
      '39 of 47 items fell back past a failing provider (the rows above name who answered); first: fixture:amazon.nova-lite-v1:0 failed: amazon.nova-lite-v1:0: no recorded answer for trades:MISSING_IN_TARGET:T0014',
    );
  });
});

describe('npm run eval:triage', () => {
  const run = promisify(execFile);
  const cli = join(REPO_ROOT, 'scripts/tools/triage-eval.ts');

  it('says what it needs when a chain cannot run here, and exits 2', async () => {
    // Act
    const failed = await run(process.execPath, [cli, '--providers', 'bedrock:amazon.nova-lite-v1:0,rules'], {
      env: { PATH: process.env.PATH, HOME: tmpdir(), AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    // Assess
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toMatch(
      /cannot run bedrock:amazon\.nova-lite-v1:0,rules:\n {2}- bedrock:amazon\.nova-lite-v1:0 needs AWS credentials/,
    );
    expect(failed?.stderr).toContain('only rules and fixture run offline');
  });

  it('prints its usage with --help', async () => {
    const { stdout } = await run(process.execPath, [cli, '--help']);
    expect(stdout).toMatch(/^Usage: npm run eval:triage/);
    expect(stdout).toContain('Only rules and fixture run without a network');
  });
});

describe('an evaluation under routing rules (TALLY_TRIAGE_ROUTES)', () => {
  it('sends the exceptions a rule matches down its chain and reports each route apart', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tally-triage-eval-routes-'));
    try {
      const routes = JSON.stringify([
        { name: 'invalid-rows', match: { exception_type: 'INVALID_RECORD' }, providers: 'rules' },
      ]);
      const { report } = await runEvaluation({
        providers: 'fixture',
        out,
        env: { ...ENV, TALLY_TRIAGE_ROUTES: routes },
        now: () => new Date('2026-01-02T03:04:05.000Z'),
      });
      const chain = report.chains[0]!;
      expect(Object.keys(chain.by_route).sort()).toEqual(['default', 'invalid-rows']);
      const invalid = chain.items.filter((i) => i.exception_type === 'INVALID_RECORD');
      expect(invalid.length).toBeGreaterThan(0);
      expect(chain.by_route['invalid-rows']!.items).toBe(invalid.length);
      for (const item of invalid) expect(item).toMatchObject({ route: 'invalid-rows', provider: 'rules' });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

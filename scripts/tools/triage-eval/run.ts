/**
 * One evaluation: the golden cases built, the policy corpus indexed into a throw-away local index,
 * each chain run over every case, the report printed and written. The CLI (scripts/tools/
 * triage-eval.ts) and the tests both call `runEvaluation`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { DEFAULT_POLICY_PATH, REPO_ROOT } from '../../../functions/shared/paths.ts';
import { loadReconPolicyFile } from '../../../functions/shared/recon-policy-file.ts';
import { ENV } from '../../../functions/shared/resources.ts';
import { createEmbedder } from '../../../functions/shared/search/factory.ts';
import type { Embedder } from '../../../functions/shared/search/ports.ts';
import { parsePriceTable } from '../../../functions/triage/cost.ts';
import { chooseRoute, DEFAULT_ROUTE, parseRouteTable } from '../../../functions/triage/routing.ts';
import { FixtureProvider } from './fixture-provider.ts';
import { buildCases, GOLDEN_PATH, loadGoldenSet } from './golden.ts';
import { buildPolicyIndex, evaluateChain } from './harness.ts';
import { buildProviders, EvalUsageError, missingRequirements, parseChain, type ChainSpec } from './providers.ts';
import { chainReport, chainTable, compareChains, comparisonText, toMarkdown, type EvalReport } from './report.ts';

export interface EvalOptions {
  /** A chain in TALLY_TRIAGE_PROVIDERS syntax, plus `fixture[:file]`. */
  readonly providers: string;
  /** A second chain to set beside the first. */
  readonly compare?: string;
  /** Where report.json and report.md go. */
  readonly out: string;
  readonly golden?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly embedder?: Embedder;
  readonly now?: () => Date;
}

export interface EvalResult {
  readonly report: EvalReport;
  /** What the CLI prints. */
  readonly text: string;
  readonly files: { readonly json: string; readonly markdown: string };
}

export async function runEvaluation(options: EvalOptions): Promise<EvalResult> {
  const env = options.env ?? process.env;
  const specs: ChainSpec[] = [parseChain(options.providers)];
  if (options.compare !== undefined) specs.push(parseChain(options.compare));
  const problems = specs.flatMap((s) => missingRequirements(s, env));
  if (problems.length > 0)
    throw new EvalUsageError(
      `cannot run ${specs.map((s) => s.label).join(' and ')}:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );

  const goldenPath = resolve(options.golden ?? GOLDEN_PATH);
  const golden = loadGoldenSet(goldenPath);
  const cases = await buildCases(golden, goldenPath);
  const itemOf = new Map(cases.map((c) => [c.exception.exception_id, c.id]));
  // The rules provider quotes the tolerance of the policy the triage function is configured with.
  const policy = loadReconPolicyFile(env[ENV.reconPolicyPath] ?? DEFAULT_POLICY_PATH);
  const prices = parsePriceTable(env[ENV.triagePrices]);
  // Routing rules as triage reads them (TALLY_TRIAGE_ROUTES): each chain evaluated is the fallback,
  // and a rule's own chain replaces it for the exceptions it matches.
  const routes = env[ENV.triageRoutes]
    ? parseRouteTable(env[ENV.triageRoutes], [], { openaiConfigured: Boolean(env[ENV.openaiBaseUrl]) })
    : undefined;
  const embedder = options.embedder ?? createEmbedder(env);

  const dir = mkdtempSync(join(tmpdir(), 'tally-triage-eval-'));
  try {
    const policyIndex = await buildPolicyIndex(join(dir, 'policies.jsonl'), embedder);
    const chains = [];
    for (const spec of specs) {
      const providers = buildProviders(spec, { env, policy, itemOf: (id) => itemOf.get(id) });
      const known = new Set(cases.map((c) => c.id));
      for (const p of providers) {
        const unknown = p instanceof FixtureProvider ? p.unknownItems(known) : [];
        if (unknown.length > 0)
          throw new EvalUsageError(`recorded answers for items not in the golden set: ${unknown.join(', ')}`);
      }
      const ruleProviders = new Map(
        (routes?.rules ?? []).map((rule) => [
          rule.name,
          buildProviders(
            parseChain(rule.providers.map((p) => (p.kind === 'rules' ? 'rules' : `${p.kind}:${p.model}`)).join(',')),
            { env, policy, itemOf: (id) => itemOf.get(id) },
          ),
        ]),
      );
      const items = await evaluateChain(
        cases,
        (c) => {
          const rule = routes?.rules.find(
            (r) =>
              chooseRoute(routes, {
                dataset: c.dataset,
                exceptionType: c.exception.exception_type,
                policySeverity: c.exception.policy_severity,
              }) === r,
          );
          return rule
            ? { route: rule.name, providers: ruleProviders.get(rule.name) ?? providers }
            : { route: DEFAULT_ROUTE, providers };
        },
        {
          embedder,
          policyIndex,
          prices,
          equivalents: golden.equivalent_documents,
        },
      );
      chains.push(chainReport(spec.label, items));
    }
    const [a, b] = chains;
    const differences = a && b ? compareChains(a, b) : undefined;
    const byDataset: Record<string, number> = {};
    for (const c of cases) byDataset[c.dataset] = (byDataset[c.dataset] ?? 0) + 1;
    const report: EvalReport = {
      generated_at: (options.now ?? (() => new Date()))().toISOString(),
      golden: { path: relative(REPO_ROOT, goldenPath), items: cases.length, by_dataset: byDataset },
      embedder: embedder.id,
      chains,
      ...(differences ? { differences } : {}),
    };

    mkdirSync(options.out, { recursive: true });
    const files = { json: join(options.out, 'report.json'), markdown: join(options.out, 'report.md') };
    writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(files.markdown, toMarkdown(report));

    const text = [
      `${cases.length} labelled exceptions (${Object.entries(byDataset)
        .map(([d, n]) => `${d} ${n}`)
        .join(', ')}); embedder ${embedder.id}`,
      ...chains.flatMap((c) => ['', c.chain, chainTable(c)]),
      ...(a && b && differences ? ['', comparisonText(a, b, differences)] : []),
      '',
      `reports: ${files.json}, ${files.markdown}`,
    ].join('\n');
    return { report, text: `${text}\n`, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

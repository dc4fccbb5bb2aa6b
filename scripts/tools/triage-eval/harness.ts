/**
 * Runs a provider chain over the golden cases the way triage does: the policy corpus indexed as
 * ingest indexes it (every document the local stack uploads, split and embedded by the configured
 * embedder), passages retrieved and numbered by triage's own retrieval, the prompt built by
 * triage's prompt module, and the answer taken through the real chain (validation, rejected
 * citations, fallback to rules). Then each answer is scored against its label.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POLICIES_DIR } from '../../../functions/shared/paths.ts';
import {
  passageDocument,
  passageEmbeddingText,
  policyDocuments,
  splitIntoPassages,
} from '../../../functions/shared/policy-corpus.ts';
import { LocalVectorIndex } from '../../../functions/shared/search/local-index.ts';
import type { Embedder, VectorIndex } from '../../../functions/shared/search/ports.ts';
import type { CircuitBreaker } from '../../../functions/shared/tables/circuit-breaker.ts';
import { runChain } from '../../../functions/triage/chain.ts';
import { priceCall, type PriceTable } from '../../../functions/triage/cost.ts';
import { buildUserPrompt, numberPassages, SYSTEM_PROMPT } from '../../../functions/triage/prompt.ts';
import type { TriageProvider } from '../../../functions/triage/providers/types.ts';
import { retrievePassages } from '../../../functions/triage/retrieval.ts';
import { canonicalPassageId, type GoldenCase, type GoldenSet } from './golden.ts';
import { factCoverage, sectionRecall, severityAgreement, type ItemOutcome } from './metrics.ts';

/** The policy corpus as the local stack's ingest builds it: documents named by their path under policies/. */
export async function buildPolicyIndex(file: string, embedder: Embedder, dir = POLICIES_DIR): Promise<VectorIndex> {
  const index = LocalVectorIndex.load(file);
  for (const document of policyDocuments(dir)) {
    const passages = splitIntoPassages(document, readFileSync(join(dir, document), 'utf8'));
    const vectors = await embedder.embed(passages.map(passageEmbeddingText));
    await index.replaceMany(
      passages.map((p, i) => passageDocument(p, vectors[i] as number[], { key: `policies/${document}` })),
    );
  }
  return index;
}

/** Which chain an exception goes to, and the name of the rule that chose it. */
export type Router = (c: GoldenCase) => { route: string; providers: readonly TriageProvider[] };

export interface HarnessDeps {
  readonly embedder: Embedder;
  readonly policyIndex: VectorIndex;
  readonly prices: PriceTable;
  readonly equivalents: GoldenSet['equivalent_documents'];
  readonly sleep?: (ms: number) => Promise<void>;
  readonly clock?: () => number;
}

/**
 * Every provider is tried on every item: a deployment's breaker would skip a failing model after a
 * few failures, which would hide how the model itself does on the rest of the set.
 */
const NEVER_OPEN: CircuitBreaker = {
  state: async () => 'closed',
  recordSuccess: async () => {},
  recordFailure: async () => {},
};

export async function evaluateChain(
  cases: readonly GoldenCase[],
  router: Router,
  deps: HarnessDeps,
): Promise<ItemOutcome[]> {
  const clock = deps.clock ?? (() => performance.now());
  const canon = (id: string) => canonicalPassageId(id, deps.equivalents);
  const outcomes: ItemOutcome[] = [];
  for (const c of cases) {
    const { route, providers } = router(c);
    const passages = numberPassages(await retrievePassages(c.exception, deps.embedder, deps.policyIndex));
    const started = clock();
    const result = await runChain(
      { exception: c.exception, passages, system: SYSTEM_PROMPT, user: buildUserPrompt(c.exception, passages) },
      {
        providers,
        breaker: NEVER_OPEN,
        now: Date.now,
        sleep: deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
        maxThrottleRetries: 3,
      },
    );
    // A model's own figure where it gives one (Bedrock's metrics, a recording); else the wall time.
    const latency = result.latencyMs ?? clock() - started;
    const expected = c.sections.map(canon);
    const cited = result.citations.map((p) => canon(p.passage_id));
    const recall = sectionRecall(expected, cited);
    const ceiling = sectionRecall(
      expected,
      passages.map((p) => canon(p.passage_id)),
    );
    const facts = factCoverage(result.answer.summary, c.facts, c.sides);
    const agreement = severityAgreement(c.severity, result.answer.severity);
    const isModel = result.provider.kind === 'model';
    const cost = isModel
      ? priceCall(result.provider.model, { input: result.inputTokens, output: result.outputTokens }, deps.prices)
      : { micro_usd: 0, priced: true };
    outcomes.push({
      id: c.id,
      dataset: c.dataset,
      exception_type: c.exception.exception_type,
      route,
      provider: isModel ? `${result.provider.name}:${result.provider.model}` : result.provider.name,
      expected_severity: c.severity,
      severity: result.answer.severity,
      severity_exact: agreement.exact,
      severity_within_one: agreement.withinOne,
      summary: result.answer.summary,
      citations: result.citations.map((p) => p.passage_id),
      rejected_citations: result.rejectedCitations,
      section_recall: recall.recall,
      sections_missed: recall.missed,
      retrieval_ceiling: ceiling.recall,
      facts_covered: facts.covered,
      facts_total: facts.total,
      facts_missed: facts.missed,
      latency_ms: latency,
      input_tokens: result.inputTokens ?? 0,
      output_tokens: result.outputTokens ?? 0,
      cost_micro_usd: cost.micro_usd,
      priced: cost.priced,
      fallbacks: result.attempts.map((a) => `${a.provider}:${a.model} ${a.outcome}`),
    });
  }
  return outcomes;
}

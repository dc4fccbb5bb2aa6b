/**
 * `npm run eval:retrieval`: recall@5 and MRR of exception search for the offline embedders
 * (hashing, semantic, hybrid), by vector alone and fused with the lexical ranking (RRF), on two
 * query sets in scripts/tools/retrieval/: `labels.json` (what an analyst types, ids included) and
 * `paraphrases.json` (meaning without the exceptions' words; checked here). The exceptions go
 * through the real code path — reconciled, triaged by the rules provider over the real policies,
 * embedded and indexed — into throw-away local indexes (the local stack's store), then every
 * query is run against them.
 */
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { reconcile } from '../../functions/recon/engine.ts';
import { exceptionId } from '../../functions/shared/exceptions.ts';
import { toExceptionRecord } from '../../functions/recon/exception-record.ts';
import { DEFAULT_POLICY_PATH, POLICIES_DIR } from '../../functions/shared/paths.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { passageDocument, passageEmbeddingText, splitIntoPassages } from '../../functions/shared/policy-corpus.ts';
import { AnnVectorIndex } from '../../functions/shared/search/ann-index.ts';
import { CombinedEmbedder } from '../../functions/shared/search/combined-embedder.ts';
import { exceptionDocument, exceptionEmbeddingText } from '../../functions/shared/search/exception-document.ts';
import {
  HYBRID_SEMANTIC_WEIGHT,
  hybridEmbedder,
  localIndexOptions,
  offlineEmbedderOf,
} from '../../functions/shared/search/factory.ts';
import { HashingEmbedder, tokenize } from '../../functions/shared/search/hashing-embedder.ts';
import type { Embedder, VectorIndex } from '../../functions/shared/search/ports.ts';
import { SemanticEmbedder } from '../../functions/shared/search/semantic-embedder.ts';
import { retrievePassages } from '../../functions/triage/retrieval.ts';
import { numberPassages } from '../../functions/triage/prompt.ts';
import { RulesProvider } from '../../functions/triage/providers/rules.ts';
import { validateAnswer } from '../../functions/triage/chain.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';

const HERE = new URL('./retrieval/', import.meta.url).pathname;
export const K = 5;
/** MRR counts the first relevant result within this many. */
export const MRR_DEPTH = 10;

export interface Query {
  readonly q: string;
  readonly expected: readonly string[];
}
export interface QuerySet {
  readonly name: string;
  readonly queries: readonly Query[];
}
export type Retrieval = 'vector' | 'fused';

export interface Corpus {
  readonly embedder: Embedder;
  readonly index: VectorIndex;
  /** Exception id to its label (TYPE:key). */
  readonly labelOf: ReadonlyMap<string, string>;
  /** Label to the text that was embedded for it. */
  readonly textOf: ReadonlyMap<string, string>;
}

export function loadQuerySets(): QuerySet[] {
  return [
    { name: 'labelled', file: 'labels.json' },
    { name: 'paraphrase', file: 'paraphrases.json' },
  ].map(({ name, file }) => ({
    name,
    queries: (JSON.parse(readFileSync(join(HERE, file), 'utf8')) as { queries: Query[] }).queries,
  }));
}

/** Reconciles the sample, triages with the rules provider and indexes every exception. */
export async function buildCorpus(embedder: Embedder, dir: string): Promise<Corpus> {
  const layout = localIndexOptions(offlineEmbedderOf(embedder.id));
  const policyIndex = AnnVectorIndex.load(join(dir, `${embedder.id}-policies.jsonl`), layout);
  for (const file of readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.md'))) {
    const passages = splitIntoPassages(file, readFileSync(join(POLICIES_DIR, file), 'utf8'));
    const vectors = await embedder.embed(passages.map(passageEmbeddingText));
    await policyIndex.replaceMany(passages.map((p, i) => passageDocument(p, vectors[i] as number[])));
  }
  const policy = parseReconPolicy(readFileSync(DEFAULT_POLICY_PATH, 'utf8'));
  const { findings } = await reconcile(
    { name: 'source.csv', stream: createReadStream(join(HERE, 'source.csv')) },
    { name: 'target.csv', stream: createReadStream(join(HERE, 'target.csv')) },
    policy,
  );
  const ctx = { runId: 'eval', dataset: 'eval', businessDate: '2025-12-10', now: '2025-12-10T18:00:00.000Z' };
  const index = AnnVectorIndex.load(join(dir, `${embedder.id}-exceptions.jsonl`), layout);
  const labelOf = new Map<string, string>();
  const textOf = new Map<string, string>();
  const rules = new RulesProvider(policy);
  for (const finding of findings) {
    const record: ExceptionRecord = toExceptionRecord(finding, ctx);
    const passages = numberPassages(await retrievePassages(record, embedder, policyIndex));
    const raw = await rules.triage({ exception: record, passages, system: '', user: '' });
    const valid = validateAnswer(raw.answer, passages);
    if (valid.ok)
      record.triage = { ...valid.answer, policy_citations: valid.citations } as unknown as ExceptionRecord['triage'];
    const text = exceptionEmbeddingText(record);
    const [vector] = await embedder.embed([text]);
    await index.replace(exceptionDocument(record, vector as number[]));
    const label = `${finding.type}:${finding.keyText}`;
    labelOf.set(exceptionId(ctx.dataset, ctx.businessDate, finding.type, finding.keyText), label);
    textOf.set(label, text);
  }
  return { embedder, index, labelOf, textOf };
}

/** Queries of a paraphrase set that share a word (as the hashing embedder tokenises) with what they should find. */
export function sharedWords(set: QuerySet, corpus: Corpus): { q: string; words: string[] }[] {
  return set.queries.flatMap(({ q, expected }) => {
    const exceptionWords = new Set(expected.flatMap((label) => tokenize(corpus.textOf.get(label) ?? '')));
    const words = [...new Set(tokenize(q))].filter((w) => exceptionWords.has(w));
    return words.length > 0 ? [{ q, words }] : [];
  });
}

export interface QueryResult {
  readonly q: string;
  readonly recall: number;
  readonly reciprocalRank: number;
  readonly top: string[];
}

export async function runQueries(corpus: Corpus, set: QuerySet, retrieval: Retrieval): Promise<QueryResult[]> {
  const results: QueryResult[] = [];
  for (const { q, expected } of set.queries) {
    const [vector] = await corpus.embedder.embed([q]);
    const hits = await corpus.index.search(
      vector as number[],
      MRR_DEPTH,
      undefined,
      retrieval === 'fused' ? { text: q } : {},
    );
    const ranked = hits.map((h) => corpus.labelOf.get(h.id) ?? h.id);
    const top = ranked.slice(0, K);
    const recall = expected.filter((e) => top.includes(e)).length / Math.min(K, expected.length);
    const first = ranked.findIndex((label) => expected.includes(label));
    results.push({ q, recall, reciprocalRank: first === -1 ? 0 : 1 / (first + 1), top });
  }
  return results;
}

export function summarise(results: readonly QueryResult[]): { recall: number; mrr: number } {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return { recall: mean(results.map((r) => r.recall)), mrr: mean(results.map((r) => r.reciprocalRank)) };
}

const EMBEDDERS: Record<string, () => Embedder> = {
  hashing: () => new HashingEmbedder(),
  semantic: () => new SemanticEmbedder(),
  hybrid: () => hybridEmbedder(),
};

function weightedHybrid(weight: number, gist: boolean): Embedder {
  return new CombinedEmbedder(
    [
      { embedder: new SemanticEmbedder({ gist }), weight },
      { embedder: new HashingEmbedder(), weight: 1 - weight },
    ],
    `hybrid w=${weight.toFixed(2)}`,
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h' },
      verbose: { type: 'boolean', short: 'v' },
      embedders: { type: 'string' },
      weights: { type: 'boolean' },
      gist: { type: 'string', default: 'true' },
    },
  });
  if (values.help) {
    process.stdout.write(`Usage: npm run eval:retrieval [-- --embedders hashing,semantic,hybrid] [--weights] [--verbose]

Prints recall@${K} and MRR (first relevant result within ${MRR_DEPTH}) of exception search on the
labelled and paraphrase sets in scripts/tools/retrieval/, for each embedder, by vector alone and
fused with the lexical ranking (what GET /search does). --weights sweeps the hybrid's semantic
weight instead (it is ${HYBRID_SEMANTIC_WEIGHT} in functions/shared/search/factory.ts); with
--gist false the semantic part embeds whole texts, not their gist (semantic-embedder.ts).
--verbose shows each query's top ${K}.
`);
    return;
  }
  const sets = loadQuerySets();
  const embedders: [string, () => Embedder][] = values.weights
    ? [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((w) => [
        `hybrid w=${w.toFixed(1)}${values.gist === 'true' ? ' gist' : ''}`,
        () => weightedHybrid(w, values.gist === 'true'),
      ])
    : (values.embedders ?? 'hashing,semantic,hybrid').split(',').map((name) => {
        const make = EMBEDDERS[name.trim()];
        if (!make) throw new Error(`unknown embedder ${name}: one of ${Object.keys(EMBEDDERS).join(', ')}`);
        return [name.trim(), make];
      });
  const dir = mkdtempSync(join(tmpdir(), 'tally-eval-'));
  const rows: string[][] = [];
  try {
    for (const [name, make] of embedders) {
      const corpus = await buildCorpus(make(), dir);
      for (const set of sets) {
        if (set.name === 'paraphrase')
          for (const { q, words } of sharedWords(set, corpus))
            process.stderr.write(`warning: paraphrase "${q}" shares ${words.join(', ')} with what it should find\n`);
        for (const retrieval of ['vector', 'fused'] as const) {
          const results = await runQueries(corpus, set, retrieval);
          const { recall, mrr } = summarise(results);
          rows.push([set.name, String(set.queries.length), name, retrieval, recall.toFixed(3), mrr.toFixed(3)]);
          if (values.verbose) {
            process.stdout.write(`\n${set.name} / ${corpus.embedder.id} / ${retrieval}\n`);
            for (const r of results)
              process.stdout.write(`${r.recall.toFixed(2).padStart(5)}  ${r.q}\n       top: ${r.top.join(', ')}\n`);
          }
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const header = ['set', 'queries', 'embedder', 'retrieval', `recall@${K}`, 'MRR'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |\n`;
  process.stdout.write(`\n${line(header)}${line(widths.map((w) => '-'.repeat(w)))}`);
  for (const row of rows.sort((a, b) => (a[0] as string).localeCompare(b[0] as string)))
    process.stdout.write(line(row));
}

if (import.meta.main) await main();

/**
 * `npm run eval:retrieval`: recall@5 of exception search for the configured embedder, on a small
 * labelled set (scripts/tools/retrieval/labels.json). The exceptions go through the real code
 * path — reconciled, triaged by the rules provider over the real policies, embedded and indexed —
 * into a throw-away local index, then every labelled query is run against it.
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
import { passageEmbeddingText, splitIntoPassages } from '../../functions/shared/policy-corpus.ts';
import { createEmbedder } from '../../functions/shared/search/factory.ts';
import { exceptionDocument, exceptionEmbeddingText } from '../../functions/shared/search/exception-document.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import { retrievePassages } from '../../functions/triage/retrieval.ts';
import { numberPassages } from '../../functions/triage/prompt.ts';
import { RulesProvider } from '../../functions/triage/providers/rules.ts';
import { validateAnswer } from '../../functions/triage/chain.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';

const HERE = new URL('./retrieval/', import.meta.url).pathname;
const K = 5;

const { values } = parseArgs({
  options: { help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean', short: 'v' } },
});
if (values.help) {
  process.stdout.write(`Usage: npm run eval:retrieval [-- --verbose]

Prints recall@${K} of exception search on the labelled set in scripts/tools/retrieval/ for the
embedder configured by TALLY_EMBEDDER (default: the offline hashing embedder). --verbose shows
each query's top ${K}.
`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'tally-eval-'));
try {
  const embedder = createEmbedder();
  const policyIndex = LocalVectorIndex.load(join(dir, 'policies.jsonl'));
  for (const file of readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.md'))) {
    const passages = splitIntoPassages(file, readFileSync(join(POLICIES_DIR, file), 'utf8'));
    const vectors = await embedder.embed(passages.map(passageEmbeddingText));
    for (const [i, p] of passages.entries()) {
      await policyIndex.replace({
        id: p.passage_id,
        vector: vectors[i] as number[],
        text: p.text,
        fields: {
          passage_id: p.passage_id,
          document: p.document,
          section: p.section,
          exception_types: p.exception_type,
        },
      });
    }
  }

  const policy = parseReconPolicy(readFileSync(DEFAULT_POLICY_PATH, 'utf8'));
  const { findings } = await reconcile(
    { name: 'source.csv', stream: createReadStream(join(HERE, 'source.csv')) },
    { name: 'target.csv', stream: createReadStream(join(HERE, 'target.csv')) },
    policy,
  );
  const ctx = { runId: 'eval', dataset: 'eval', businessDate: '2025-12-10', now: new Date().toISOString() };
  const exceptionsIndex = LocalVectorIndex.load(join(dir, 'exceptions.jsonl'));
  const labelOf = new Map<string, string>();
  const rules = new RulesProvider(policy);
  for (const finding of findings) {
    const record: ExceptionRecord = toExceptionRecord(finding, ctx);
    const passages = numberPassages(await retrievePassages(record, embedder, policyIndex));
    const raw = await rules.triage({ exception: record, passages, system: '', user: '' });
    const valid = validateAnswer(raw.answer, passages);
    if (valid.ok)
      record.triage = { ...valid.answer, policy_citations: valid.citations } as unknown as ExceptionRecord['triage'];
    const [vector] = await embedder.embed([exceptionEmbeddingText(record)]);
    await exceptionsIndex.replace(exceptionDocument(record, vector as number[]));
    labelOf.set(
      exceptionId(ctx.dataset, ctx.businessDate, finding.type, finding.keyText),
      `${finding.type}:${finding.keyText}`,
    );
  }

  const labels = JSON.parse(readFileSync(join(HERE, 'labels.json'), 'utf8')) as {
    queries: { q: string; expected: string[] }[];
  };
  let total = 0;
  process.stdout.write(
    `embedder ${embedder.id}; ${findings.length} exceptions indexed; ${labels.queries.length} labelled queries\n\n`,
  );
  for (const { q, expected } of labels.queries) {
    const [vector] = await embedder.embed([q]);
    const top = (await exceptionsIndex.search(vector as number[], K)).map((h) => labelOf.get(h.id) ?? h.id);
    const found = expected.filter((e) => top.includes(e)).length;
    const recall = found / Math.min(K, expected.length);
    total += recall;
    process.stdout.write(
      `${recall.toFixed(2).padStart(5)}  ${q}${values.verbose ? `\n       top: ${top.join(', ')}` : ''}\n`,
    );
  }
  process.stdout.write(`\nrecall@${K}: ${(total / labels.queries.length).toFixed(3)} (${embedder.id})\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * `npm run eval:triage`: scores triage provider chains against the labelled golden set in
 * scripts/tools/triage-eval/ (see run.ts). The exceptions go through the real code path —
 * reconciled by the engine, passages retrieved by triage's retrieval from the policy corpus the
 * local stack indexes, answered through the real chain — and every answer is scored.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { ENV } from '../../functions/shared/resources.ts';
import { EvalUsageError } from './triage-eval/providers.ts';
import { runEvaluation } from './triage-eval/run.ts';

const USAGE = `Usage: npm run eval:triage [-- --providers CHAIN] [--compare CHAIN] [--out DIR] [--golden FILE]

Runs a triage provider chain over the golden set (scripts/tools/triage-eval/golden.json: 47
labelled exceptions of the trades and payments datasets, every exception type) and prints, for the
chain, each provider that answered, each route and each dataset: severity agreement (exact, within
one level), citation validity (share of citations naming a retrieved passage; rejected ones
counted), expected-section recall (and the retrieval ceiling), fact coverage, latency p50/p95,
tokens and cost.

  --providers CHAIN  the chain, in TALLY_TRIAGE_PROVIDERS syntax, e.g.
                     "bedrock:amazon.nova-lite-v1:0,rules" (default: TALLY_TRIAGE_PROVIDERS, else
                     rules). Providers:
                       bedrock:<model id>  Amazon Bedrock Converse: AWS credentials and AWS_REGION
                       openai:<model>      OpenAI-compatible endpoint: TALLY_OPENAI_BASE_URL
                                           (and TALLY_OPENAI_API_KEY if it needs one)
                       rules               the deterministic policy rules (offline)
                       fixture[:FILE]      replays recorded model answers (offline; default
                                           scripts/tools/triage-eval/recorded-answers.json)
                     rules end every chain, as in the triage function.
  --compare CHAIN    a second chain, printed beside the first with the items they answer differently
  --out DIR          where report.json and report.md go (default .tally/eval/triage)
  --golden FILE      another golden set of the same shape
  -h, --help         this text

Only rules and fixture run without a network: bedrock and openai need their service reachable.
Passages come from the embedder TALLY_EMBEDDER configures (default: the offline hybrid embedder).
Cost prices each answer from TALLY_TRIAGE_PRICES over the built-in price table (functions/triage/cost.ts).
`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      providers: { type: 'string' },
      compare: { type: 'string' },
      out: { type: 'string', default: join(REPO_ROOT, '.tally', 'eval', 'triage') },
      golden: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

try {
  const { text } = await runEvaluation({
    // The chain triage is configured with, as the triage function reads it.
    providers: values.providers ?? process.env[ENV.triageProviders] ?? 'rules',
    out: values.out,
    ...(values.compare === undefined ? {} : { compare: values.compare }),
    ...(values.golden === undefined ? {} : { golden: values.golden }),
  });
  process.stdout.write(text);
} catch (error) {
  if (error instanceof EvalUsageError) {
    process.stderr.write(
      `${error.message}\n(npm run eval:triage -- --help lists what each provider needs; only rules and fixture run offline)\n`,
    );
    process.exit(2);
  }
  throw error;
}

import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { reconcile, ReconInputError } from '../../functions/recon/engine.ts';
import { parseReconPolicy, PolicyError } from '../../functions/shared/policy.ts';
import { toExceptionRecord } from '../../functions/recon/exception-record.ts';
import { DEFAULT_POLICY_PATH } from '../../functions/shared/paths.ts';
import { isCalendarDate } from '../../functions/shared/keys.ts';
import { UsageError } from './usage.ts';

export const reconHelp = `Usage: tally recon --source FILE --target FILE [options]

Reconcile two CSV extracts offline under the recon policy and write one exception per line as
JSON. The run summary goes to stderr.

Options:
  --source FILE     source system extract (CSV, UTF-8, header row)       [required]
  --target FILE     target system extract (CSV, UTF-8, header row)       [required]
  --policy FILE     recon policy markdown        [default: policies/recon-policy.md]
  --out FILE        write exceptions here instead of stdout (JSON Lines)
  --dataset NAME    dataset name used in exception ids                  [default: adhoc]
  --date DATE       business date (YYYY-MM-DD) used in exception ids    [default: today, UTC]
  -h, --help        show this help

Exit status: 0 when the run completed (with or without exceptions); 2 on bad usage, an
unreadable or invalid input file, or an invalid policy.

Example:
  npx tally recon --source scripts/local/sample/source.csv --target scripts/local/sample/target.csv
`;

export async function reconCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      source: { type: 'string' },
      target: { type: 'string' },
      policy: { type: 'string' },
      out: { type: 'string' },
      dataset: { type: 'string' },
      date: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(reconHelp);
    return 0;
  }
  if (!values.source || !values.target) throw new UsageError('--source and --target are both required', reconHelp);
  const businessDate = values.date ?? new Date().toISOString().slice(0, 10);
  if (!isCalendarDate(businessDate))
    throw new UsageError(`--date must be a calendar date YYYY-MM-DD, got "${businessDate}"`, reconHelp);

  const policyPath = values.policy ?? DEFAULT_POLICY_PATH;
  let policyText: string;
  try {
    policyText = await readFile(policyPath, 'utf8');
  } catch (error) {
    process.stderr.write(`tally recon: cannot read policy ${policyPath}: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const policy = parseReconPolicy(policyText, policyPath);
    const { findings, summary } = await reconcile(
      { name: values.source, stream: createReadStream(values.source) },
      { name: values.target, stream: createReadStream(values.target) },
      policy,
    );
    const out = values.out ? createWriteStream(values.out) : process.stdout;
    const ctx = { runId: 'cli', dataset: values.dataset ?? 'adhoc', businessDate, now: new Date().toISOString() };
    for (const finding of findings) {
      if (!out.write(`${JSON.stringify(toExceptionRecord(finding, ctx))}\n`)) await once(out, 'drain');
    }
    if (values.out)
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    process.stderr.write(
      `${JSON.stringify({ summary: { ...summary, policy_version: policy.policyVersion, policy_hash: policy.hash } })}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof ReconInputError || error instanceof PolicyError) {
      process.stderr.write(`tally recon: ${error.code}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

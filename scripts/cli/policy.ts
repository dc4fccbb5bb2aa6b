/**
 * `tally policy push FILE`: checks a dataset's policy locally (every problem printed), then
 * uploads it through a pre-signed URL from the API to policies/datasets/{dataset}.md, where
 * ingest validates it again and puts it in force. No redeploy.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { UploadTicket } from '../../functions/shared/api-types.ts';
import { validateDatasetPolicy } from '../../functions/shared/dataset-policies.ts';
import { DATASET_PATTERN, DATASET_RULE, datasetPolicyKey } from '../../functions/shared/keys.ts';
import { PolicyError } from '../../functions/shared/policy.ts';
import { apiOptionsHelp, apiParseOptions, clientFor, processIo, reportApiError, type CliIo } from './api-client.ts';
import { putFile } from './upload.ts';
import { UsageError } from './usage.ts';

export const policyHelp = `Usage: tally policy push FILE [--dataset NAME] [options]

Checks a dataset's policy (prose and one \`\`\`json tally-policy block) and uploads it to
${datasetPolicyKey('{dataset}')}. Ingest puts it in force once it validates there too;
runs from then on apply it (each run records the policy version and hash it applied), and the
dataset's open exceptions whose triage cites no policy passage are triaged again (a minute later
on AWS, 10 s locally: TALLY_UNCITED_SETTLE_SECONDS). A policy that does not validate is not
uploaded: every problem is printed.

Options:
  --dataset NAME          ${DATASET_RULE}   [default: FILE's name without .md]
  --check                 only check the file; upload nothing
${apiOptionsHelp}

Example:
  npx tally policy push policies/datasets/payments.md
`;

export async function policyCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...apiParseOptions, dataset: { type: 'string' }, check: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(policyHelp);
    return 0;
  }
  const [action, file, ...extra] = positionals;
  if (action !== 'push') throw new UsageError(`unknown action "${action ?? ''}"; expected "push"`, policyHelp);
  if (file === undefined || extra.length > 0) throw new UsageError('name exactly one FILE to push', policyHelp);
  const dataset = values.dataset ?? basename(file).replace(/\.md$/, '');
  if (!DATASET_PATTERN.test(dataset))
    throw new UsageError(`dataset "${dataset}" must be ${DATASET_RULE} (give --dataset NAME)`, policyHelp);

  let text: Buffer;
  try {
    text = readFileSync(file);
  } catch (error) {
    io.stderr.write(`tally policy: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const policy = validateDatasetPolicy(dataset, text.toString('utf8'), file);
    io.stderr.write(`${file}: valid policy for ${dataset} (version ${policy.policyVersion})\n`);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    io.stderr.write(`tally policy: ${file} does not validate; nothing uploaded:\n`);
    for (const problem of problemsOf(error, file)) io.stderr.write(`  - ${problem}\n`);
    return 1;
  }
  if (values.check) return 0;

  const api = clientFor(values, io, policyHelp);
  let ticket: UploadTicket;
  try {
    ticket = await api.request<UploadTicket>('POST', '/policies', {
      body: { dataset, content_length: text.length },
    });
  } catch (error) {
    return reportApiError('policy', io, error);
  }
  const result = await putFile(ticket, file, () => undefined).catch((error: Error) => ({
    status: 0,
    body: error.message,
    etag: undefined,
  }));
  if (result.status < 200 || result.status >= 300) {
    io.stderr.write(`tally policy: storage refused the upload: HTTP ${result.status} ${result.body.slice(0, 300)}\n`);
    return 1;
  }
  const etag = result.etag?.replaceAll('"', '');
  if (values.json) io.stdout.write(`${JSON.stringify({ key: ticket.key, dataset, etag: etag ?? null })}\n`);
  else
    io.stdout.write(
      `uploaded ${file} to ${ticket.key}${etag ? ` (ETag ${etag})` : ''}; ingest puts it in force, then asks for a new triage of the open ${dataset} exceptions whose triage cites no policy passage\n`,
    );
  return 0;
}

/** A PolicyError's problems, one each, without the file name the error line already gives. */
function problemsOf(error: PolicyError, file: string): readonly string[] {
  return error.problems.map((p) => (p.startsWith(`${file}: `) ? p.slice(file.length + 2) : p));
}

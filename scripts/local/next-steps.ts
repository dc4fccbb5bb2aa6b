/** What `npm start` prints once the stack is up: where to look next, runnable as printed. */
import { DEFAULT_API_URL } from '../cli/api-client.ts';

export function nextSteps(api: string, dataDir: string): string {
  // The CLI's commands reach the default API unless told otherwise: on another port, say how.
  const elsewhere =
    api === DEFAULT_API_URL
      ? ''
      : `\n  - the CLI's default API is ${DEFAULT_API_URL}: first export TALLY_API_URL=${api} (or add --api ${api})`;
  return `Where to look next:
  - the dashboard: ${api}/ (upload, exceptions, search, runs, queue health)${elsewhere}
  - list and search the exceptions: npx tally exceptions list; npx tally search "amount differs"
  - work one: npx tally exceptions get ID; npx tally exceptions ack ID --note "looking"
  - upload your own extracts: npx tally upload my.csv --dataset trades --date 2025-12-11 --side source
  - add or change a dataset's policy: npx tally policy push policies/datasets/payments.md
  - reconcile files offline: npx tally recon --source A.csv --target B.csv
  - endpoints for other tools: ${dataDir}/endpoints.json`;
}

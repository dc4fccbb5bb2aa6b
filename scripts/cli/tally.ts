#!/usr/bin/env node
/** `tally`: the command-line entry point. Each subcommand lives in its own module. */
import { exceptionsCommand } from './exceptions.ts';
import { filesCommand } from './files.ts';
import { policyCommand } from './policy.ts';
import { reconCommand } from './recon.ts';
import { runsCommand } from './runs.ts';
import { searchCommand } from './search.ts';
import { uploadCommand } from './upload.ts';
import { dlqCommand } from './dlq.ts';
import { patternsCommand } from './patterns.ts';
import { usageCommand } from './usage-cost.ts';
import { mcpCommand } from './mcp.ts';
import { DEFAULT_CLIENT_ID, DEFAULT_ISSUER, loginCommand, logoutCommand } from './login.ts';
import { whoamiCommand } from './whoami.ts';
import { DEFAULT_API_URL } from './api-client.ts';
import { isUsageError, usageErrorText } from './usage.ts';
import { regionCommand } from './region.ts';
import { reindexCommand } from './reindex.ts';

/** The environment variables the commands read: name, what for, default. */
const environment = (
  [
    ['TALLY_API_URL', 'the API the API commands call (--api)', DEFAULT_API_URL],
    ['TALLY_API_TOKEN', "bearer token for an API with sign-in (wins over login's)", 'none'],
    ['TALLY_TOKEN_FILE', 'where login keeps the token (logout removes it)', '~/.tally/token.json'],
    ['TALLY_OIDC_ISSUER', 'the issuer login signs in at (--issuer)', DEFAULT_ISSUER],
    ['TALLY_OIDC_CLIENT_ID', "login's public client (--client-id)", DEFAULT_CLIENT_ID],
    ['TALLY_REGIONS', "region --aws: the deployment's regions, A,B (--regions)", 'none'],
    ['AWS_REGION', 'dlq and reindex on AWS: the region (--region)', 'none'],
    ['AWS_DEFAULT_REGION', 'dlq on AWS when AWS_REGION is not set', 'none'],
  ] as const
)
  .map(([name, what, fallback]) => {
    const left = `  ${name.padEnd(22)}${what}`;
    const right = `[default: ${fallback}]`;
    return `${left}${' '.repeat(Math.max(2, 100 - left.length - right.length))}${right}`;
  })
  .join('\n');

const help = `Usage: tally <command> [options]

Commands:
  recon       reconcile two extracts (CSV, JSON Lines, Parquet) offline under a policy
  upload      upload an extract through a pre-signed URL from the API
  policy      check a dataset's policy and push it (policy push FILE): in force without a redeploy
  files       uploaded extracts: accepted or rejected, and why (via the API)
  runs        reconciliation runs and their triage; release or abandon a held run (via the API)
  exceptions  list, read, acknowledge and resolve exceptions (via the API)
  patterns    a run's break patterns; acknowledge or resolve a whole pattern (via the API)
  search      semantic search over triaged exceptions (via the API)
  dlq         list, peek at and redrive the dead-letter queues (on-call)
  usage       what triage's model calls cost per day against the budget, or one run's (via the API)
  mcp         Tally as an MCP server over stdio, for an assistant (via the API)
  login       sign in at the OpenID issuer in the browser (logout forgets the token)
  whoami      who the API takes you for: id, roles, datasets (via the API)
  region      which region serves: status, promote, fence (failover and failback)
  reindex     rebuild a region's exceptions search index from its table (resumable)

Run "tally <command> --help" for a command's options. The local stack runs with "npm start";
the API commands talk to it at ${DEFAULT_API_URL} unless given --api URL or TALLY_API_URL.

Environment (an option on the command line wins over its variable):
${environment}
AWS credentials come from the AWS SDK's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...);
reindex --aws also reads the variables its help names.
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  recon: reconCommand,
  upload: uploadCommand,
  policy: policyCommand,
  files: filesCommand,
  runs: runsCommand,
  exceptions: exceptionsCommand,
  patterns: patternsCommand,
  search: searchCommand,
  dlq: dlqCommand,
  usage: usageCommand,
  mcp: mcpCommand,
  login: loginCommand,
  logout: logoutCommand,
  whoami: whoamiCommand,
  region: (argv) => regionCommand(argv),
  reindex: (argv) => reindexCommand(argv),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tally: unknown command "${name}"\nSee \`npx tally --help\` for the commands.\n`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    if (isUsageError(error)) {
      process.stderr.write(usageErrorText(name, error));
      return 2;
    }
    process.stderr.write(`tally ${name}: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

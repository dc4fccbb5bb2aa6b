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
import { loginCommand, logoutCommand } from './login.ts';
import { whoamiCommand } from './whoami.ts';
import { UsageError } from './usage.ts';
import { regionCommand } from './region.ts';
import { reindexCommand } from './reindex.ts';

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
the API commands talk to it at http://127.0.0.1:3000 unless given --api URL.
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
    process.stderr.write(`tally: unknown command "${name}"\n\n${help}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(
        `tally ${name}: ${(error as Error).message}\n\n${error instanceof UsageError ? error.help : ''}`,
      );
      return 2;
    }
    process.stderr.write(`tally ${name}: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

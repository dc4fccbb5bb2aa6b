/**
 * Small CLI defects, each pinned: logout's arguments, reindex without a local stack, the MCP help's
 * tool list, the runs page size, search's -k, policy problems containing ";", the top-level
 * help's environment variables, how bad usage is reported, two npm scripts' --help, and the
 * backfill's errors without AWS credentials.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { createTallyMcpServer } from '../../functions/query-api/mcp/server.ts';
import { RUNS_LIMIT } from '../../functions/query-api/schemas.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { runDlq } from '../../scripts/cli/dlq.ts';
import { filesCommand } from '../../scripts/cli/files.ts';
import { logoutCommand } from '../../scripts/cli/login.ts';
import { mcpCommand } from '../../scripts/cli/mcp.ts';
import { policyCommand } from '../../scripts/cli/policy.ts';
import { reindexCommand } from '../../scripts/cli/reindex.ts';
import { runsCommand } from '../../scripts/cli/runs.ts';
import { searchCommand } from '../../scripts/cli/search.ts';
import { UsageError } from '../../scripts/cli/usage.ts';

const dir = mkdtempSync(join(tmpdir(), 'tally-cli-small-'));
const run = promisify(execFile);
const tally = join(REPO_ROOT, 'scripts/cli/tally.ts');

function capture(env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env,
  };
  return { io, out: () => out, err: () => err };
}

/** Runs the tally binary; resolves with its exit code and output whatever the code. */
async function tallyBinary(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--disable-warning=ExperimentalWarning', tally, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('tally logout', () => {
  it('prints help for --help and refuses unknown arguments, signing out only when asked plainly', async () => {
    const file = join(dir, 'token.json');
    writeFileSync(file, '{}');
    const env = { TALLY_TOKEN_FILE: file };

    const help = capture(env);
    expect(await logoutCommand(['--help'], help.io)).toBe(0);
    expect(await logoutCommand(['-h'], capture(env).io)).toBe(0);
    expect(help.out()).toContain('tally logout');
    expect(help.out()).not.toContain('Signed out');
    expect(existsSync(file)).toBe(true);

    await expect(logoutCommand(['now'], capture(env).io)).rejects.toThrow(UsageError);
    await expect(logoutCommand(['--force'], capture(env).io)).rejects.toThrow(/Unknown option '--force'/);
    expect(existsSync(file)).toBe(true);

    const out = capture(env);
    expect(await logoutCommand([], out.io)).toBe(0);
    expect(out.out()).toContain('Signed out');
    expect(existsSync(file)).toBe(false);
  });
});

describe('tally reindex without a local stack', () => {
  it('is a usage error naming what is needed, not an unexpected error with a stack trace', async () => {
    const nowhere = join(dir, 'no-stack');

    await expect(reindexCommand(['--dry-run', '--data-dir', nowhere])).rejects.toThrow(UsageError);
    await expect(reindexCommand(['--dry-run', '--data-dir', nowhere])).rejects.toThrow(
      /no local stack state at .*endpoints\.json.*npm start.*--data-dir.*--aws/,
    );

    const { code, stderr } = await tallyBinary(['reindex', '--dry-run', '--data-dir', nowhere]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^tally reindex: no local stack state at \S*endpoints\.json/);
    expect(stderr).not.toContain('unexpected error');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('tally mcp --help', () => {
  it('lists every tool the MCP server registers, and nothing else', async () => {
    const server = createTallyMcpServer({
      request: () => Promise.reject(new Error('listing tools calls no API')),
    });
    const client = new Client({ name: 'tally-test', version: '1.0.0' });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    await client.connect(clientSide);
    const registered = (await client.listTools()).tools.map((t) => t.name).sort();
    await client.close();
    await server.close();

    const c = capture();
    expect(await mcpCommand(['--help'], c.io)).toBe(0);
    const section =
      c
        .out()
        .split(/^Tools:\n/m)[1]
        ?.split('\n\n')[0] ?? '';
    const listed = section
      .split('\n')
      .map((line) => /^ {2}(\w+)/.exec(line)?.[1])
      .filter((name) => name !== undefined)
      .sort();

    expect(registered).toContain('retriage_exception');
    expect(listed).toEqual(registered);
  });
});

describe('tally runs', () => {
  it("states the API's page size, and leaves it to the API when --limit is not given", async () => {
    const asked: URL[] = [];
    const api = createServer((req, res) => {
      asked.push(new URL(req.url ?? '/', 'http://x'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ items: [], count: 0, next_token: null }));
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    try {
      const help = capture();
      expect(await runsCommand(['--help'], help.io)).toBe(0);
      expect(help.out()).toMatch(
        new RegExp(`--limit N +${RUNS_LIMIT.min}-${RUNS_LIMIT.max} per page +\\[default: ${RUNS_LIMIT.default}\\]`),
      );

      const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
      expect(await runsCommand(['--json', '--api', url], capture().io)).toBe(0);
      expect(asked[0]?.pathname).toBe('/runs');
      expect(asked[0]?.searchParams.has('limit')).toBe(false);
    } finally {
      api.close();
    }
  });
});

describe('tally files', () => {
  it("names a rejected file's line once, in front of the reason", async () => {
    const error = (message: string, line?: number) => ({ code: 'BAD', message, ...(line ? { line } : {}) });
    const files = [
      error('missing required column(s) amount (the header looks semicolon-delimited; set its "delimiter" to ";")', 1),
      error('none of the first 3 lines is a JSON object (line is not valid JSON: Unexpected token)', 3),
      error('dataset "fx" has no policy; upload policies/fx.md first'),
    ].map((e, i) => ({
      dataset: 'trades',
      business_date: '2025-12-10',
      side: 'target',
      status: 'REJECTED',
      rows: 0,
      ingested_at: `t${i}`,
      error: e,
    }));
    const api = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ items: files, count: files.length, next_token: null }));
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    try {
      const c = capture({ TALLY_API_URL: `http://127.0.0.1:${(api.address() as AddressInfo).port}` });

      expect(await filesCommand([], c.io)).toBe(0);

      const rows = c.out().trimEnd().split('\n').slice(1);
      expect(rows[0]).toMatch(/BAD at line 1: missing .*"delimiter" to ";"\)$/);
      expect(rows[1]).toMatch(
        /BAD at line 3: none of the first 3 lines is a JSON object \(line is not valid JSON: Unexpected token\)$/,
      );
      expect(rows[2]).toMatch(/BAD: dataset "fx" has no policy; upload policies\/fx\.md first$/);
    } finally {
      api.close();
    }
  });
});

describe('tally search -k', () => {
  it('names the option as it is typed', async () => {
    for (const bad of ['0', '51', 'x'])
      await expect(searchCommand(['a query', '-k', bad], capture().io)).rejects.toThrow(
        new RegExp(`^-k must be an integer from 1 to 50, got "${bad}"$`),
      );
  });
});

describe('tally policy push --check', () => {
  it('prints a problem that contains ";" whole, not cut in two', async () => {
    const trades = readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8');
    const file = join(dir, 'trades.md');
    writeFileSync(
      file,
      trades.replace('"source": { "format": "csv" }', '"source": { "format": "parquet", "delimiter": ";" }'),
    );
    const c = capture();

    expect(await policyCommand(['push', file, '--check'], c.io)).toBe(1);

    expect(c.err()).toContain(`tally policy: ${file} does not validate; nothing uploaded:\n`);
    expect(c.err()).toContain("  - source.delimiter: applies to csv files only; this side's format is parquet\n");
    expect(c.err()).not.toMatch(/^ +- this side's format/m);
  });
});

describe('tally --help', () => {
  it('lists every environment variable the CLI reads, with its default', async () => {
    const { code, stdout } = await tallyBinary(['--help']);
    expect(code).toBe(0);
    const environment = stdout.split(/^Environment\b.*:\n/m)[1] ?? '';

    expect(environment).toMatch(/^ {2}TALLY_API_URL .*\[default: http:\/\/127\.0\.0\.1:3000\]/m);
    expect(environment).toMatch(/^ {2}TALLY_API_TOKEN /m);
    // Every variable a command reads by name is listed.
    const cli = join(REPO_ROOT, 'scripts/cli');
    const read = new Set<string>();
    for (const name of readdirSync(cli).filter((f) => f.endsWith('.ts')))
      for (const m of readFileSync(join(cli, name), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]+)/g))
        read.add(m[1] as string);
    expect(read.size).toBeGreaterThan(3);
    for (const variable of read) expect(environment).toMatch(new RegExp(`^ {2}${variable} `, 'm'));
  });
});

describe('bad usage', () => {
  it('prints the one-line error, the synopsis and where the help is, not the whole help; exit 2', async () => {
    const { code, stderr } = await tallyBinary(['search', '--api', 'http://127.0.0.1:9']);

    expect(code).toBe(2);
    expect(stderr).toBe(
      'tally search: say what to look for: tally search "QUERY"\n' +
        'Usage: tally search "QUERY" [options]\n' +
        'See `npx tally search --help` for every option.\n',
    );

    const unknown = await tallyBinary(['runs', '--nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^tally runs: Unknown option '--nope'.*\nSee `npx tally runs --help` for every option\.\n$/s,
    );
    expect(unknown.stderr).not.toContain('Options');

    const command = await tallyBinary(['nope']);
    expect(command.code).toBe(2);
    expect(command.stderr).toBe('tally: unknown command "nope"\nSee `npx tally --help` for the commands.\n');
  });

  it('is reported the same way by tally dlq', async () => {
    const c = capture();

    expect(await runDlq(['peek'], c.io)).toBe(2);

    expect(c.err()).toMatch(
      /^tally dlq: peek needs --queue .*\nUsage: tally dlq .*\nSee `npx tally dlq --help` for every option\.\n$/,
    );
  });
});

describe('tally mcp', () => {
  it('calls the API with the token `tally login` kept, as every other API command does', async () => {
    const tokenFile = join(dir, 'token.json');
    writeFileSync(tokenFile, JSON.stringify({ access_token: 'kept-by-login', expires_at: Date.now() + 3_600_000 }));
    const seen: (string | undefined)[] = [];
    const api = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ queues: [] }));
    });
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    const client = new Client({ name: 'cli-small-defects', version: '1.0.0' });
    try {
      await client.connect(
        new StdioClientTransport({
          command: process.execPath,
          args: [
            '--disable-warning=ExperimentalWarning',
            tally,
            'mcp',
            '--api',
            `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
            '--poll-seconds',
            '0',
          ],
          cwd: REPO_ROOT,
          env: { PATH: process.env.PATH ?? '', TALLY_TOKEN_FILE: tokenFile },
          stderr: 'ignore',
        }),
      );

      await client.callTool({ name: 'queue_health', arguments: {} });

      expect(seen).toEqual(['Bearer kept-by-login']);
    } finally {
      await client.close();
      api.close();
    }
  });
});

describe('npm run mcp:transcript / drill:failover', () => {
  /** Runs a script; resolves with its exit code and output whatever the code. */
  async function script(path: string, args: string[]) {
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, path), ...args],
        { cwd: REPO_ROOT },
      );
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it.each(['scripts/tools/mcp-transcript.ts', 'scripts/drill/failover.ts'])(
    '%s answers --help with its usage, and refuses an unknown option with exit 2, starting nothing',
    async (path) => {
      const help = await script(path, ['--help']);
      const bad = await script(path, ['--bogus']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: npm run /);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^Unknown option '--bogus'[\s\S]*Usage: npm run /);
      expect(`${help.stderr}${bad.stderr}`).not.toMatch(/\n\s+at /);
    },
  );
});

describe('the exception-keys backfill without AWS credentials or region', () => {
  it('says in one line what is missing and how to give it, exit 1, no stack trace', async () => {
    const backfill = async (args: string[]) => {
      try {
        await run(
          process.execPath,
          [
            '--disable-warning=ExperimentalWarning',
            join(REPO_ROOT, 'scripts/tools/backfill-exception-keys.ts'),
            ...args,
          ],
          // No credentials anywhere: no variables, an empty home, no instance metadata.
          { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', HOME: dir, AWS_EC2_METADATA_DISABLED: 'true' } },
        );
        return { code: 0, stderr: '' };
      } catch (error) {
        const e = error as { code: number; stderr: string };
        return { code: e.code, stderr: e.stderr };
      }
    };
    const noCredentials = await backfill(['--table', 'x', '--region', 'eu-west-1']);
    const noRegion = await backfill(['--table', 'x']);
    expect(noCredentials).toEqual({
      code: 1,
      stderr: expect.stringMatching(/^backfill-exception-keys: no AWS credentials found \(.*\): set AWS_PROFILE or /),
    });
    expect(noRegion).toEqual({
      code: 1,
      stderr: 'backfill-exception-keys: no AWS region: pass --region or set AWS_REGION\n',
    });
  });
});

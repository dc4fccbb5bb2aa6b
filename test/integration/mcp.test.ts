/**
 * Tally's MCP server through the SDK's own client, over both transports against the local stack:
 * stdio (`tally mcp` as a subprocess, as an assistant starts it) and stateless Streamable HTTP at
 * the local API's POST /mcp. Permissions (a viewer's update refused, another dataset not found) are tested
 * with real tokens from the local OpenID provider in local-auth.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { POLICIES_DIR, REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';

const TOOLS = [
  'explain_exception',
  'get_exception',
  'get_run',
  'get_run_report',
  'list_exceptions',
  'list_runs',
  'queue_health',
  'retriage_exception',
  'search_exceptions',
  'update_exception',
];
const READ_TOOLS = TOOLS.filter((t) => t !== 'update_exception' && t !== 'retriage_exception');

let dataDir: string;
let stack: LocalStack;
const clients: Record<'stdio' | 'http', Client> = {} as Record<'stdio' | 'http', Client>;
const listChanged: string[] = [];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-mcp-'));
  stack = await startLocalStack({ dataDir, apiPort: 0 });
  await stack.loadPolicies();
  // Triage cites the corpus: index it before the extracts arrive, as npm start does.
  await stack.waitForIdle();
  await stack.upload('incoming/trades/2025-12-10/source.csv', readFileSync(`${SAMPLE_DIR}source.csv`));
  await stack.upload('incoming/trades/2025-12-10/target.csv', readFileSync(`${SAMPLE_DIR}target.csv`));
  await stack.waitForIdle();

  clients.http = new Client({ name: 'tally-test', version: '1.0.0' });
  await clients.http.connect(new StreamableHTTPClientTransport(new URL(`${stack.endpoints.api}/mcp`)));

  clients.stdio = new Client({ name: 'tally-test', version: '1.0.0' });
  clients.stdio.setNotificationHandler(ResourceListChangedNotificationSchema, (n) => {
    listChanged.push(n.method);
  });
  await clients.stdio.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [
        '--disable-warning=ExperimentalWarning',
        join(REPO_ROOT, 'scripts/cli/tally.ts'),
        'mcp',
        '--api',
        stack.endpoints.api,
        '--poll-seconds',
        '1',
      ],
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '' },
      stderr: 'ignore',
    }),
  );
}, 180_000);

afterAll(async () => {
  await clients.stdio?.close();
  await clients.http?.close();
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A tool's result, which must not be an error. */
async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  // The test reads whatever the schema allows; each assertion says what it expects.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return result.structuredContent as Record<string, any>;
}

describe.each(['stdio', 'http'] as const)('MCP over %s', (transport) => {
  const client = () => clients[transport];

  it('lists every tool with input and output schemas and annotations', async () => {
    const { tools } = await client().listTools();

    expect(tools.map((t) => t.name).sort()).toEqual(TOOLS);
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type).toBe('object');
      expect(tool.description?.length).toBeGreaterThan(20);
      expect(tool.annotations?.readOnlyHint).toBe(READ_TOOLS.includes(tool.name));
      expect(typeof tool.annotations?.destructiveHint).toBe('boolean');
      expect(typeof tool.annotations?.idempotentHint).toBe('boolean');
    }
    expect(tools.find((t) => t.name === 'update_exception')?.annotations).toMatchObject({
      destructiveHint: true,
      idempotentHint: false,
    });
  });

  it('pages exceptions with next_token, never cutting a listing short', async () => {
    const first = await call(client(), 'list_exceptions', { dataset: 'trades', limit: 2 });
    const seen = [...first.items];
    let token = first.next_token as string | null;

    expect(first.items).toHaveLength(2);
    expect(token).toEqual(expect.any(String));
    while (token !== null) {
      const page = await call(client(), 'list_exceptions', { dataset: 'trades', limit: 2, next_token: token });
      seen.push(...page.items);
      token = page.next_token;
    }
    expect(seen).toHaveLength(5);
    expect(new Set(seen.map((e) => e.exception_id)).size).toBe(5);
  });

  it('reads an exception, explains it with the cited passage text, and finds it by search', async () => {
    const { items } = await call(client(), 'list_exceptions', { dataset: 'trades', exception_type: 'AMOUNT_MISMATCH' });
    const id = items[0].exception_id as string;

    const { exception } = await call(client(), 'get_exception', { exception_id: id });
    expect(exception).toMatchObject({ exception_id: id, exception_type: 'AMOUNT_MISMATCH', dataset: 'trades' });

    const explained = await call(client(), 'explain_exception', { exception_id: id });
    expect(explained.triaged).toBe(true);
    expect(explained.summary).toEqual(expect.any(String));
    expect(explained.citations.length).toBeGreaterThan(0);
    for (const c of explained.citations) {
      expect(c.passage.length).toBeGreaterThan(20);
      expect(c.resource_uri).toMatch(/^tally:\/\/policies\//);
    }

    const found = await call(client(), 'search_exceptions', { q: 'amount mismatch', dataset: 'trades' });
    expect(found.items.map((i: { exception_id: string }) => i.exception_id)).toContain(id);
  });

  it('lists runs, reads one with its outcome and patterns, and its report in Markdown', async () => {
    const runs = await call(client(), 'list_runs', { dataset: 'trades' });
    expect(runs.items).toHaveLength(1);
    expect(runs.next_token).toBeNull();
    const runId = runs.items[0].run_id as string;
    expect(runs.items[0]).toMatchObject({ status: 'COMPLETED', exceptions: 5 });

    const run = await call(client(), 'get_run', { run_id: runId });
    expect(run.run).toMatchObject({ run_id: runId, status: 'COMPLETED' });
    expect(run.outcome).toEqual(runs.items[0].outcome);
    expect(Array.isArray(run.patterns)).toBe(true);

    const report = await call(client(), 'get_run_report', { run_id: runId });
    expect(report.markdown).toContain(runId);
    expect(report.markdown).toMatch(/^#/m);
  });

  it('reports queue health with every DLQ', async () => {
    const health = await call(client(), 'queue_health');

    expect(health.healthy).toBe(true);
    expect(health.dlq_messages).toBe(0);
    expect(health.queues.map((q: { queue: string }) => q.queue)).toContain('ingest');
    expect(health.runbook).toMatch(/dlq-depth\.md$/);
  });

  it("asks for an exception's triage again; explain_exception shows the new one once written", async () => {
    const { items } = await call(client(), 'list_exceptions', { dataset: 'trades', exception_type: 'AMOUNT_MISMATCH' });
    const id = items[transport === 'stdio' ? 0 : 1].exception_id as string;

    const asked = await call(client(), 'retriage_exception', { exception_id: id });

    expect(asked).toMatchObject({ exception_id: id, requested_at: expect.any(String), triaged_at: expect.any(String) });
    await stack.waitForIdle();
    const { exception } = await call(client(), 'get_exception', { exception_id: id });
    expect(exception.triage.triaged_at >= asked.requested_at).toBe(true);
  });

  it('updates an exception as the caller, and answers a stale version with a structured CONFLICT', async () => {
    // Each transport changes its own exception: MISSING_IN_TARGET has two.
    const { items } = await call(client(), 'list_exceptions', {
      dataset: 'trades',
      exception_type: 'MISSING_IN_TARGET',
    });
    const target = items[transport === 'stdio' ? 0 : 1];
    const version = target.version as number;

    const updated = await call(client(), 'update_exception', {
      exception_id: target.exception_id,
      version,
      status: 'ACKNOWLEDGED',
      note: 'booking delay, expected T+1',
    });
    expect(updated.exception).toMatchObject({ status: 'ACKNOWLEDGED', version: version + 1 });
    expect(updated.exception.history.at(-1)).toMatchObject({ action: 'ACKNOWLEDGED' });

    const stale = (await client().callTool({
      name: 'update_exception',
      arguments: { exception_id: target.exception_id, version, status: 'RESOLVED' },
    })) as CallToolResult;
    expect(stale.isError).toBe(true);
    expect(stale.structuredContent).toMatchObject({
      code: 'CONFLICT',
      current_version: version + 1,
      message: expect.stringContaining('has changed'),
      what_to_do: expect.stringContaining('get_exception'),
    });
    const { exception } = await call(client(), 'get_exception', { exception_id: target.exception_id });
    expect(exception.status).toBe('ACKNOWLEDGED');
  });

  it('answers a bad call with a structured error, never a stack trace', async () => {
    const result = (await client().callTool({
      name: 'get_exception',
      arguments: { exception_id: '0'.repeat(32) },
    })) as CallToolResult;

    expect(result.isError).toBe(true);
    const text = (result.content[0] as { text: string }).text;
    expect(JSON.parse(text)).toMatchObject({
      code: 'NOT_FOUND',
      what_to_do: expect.stringContaining('list_exceptions'),
    });
    expect(text).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('lists and reads the policy documents and a run report as resources', async () => {
    const { resources } = await client().listResources();
    const uris = resources.map((r) => r.uri);
    expect(uris).toEqual(
      expect.arrayContaining([
        'tally://policies/recon-policy',
        'tally://policies/exception-handling-runbook',
        'tally://policies/datasets/trades',
        'tally://policies/datasets/payments',
      ]),
    );

    const governance = await client().readResource({ uri: 'tally://policies/recon-policy' });
    expect(governance.contents[0]).toMatchObject({
      mimeType: 'text/markdown',
      text: readFileSync(join(POLICIES_DIR, 'recon-policy.md'), 'utf8'),
    });
    const dataset = await client().readResource({ uri: 'tally://policies/datasets/trades' });
    expect((dataset.contents[0] as { text: string }).text).toContain('tally-policy');

    const { resourceTemplates } = await client().listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('tally://runs/{id}/report');
    const runs = await call(client(), 'list_runs', { dataset: 'trades' });
    const report = await client().readResource({ uri: `tally://runs/${runs.items[0].run_id}/report` });
    expect((report.contents[0] as { text: string }).text).toContain(runs.items[0].run_id);

    await expect(client().readResource({ uri: 'tally://policies/no-such-policy' })).rejects.toThrow(/NOT_FOUND/);
  });

  it('offers the triage_review prompt for a run', async () => {
    const { prompts } = await client().listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(['triage_review']);
    expect(prompts[0]?.arguments).toEqual([expect.objectContaining({ name: 'run_id', required: true })]);

    const runs = await call(client(), 'list_runs', { dataset: 'trades' });
    const runId = runs.items[0].run_id as string;
    const prompt = await client().getPrompt({ name: 'triage_review', arguments: { run_id: runId } });
    const text = (prompt.messages[0]?.content as { text: string }).text;
    expect(text).toContain(runId);
    expect(text).toContain('trades 2025-12-10, COMPLETED');
    expect(text).toMatch(/next_token/);
    expect(text).toMatch(/Do not call update_exception until they confirm/);
  });
});

describe('MCP over stdio notifications', () => {
  it('tells the client when a policy document changes (resources list_changed)', async () => {
    const before = listChanged.length;
    const text = readFileSync(join(POLICIES_DIR, 'recon-policy.md'), 'utf8');
    await stack.upload('policies/recon-policy.md', `${text}\n<!-- edited by the MCP test -->\n`);

    await expect.poll(() => listChanged.length, { timeout: 15_000, interval: 200 }).toBeGreaterThan(before);
    expect(listChanged.at(-1)).toBe('notifications/resources/list_changed');
    await stack.waitForIdle();
  });
});

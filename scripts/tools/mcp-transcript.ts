/**
 * `npm run mcp:transcript`: an assistant-style session against a fresh local stack, through the
 * MCP server at the local API's POST /mcp with the SDK's own client — questions, the tool calls an
 * assistant would make, and answers built only from what the tools returned. Prints Markdown;
 * `--write` puts it into docs/mcp.md between its transcript markers.
 *
 * The "assistant" here is a script, not a model: the point is to show what the tools give an
 * assistant to answer from, reproducibly.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { scriptOptions } from '../cli/usage.ts';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { startLocalStack } from '../local/stack.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DOC = join(REPO_ROOT, 'docs/mcp.md');
const START = '<!-- transcript:start (npm run mcp:transcript -- --write) -->';
const END = '<!-- transcript:end -->';
const DATE = '2025-12-10';

class Session {
  private readonly client: Client;
  readonly lines: string[] = [];
  constructor(client: Client) {
    this.client = client;
  }

  ask(question: string): void {
    this.lines.push(`**Analyst:** ${question}`, '');
  }

  /** Calls a tool and notes the call and the gist of what came back. */
  async tool(name: string, args: Json, gist: (result: Json) => string): Promise<{ result: Json; error?: Json }> {
    const result = (await this.client.callTool({ name, arguments: args })) as CallToolResult;
    const structured = (result.structuredContent ?? {}) as Json;
    const error = result.isError
      ? ((result.structuredContent as Json | undefined) ??
        (JSON.parse((result.content[0] as { text: string }).text) as Json))
      : undefined;
    const shown = error ? `error ${String(error.code)}` : gist(structured);
    this.lines.push(`> 🔧 \`${name}\` \`${JSON.stringify(args)}\` → ${shown}`);
    return error ? { result: structured, error } : { result: structured };
  }

  answer(text: string): void {
    this.lines.push('', `**Assistant:** ${text}`, '', '---', '');
  }
}

const keyText = (key: Json) =>
  Object.entries(key)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');

/** A phrase to run into an answer's sentence: its own full stop dropped. */
const sentence = (text: string) => text.replace(/\.+$/, '');

async function listAll(session: Session, args: Json): Promise<Json[]> {
  const items: Json[] = [];
  let token: string | null = null;
  do {
    const { result } = await session.tool(
      'list_exceptions',
      token ? { ...args, next_token: token } : args,
      (r) => `${r.count} on this page, next_token ${r.next_token === null ? 'null (last page)' : '…'}`,
    );
    items.push(...(result.items as Json[]));
    token = result.next_token as string | null;
  } while (token !== null);
  return items;
}

async function converse(session: Session): Promise<void> {
  session.ask(`What broke in the trades reconciliation for ${DATE}, and why?`);
  const runs = await session.tool('list_runs', { dataset: 'trades', business_date: DATE }, (r) => `${r.count} run`);
  const runId = runs.result.items[0].run_id as string;
  const run = await session.tool(
    'get_run',
    { run_id: runId },
    (r) => `${r.run.status}, outcome ${r.outcome}, ${r.patterns.length} patterns`,
  );
  const byType = Object.entries(run.result.run.summary.exceptions as Record<string, number>)
    .map(([t, n]) => `${n} ${t}`)
    .join(', ');
  const rows = run.result.run.summary.rows as { source: number; target: number };
  const open = await listAll(session, { run_id: runId, limit: 10 });
  const summaries = open
    .filter((e) => e.summary)
    .slice(0, 3)
    .map((e) => `${e.exception_type} on ${keyText(e.key)}: ${String(e.summary).replace(/\.+$/, '')}`);
  session.answer(
    `Run \`${runId}\` compared ${rows.source} source rows with ${rows.target} target rows and ended **${run.result.outcome ?? 'without an outcome'}**: ${byType}. ` +
      `${run.result.patterns.length === 0 ? 'No break pattern groups them, so each has its own cause.' : `${run.result.patterns.length} pattern(s) group them.`} ` +
      `Triage says, for example: ${summaries.join('; ')}.`,
  );

  session.ask('Show me the open HIGH or CRITICAL breaks.');
  const serious: Json[] = [];
  for (const severity of ['CRITICAL', 'HIGH'])
    serious.push(...(await listAll(session, { status: 'OPEN', severity, limit: 25 })));
  session.answer(
    serious.length === 0
      ? 'There are no open HIGH or CRITICAL breaks.'
      : `${serious.length} open: ${serious
          .map(
            (e) =>
              `\`${e.exception_id.slice(0, 8)}…\` ${e.exception_type} (${e.severity}, ${e.dataset} ${e.business_date}, ${keyText(e.key)})`,
          )
          .join('; ')}.`,
  );

  // A triaged break of the trades run: the payments run's triage is held (below).
  const mismatch = open.find((e) => e.exception_type === 'AMOUNT_MISMATCH' && e.summary) ?? open[0];
  session.ask(`Why is ${keyText(mismatch?.key ?? {})} a break, and what should I do?`);
  const why = await session.tool(
    'explain_exception',
    { exception_id: mismatch?.exception_id },
    (r) => `${r.severity}, ${r.citations.length} citation(s), ${r.precedents.length} precedent(s)`,
  );
  const cite = why.result.citations[0] as Json | undefined;
  const firstLine = cite
    ? (String(cite.passage)
        .split('\n')
        .find((l: string) => l.trim().length > 0) ?? '')
    : '';
  session.answer(
    !why.result.triaged
      ? 'It has not been triaged yet, so there is no explanation or policy citation to give; its listing shows the differences.'
      : `${why.result.summary} Likely cause: ${sentence((why.result.root_cause_hypotheses as string[])[0] ?? 'not given')}. ` +
          `Recommended: ${(why.result.recommended_actions as string[]).map(sentence).join('; ') || 'none given'}. ` +
          (cite
            ? `Policy: *${cite.document} › ${cite.section}* (${cite.resource_uri}) — "${firstLine.trim()}" (first line of the cited passage).`
            : 'No policy passage was cited.'),
  );

  session.ask('Acknowledge the trades missing from the target as a booking delay.');
  const missing = await listAll(session, {
    dataset: 'trades',
    business_date: DATE,
    exception_type: 'MISSING_IN_TARGET',
    status: 'OPEN',
  });
  const done: string[] = [];
  for (const e of missing) {
    const { result } = await session.tool(
      'update_exception',
      {
        exception_id: e.exception_id,
        version: e.version,
        status: 'ACKNOWLEDGED',
        note: 'booking delay: expected in the target at T+1',
      },
      (r) => `${r.exception.status}, version ${r.exception.version}`,
    );
    done.push(`${keyText(e.key)} (now version ${result.exception.version})`);
  }
  session.answer(`Acknowledged ${done.length}: ${done.join(', ')}. Each history entry names you and carries the note.`);

  session.ask('(Another tab, still showing the old page) Resolve the first of those.');
  const stale = missing[0] as Json;
  const conflict = await session.tool(
    'update_exception',
    { exception_id: stale.exception_id, version: stale.version, status: 'RESOLVED' },
    () => 'ok',
  );
  session.answer(
    conflict.error
      ? `Not changed: ${String(conflict.error.message).replace(/\.?$/, '.')} It is at version ${conflict.error.current_version} now. ${conflict.error.what_to_do}`
      : 'It was resolved.',
  );

  session.ask('What did the payments reconciliation find?');
  const payRuns = await session.tool('list_runs', { dataset: 'payments' }, (r) => `${r.count} run`);
  const pay = payRuns.result.items[0] as Json;
  const payRun = await session.tool(
    'get_run',
    { run_id: pay.run_id },
    (r) => `${r.run.status}, outcome ${r.outcome}, triage ${r.run.triage?.state ?? 'n/a'}`,
  );
  const triage = payRun.result.run.triage as Json | undefined;
  session.answer(
    `Run \`${pay.run_id}\` (${pay.business_date}) ended **${payRun.result.outcome}** with ${pay.exceptions} exceptions. ` +
      (triage?.state === 'HELD'
        ? `Its triage is **held** by the runaway guard (${triage.reason ?? 'too many breaks for one run'}): no model has looked at them yet. Someone with the right to do so can release or abandon the run's triage (\`npx tally runs triage RUN_ID --release\`).`
        : `Its triage is ${triage?.state ?? 'not recorded'}.`),
  );

  session.ask('Is the pipeline healthy?');
  const health = await session.tool('queue_health', {}, (r) => `healthy ${r.healthy}, ${r.dlq_messages} in DLQs`);
  session.answer(
    health.result.healthy
      ? `Yes: all ${health.result.queues.length} queues' dead-letter queues are empty.`
      : `${health.result.dlq_messages} message(s) are in dead-letter queues; the runbook is ${health.result.runbook}.`,
  );
}

const USAGE = `Usage: npm run mcp:transcript [-- --write]

An assistant-style session against a fresh local stack through its MCP server, as Markdown.
  --write      put it into docs/mcp.md between its transcript markers (default: print it)
  -h, --help   this text
`;

async function main(): Promise<number> {
  const values = scriptOptions(
    () => parseArgs({ options: { write: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } }),
    USAGE,
  );
  if (typeof values === 'number') return values;
  const dataDir = mkdtempSync(join(tmpdir(), 'tally-mcp-transcript-'));
  process.stderr.write('starting a local stack and loading the samples ...\n');
  const stack = await startLocalStack({ dataDir, apiPort: 0 });
  const client = new Client({ name: 'mcp-transcript', version: '1.0.0' });
  try {
    // Indexed before the extracts arrive, as `npm start` does: triage cites what is indexed when it
    // runs (uploaded together, T0018 was triaged with no passage to cite).
    await stack.loadPolicies();
    await stack.waitForIdle();
    await stack.upload(`incoming/trades/${DATE}/source.csv`, readFileSync(`${SAMPLE_DIR}source.csv`));
    await stack.upload(`incoming/trades/${DATE}/target.csv`, readFileSync(`${SAMPLE_DIR}target.csv`));
    // One dataset's run stored before the other's begins: the listings' newest-first order is the same each time.
    await stack.waitForIdle(240_000);
    await stack.upload(`incoming/payments/${DATE}/source.csv`, readFileSync(`${SAMPLE_DIR}payments/source.csv`));
    await stack.upload(`incoming/payments/${DATE}/target.jsonl`, readFileSync(`${SAMPLE_DIR}payments/target.jsonl`));
    await stack.waitForIdle(240_000);

    await client.connect(new StreamableHTTPClientTransport(new URL(`${stack.endpoints.api}/mcp`)));
    const session = new Session(client);
    await converse(session);
    const transcript = session.lines.join('\n').trimEnd();
    if (values.write) {
      const doc = readFileSync(DOC, 'utf8');
      const from = doc.indexOf(START);
      const to = doc.indexOf(END);
      if (from < 0 || to < from) throw new Error(`${DOC} has no transcript markers`);
      writeFileSync(
        DOC,
        `${doc.slice(0, from + START.length)}\n\n${transcript.replace(/\n---$/, '')}\n\n${doc.slice(to)}`,
      );
      process.stderr.write(`wrote the transcript into ${DOC}\n`);
    } else process.stdout.write(`${transcript}\n`);
    return 0;
  } finally {
    await client.close();
    await stack.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();

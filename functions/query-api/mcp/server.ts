/**
 * Tally as an MCP server: the tools, resources and prompt over one TallyApi. The same server runs
 * over stdio (`npx tally mcp`, scripts/cli/mcp.ts) and, statelessly, at POST /mcp (http.ts).
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { TallyApi } from './api.ts';
import { listPolicies, registerPrompts, registerResources } from './resources.ts';
import { registerTools } from './tools.ts';

export const MCP_SERVER_NAME = 'tally';
export const MCP_SERVER_VERSION = '0.1.0';

const INSTRUCTIONS = `Tally reconciles two systems' extracts and triages every break (exception) with policy-grounded AI.
Find breaks with list_exceptions (filters, paged by next_token) or search_exceptions (plain words or an id); read one with get_exception or explain_exception (why, policy passages, precedents).
Runs: list_runs, get_run (outcome and break patterns), get_run_report (Markdown). Operations: queue_health.
update_exception changes a status, assignee or note as the caller, with the version last read; retriage_exception asks for a break's triage again (one model call: when it cites no policy or came from the rules fallback); confirm with the person before changing anything or spending a call.
Policy documents are resources (tally://policies/...); the triage_review prompt reviews one run's open breaks.`;

export function createTallyMcpServer(api: TallyApi, options: { onError?: (error: unknown) => void } = {}): McpServer {
  const server = new McpServer(
    { name: MCP_SERVER_NAME, version: MCP_SERVER_VERSION, title: 'Tally' },
    { instructions: INSTRUCTIONS, capabilities: { resources: { listChanged: true } } },
  );
  registerTools(server, api, options.onError);
  registerResources(server, api);
  registerPrompts(server, api);
  return server;
}

/**
 * Polls the policy listing and tells the client when it changes (a document added, removed or
 * re-uploaded: its ETag changes) with notifications/resources/list_changed. For a connected
 * transport only (stdio): a stateless HTTP exchange has no channel to push on.
 * Returns the function that stops it.
 */
export function watchPolicies(
  server: McpServer,
  api: TallyApi,
  intervalMs: number,
  onError: (error: unknown) => void = () => undefined,
): () => void {
  let last: string | undefined;
  let busy = false;
  const poll = async () => {
    if (busy) return;
    busy = true;
    try {
      const items = await listPolicies(api);
      const signature = items.map((p) => `${p.name}\u001f${p.etag}`).join('\u001e');
      if (last !== undefined && signature !== last && server.isConnected()) server.sendResourceListChanged();
      last = signature;
    } catch (error) {
      onError(error);
    } finally {
      busy = false;
    }
  };
  void poll();
  const timer = setInterval(() => void poll(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

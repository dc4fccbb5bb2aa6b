/**
 * `tally mcp`: Tally as an MCP server over stdio, for an assistant (Claude Desktop, an IDE agent)
 * started as a subprocess. Its tools call the Tally API with this process's TALLY_API_TOKEN, so
 * what the assistant may see and change is what the token's owner may, and the history names them.
 * stdout carries the protocol only; diagnostics go to stderr.
 */
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { TallyApiError, type TallyApi } from '../../functions/query-api/mcp/api.ts';
import { createTallyMcpServer, watchPolicies } from '../../functions/query-api/mcp/server.ts';
import {
  apiBaseUrl,
  ApiRequestError,
  ApiUnreachableError,
  createApiClient,
  DEFAULT_API_URL,
  processIo,
  type ApiClient,
  type CliIo,
} from './api-client.ts';
import { intOption } from './api-client.ts';

const DEFAULT_POLL_SECONDS = 30;

export const mcpHelp = `Usage: tally mcp [options]

Runs Tally as an MCP (Model Context Protocol) server on stdin/stdout, for an assistant to start
as a subprocess. Tools: list_exceptions, get_exception, search_exceptions, list_runs, get_run,
get_run_report, update_exception, explain_exception, queue_health. Resources: the policy
documents (tally://policies/...) and run reports (tally://runs/{id}/report). Prompt: triage_review.
Every tool calls the Tally API as you: with TALLY_API_TOKEN when the API needs a token.

Options:
  --api URL             the Tally API   [default: $TALLY_API_URL or ${DEFAULT_API_URL}, i.e. \`npm start\`]
  --poll-seconds N      how often to check the policy documents and tell the client when they
                        change (resources list_changed); 0: never   [default: ${DEFAULT_POLL_SECONDS}]
  -h, --help            show this help

The same server is served over Streamable HTTP at POST /mcp on the API itself.

Example (an MCP client's configuration):
  { "mcpServers": { "tally": { "command": "npx", "args": ["tally", "mcp"],
      "env": { "TALLY_API_URL": "http://127.0.0.1:3000" } } } }
`;

/** The CLI's HTTP client as the MCP tools' TallyApi: its failures as TallyApiError. */
export function httpTallyApi(client: ApiClient): TallyApi {
  return {
    async request<T>(method: string, path: string, options = {}): Promise<T> {
      try {
        return await client.request<T>(method, path, options);
      } catch (error) {
        if (error instanceof ApiRequestError)
          throw new TallyApiError(error.status, error.code, error.message, error.details);
        if (error instanceof ApiUnreachableError) throw new TallyApiError(503, 'API_UNREACHABLE', error.message);
        throw error;
      }
    },
  };
}

export async function mcpCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string' },
      'poll-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(mcpHelp);
    return 0;
  }
  const pollSeconds = intOption('poll-seconds', values['poll-seconds'], 0, 86_400, mcpHelp) ?? DEFAULT_POLL_SECONDS;
  const baseUrl = apiBaseUrl(values.api, io.env, mcpHelp);
  const api = httpTallyApi(createApiClient({ baseUrl, token: io.env.TALLY_API_TOKEN || undefined }));
  const report = (what: string) => (error: unknown) =>
    io.stderr.write(`tally mcp: ${what}: ${error instanceof Error ? error.message : String(error)}\n`);

  const server = createTallyMcpServer(api, { onError: report('a tool failed') });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    // The client ends the session by closing our stdin (or the transport by closing).
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    transport.onclose = resolve;
  });
  await server.connect(transport);
  const stopWatching =
    pollSeconds > 0
      ? watchPolicies(server, api, pollSeconds * 1000, report('cannot list the policies'))
      : () => undefined;
  io.stderr.write(`tally mcp: serving ${baseUrl} over stdio\n`);
  await closed;
  stopWatching();
  await server.close();
  return 0;
}

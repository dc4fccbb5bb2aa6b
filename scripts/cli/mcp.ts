/**
 * `tally mcp`: Tally as an MCP server over stdio, for an assistant (Claude Desktop, an IDE agent)
 * started as a subprocess. Its tools call the Tally API with this process's TALLY_API_TOKEN, so
 * what the assistant may see and change is what the token's owner may, and the history names them.
 * stdout carries the protocol only; diagnostics go to stderr.
 */
import { parseArgs } from 'node:util';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { TallyApiError, type TallyApi } from '../../functions/query-api/mcp/api.ts';
import { createTallyMcpServer, MCP_SERVER_VERSION, watchPolicies } from '../../functions/query-api/mcp/server.ts';
import {
  ApiRequestError,
  ApiUnreachableError,
  clientFor,
  DEFAULT_API_URL,
  processIo,
  type ApiClient,
  type CliIo,
} from './api-client.ts';
import { intOption } from './api-client.ts';

const DEFAULT_POLL_SECONDS = 30;

/** The help but for what the server offers (mcpHelp lists that): enough for a usage error's synopsis. */
const mcpUsage = `Usage: tally mcp [options]

Runs Tally as an MCP (Model Context Protocol) server on stdin/stdout, for an assistant to start
as a subprocess. Every tool calls the Tally API as you: with TALLY_API_TOKEN, else the token
\`tally login\` kept, when the API needs a token.
`;

const mcpOptions = `Options:
  --api URL             the Tally API   [default: $TALLY_API_URL or ${DEFAULT_API_URL}, i.e. \`npm start\`]
  --poll-seconds N      how often to check the policy documents and tell the client when they
                        change (resources list_changed); 0: never   [default: ${DEFAULT_POLL_SECONDS}]
  -h, --help            show this help

The same server is served over Streamable HTTP at POST /mcp on the API itself.

Example (an MCP client's configuration):
  { "mcpServers": { "tally": { "command": "npx", "args": ["tally", "mcp"],
      "env": { "TALLY_API_URL": "http://127.0.0.1:3000" } } } }
`;

/**
 * The help, with the tools, resources and prompts the server registers, as an MCP client lists
 * them (in memory: no API is called), so it names every one there is and no other.
 */
export async function mcpHelp(): Promise<string> {
  // Only this help is an MCP client: not loaded for the other commands of the CLI.
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { InMemoryTransport } = await import('@modelcontextprotocol/sdk/inMemory.js');
  const server = createTallyMcpServer({ request: () => Promise.reject(new Error('listing calls no API')) });
  const client = new Client({ name: 'tally-help', version: MCP_SERVER_VERSION });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  await client.connect(clientSide);
  try {
    const [{ tools }, { resourceTemplates }, { prompts }] = await Promise.all([
      client.listTools(),
      client.listResourceTemplates(),
      client.listPrompts(),
    ]);
    const section = (title: string, rows: { name: string; title?: string | undefined }[]) => {
      const width = Math.max(...rows.map((r) => r.name.length)) + 2;
      return `${title}:\n${rows.map((r) => `  ${r.name.padEnd(width)}${r.title ?? ''}`.trimEnd()).join('\n')}\n`;
    };
    return [
      mcpUsage,
      section('Tools', tools),
      section(
        'Resources',
        resourceTemplates.map((r) => ({ name: r.uriTemplate, title: r.title })),
      ),
      section('Prompts', prompts),
      mcpOptions,
    ].join('\n');
  } finally {
    await client.close();
    await server.close();
  }
}

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
    io.stdout.write(await mcpHelp());
    return 0;
  }
  const pollSeconds = intOption('poll-seconds', values['poll-seconds'], 0, 86_400, mcpUsage) ?? DEFAULT_POLL_SECONDS;
  // TALLY_API_TOKEN, else the token `tally login` kept: as every other API command.
  const client = clientFor(values, io, mcpUsage);
  const { baseUrl } = client;
  const api = httpTallyApi(client);
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

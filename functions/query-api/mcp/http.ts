/**
 * POST /mcp: the MCP server in stateless Streamable HTTP mode with JSON responses. API Gateway's
 * HTTP API buffers a Lambda's response and gives an integration at most 30 s, so it cannot hold
 * the SSE streams the stateful mode needs: every request builds a fresh server and transport
 * (no session id), answers with JSON and is done. Server-to-client notifications (a policy's
 * list_changed) therefore cannot be pushed here; stdio (`npx tally mcp`) sends them.
 */
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import type { HttpEvent, HttpResult } from '../http.ts';
import type { TallyApi } from './api.ts';
import { createTallyMcpServer } from './server.ts';

/** The event as the web-standard Request the SDK's transport takes. */
function toRequest(event: HttpEvent): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(event.headers ?? {})) if (value !== undefined) headers.set(name, value);
  const body =
    event.body === undefined || event.body === null || event.body === ''
      ? undefined
      : event.isBase64Encoded
        ? Buffer.from(event.body, 'base64')
        : event.body;
  const query = event.rawQueryString ? `?${event.rawQueryString}` : '';
  return new Request(`https://${event.requestContext.domainName || 'localhost'}${event.rawPath}${query}`, {
    method: event.requestContext.http.method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
}

export async function serveMcp(
  event: HttpEvent,
  api: TallyApi,
  onError?: (error: unknown) => void,
): Promise<HttpResult> {
  const server = createTallyMcpServer(api, onError ? { onError } : {});
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: undefined,
    enableJsonResponse: true,
  });
  await server.connect(transport);
  try {
    const response = await transport.handleRequest(toRequest(event));
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return { statusCode: response.status, headers, body: await response.text() };
  } finally {
    await server.close();
  }
}

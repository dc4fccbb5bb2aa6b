/**
 * POST /mcp's seam: each tool call becomes a request through the router carrying the original
 * request's requestContext and headers, so the API sees the MCP caller (claims, token), and the
 * stateless exchange answers in JSON with no session.
 */
import { describe, expect, it } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { serveMcp } from '../../functions/query-api/mcp/http.ts';
import { inProcessApi } from '../../functions/query-api/mcp/in-process.ts';
import { ConflictError } from '../../functions/query-api/errors.ts';
import { callerIdentity, json, type HttpEvent, type HttpResult } from '../../functions/query-api/http.ts';

const ID = 'a'.repeat(32);

function mcpEvent(message: unknown, claims?: Record<string, string>): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/mcp',
    rawQueryString: '',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: 'Bearer caller-token',
      'content-length': '999',
    },
    requestContext: {
      accountId: '000000000000',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'POST', path: '/mcp', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: 0,
      ...(claims ? { authorizer: { jwt: { claims, scopes: [] } } } : {}),
    } as APIGatewayProxyEventV2['requestContext'],
    body: JSON.stringify(message),
    isBase64Encoded: false,
  };
}

const toolCall = (name: string, args: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id: 7,
  method: 'tools/call',
  params: { name, arguments: args },
});

function recorder(answer: (event: HttpEvent) => HttpResult) {
  const seen: HttpEvent[] = [];
  return {
    seen,
    dispatch: async (event: HttpEvent) => {
      seen.push(event);
      return answer(event);
    },
  };
}

describe('POST /mcp', () => {
  it('calls the router as the caller: the original requestContext (JWT claims) and token travel with each tool call', async () => {
    // Prepare
    const record = {
      exception_id: ID,
      run_id: 'run-2025-12-10-abc',
      dataset: 'trades',
      business_date: '2025-12-10',
      exception_type: 'AMOUNT_MISMATCH',
      key: { trade_id: 'T1' },
      status: 'ACKNOWLEDGED',
      version: 4,
      diffs: [],
      history: [],
    };
    const { seen, dispatch } = recorder(() => json(200, record));
    const event = mcpEvent(toolCall('update_exception', { exception_id: ID, version: 3, status: 'ACKNOWLEDGED' }), {
      email: 'ana@example.com',
      sub: 'u-1',
    });

    // Act
    const result = await serveMcp(event, inProcessApi(event, dispatch));

    // Assess
    expect(result.statusCode).toBe(200);
    expect(result.headers?.['content-type']).toMatch(/application\/json/);
    expect(result.headers?.['mcp-session-id']).toBeUndefined();
    const body = JSON.parse(result.body as string);
    expect(body).toMatchObject({ id: 7, result: { structuredContent: { exception: { version: 4 } } } });
    expect(seen).toHaveLength(1);
    const call = seen[0] as HttpEvent;
    expect(call.requestContext.http.method).toBe('PATCH');
    expect(call.rawPath).toBe(`/exceptions/${ID}`);
    expect(JSON.parse(call.body as string)).toEqual({ version: 3, status: 'ACKNOWLEDGED' });
    expect(call.headers.authorization).toBe('Bearer caller-token');
    expect(call.headers['content-length']).toBeUndefined();
    expect(call.requestContext.requestId).toBe('req-1');
    expect(callerIdentity(call, 'local-admin').id).toBe('ana@example.com');
  });

  it('passes query parameters and answers a refusal from the router as a structured CONFLICT', async () => {
    const { seen, dispatch } = recorder(() => {
      throw new ConflictError('exception has changed since you read it', { current_version: 9, sent_version: 3 });
    });
    const event = mcpEvent(toolCall('update_exception', { exception_id: ID, version: 3, note: 'checked' }));

    const body = JSON.parse((await serveMcp(event, inProcessApi(event, dispatch))).body as string);

    expect(body.result).toMatchObject({
      isError: true,
      structuredContent: { code: 'CONFLICT', current_version: 9, what_to_do: expect.stringContaining('retry') },
    });
    expect((seen[0]?.requestContext as { authorizer?: unknown }).authorizer).toBeUndefined();
  });

  it('sends listing filters as the query string the route reads', async () => {
    const { seen, dispatch } = recorder(() => json(200, { items: [], count: 0, next_token: null }));
    const event = mcpEvent(toolCall('list_exceptions', { status: 'OPEN', limit: 5, next_token: 'abc' }));

    const body = JSON.parse((await serveMcp(event, inProcessApi(event, dispatch))).body as string);

    expect(body.result.structuredContent).toEqual({ items: [], count: 0, next_token: null });
    expect(seen[0]?.queryStringParameters).toEqual({ status: 'OPEN', limit: '5', next_token: 'abc' });
    expect(seen[0]?.rawQueryString).toBe('status=OPEN&limit=5&next_token=abc');
    expect(seen[0]?.body).toBeUndefined();
  });

  it('never shows an internal failure: the tool answers INTERNAL_ERROR and the error goes to the log', async () => {
    const logged: unknown[] = [];
    const { dispatch } = recorder(() => {
      throw new Error('dynamodb exploded at secret-host:1234');
    });
    const event = mcpEvent(toolCall('get_exception', { exception_id: ID }));

    const result = await serveMcp(event, inProcessApi(event, dispatch), (error) => logged.push(error));

    expect(result.body).not.toContain('secret-host');
    expect(JSON.parse(JSON.parse(result.body as string).result.content[0].text)).toMatchObject({
      code: 'INTERNAL_ERROR',
    });
    expect(logged).toHaveLength(1);
  });
});

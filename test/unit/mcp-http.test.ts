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

  it('explain_exception points at retriage_exception for a triage citing nothing, which POSTs the triage route', async () => {
    const uncited = {
      exception_id: ID,
      exception_type: 'AMOUNT_MISMATCH',
      status: 'OPEN',
      key: { trade_id: 'T1' },
      diffs: [],
      triage: {
        severity: 'MEDIUM',
        summary: 'amount differs',
        root_cause_hypotheses: [],
        recommended_actions: [],
        policy_citations: [],
        provider: 'bedrock',
        model: 'm',
        degraded: false,
        triaged_at: '2026-01-01T00:00:00.000Z',
      },
    };
    const { seen, dispatch } = recorder((event) =>
      event.requestContext.http.method === 'POST'
        ? json(202, {
            exception_id: ID,
            requested_at: '2026-01-02T00:00:00.000Z',
            triaged_at: '2026-01-01T00:00:00.000Z',
          })
        : json(200, uncited),
    );
    const explainEvent = mcpEvent(toolCall('explain_exception', { exception_id: ID }));
    const cited = {
      ...uncited,
      triage: {
        ...uncited.triage,
        policy_citations: [{ passage_id: 'p', document: 'recon-policy.md', section: 's', passage: 't' }],
      },
    };
    const citedEvent = mcpEvent(toolCall('explain_exception', { exception_id: ID }));
    const retriageEvent = mcpEvent(toolCall('retriage_exception', { exception_id: ID }));

    const explained = JSON.parse((await serveMcp(explainEvent, inProcessApi(explainEvent, dispatch))).body as string);
    const explainedCited = JSON.parse(
      (
        await serveMcp(
          citedEvent,
          inProcessApi(citedEvent, async () => json(200, cited)),
        )
      ).body as string,
    );
    const asked = JSON.parse((await serveMcp(retriageEvent, inProcessApi(retriageEvent, dispatch))).body as string);

    expect(explained.result.content[0].text).toContain(
      'It cites no policy passage: retriage_exception asks for a new triage',
    );
    expect(explainedCited.result.content[0].text).not.toContain('retriage_exception');
    expect(asked.result.structuredContent).toEqual({
      exception_id: ID,
      requested_at: '2026-01-02T00:00:00.000Z',
      triaged_at: '2026-01-01T00:00:00.000Z',
    });
    expect(seen.at(-1)?.requestContext.http.method).toBe('POST');
    expect(seen.at(-1)?.rawPath).toBe(`/exceptions/${ID}/triage`);
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

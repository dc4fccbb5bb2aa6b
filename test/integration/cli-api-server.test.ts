import { describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { startApiServer, type HttpApiHandler } from '../../scripts/local/api-server.ts';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';

describe('local API server', () => {
  it('turns an HTTP request into an HTTP API v2 event and the result into the response', async () => {
    let seen: APIGatewayProxyEventV2 | undefined;
    const handler: HttpApiHandler = async (event) => {
      seen = event;
      return { statusCode: 201, headers: { 'X-Thing': 'a' }, body: '{"ok":true}' };
    };
    const server = await startApiServer({ handler, port: 0 });
    try {
      const res = await fetch(`${server.url}/exceptions/abc?status=OPEN&x=1&x=2`, {
        method: 'PATCH',
        headers: { 'X-Custom': 'Y', 'content-type': 'application/json' },
        body: '{"version":1}',
      });

      expect(res.status).toBe(201);
      expect(res.headers.get('x-thing')).toBe('a');
      expect(await res.json()).toEqual({ ok: true });
      expect(seen).toMatchObject({
        version: '2.0',
        rawPath: '/exceptions/abc',
        rawQueryString: 'status=OPEN&x=1&x=2',
        queryStringParameters: { status: 'OPEN', x: '1,2' },
        body: '{"version":1}',
        isBase64Encoded: false,
        headers: { 'x-custom': 'Y', 'content-type': 'application/json' },
        requestContext: { http: { method: 'PATCH', path: '/exceptions/abc' } },
      });
      expect(seen?.requestContext.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen?.pathParameters).toBeUndefined();
    } finally {
      await server.stop();
    }
  });

  it('binds loopback only', async () => {
    await expect(startApiServer({ handler: vi.fn(), host: '0.0.0.0', port: 0 })).rejects.toThrow(/loopback only/);
  });

  it('answers 500 without details when the handler itself throws', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const server = await startApiServer({
      handler: async () => {
        throw new Error('secret detail');
      },
      port: 0,
    });
    try {
      const res = await fetch(`${server.url}/health`);

      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain('secret detail');
    } finally {
      await server.stop();
      stderr.mockRestore();
    }
  });

  it('serves the query API handler, CORS preflight included', async () => {
    const deps = {
      healthChecks: [{ name: 'dynamodb', check: async () => undefined }],
      corsOrigins: ['*'],
      paginationSecret: 's',
      localIdentity: 'me',
      now: Date.now,
    } as unknown as QueryApiDeps;
    const server = await startApiServer({ handler: createHandler(() => deps), port: 0 });
    try {
      const health = await fetch(`${server.url}/health`);
      const preflight = await fetch(`${server.url}/exceptions`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'PATCH' },
      });
      const unknown = await fetch(`${server.url}/nope`);

      expect(health.status).toBe(200);
      expect(health.headers.get('access-control-allow-origin')).toBe('*');
      expect(health.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(await health.json()).toEqual({ status: 'ok', checks: { dynamodb: 'ok' } });
      expect(preflight.status).toBe(204);
      expect(unknown.status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});

import { describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { startApiServer, type HttpApiHandler } from '../../scripts/local/api-server.ts';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { queryApiConfig } from '../../functions/query-api/config.ts';
import { request } from 'node:http';

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

  it('serves the query API handler with the local configuration: no CORS headers at all', async () => {
    const deps = {
      healthChecks: [{ name: 'dynamodb', check: async () => undefined }],
      corsOrigins: queryApiConfig({
        TALLY_BUCKET: 'b',
        TALLY_EXCEPTIONS_TABLE: 'e',
        TALLY_RUNS_TABLE: 'r',
        TALLY_FILES_TABLE: 'f',
        TALLY_PATTERNS_TABLE: 'p',
        TALLY_TRIAGE_QUEUE_URL: 'q',
        TALLY_USAGE_TABLE: 'u',
      }).corsOrigins,
      paginationSecret: 's',
      localIdentity: 'me',
      now: Date.now,
    } as unknown as QueryApiDeps;
    const server = await startApiServer({ handler: createHandler(() => deps), port: 0 });
    try {
      const health = await fetch(`${server.url}/health`);
      const sameOrigin = await fetch(`${server.url}/health`, { headers: { origin: server.url } });
      const unknown = await fetch(`${server.url}/nope`);

      expect(health.status).toBe(200);
      expect(health.headers.get('access-control-allow-origin')).toBeNull();
      expect(health.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(await health.json()).toEqual({ status: 'ok', checks: { dynamodb: 'ok' } });
      expect(sameOrigin.status).toBe(200);
      expect(sameOrigin.headers.get('access-control-allow-origin')).toBeNull();
      expect(unknown.status).toBe(404);
    } finally {
      await server.stop();
    }
  });

  it('is same-origin only: refuses requests and preflights from pages of other origins, and rebound host names', async () => {
    const handler = vi.fn<HttpApiHandler>(async () => ({ statusCode: 200, body: '{}' }));
    const server = await startApiServer({ handler, port: 0 });
    try {
      const port = new URL(server.url).port;
      const foreign = await fetch(`${server.url}/exceptions/x`, {
        method: 'PATCH',
        headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
        body: '{"version":1,"status":"RESOLVED"}',
      });
      const preflight = await fetch(`${server.url}/exceptions/x`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'PATCH' },
      });
      const rebound = await rawGet(port, 'evil.example', 'http://evil.example');

      expect(foreign.status).toBe(403);
      expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
      expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('CROSS_ORIGIN_REFUSED');
      expect(preflight.status).toBe(403);
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
      expect(rebound.status).toBe(403);
      expect(rebound.body).toContain('HOST_NOT_ALLOWED');
      expect(handler).not.toHaveBeenCalled();
    } finally {
      await server.stop();
    }
  });

  it('refuses a PATCH or POST whose body is not JSON with 415, and takes JSON', async () => {
    const deps = {
      healthChecks: [],
      corsOrigins: [],
      paginationSecret: 's',
      localIdentity: 'me',
      now: Date.now,
    } as unknown as QueryApiDeps;
    const server = await startApiServer({ handler: createHandler(() => deps), port: 0 });
    try {
      const send = (method: string, path: string, contentType: string | undefined, body: string) =>
        fetch(`${server.url}${path}`, {
          method,
          headers: contentType ? { 'content-type': contentType } : {},
          body,
        });
      const patchText = await send('PATCH', `/exceptions/${'a'.repeat(32)}`, 'text/plain', '{"version":1,"note":"n"}');
      const postForm = await send('POST', '/uploads', 'application/x-www-form-urlencoded', 'dataset=trades');
      const postBare = await send('POST', '/uploads', undefined, '{"dataset":"trades"}');
      const postJson = await send('POST', '/uploads', 'application/json; charset=utf-8', '{"dataset":"trades"}');

      expect(patchText.status).toBe(415);
      expect(await patchText.json()).toMatchObject({
        error: {
          code: 'UNSUPPORTED_MEDIA_TYPE',
          details: { content_type: 'text/plain', expected: 'application/json' },
        },
      });
      expect(postForm.status).toBe(415);
      expect(postBare.status).toBe(415);
      // Past the media type check: the body itself is validated (and is incomplete).
      expect(postJson.status).toBe(400);
    } finally {
      await server.stop();
    }
  });
});

function rawGet(port: string, host: string, origin: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', headers: { host, origin } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * How the local stack serves the dashboard: built files at `/` on the API's origin, everything
 * else to the API handler; and the local S3 endpoint's CORS answer for the page's uploads.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startApiServer, type ApiServer, type HttpApiHandler } from '../../scripts/local/api-server.ts';
import { startS3EventRouter } from '../../scripts/local/s3-events.ts';

let dir: string;
let webRoot: string;
let server: ApiServer;
const seen: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-web-'));
  webRoot = join(dir, 'web');
  mkdirSync(join(webRoot, 'assets'), { recursive: true });
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>Tally</title>');
  writeFileSync(join(webRoot, 'assets', 'app-ABC.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'outside the web root');
  const handler: HttpApiHandler = async (event) => {
    seen.push(`${event.requestContext.http.method} ${event.rawPath}`);
    return { statusCode: 404, headers: { 'content-type': 'application/json' }, body: '{"error":{"code":"NOT_FOUND"}}' };
  };
  server = await startApiServer({ handler, port: 0, staticDir: webRoot });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('local API server with the dashboard', () => {
  it('serves index.html at / and hashed assets cacheable for a year', async () => {
    const root = await fetch(`${server.url}/`);
    const asset = await fetch(`${server.url}/assets/app-ABC.js`);

    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(root.headers.get('cache-control')).toBe('no-cache');
    expect(await root.text()).toContain('<title>Tally</title>');
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toContain('immutable');
  });

  it('passes API paths, other methods and unknown files to the API handler', async () => {
    seen.length = 0;

    await fetch(`${server.url}/exceptions?status=OPEN`);
    await fetch(`${server.url}/`, { method: 'POST', body: '{}' });
    const missing = await fetch(`${server.url}/assets/nope.js`);

    expect(seen).toEqual(['GET /exceptions', 'POST /', 'GET /assets/nope.js']);
    expect(missing.status).toBe(404);
  });

  it('never serves a file outside the web root', async () => {
    seen.length = 0;

    const res = await fetch(`${server.url}/..%2Fsecret.txt`);

    expect(await res.text()).not.toContain('outside the web root');
    expect(seen).toHaveLength(1);
  });
});

describe('local S3 endpoint CORS', () => {
  it("answers a loopback page's preflight for a PUT, and nobody else's", async () => {
    const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };
    const router = await startS3EventRouter({
      upstream: 'http://127.0.0.1:9',
      bucket: 'b',
      region: 'us-east-1',
      ingestQueueUrl: 'http://127.0.0.1:9/q',
      s3: new S3Client({ region: 'us-east-1', credentials }),
      sqs: new SQSClient({ region: 'us-east-1', credentials }),
      outboxDir: join(dir, 'outbox'),
      onError: () => undefined,
    });
    try {
      const preflight = (origin: string) =>
        fetch(`${router.url}/b/incoming/trades/2025-12-10/target.csv`, {
          method: 'OPTIONS',
          headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
        });

      const local = await preflight('http://127.0.0.1:3000');
      const foreign = await preflight('https://evil.example');

      expect(local.status).toBe(204);
      expect(local.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:3000');
      expect(local.headers.get('access-control-allow-methods')).toContain('PUT');
      expect(local.headers.get('access-control-allow-headers')).toBe('content-type');
      expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await router.stop();
    }
  });
});

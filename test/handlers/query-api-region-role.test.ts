/** The query API in a region that is not active: /health fails, reads are served, writes refused with 503. */
import { describe, expect, it, vi } from 'vitest';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler, regionRoleHealthCheck } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps, QueryStore } from '../../functions/query-api/ports.ts';
import type { RegionRole } from '../../functions/shared/region-role.ts';
import { lambdaContext } from '../support/events.ts';

function httpEvent(method: string, path: string, body?: unknown): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req',
    } as APIGatewayProxyEventV2['requestContext'],
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  };
}

function setup(role: RegionRole) {
  const regionRole = { region: 'us-west-2', read: vi.fn(async () => role) };
  const store = { patchException: vi.fn(), getException: vi.fn() } as unknown as QueryStore;
  const deps = {
    store,
    uploads: { presignPut: vi.fn(async () => 'https://signed') },
    healthChecks: [regionRoleHealthCheck(regionRole), { name: 'dynamodb', check: async () => undefined }],
    regionRole,
    embedder: { id: 'fake', dimensions: 3, embed: async (t: string[]) => t.map(() => [0, 0, 1]) },
    exceptionsIndex: {} as QueryApiDeps['exceptionsIndex'],
    queues: { depths: async () => [] },
    paginationSecret: 'secret-0123456789abcdef0123456789',
    corsOrigins: ['*'],
    localIdentity: 'local',
    now: () => 0,
  } satisfies QueryApiDeps;
  const handler = createHandler(() => deps);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = (await handler(httpEvent(method, path, body), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
  return { call, store };
}

describe('query API and the region role', () => {
  it('a standby region answers /health 503 with the failed region_role check', async () => {
    const res = await setup('standby').call('GET', '/health');

    expect(res.status).toBe(503);
    expect(res.body.checks).toEqual({ region_role: 'failed', dynamodb: 'ok' });
  });

  it('an active region is healthy', async () => {
    const res = await setup('active').call('GET', '/health');

    expect(res.status).toBe(200);
  });

  it.each(['standby', 'fenced'] as const)('a %s region refuses a write with 503 REGION_NOT_ACTIVE', async (role) => {
    const api = setup(role);

    const res = await api.call('PATCH', '/exceptions/exc_0123456789abcdef', { status: 'ACKNOWLEDGED', version: 1 });

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('REGION_NOT_ACTIVE');
    expect(res.body.error.details).toEqual({ region: 'us-west-2', role });
    expect(res.body.error.message).toMatch(/tally region status/);
    expect(api.store.patchException).not.toHaveBeenCalled();
  });

  it('an active region lets the same write through to its route', async () => {
    const res = await setup('active').call('POST', '/uploads', {});

    expect(res.status).toBe(400);
  });
});

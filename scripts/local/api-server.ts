/**
 * Serves an API Gateway HTTP API (payload v2) Lambda handler over plain Node HTTP, on loopback
 * only: each request becomes an APIGatewayProxyEventV2, the handler's result becomes the response.
 * The handler routes on rawPath itself, so no route table is repeated here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { API_ROUTES, routeKey } from '../../functions/query-api/route-table.ts';

export type HttpApiHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyResultV2 | void>;

export interface ApiServerOptions {
  readonly handler: HttpApiHandler;
  /** Loopback only: the local API has no authentication unless `jwt` is given. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /**
   * Built web assets (the dashboard), served for GET/HEAD requests that name a file in it, `/`
   * being index.html; every other request goes to the handler. Same origin as the API.
   */
  readonly staticDir?: string;
  /**
   * Other origins whose pages may call the API (a dashboard dev server). None by default: the
   * dashboard is served from this origin, and no other page open in the browser may call it.
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Bearer tokens checked as API Gateway's JWT authorizer checks them (signature against the
   * issuer's JWKS, issuer, audience, expiry) on every route but the public ones; the claims reach
   * the handler in `requestContext.authorizer.jwt`. Absent: no sign-in (every request is the
   * query API's local identity).
   */
  readonly jwt?: { readonly issuer: string; readonly audience: readonly string[] };
  /** Served as GET /config.json: the dashboard's site configuration (where to sign in). */
  readonly siteConfig?: unknown;
}

export interface ApiServer {
  readonly url: string;
  stop(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** API Gateway's payload limit. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** API Gateway HTTP APIs give an integration at most 30 s. */
const TIMEOUT_MS = 30_000;

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host))
    throw new Error(`the local API binds loopback only (127.0.0.1 or ::1), not ${host}: it has no authentication`);
  const allowedOrigins = new Set(options.allowedOrigins ?? []);
  const authorize = options.jwt ? jwtAuthorizer(options.jwt) : undefined;
  const siteConfig = options.siteConfig === undefined ? undefined : JSON.stringify(options.siteConfig);
  const server = createServer((req, res) => {
    const refusal = crossSiteRefusal(req, allowedOrigins);
    if (refusal) {
      writeJson(res, 403, { error: { ...refusal, details: {} } });
      return;
    }
    if (siteConfig !== undefined && req.method === 'GET' && req.url?.split('?')[0] === '/config.json') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(siteConfig);
      return;
    }
    serveStaticOr(options.staticDir, req, res, () => serve(options.handler, req, res, authorize)).catch(
      (error: unknown) => {
        process.stderr.write(`api-server: ${(error as Error).stack ?? String(error)}\n`);
        if (!res.headersSent)
          writeJson(res, 500, {
            error: {
              code: 'INTERNAL_ERROR',
              message: 'the local API server failed to handle the request',
              details: {},
            },
          });
        else res.destroy();
      },
    );
  });
  server.listen(options.port ?? 3000, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

/**
 * Same origin only. A browser names the page's origin on every cross-origin request (and on
 * same-origin ones that change something); one that is not this server's own is refused before
 * the handler runs, so no page on another site can read or change local data. The Host must be
 * a loopback name too: a rebound DNS name (evil.example -> 127.0.0.1) would otherwise look
 * same-origin. Clients without an Origin (the CLI, curl) are not browsers and pass.
 */
function crossSiteRefusal(
  req: IncomingMessage,
  allowedOrigins: ReadonlySet<string>,
): { code: string; message: string } | undefined {
  const host = req.headers.host ?? '';
  if (!LOOPBACK_HOST.test(host))
    return {
      code: 'HOST_NOT_ALLOWED',
      message: `the local API answers only to 127.0.0.1, localhost or [::1], not "${host}"`,
    };
  const origin = req.headers.origin;
  if (origin === undefined || origin === `http://${host}` || allowedOrigins.has(origin)) return undefined;
  return {
    code: 'CROSS_ORIGIN_REFUSED',
    message: `the local API is same-origin only: pages from ${origin} may not call it (open the dashboard at http://${host}/)`,
  };
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  // Shown as text by the browser: the runbook is linked from the Operations view.
  '.md': 'text/plain; charset=utf-8',
};

/** The file under `root` a request names, or undefined (not a GET, outside root, no such file). */
async function staticFile(root: string, req: IncomingMessage): Promise<string | undefined> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  let path: string;
  try {
    path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  } catch {
    return undefined;
  }
  const base = resolve(root);
  const file = resolve(join(base, path === '/' ? 'index.html' : path));
  if (!file.startsWith(base + sep)) return undefined;
  try {
    return (await stat(file)).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

async function serveStaticOr(
  root: string | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  next: () => Promise<void>,
): Promise<void> {
  const file = root ? await staticFile(root, req) : undefined;
  if (!file) return next();
  const body = await readFile(file);
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': String(body.length),
    // Hashed bundle names change with their content; index.html must always be revalidated.
    'cache-control': file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Routes API Gateway serves without the authorizer (the health probe). */
const PUBLIC_ROUTES = new Set(API_ROUTES.filter((r) => r.public).map(routeKey));

type Authorizer = (req: IncomingMessage) => Promise<JwtContext | undefined>;

interface JwtContext {
  readonly claims: Record<string, string>;
  readonly scopes: string[] | null;
}

/**
 * API Gateway's JWT authorizer, locally: the token's signature against the issuer's JWKS (found
 * through its discovery document), `iss`, `aud` (one of the audiences), `exp` and `nbf`. Claims
 * reach the function as strings, arrays as `[a b]`, as API Gateway passes them.
 */
function jwtAuthorizer(jwt: NonNullable<ApiServerOptions['jwt']>): Authorizer {
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined;
  const keySet = async () => {
    if (keys) return keys;
    const res = await fetch(`${jwt.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
    if (!res.ok) throw new Error(`cannot read the discovery document of ${jwt.issuer} (HTTP ${res.status})`);
    const { jwks_uri: uri } = (await res.json()) as { jwks_uri: string };
    keys = createRemoteJWKSet(new URL(uri));
    return keys;
  };
  return async (req) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return undefined;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1] as string, await keySet(), {
        issuer: jwt.issuer,
        audience: [...jwt.audience],
      }));
    } catch {
      return undefined;
    }
    const claims: Record<string, string> = {};
    for (const [name, value] of Object.entries(payload)) {
      if (Array.isArray(value)) claims[name] = `[${value.join(' ')}]`;
      else if (typeof value === 'object' && value !== null) claims[name] = JSON.stringify(value);
      else claims[name] = String(value);
    }
    return { claims, scopes: typeof payload.scope === 'string' ? payload.scope.split(' ') : null };
  };
}

async function serve(
  handler: HttpApiHandler,
  req: IncomingMessage,
  res: ServerResponse,
  authorize?: Authorizer,
): Promise<void> {
  let jwt: JwtContext | undefined;
  const method = (req.method ?? 'GET').toUpperCase();
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (authorize && method !== 'OPTIONS' && !PUBLIC_ROUTES.has(`${method} ${path}`)) {
    jwt = await authorize(req);
    if (!jwt) {
      // API Gateway's own answer: the function never runs.
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ message: 'Unauthorized' }));
      return;
    }
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // Most requests (every GET) carry no body: no stream to iterate (an async iterator a request
  // was a visible share of this thread's time under bench:api).
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  for await (const chunk of hasBody ? req : []) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      writeJson(res, 413, {
        error: {
          code: 'PAYLOAD_TOO_LARGE',
          message: `request bodies are limited to ${MAX_BODY_BYTES} bytes`,
          details: {},
        },
      });
      return;
    }
    chunks.push(chunk as Buffer);
  }
  const event = toEvent(req, Buffer.concat(chunks), jwt);
  const result = await handler(event, lambdaContext(event.requestContext.requestId));
  writeResult(res, result);
}

export function toEvent(req: IncomingMessage, body: Buffer, jwt?: JwtContext): APIGatewayProxyEventV2 {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  // API Gateway joins repeated query parameters with commas.
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const method = (req.method ?? 'GET').toUpperCase();
  const requestId = randomUUID();
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    ...(headers.cookie ? { cookies: headers.cookie.split(';').map((c) => c.trim()) } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
      ...(jwt ? { authorizer: { jwt } } : {}),
    },
    ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
    isBase64Encoded: false,
  };
}

function lambdaContext(requestId: string): Context {
  const deadline = Date.now() + TIMEOUT_MS;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'query-api',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:query-api',
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: '/local/query-api',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function writeResult(res: ServerResponse, result: APIGatewayProxyResultV2 | void): void {
  // Payload v2 also accepts a bare value: API Gateway then answers 200 with it as JSON.
  if (
    result === undefined ||
    typeof result === 'string' ||
    typeof result !== 'object' ||
    !('statusCode' in result || 'body' in result)
  ) {
    writeJson(res, 200, result ?? null);
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name.toLowerCase()] = String(value);
  if (result.cookies?.length) headers['set-cookie'] = result.cookies;
  const body =
    result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  res.writeHead(result.statusCode ?? 200, headers);
  res.end(body);
}

function writeJson(res: ServerResponse, statusCode: number, body: unknown): void {
  res.writeHead(statusCode, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

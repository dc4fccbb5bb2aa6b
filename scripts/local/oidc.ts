/**
 * A real OpenID Connect provider on 127.0.0.1 for `npm start -- --auth` and the tests:
 * `oidc-provider` with seeded users (one per role, a second approver for maker-checker), a
 * client for the dashboard and one for the CLI, both public (authorization code + PKCE, no secret,
 * as the dashboard signs in against Cognito). Access tokens are JWTs for the API's audience
 * (resource indicators, `accessTokenFormat: 'jwt'`) carrying the caller's roles and datasets
 * (`extraTokenClaims`), so the local API server verifies them as API Gateway's JWT authorizer does.
 *
 * Both clients are registered as native apps with a loopback redirect (RFC 8252): the provider then
 * accepts any port on 127.0.0.1, which is what the dashboard's (chosen at start, 0 in tests) and
 * the CLI's (`tally login`'s one-shot listener) need.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { ROLES, type Role } from '../../functions/query-api/access.ts';

/** The claims the local API reads (scripts/local/stack.ts LOCAL_ACCESS): roles and datasets. */
export const LOCAL_ROLE_CLAIM = 'tally:roles';
export const LOCAL_DATASETS_CLAIM = 'tally:datasets';
/** The API's audience, as infra's default `auth.audience`. */
export const LOCAL_AUDIENCE = 'tally-api';
/** The resource indicator the tokens are issued for (an absolute URI, as RFC 8707 requires). */
const API_RESOURCE = 'urn:tally:api';
export const DASHBOARD_CLIENT_ID = 'tally-dashboard';
export const CLI_CLIENT_ID = 'tally-cli';
/** Registered loopback redirects; any port is accepted (native clients). */
export const CLI_REDIRECT_URI = 'http://127.0.0.1/callback';
const DASHBOARD_REDIRECT_URI = 'http://127.0.0.1/';

/** oidc-provider's own in-memory adapter (not in its type declarations, hence the string). */
const MEMORY_ADAPTER: string = 'oidc-provider/lib/adapters/memory_adapter.js';

export interface LocalUser {
  readonly email: string;
  readonly password: string;
  readonly roles: readonly Role[];
  /** Dataset names, or `*` for all. */
  readonly datasets: readonly string[];
}

/**
 * One user per role, and a second approver (maker-checker needs two people). The analyst,
 * uploader and viewer are entitled to one dataset each, so entitlements can be seen at work on
 * the samples (trades and payments). Passwords are fixed: this provider listens on loopback only.
 */
export const LOCAL_USERS: readonly LocalUser[] = [
  { email: 'admin@tally.local', password: 'admin-pw', roles: ['admin'], datasets: ['*'] },
  { email: 'approver@tally.local', password: 'approver-pw', roles: ['approver'], datasets: ['*'] },
  { email: 'approver2@tally.local', password: 'approver2-pw', roles: ['approver'], datasets: ['*'] },
  { email: 'analyst@tally.local', password: 'analyst-pw', roles: ['analyst'], datasets: ['payments'] },
  { email: 'uploader@tally.local', password: 'uploader-pw', roles: ['uploader'], datasets: ['payments'] },
  { email: 'viewer@tally.local', password: 'viewer-pw', roles: ['viewer'], datasets: ['trades'] },
];

export interface LocalOidc {
  readonly issuer: string;
  readonly audience: string;
  readonly users: readonly LocalUser[];
  stop(): Promise<void>;
}

function sameSecret(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid: string, clientId: string, error?: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign in to Tally (local)</title></head>
<body><main><h1>Sign in to Tally</h1><p>Local OpenID provider, client ${escapeHtml(clientId)}. The users and
their passwords are printed by <code>npm start -- --auth</code>.</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>E-mail <input name="email" type="email" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></main></body></html>`;
}

async function formBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export async function startLocalOidc(
  options: { port?: number; users?: readonly LocalUser[] } = {},
): Promise<LocalOidc> {
  const users = options.users ?? LOCAL_USERS;
  for (const user of users)
    if (!user.roles.every((r) => (ROLES as readonly string[]).includes(r)))
      throw new Error(`local user ${user.email}: roles must be among ${ROLES.join(', ')}`);
  const byEmail = new Map(users.map((u) => [u.email, u]));

  // The port first: the issuer URL is part of the provider's configuration.
  const server = createServer();
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

  // Its own in-memory store, named as the one wanted (grants and sessions last as long as the
  // process): without an adapter the provider warns on every start that it falls back to it.
  const memory = (await import(MEMORY_ADAPTER)) as {
    createMemoryAdapter: (clockTolerance: number) => NonNullable<Configuration['adapter']>;
  };
  const configuration: Configuration = {
    adapter: memory.createMemoryAdapter(0),
    clients: [
      {
        client_id: DASHBOARD_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [DASHBOARD_REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: CLI_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [CLI_REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [jwk as never] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    scopes: ['openid', 'email'],
    findAccount: (_ctx, id) => {
      const user = byEmail.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: () => ({ sub: id, email: user.email, email_verified: true }),
      };
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== API_RESOURCE) throw new Error(`unknown resource ${resource}`);
          return {
            scope: 'openid email',
            audience: LOCAL_AUDIENCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // The roles and datasets ride in the access token, where the API reads them.
    extraTokenClaims: (_ctx, token) => {
      if (token.kind !== 'AccessToken') return undefined;
      const user = byEmail.get(token.accountId);
      if (!user) return undefined;
      return {
        email: user.email,
        [LOCAL_ROLE_CLAIM]: [...user.roles],
        [LOCAL_DATASETS_CLAIM]: user.datasets.join(' '),
      };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // The dashboard calls the token endpoint from its own origin, 127.0.0.1 on whatever port it
    // was given (the default rule wants the redirect URI's origin, port included).
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientId === DASHBOARD_CLIENT_ID && /^http:\/\/127\.0\.0\.1(:\d+)?$/.test(origin),
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    renderError: (ctx: KoaContextWithOIDC, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
  const provider = new Provider(issuer, configuration);
  const providerCallback = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    const interaction = /^\/interaction\/([\w-]+)(\/login)?$/.exec(path);
    if (!interaction) {
      providerCallback(req, res);
      return;
    }
    handleInteraction(provider, byEmail, req, res, interaction[1] as string, interaction[2] !== undefined).catch(
      (error: unknown) => {
        if (!res.headersSent) {
          res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(`sign-in failed: ${(error as Error).message}`);
        } else res.destroy();
      },
    );
  });

  return {
    issuer,
    audience: LOCAL_AUDIENCE,
    users,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The login form and its post; consent is granted at once (both clients are first-party). */
async function handleInteraction(
  provider: Provider,
  users: ReadonlyMap<string, LocalUser>,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  isLogin: boolean,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('this sign-in page belongs to another sign-in; start again');
  const clientId = String(details.params.client_id);
  if (details.prompt.name === 'login') {
    if (!isLogin || req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid, clientId));
      return;
    }
    const form = await formBody(req);
    const user = users.get(form.get('email') ?? '');
    if (!user || !sameSecret(user.password, form.get('password') ?? '')) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid, clientId, 'Unknown e-mail or wrong password.'));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.email } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (details.prompt.name === 'consent') {
    const accountId = details.session?.accountId as string;
    const grant = details.grantId
      ? ((await provider.Grant.find(details.grantId)) as InstanceType<Provider['Grant']>)
      : new provider.Grant({ accountId, clientId });
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {}))
      grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  throw new Error(`unsupported sign-in step ${details.prompt.name}`);
}

/** A PKCE verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * Drives an authorization request through this provider's pages as a browser would, with fetch
 * (the login form, consent), and returns the URL the provider finally redirects to (the client's
 * redirect URI with `code` and `state`, or `error`). For tests and `npm start -- --auth`'s sample
 * uploads; people sign in with the dashboard or `tally login`.
 */
export async function followSignIn(authorizationUrl: string, email: string, password: string): Promise<URL> {
  const redirectUri = new URL(new URL(authorizationUrl).searchParams.get('redirect_uri') ?? '');
  const cookies = new Map<string, string>();
  const send = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: {
        ...(init.headers as Record<string, string>),
        cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      },
    });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = (pair as string).indexOf('=');
      cookies.set((pair as string).slice(0, at).trim(), (pair as string).slice(at + 1).trim());
    }
    return res;
  };
  let url = authorizationUrl;
  for (let step = 0; step < 12; step++) {
    const res = await send(url);
    if (res.status === 200 && /\/interaction\/[\w-]+$/.test(new URL(url).pathname)) {
      await res.text();
      const login = await send(`${url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email, password }).toString(),
      });
      await login.text();
      if (login.status === 401) throw new Error(`sign-in refused for ${email}: wrong e-mail or password`);
      url = new URL(login.headers.get('location') ?? '', url).href;
      continue;
    }
    const location = res.headers.get('location');
    await res.text();
    if (res.status < 300 || res.status >= 400 || !location)
      throw new Error(`sign-in stopped at ${url} with HTTP ${res.status}`);
    const next = new URL(location, url);
    if (next.origin === redirectUri.origin && next.pathname === redirectUri.pathname) return next;
    url = next.href;
  }
  throw new Error('sign-in did not come back to the redirect URI');
}

/** `followSignIn`, then the code + PKCE exchange at the token endpoint: the access token. */
export async function passwordSignIn(options: {
  issuer: string;
  email: string;
  password: string;
  clientId?: string;
  redirectUri?: string;
}): Promise<{ accessToken: string; expiresIn: number }> {
  const clientId = options.clientId ?? CLI_CLIENT_ID;
  // Nothing listens there: the code is read off the redirect, never delivered.
  const redirectUri = options.redirectUri ?? 'http://127.0.0.1:9/callback';
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const discovery = (await (await fetch(`${options.issuer}/.well-known/openid-configuration`)).json()) as {
    authorization_endpoint: string;
    token_endpoint: string;
  };
  const back = await followSignIn(
    `${discovery.authorization_endpoint}?${new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    })}`,
    options.email,
    options.password,
  );
  if (back.searchParams.get('state') !== state) throw new Error('sign-in answered with another state');
  const error = back.searchParams.get('error');
  if (error) throw new Error(`sign-in failed: ${error}: ${back.searchParams.get('error_description') ?? ''}`);
  const code = back.searchParams.get('code');
  if (!code) throw new Error('sign-in did not come back with a code');
  const token = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: clientId,
      code_verifier: verifier,
    }).toString(),
  });
  const body = (await token.json()) as { access_token?: string; expires_in?: number; error?: string };
  if (!token.ok || !body.access_token) throw new Error(`the token endpoint refused the code: ${JSON.stringify(body)}`);
  return { accessToken: body.access_token, expiresIn: body.expires_in ?? 3600 };
}

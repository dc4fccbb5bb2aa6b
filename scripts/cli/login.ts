/**
 * `tally login`: signs in at an OpenID Connect issuer the way a native app does (RFC 8252):
 * authorization code + PKCE in the browser, back to a one-shot listener on 127.0.0.1, no client
 * secret. The access token is kept in a file only this user can read; the API commands use it
 * when TALLY_API_TOKEN is not set. Chosen over the device flow (Cognito has none) and over
 * resource-owner passwords (oidc-provider does not offer them, and they hand the CLI a password).
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { AddressInfo } from 'node:net';
import { processIo, type CliIo } from './api-client.ts';
import { UsageError } from './usage.ts';
import { tokenFile, type StoredToken } from './token-file.ts';

/** `npm start -- --auth`'s provider and its CLI client. */
export const DEFAULT_ISSUER = 'http://127.0.0.1:3001';
export const DEFAULT_CLIENT_ID = 'tally-cli';
const WAIT_MS = 5 * 60_000;

const help = `Usage: tally login [options]
       tally logout

Signs in at an OpenID Connect issuer in your browser (authorization code + PKCE, redirected back
to 127.0.0.1) and keeps the access token for the other commands (TALLY_API_TOKEN, when set, wins).
\`tally logout\` forgets it (removes the token file); it takes no options but --help.

Options:
  --issuer URL     the issuer   [default: $TALLY_OIDC_ISSUER or ${DEFAULT_ISSUER}, i.e. npm start -- --auth]
  --client-id ID   the public client registered for the CLI   [default: $TALLY_OIDC_CLIENT_ID or ${DEFAULT_CLIENT_ID}]
  --scope S        scopes to ask for   [default: openid email]
  --no-browser     print the sign-in URL instead of opening a browser
  -h, --help       show this help

The token is written to $TALLY_TOKEN_FILE or ~/.tally/token.json (mode 600).
`;

function openBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(command, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}

export async function loginCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      scope: { type: 'string', default: 'openid email' },
      'no-browser': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  if (values.help) {
    io.stdout.write(help);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, help);
  const issuer = (values.issuer ?? io.env.TALLY_OIDC_ISSUER ?? DEFAULT_ISSUER).replace(/\/$/, '');
  const clientId = values['client-id'] ?? io.env.TALLY_OIDC_CLIENT_ID ?? DEFAULT_CLIENT_ID;

  let discovery: { authorization_endpoint: string; token_endpoint: string };
  try {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    discovery = (await res.json()) as typeof discovery;
  } catch (error) {
    io.stderr.write(
      `tally login: cannot read the sign-in configuration of ${issuer} (${(error as Error).message}); is \`npm start -- --auth\` running, or is --issuer right?\n`,
    );
    return 1;
  }

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  let settle: (result: { code: string } | { error: string }) => void = () => undefined;
  const answered = new Promise<{ code: string } | { error: string }>((resolve) => (settle = resolve));
  const listener = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    const error = url.searchParams.get('error');
    const code = url.searchParams.get('code');
    const ok = !error && code && url.searchParams.get('state') === state;
    res.writeHead(ok ? 200 : 400, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(ok ? 'Signed in to Tally: you can close this tab.\n' : 'Sign-in failed: see the terminal.\n');
    settle(
      ok
        ? { code: code as string }
        : { error: error ? `${error}: ${url.searchParams.get('error_description') ?? ''}` : 'state mismatch' },
    );
  });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const redirectUri = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/callback`;
  try {
    const url = new URL(discovery.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      scope: values.scope,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state,
    }).toString();
    io.stdout.write(`Sign in at:\n  ${url.href}\n`);
    if (!values['no-browser']) openBrowser(url.href);
    const timeout = new Promise<{ error: string }>((resolve) => {
      const timer = setTimeout(() => resolve({ error: `no answer within ${WAIT_MS / 60_000} minutes` }), WAIT_MS);
      timer.unref();
    });
    const result = await Promise.race([answered, timeout]);
    if ('error' in result) {
      io.stderr.write(`tally login: sign-in failed: ${result.error}\n`);
      return 1;
    }
    const res = await fetch(discovery.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: result.code,
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
      }).toString(),
    });
    const tokens = (await res.json()) as { access_token?: string; expires_in?: number; error?: string };
    if (!res.ok || !tokens.access_token) {
      io.stderr.write(`tally login: the token endpoint refused the code (${tokens.error ?? `HTTP ${res.status}`})\n`);
      return 1;
    }
    const file = tokenFile(io.env);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const stored: StoredToken = {
      issuer,
      access_token: tokens.access_token,
      expires_at: Date.now() + (tokens.expires_in ?? 3600) * 1000,
    };
    writeFileSync(file, `${JSON.stringify(stored)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    io.stdout.write(`Signed in; token kept in ${file} until ${new Date(stored.expires_at).toISOString()}\n`);
    return 0;
  } finally {
    listener.close();
    listener.closeAllConnections();
  }
}

export async function logoutCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(help);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, help);
  rmSync(tokenFile(io.env), { force: true });
  io.stdout.write(`Signed out (removed ${tokenFile(io.env)})\n`);
  return 0;
}

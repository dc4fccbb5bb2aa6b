/**
 * Sign-in on AWS: OIDC authorization code with PKCE against the issuer the API's JWT authorizer
 * trusts. The access token lives in sessionStorage (this tab only). Local mode has no `auth`
 * in its config and never signs in.
 */
import { siteConfig } from './site-config.ts';

const TOKEN_KEY = 'tally.token';
const VERIFIER_KEY = 'tally.pkce';

interface Discovery {
  readonly authorization_endpoint: string;
  readonly token_endpoint: string;
}

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const array = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = '';
  for (const b of array) text += String.fromCharCode(b);
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`cannot read the sign-in configuration of ${issuer} (HTTP ${res.status})`);
  return (await res.json()) as Discovery;
}

function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

/** The bearer token for API calls, or undefined (local mode). Redirects to sign in when needed. */
export async function accessToken(): Promise<string | undefined> {
  const auth = siteConfig().auth;
  if (!auth) return undefined;
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    const { token, expires } = JSON.parse(stored) as { token: string; expires: number };
    if (Date.now() < expires - 30_000) return token;
  }
  await signIn();
  return undefined;
}

export async function signIn(): Promise<never> {
  const auth = siteConfig().auth;
  if (!auth) throw new Error('no sign-in configured');
  const discovery = await discover(auth.issuer);
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(VERIFIER_KEY, JSON.stringify({ verifier, state, hash: location.hash }));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: auth.clientId,
    redirect_uri: redirectUri(),
    scope: auth.scope ?? 'openid email',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    ...(auth.audience ? { audience: auth.audience } : {}),
  }).toString();
  location.assign(url.toString());
  return new Promise<never>(() => undefined);
}

/** Completes a sign-in redirect (?code=...&state=...) if this page load is one. */
export async function completeSignIn(): Promise<void> {
  const auth = siteConfig().auth;
  const params = new URLSearchParams(location.search);
  const code = params.get('code');
  if (!auth || !code) return;
  const pending = JSON.parse(sessionStorage.getItem(VERIFIER_KEY) ?? 'null') as {
    verifier: string;
    state: string;
    hash: string;
  } | null;
  sessionStorage.removeItem(VERIFIER_KEY);
  if (!pending || pending.state !== params.get('state'))
    throw new Error('the sign-in response does not match this tab; sign in again');
  const discovery = await discover(auth.issuer);
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri(),
      client_id: auth.clientId,
      code_verifier: pending.verifier,
    }),
  });
  if (!res.ok) throw new Error(`sign-in failed: the token endpoint answered ${res.status}`);
  const tokens = (await res.json()) as { access_token: string; expires_in?: number };
  sessionStorage.setItem(
    TOKEN_KEY,
    JSON.stringify({ token: tokens.access_token, expires: Date.now() + (tokens.expires_in ?? 3600) * 1000 }),
  );
  history.replaceState(null, '', `${location.pathname}${pending.hash}`);
}

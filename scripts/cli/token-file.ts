/** Where `tally login` keeps the access token, and how the API commands read it back. */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface StoredToken {
  readonly issuer: string;
  readonly access_token: string;
  /** Epoch milliseconds. */
  readonly expires_at: number;
}

export function tokenFile(env: NodeJS.ProcessEnv): string {
  return env.TALLY_TOKEN_FILE || join(homedir(), '.tally', 'token.json');
}

/** The token `tally login` stored, unless it has expired (or is about to). */
export function storedToken(env: NodeJS.ProcessEnv, now = Date.now()): string | undefined {
  try {
    const stored = JSON.parse(readFileSync(tokenFile(env), 'utf8')) as StoredToken;
    return typeof stored.access_token === 'string' && stored.expires_at - 30_000 > now
      ? stored.access_token
      : undefined;
  } catch {
    return undefined;
  }
}

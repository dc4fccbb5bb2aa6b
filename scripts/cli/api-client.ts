/**
 * What the API-backed commands (upload, exceptions, search) share: a small HTTP client for the
 * Tally API, the --api / --json options, error reporting and plain-text tables.
 */
import type { Page } from '../../functions/shared/api-types.ts';
import { UsageError } from './usage.ts';
import { storedToken } from './token-file.ts';

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

/** Where a command writes; tests pass their own. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };
  readonly env: NodeJS.ProcessEnv;
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

export const apiOptionsHelp = `  --api URL         the Tally API   [default: $TALLY_API_URL or ${DEFAULT_API_URL}, i.e. \`npm start\`]
  --json            print the API's JSON instead of a table
  -h, --help        show this help

An API with sign-in needs a bearer token: \`tally login\`, or set TALLY_API_TOKEN.`;

export const apiParseOptions = {
  api: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The API answered with an error: its code, message and details. */
export class ApiRequestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiRequestError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Nothing answered at all. */
export class ApiUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiUnreachableError';
  }
}

export interface ApiClient {
  readonly baseUrl: string;
  request<T>(
    method: string,
    path: string,
    options?: { query?: Record<string, string | undefined>; body?: unknown; as?: 'json' | 'text' },
  ): Promise<T>;
}

export function apiBaseUrl(option: string | undefined, env: NodeJS.ProcessEnv, help: string): string {
  const raw = option ?? env.TALLY_API_URL ?? DEFAULT_API_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--api must be an http(s) URL, got "${raw}"`, help);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`--api must be an http(s) URL, got "${raw}"`, help);
  return url.toString().replace(/\/+$/, '');
}

export function createApiClient(options: {
  baseUrl: string;
  token?: string | undefined;
  fetch?: typeof fetch;
}): ApiClient {
  const doFetch = options.fetch ?? fetch;
  return {
    baseUrl: options.baseUrl,
    async request<T>(
      method: string,
      path: string,
      request: { query?: Record<string, string | undefined>; body?: unknown; as?: 'json' | 'text' } = {},
    ): Promise<T> {
      const url = new URL(`${options.baseUrl}${path}`);
      for (const [k, v] of Object.entries(request.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
      const headers: Record<string, string> = { accept: 'application/json' };
      if (request.body !== undefined) headers['content-type'] = 'application/json';
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      let response: Response;
      try {
        response = await doFetch(url, {
          method,
          headers,
          ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
          signal: AbortSignal.timeout(60_000),
        });
      } catch (error) {
        throw unreachable(options.baseUrl, error);
      }
      const text = await response.text();
      let json: unknown;
      try {
        json = text.length > 0 ? JSON.parse(text) : null;
      } catch {
        json = undefined;
      }
      if (!response.ok) {
        const body = json as
          | { error?: { code?: string; message?: string; details?: Record<string, unknown> }; message?: string }
          | undefined;
        const error = body?.error;
        const message = error?.message ?? body?.message ?? (text.slice(0, 200) || response.statusText);
        throw new ApiRequestError(
          response.status,
          error?.code ?? `HTTP_${response.status}`,
          message,
          error?.details ?? {},
        );
      }
      // A body that is not JSON by design (a run report in Markdown), asked for as text.
      if (request.as === 'text') return text as T;
      if (json === undefined)
        throw new ApiRequestError(
          response.status,
          'BAD_RESPONSE',
          `the API at ${options.baseUrl} answered with something that is not JSON`,
        );
      return json as T;
    },
  };
}

function unreachable(baseUrl: string, error: unknown): ApiUnreachableError {
  const cause = (error as { cause?: { code?: string } }).cause;
  const why = cause?.code ?? (error as Error).name;
  if (why === 'TimeoutError') return new ApiUnreachableError(`the Tally API at ${baseUrl} did not answer within 60 s`);
  const local = /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(baseUrl);
  return new ApiUnreachableError(
    `cannot reach the Tally API at ${baseUrl} (${why}); ${local ? 'is `npm start` running?' : 'check --api and your network'}`,
  );
}

export function clientFor(values: { api?: string | undefined }, io: CliIo, help: string): ApiClient {
  // TALLY_API_TOKEN, else the token `tally login` kept.
  const token = io.env.TALLY_API_TOKEN || storedToken(io.env);
  return createApiClient({ baseUrl: apiBaseUrl(values.api, io.env, help), token });
}

/** Reports an API failure on stderr; returns the exit status (1), or rethrows anything else. */
export function reportApiError(command: string, io: CliIo, error: unknown): number {
  if (error instanceof ApiUnreachableError) {
    io.stderr.write(`tally ${command}: ${error.message}\n`);
    return 1;
  }
  if (error instanceof ApiRequestError) {
    io.stderr.write(`tally ${command}: ${error.message} (HTTP ${error.status} ${error.code})\n`);
    // A 403 that is about roles or entitlements (not, say, SAME_PERSON, whose message says what to do).
    if (error.status === 401 || (error.status === 403 && error.code.startsWith('FORBIDDEN')))
      io.stderr.write(
        error.status === 401
          ? '  sign in with `npx tally login` or set TALLY_API_TOKEN to a valid bearer token for this API\n'
          : '  your roles or dataset entitlements do not allow this (npx tally whoami shows them)\n',
      );
    return 1;
  }
  throw error;
}

/** An option as the user types it: `limit` is `--limit`; a short one is passed as typed (`-k`). */
const flag = (option: string) => (option.startsWith('-') ? option : `--${option}`);

/**
 * Validates an option against the values the API allows, before asking it: in any case (`open`,
 * `OPEN`), given back as the API spells it (statuses upper case, `--sort due` lower).
 */
export function oneOf<T extends string>(
  option: string,
  value: string | undefined,
  allowed: readonly T[],
  help: string,
): T | undefined {
  if (value === undefined) return undefined;
  const found = allowed.find((a) => a.toUpperCase() === value.toUpperCase());
  if (found === undefined)
    throw new UsageError(`${flag(option)} must be one of ${allowed.join(', ')}, got "${value}"`, help);
  return found;
}

export function intOption(
  option: string,
  value: string | undefined,
  min: number,
  max: number,
  help: string,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UsageError(`${flag(option)} must be an integer from ${min} to ${max}, got "${value}"`, help);
  return n;
}

/** Key columns as `a=1, b=2`. */
export function keyText(key: unknown): string {
  if (key && typeof key === 'object')
    return Object.entries(key as Record<string, unknown>)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ');
  return key === undefined || key === null ? '' : String(key);
}

// The one text-table renderer of the CLI lives in table.ts; re-exported for the commands that import it from here.
/**
 * Reads a paged listing from `token` on: one page, or every page when `all`. Returns the items and
 * the token of the page after the last one read (null at the end). An empty page with a token is
 * read past: the API bounds each request's reads, so a sparse filter (an assignee, a team) can
 * answer an empty page with matches behind it, which is not "none match". `onEmpty` hears of each.
 */
export async function readPages<T>(
  api: ApiClient,
  path: string,
  query: Record<string, string | undefined>,
  options: { token?: string | undefined; all?: boolean; onEmpty?: (pagesRead: number) => void },
): Promise<{ items: T[]; next: string | null; truncated: boolean }> {
  const items: T[] = [];
  let token = options.token;
  let next: string | null;
  let truncated: boolean;
  let pages = 0;
  do {
    const page: Page<T> = await api.request('GET', path, { query: { ...query, next_token: token } });
    pages++;
    items.push(...page.items);
    next = page.next_token;
    truncated = page.truncated === true;
    token = next ?? undefined;
    if (token && items.length === 0) options.onEmpty?.(pages);
  } while (token && (options.all || items.length === 0));
  return { items, next, truncated };
}

export { table } from './table.ts';

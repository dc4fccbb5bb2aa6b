/**
 * Opaque, tamper-evident pagination tokens. A token is base64url(JSON payload) + "." +
 * base64url(HMAC-SHA256) over it; the payload names the index, DynamoDB's start key and a hash of
 * the filters it was issued for, so a token cannot be edited to read another partition, nor be
 * replayed against another filter set.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { BadRequestError } from './errors.ts';

/** 2: the exceptions' sharded indexes (their keys differ from version 1's); older tokens are refused. */
const TOKEN_VERSION = 2;
/** Far above any real token (a start key is three short attributes); bounds the work on junk input. */
const MAX_TOKEN_LENGTH = 2048;

export interface PageCursor {
  readonly index: string;
  readonly startKey: Readonly<Record<string, unknown>>;
}

/** Order-independent hash of the filters a listing was asked for (paging size excluded). */
export function filterHash(filters: Readonly<Record<string, string | undefined>>): string {
  const canonical = Object.entries(filters)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 22);
}

function sign(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}

export function encodeToken(secret: string, cursor: PageCursor, filters: string): string {
  const payload = Buffer.from(
    JSON.stringify({ v: TOKEN_VERSION, i: cursor.index, k: cursor.startKey, f: filters }),
  ).toString('base64url');
  return `${payload}.${sign(secret, payload)}`;
}

const invalid = () =>
  new BadRequestError(
    'INVALID_NEXT_TOKEN',
    'next_token is not valid: it was altered, truncated or issued by another deployment; pass next_token exactly as a previous response returned it, or omit it to start from the first page',
  );

/** Verifies and opens a token; a 400 says whether it was tampered with or belongs to other filters. */
export function decodeToken(secret: string, token: string, filters: string): PageCursor {
  if (token.length > MAX_TOKEN_LENGTH) throw invalid();
  const [payload, signature, ...rest] = token.split('.');
  if (!payload || !signature || rest.length > 0) throw invalid();
  const expected = Buffer.from(sign(secret, payload));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  let body: { v?: unknown; i?: unknown; k?: unknown; f?: unknown };
  try {
    body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof body;
  } catch {
    throw invalid();
  }
  if (
    body.v !== TOKEN_VERSION ||
    typeof body.i !== 'string' ||
    typeof body.k !== 'object' ||
    body.k === null ||
    typeof body.f !== 'string'
  )
    throw invalid();
  if (body.f !== filters) {
    throw new BadRequestError(
      'NEXT_TOKEN_FILTER_MISMATCH',
      'next_token was issued for a different set of filters; repeat the query parameters (all but next_token) of the request that returned it, or omit next_token to start over',
    );
  }
  return { index: body.i, startKey: body.k as Record<string, unknown> };
}

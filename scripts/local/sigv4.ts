/**
 * Verifies AWS Signature Version 4 on requests to the local S3 front door, as S3 does: query
 * pre-signed URLs (X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Signature) and
 * `Authorization: AWS4-HMAC-SHA256 ...` headers (the SDK clients and the `aws` CLI).
 *
 * Hand-written on node:crypto rather than the SDK's signer: `@smithy/signature-v4` is only a
 * transitive dependency, and its presign path rewrites the request it is given (hoists x-amz-*
 * headers into the query, adds X-Amz-Content-Sha256, drops content-type unless told), whereas a
 * verifier must canonicalise exactly what the client says it signed (its SignedHeaders). The
 * oracle is the SDK itself: test/integration/s3-front-door.test.ts signs with getSignedUrl and
 * with S3Client requests and expects these functions to agree, and to disagree after any change.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface SignedRequest {
  readonly method: string;
  /** Path and query exactly as they arrived on the wire (`req.url`). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** Why S3 would refuse the request; `code` and `status` are S3's. */
export interface AuthFailure {
  readonly ok: false;
  readonly status: 400 | 403;
  readonly code: string;
  readonly message: string;
}

export type AuthResult =
  { readonly ok: true; readonly kind: 'presigned' | 'header'; readonly signedHeaders: readonly string[] } | AuthFailure;

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3's longest pre-signed URL lifetime (7 days). */
const MAX_EXPIRES_SECONDS = 7 * 24 * 3600;
/** S3 refuses header-signed requests whose clock differs from its own by more than this. */
const MAX_SKEW_MS = 15 * 60 * 1000;
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

const fail = (status: 400 | 403, code: string, message: string): AuthFailure => ({ ok: false, status, code, message });

/** RFC 3986 percent-encoding, as SigV4 canonicalises query keys and values. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Raw query pairs, decoded. `+` stays `+`: SigV4 clients encode a space as %20. */
function queryPairs(rawQuery: string): [string, string][] {
  if (rawQuery === '') return [];
  return rawQuery.split('&').map((part) => {
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    return [decodeURIComponent(k), decodeURIComponent(v)];
  });
}

function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function signature(secret: string, scope: Scope, amzDate: string, canonicalRequest: string): string {
  const stringToSign = [ALGORITHM, amzDate, scope.text, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(scope.date).digest();
  for (const part of [scope.region, scope.service, 'aws4_request'])
    key = createHmac('sha256', key).update(part).digest();
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

interface Scope {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
  readonly text: string;
}

function parseCredential(credential: string): Scope | undefined {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request') return undefined;
  const [accessKeyId = '', date = '', region = '', service = ''] = parts;
  return { accessKeyId, date, region, service, text: parts.slice(1).join('/') };
}

/** `YYYYMMDDTHHMMSSZ` to epoch ms, or NaN. */
function amzDateMs(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, s);
}

/**
 * Checks a request's signature against `credentials`. `now` is injected for the expiry tests.
 * A request with neither a pre-signed query nor an Authorization header is anonymous, which a
 * private bucket refuses.
 */
export function verifySigV4(request: SignedRequest, credentials: Credentials, now: number = Date.now()): AuthResult {
  const q = request.url.indexOf('?');
  const path = q < 0 ? request.url : request.url.slice(0, q);
  let pairs: [string, string][];
  try {
    pairs = queryPairs(q < 0 ? '' : request.url.slice(q + 1));
  } catch {
    return fail(400, 'InvalidArgument', 'the query string is not validly percent-encoded');
  }
  const query = new Map(pairs);
  const authorization = headerValue(request.headers, 'authorization');
  const presigned = query.has('X-Amz-Signature') || query.has('X-Amz-Algorithm');
  if (presigned && authorization)
    return fail(
      400,
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified',
    );

  let scope: Scope | undefined;
  let amzDate: string;
  let signedHeaders: string[];
  let given: string;
  let payloadHash: string;
  let signedPairs: [string, string][];
  if (presigned) {
    const missing = [
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
    ].filter((p) => !query.has(p));
    if (missing.length > 0)
      return fail(
        400,
        'AuthorizationQueryParametersError',
        `Query-string authentication requires ${missing.join(', ')}`,
      );
    if (query.get('X-Amz-Algorithm') !== ALGORITHM)
      return fail(400, 'AuthorizationQueryParametersError', `X-Amz-Algorithm only supports "${ALGORITHM}"`);
    scope = parseCredential(query.get('X-Amz-Credential') as string);
    amzDate = query.get('X-Amz-Date') as string;
    const expires = Number(query.get('X-Amz-Expires'));
    const signedAt = amzDateMs(amzDate);
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_SECONDS)
      return fail(
        400,
        'AuthorizationQueryParametersError',
        `X-Amz-Expires must be from 1 to ${MAX_EXPIRES_SECONDS} seconds`,
      );
    if (Number.isNaN(signedAt))
      return fail(
        400,
        'AuthorizationQueryParametersError',
        'X-Amz-Date must be in the ISO8601 basic format YYYYMMDDTHHMMSSZ',
      );
    if (now > signedAt + expires * 1000) return fail(403, 'AccessDenied', 'Request has expired');
    if (now < signedAt - MAX_SKEW_MS) return fail(403, 'AccessDenied', 'Request is not valid yet');
    signedHeaders = (query.get('X-Amz-SignedHeaders') as string).split(';');
    given = query.get('X-Amz-Signature') as string;
    payloadHash = UNSIGNED_PAYLOAD;
    signedPairs = pairs.filter(([k]) => k !== 'X-Amz-Signature');
  } else if (authorization) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]+)$/.exec(
      authorization,
    );
    if (!m)
      return fail(
        400,
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed; expected AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...',
      );
    scope = parseCredential(m[1] as string);
    signedHeaders = (m[2] as string).split(';');
    given = m[3] as string;
    amzDate = headerValue(request.headers, 'x-amz-date') ?? '';
    const signedAt = amzDateMs(amzDate);
    if (Number.isNaN(signedAt))
      return fail(403, 'AccessDenied', 'AWS authentication requires a valid x-amz-date header');
    if (Math.abs(now - signedAt) > MAX_SKEW_MS)
      return fail(
        403,
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    const declared = headerValue(request.headers, 'x-amz-content-sha256');
    if (declared === undefined)
      return fail(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    payloadHash = declared;
    signedPairs = pairs;
  } else {
    return fail(403, 'AccessDenied', 'Access Denied');
  }

  if (!scope || scope.service !== 's3' || scope.date !== amzDate.slice(0, 8))
    return fail(
      400,
      'AuthorizationHeaderMalformed',
      'the credential scope must be ACCESS_KEY/YYYYMMDD/REGION/s3/aws4_request, dated the day of X-Amz-Date',
    );
  if (scope.accessKeyId !== credentials.accessKeyId)
    return fail(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (!signedHeaders.includes('host'))
    return fail(
      403,
      'AccessDenied',
      'There were headers present in the request which were not signed: host must be signed',
    );
  const canonicalHeaders: string[] = [];
  for (const name of signedHeaders) {
    const value = headerValue(request.headers, name);
    // A header the client signed but did not send cannot match; S3 answers the mismatch.
    canonicalHeaders.push(`${name}:${value ?? ''}\n`);
  }
  const canonicalRequest = [
    request.method.toUpperCase(),
    path === '' ? '/' : path,
    canonicalQuery(signedPairs),
    canonicalHeaders.join(''),
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const expected = signature(credentials.secretAccessKey, scope, amzDate, canonicalRequest);
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  if (a.length !== b.length || !timingSafeEqual(a, b))
    return fail(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  return { ok: true, kind: presigned ? 'presigned' : 'header', signedHeaders };
}

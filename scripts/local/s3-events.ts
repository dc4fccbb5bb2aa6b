/**
 * The local S3 endpoint: a front door before the emulator that does what S3 + EventBridge do on
 * AWS, and what fauxqs does not:
 *
 * - checks every request like S3: SigV4 signature (pre-signed query or Authorization header),
 *   expiry and signed headers, answering S3's XML errors;
 * - refuses object keys with `.`/`..`/empty segments (fauxqs keeps keys as files, so such a key
 *   would escape the data directory) and writes outside `incoming/` and `policies/`;
 * - accepts a single PUT of any size S3 allows (5 GiB): fauxqs caps request bodies at 11 MiB, so a
 *   larger body is streamed to it as a multipart upload, one part in memory at a time. Doing it
 *   here keeps every client (the CLI, the dashboard, curl) on the one pre-signed PUT the API hands
 *   out, as on AWS; the object then has a multipart ETag (`...-N`), which its event carries;
 * - after an object is created, matches the event against the rule infra/ deploys and puts an
 *   EventBridge-shaped "Object Created" event on the ingest queue. The event is first written to
 *   a durable outbox, before the PUT is answered, and sent from there: a crash between the answer
 *   and the send loses nothing, because the outbox is replayed when the front door starts.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { objectCreatedPattern, PREFIXES } from '../../functions/shared/resources.ts';
import {
  objectCreatedEvent,
  type ObjectCreatedMessage,
  type ObjectCreatedReason,
} from '../../functions/shared/object-created.ts';
import { fileOutbox } from './outbox.ts';
import { crashPoint } from '../../functions/shared/crash-point.ts';
import { verifySigV4, type Credentials } from './sigv4.ts';

export interface S3EventRouter {
  readonly url: string;
  /** Events recorded but not yet on the queue, plus writes being handled (for idle detection). */
  pending(): number;
  stop(): Promise<void>;
}

export interface RouterOptions {
  readonly upstream: string;
  readonly bucket: string;
  /** Talks straight to the emulator: object metadata, and the parts of large uploads. */
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly ingestQueueUrl: string;
  readonly region: string;
  /** Where events wait, durably, until the ingest queue has them (under the data dir). */
  readonly outboxDir: string;
  /** What requests must be signed with; by default the credentials of `s3`. */
  readonly credentials?: Credentials;
  readonly now?: () => number;
  readonly onError?: (error: Error) => void;
  /** Each "Object Created" event once it is on the ingest queue (the local S3 replication). */
  readonly onObjectCreated?: (event: ObjectCreatedMessage) => void;
}

/** S3's limit for one PUT. */
export const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;
/**
 * Bodies above this go to the emulator as a multipart upload, in parts of at least this size
 * (S3's minimum part is 5 MiB; fauxqs refuses bodies over 11 MiB).
 */
export const PART_BYTES = 8 * 1024 * 1024;
/**
 * Objects may be written only under these prefixes: what ingest reads, where it puts accepted
 * policies, and where recon writes a run's findings chunks.
 */
const WRITABLE_PREFIXES = [PREFIXES.incoming, PREFIXES.policies, PREFIXES.policiesInForce, PREFIXES.results];
/** S3's bucket naming rule (3-63 of a-z, 0-9, '.', '-', starting and ending alphanumeric). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A send that failed is tried again after this. */
const RETRY_MS = 2000;

/** Pages served from loopback (the local dashboard) may upload; nothing else is reachable anyway. */
const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

let counter = 0;
/** S3 sequencers grow with each write to a key; time plus a counter keeps that across restarts. */
function nextSequencer(): string {
  counter = (counter + 1) % 0x10000;
  return Date.now().toString(16).toUpperCase().padStart(12, '0') + counter.toString(16).toUpperCase().padStart(4, '0');
}

/** The subset of EventBridge pattern matching our rule uses: exact values and prefixes. */
export function matchesPattern(pattern: unknown, event: unknown): boolean {
  if (Array.isArray(pattern)) {
    return pattern.some((p) =>
      typeof p === 'object' && p !== null && 'prefix' in p
        ? typeof event === 'string' && event.startsWith(String((p as { prefix: string }).prefix))
        : p === event,
    );
  }
  if (typeof pattern === 'object' && pattern !== null) {
    if (typeof event !== 'object' || event === null) return false;
    return Object.entries(pattern).every(([k, v]) => matchesPattern(v, (event as Record<string, unknown>)[k]));
  }
  return pattern === event;
}

/** An S3 error, answered as S3 does: XML with Code, Message, Key (when there is one), RequestId. */
export class S3RequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'S3RequestError';
    this.status = status;
    this.code = code;
  }
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function sendS3Error(res: ServerResponse, method: string, error: S3RequestError, key: string | undefined): void {
  const requestId = randomUUID().replaceAll('-', '').slice(0, 16).toUpperCase();
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message>`,
    key === undefined ? '' : `<Key>${xmlEscape(key)}</Key>`,
    `<RequestId>${requestId}</RequestId></Error>`,
  ].join('');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(error.status, {
    'content-type': 'application/xml',
    'x-amz-request-id': requestId,
    // The rest of an unread body is not wanted: close rather than read it.
    connection: 'close',
    ...(method === 'HEAD' ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
  });
  res.end(method === 'HEAD' ? undefined : body);
}

interface Target {
  readonly bucket: string;
  readonly key: string | undefined;
  readonly query: URLSearchParams;
}

/** Bucket and key from the raw path: a URL parser would resolve `..` and `.` segments first. */
function parseTarget(rawUrl: string): Target {
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  const [, bucket = '', ...rest] = path.split('/');
  let key: string | undefined;
  try {
    key = rest.length === 0 || (rest.length === 1 && rest[0] === '') ? undefined : decodeURIComponent(rest.join('/'));
  } catch {
    throw new S3RequestError(400, 'InvalidURI', 'Could not parse the specified URI.');
  }
  return { bucket: safeDecode(bucket), key, query };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3RequestError(400, 'InvalidURI', 'Could not parse the specified URI.');
  }
}

/**
 * S3 keeps keys as opaque strings; the emulator keeps them as file paths, where `..` climbs out
 * of its data directory and `.` or an empty segment names another key's file.
 */
export function keyProblem(key: string): string | undefined {
  if (key.includes('\0')) return 'object keys must not contain NUL characters';
  const bad = key.split('/').find((s) => s === '' || s === '.' || s === '..');
  if (bad !== undefined)
    return `object keys must not contain ${bad === '' ? 'empty' : `"${bad}"`} path segments (the local store keeps keys as files)`;
  return undefined;
}

function isWrite(method: string): boolean {
  return method === 'PUT' || method === 'POST' || method === 'DELETE';
}

/** Which write creates an object (and so an event), or undefined for the others. */
function creationReason(
  method: string,
  target: Target,
  headers: IncomingMessage['headers'],
): ObjectCreatedReason | undefined {
  if (target.key === undefined) return undefined;
  const q = target.query;
  if (method === 'PUT' && !q.has('uploadId') && !q.has('partNumber') && !q.has('tagging') && !q.has('acl'))
    return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  return undefined;
}

function etagFrom(headers: http.IncomingHttpHeaders, body: string): string | undefined {
  const header = headers.etag;
  if (typeof header === 'string' && header !== '') return header;
  const match = /<ETag>([^<]*)<\/ETag>/.exec(body)?.[1];
  return match?.replaceAll('&quot;', '"').replaceAll('&#34;', '"');
}

export async function startS3EventRouter(options: RouterOptions): Promise<S3EventRouter> {
  const upstream = new URL(options.upstream);
  const pattern = objectCreatedPattern(options.bucket);
  const now = options.now ?? Date.now;
  const outbox = fileOutbox<ObjectCreatedMessage>(options.outboxDir);
  let credentials = options.credentials;
  const signingCredentials = async (): Promise<Credentials> => {
    if (credentials) return credentials;
    const provider = options.s3.config.credentials;
    const resolved = await provider();
    credentials = { accessKeyId: resolved.accessKeyId, secretAccessKey: resolved.secretAccessKey };
    return credentials;
  };
  let handling = 0;
  let waiting = (await outbox.list()).length;
  let draining: Promise<void> | undefined;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  /** Sends every recorded event, oldest first; one drain at a time. */
  const drain = (): Promise<void> => {
    if (draining) {
      again = true;
      return draining;
    }
    draining = (async () => {
      do {
        again = false;
        for (const entry of await outbox.list()) {
          if (stopped) return;
          try {
            await options.sqs.send(
              new SendMessageCommand({ QueueUrl: options.ingestQueueUrl, MessageBody: JSON.stringify(entry.value) }),
            );
          } catch (error) {
            options.onError?.(error as Error);
            retryTimer ??= setTimeout(() => {
              retryTimer = undefined;
              void drain();
            }, RETRY_MS);
            return;
          }
          await outbox.remove(entry.id);
          waiting--;
          options.onObjectCreated?.(entry.value);
        }
      } while (again && !stopped);
    })().finally(() => {
      draining = undefined;
    });
    return draining;
  };

  /** Records the event durably; resolves once it would survive a crash. */
  const record = async (
    key: string,
    etag: string,
    size: number | undefined,
    reason: ObjectCreatedReason,
  ): Promise<void> => {
    const event = objectCreatedEvent({
      bucket: options.bucket,
      key,
      etag,
      size,
      sequencer: nextSequencer(),
      region: options.region,
      reason,
      time: new Date(now()),
    });
    if (!matchesPattern(pattern, event)) return;
    await outbox.add(event);
    waiting++;
    // Acknowledged to nobody yet, but durable: a kill here must still end in a file record.
    crashPoint('upload:recorded');
  };

  const sizeOf = async (key: string, etag: string): Promise<number | undefined> => {
    const head = await options.s3
      .send(new HeadObjectCommand({ Bucket: options.bucket, Key: key, IfMatch: etag }))
      .catch(() => undefined);
    return head?.ContentLength;
  };

  /** Passes the request to the emulator; the answer is held until the event is recorded. */
  const forward = (req: IncomingMessage, res: ServerResponse, created?: { key: string; reason: ObjectCreatedReason }) =>
    new Promise<void>((resolve, reject) => {
      const proxied = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          const status = up.statusCode ?? 502;
          if (!created || status < 200 || status >= 300) {
            res.writeHead(status, up.headers);
            up.pipe(res);
            up.on('end', resolve);
            up.on('error', reject);
            return;
          }
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('error', reject);
          up.on('end', () => {
            const body = Buffer.concat(chunks);
            const text = body.toString('utf8');
            // S3 may answer CompleteMultipartUpload 200 with an error in the body.
            const etag = /<Error>/.test(text) ? undefined : etagFrom(up.headers, text);
            const declared = Number(req.headers['x-amz-decoded-content-length'] ?? req.headers['content-length']);
            (async () => {
              if (etag !== undefined) {
                const size =
                  created.reason === 'PutObject' && Number.isInteger(declared)
                    ? declared
                    : await sizeOf(created.key, etag);
                await record(created.key, etag, size, created.reason);
              }
              res.writeHead(status, up.headers);
              res.end(body);
            })().then(resolve, reject);
          });
        },
      );
      proxied.on('error', (error) =>
        reject(new S3RequestError(502, 'ServiceUnavailable', `local S3 emulator: ${error.message}`)),
      );
      req.pipe(proxied);
    });

  /** One large PUT becomes a multipart upload, a part at a time: memory stays at about one part. */
  const putInParts = async (req: IncomingMessage, res: ServerResponse, key: string, length: number | undefined) => {
    const declaredHash = req.headers['x-amz-content-sha256'];
    const hash =
      typeof declaredHash === 'string' && /^[0-9a-f]{64}$/.test(declaredHash) ? createHash('sha256') : undefined;
    const metadata = Object.fromEntries(
      Object.entries(req.headers)
        .filter(([name]) => name.startsWith('x-amz-meta-'))
        .map(([name, value]) => [name.slice('x-amz-meta-'.length), String(value)]),
    );
    const created = await options.s3.send(
      new CreateMultipartUploadCommand({
        Bucket: options.bucket,
        Key: key,
        ...(req.headers['content-type'] ? { ContentType: req.headers['content-type'] } : {}),
        ...(Object.keys(metadata).length > 0 ? { Metadata: metadata } : {}),
      }),
    );
    const uploadId = created.UploadId as string;
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      let buffered: Buffer[] = [];
      let bufferedBytes = 0;
      let total = 0;
      const sendPart = async () => {
        const body = Buffer.concat(buffered, bufferedBytes);
        buffered = [];
        bufferedBytes = 0;
        const partNumber = parts.length + 1;
        const out = await options.s3.send(
          new UploadPartCommand({
            Bucket: options.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: partNumber,
            Body: body,
          }),
        );
        parts.push({ PartNumber: partNumber, ETag: out.ETag as string });
      };
      for await (const chunk of req) {
        const bytes = chunk as Buffer;
        hash?.update(bytes);
        buffered.push(bytes);
        bufferedBytes += bytes.length;
        total += bytes.length;
        if (total > MAX_SINGLE_PUT_BYTES)
          throw new S3RequestError(
            400,
            'EntityTooLarge',
            `Your proposed upload exceeds the maximum allowed size of ${MAX_SINGLE_PUT_BYTES} bytes`,
          );
        if (bufferedBytes >= PART_BYTES) await sendPart();
      }
      if (length !== undefined && total !== length)
        throw new S3RequestError(
          400,
          'IncompleteBody',
          'You did not provide the number of bytes specified by the Content-Length HTTP header.',
        );
      if (hash && hash.digest('hex') !== declaredHash)
        throw new S3RequestError(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      if (bufferedBytes > 0 || parts.length === 0) await sendPart();
      const done = await options.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: options.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      const etag = done.ETag as string;
      await record(key, etag, total, 'PutObject');
      res.writeHead(200, { etag, 'content-length': '0', 'x-amz-request-id': randomUUID() });
      res.end();
    } catch (error) {
      await options.s3
        .send(new AbortMultipartUploadCommand({ Bucket: options.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw error;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const target = parseTarget(req.url ?? '/');
    // The bucket is a directory of the emulator too: `..` there would escape just the same.
    if (target.bucket !== '' && !BUCKET_NAME.test(target.bucket))
      throw new S3RequestError(400, 'InvalidBucketName', 'The specified bucket is not valid.');
    if (target.key !== undefined) {
      const problem = keyProblem(target.key);
      if (problem) throw new S3RequestError(400, 'InvalidArgument', problem);
      if (
        isWrite(method) &&
        target.bucket === options.bucket &&
        !WRITABLE_PREFIXES.some((p) => target.key?.startsWith(p))
      )
        throw new S3RequestError(
          400,
          'InvalidArgument',
          `objects may be written only under ${WRITABLE_PREFIXES.join(' or ')} (uploads: POST /uploads chooses the key)`,
        );
    }
    const auth = verifySigV4({ method, url: req.url ?? '/', headers: req.headers }, await signingCredentials(), now());
    if (!auth.ok) throw new S3RequestError(auth.status, auth.code, auth.message);

    const reason = creationReason(method, target, req.headers);
    if (reason === undefined || target.key === undefined || target.bucket !== options.bucket) return forward(req, res);
    const chunkedSigning =
      String(req.headers['content-encoding'] ?? '').includes('aws-chunked') ||
      String(req.headers['x-amz-content-sha256'] ?? '').startsWith('STREAMING-');
    const lengthHeader = req.headers['content-length'];
    const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
    if (length !== undefined && length > MAX_SINGLE_PUT_BYTES)
      throw new S3RequestError(
        400,
        'EntityTooLarge',
        `Your proposed upload exceeds the maximum allowed size of ${MAX_SINGLE_PUT_BYTES} bytes`,
      );
    if (reason === 'PutObject' && !chunkedSigning && (length === undefined || length > PART_BYTES))
      return putInParts(req, res, target.key, length);
    return forward(req, res, { key: target.key, reason });
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    // Browser uploads (the dashboard) PUT to pre-signed URLs cross-origin, as the bucket's CORS
    // rule allows on AWS; the emulator has no CORS, so the front door answers for loopback pages.
    const origin = req.headers.origin;
    if (origin && LOOPBACK_ORIGIN.test(origin)) {
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-expose-headers', 'ETag');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
        res.writeHead(204, {
          'access-control-allow-methods': 'PUT, GET, HEAD',
          'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
          'access-control-max-age': '3000',
        });
        res.end();
        return;
      }
    }
    handling++;
    let key: string | undefined;
    try {
      key = parseTarget(req.url ?? '/').key;
    } catch {
      key = undefined;
    }
    handle(req, res)
      .then(() => {
        if (waiting > 0) void drain();
      })
      .catch((error: Error) => {
        if (!(error instanceof S3RequestError)) options.onError?.(error);
        const s3Error =
          error instanceof S3RequestError
            ? error
            : new S3RequestError(500, 'InternalError', 'We encountered an internal error. Please try again.');
        sendS3Error(res, (req.method ?? 'GET').toUpperCase(), s3Error, key);
      })
      .finally(() => handling--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  // Events recorded before a crash (or a stop with the queue unreachable) go out now.
  if (waiting > 0) void drain();
  return {
    url: `http://127.0.0.1:${port}`,
    pending: () => handling + waiting,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      await draining;
    },
  };
}

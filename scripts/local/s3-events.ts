/**
 * The local S3 endpoint: a pass-through proxy in front of the emulator that does what S3 +
 * EventBridge do on AWS — after an object is created, it matches the event against the same
 * rule pattern infra/ deploys and puts an EventBridge-shaped "Object Created" event on the
 * ingest queue. (fauxqs has no bucket notifications.)
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { objectCreatedPattern } from '../../functions/shared/resources.ts';

export interface S3EventRouter {
  readonly url: string;
  /** Events still being routed (for idle detection). */
  pending(): number;
  stop(): Promise<void>;
}

export interface RouterOptions {
  readonly upstream: string;
  readonly bucket: string;
  /** Reads object metadata straight from the emulator. */
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly ingestQueueUrl: string;
  readonly region: string;
  readonly onError?: (error: Error) => void;
}

let counter = 0;
/** S3 sequencers grow with each write to a key; time plus a counter keeps that across restarts. */
/** Pages served from loopback (the local dashboard) may upload; nothing else is reachable anyway. */
const LOOPBACK_ORIGIN = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

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

function createdObjectKey(req: IncomingMessage, bucket: string): string | undefined {
  const url = new URL(req.url ?? '/', 'http://local');
  const [, first, ...rest] = url.pathname.split('/');
  if (first !== bucket || rest.length === 0) return undefined;
  const key = decodeURIComponent(rest.join('/'));
  if (
    req.method === 'PUT' &&
    !url.searchParams.has('uploadId') &&
    !url.searchParams.has('partNumber') &&
    !url.searchParams.has('tagging') &&
    !url.searchParams.has('acl')
  )
    return key;
  if (req.method === 'POST' && url.searchParams.has('uploadId')) return key; // CompleteMultipartUpload
  return undefined;
}

export async function startS3EventRouter(options: RouterOptions): Promise<S3EventRouter> {
  const upstream = new URL(options.upstream);
  const pattern = objectCreatedPattern(options.bucket);
  let inFlight = 0;

  const emit = async (key: string, reason: string): Promise<void> => {
    const head = await options.s3.send(new HeadObjectCommand({ Bucket: options.bucket, Key: key }));
    const event = {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Object Created',
      source: 'aws.s3',
      account: '000000000000',
      time: new Date().toISOString(),
      region: options.region,
      resources: [`arn:aws:s3:::${options.bucket}`],
      detail: {
        version: '0',
        bucket: { name: options.bucket },
        object: {
          key,
          size: head.ContentLength ?? 0,
          etag: (head.ETag ?? '').replaceAll('"', ''),
          sequencer: nextSequencer(),
        },
        'request-id': randomUUID(),
        requester: '000000000000',
        reason,
      },
    };
    if (!matchesPattern(pattern, event)) return;
    await options.sqs.send(
      new SendMessageCommand({ QueueUrl: options.ingestQueueUrl, MessageBody: JSON.stringify(event) }),
    );
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
    const key = createdObjectKey(req, options.bucket);
    const proxied = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        up.on('end', () => {
          const status = up.statusCode ?? 500;
          if (key === undefined || status < 200 || status >= 300) return;
          inFlight++;
          emit(
            key,
            req.method === 'POST'
              ? 'CompleteMultipartUpload'
              : req.headers['x-amz-copy-source']
                ? 'CopyObject'
                : 'PutObject',
          )
            .catch((error: Error) => options.onError?.(error))
            .finally(() => inFlight--);
        });
      },
    );
    proxied.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`local S3 proxy: ${error.message}`);
    });
    req.pipe(proxied);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pending: () => inFlight,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

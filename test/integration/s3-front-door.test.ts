/**
 * The local S3 front door against the real emulator (fauxqs): it checks requests as S3 does
 * (SigV4, expiry, signed headers, key), keeps objects inside the data directory, takes a single
 * PUT larger than the emulator's 11 MiB body limit, and never loses the event of an answered PUT.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { request } from 'node:http';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startEmulators, type Emulators } from '../../scripts/local/emulators.ts';
import { startS3EventRouter, type S3EventRouter } from '../../scripts/local/s3-events.ts';
import { S3UploadSigner } from '../../functions/query-api/s3.ts';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const BUCKET = 'tally-data';
const KEY = 'incoming/trades/2025-12-10/source.csv';
const CSV = 'trade_id,account_id,trade_date,amount\nT1,A1,2025-12-10,1.00\n';

let root: string;
let emulators: Emulators;
let direct: { s3: S3Client; sqs: SQSClient };
let queueUrl: string;
let router: S3EventRouter;
/** Added to the front door's clock, to make a URL expire. */
let clockOffsetMs = 0;

function s3At(endpoint: string, creds = credentials) {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: creds,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function startRouter(options: { sqs?: SQSClient; outboxDir?: string } = {}) {
  return startS3EventRouter({
    upstream: emulators.fauxqsUrl,
    bucket: BUCKET,
    s3: direct.s3,
    sqs: options.sqs ?? direct.sqs,
    ingestQueueUrl: queueUrl,
    region: 'us-east-1',
    outboxDir: options.outboxDir ?? join(root, 'outbox'),
    now: () => Date.now() + clockOffsetMs,
    onError: () => undefined,
  });
}

/** A pre-signed PUT exactly as POST /uploads makes it. */
async function presign(key = KEY, contentLength = Buffer.byteLength(CSV), contentType = 'text/csv') {
  return new S3UploadSigner(s3At(router.url), BUCKET).presignPut({
    key,
    contentType,
    contentLength,
    expiresInSeconds: 300,
  });
}

async function receiveAll(): Promise<{ detail: { object: { key: string; etag: string; size?: number } } }[]> {
  const out = await direct.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  for (const m of out.Messages ?? [])
    await direct.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
  return (out.Messages ?? []).map((m) => JSON.parse(m.Body as string));
}

/** A PUT with the path exactly as given: fetch would resolve `..` and `.` segments first. */
function rawPut(path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${router.url}${path}`, { method: 'PUT', path }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function s3Error(text: string) {
  const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
  return { code: field('Code'), message: field('Message'), key: field('Key'), requestId: field('RequestId') };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tally-frontdoor-'));
  emulators = await startEmulators(join(root, 'data'));
  direct = {
    s3: s3At(emulators.fauxqsUrl),
    sqs: new SQSClient({ region: 'us-east-1', endpoint: emulators.fauxqsUrl, credentials }),
  };
  await direct.s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  queueUrl = (await direct.sqs.send(new CreateQueueCommand({ QueueName: 'ingest' }))).QueueUrl as string;
  router = await startRouter();
});
afterAll(async () => {
  await router?.stop();
  await emulators?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('local S3 front door: pre-signed URLs are checked like S3 checks them', () => {
  it('accepts the URL the API signs, with the headers it was signed for, and emits the event', async () => {
    const res = await fetch(await presign(), { method: 'PUT', headers: { 'content-type': 'text/csv' }, body: CSV });

    expect(res.status).toBe(200);
    const etag = (res.headers.get('etag') ?? '').replaceAll('"', '');
    expect(etag).toBe(createHash('md5').update(CSV).digest('hex'));
    const events = await receiveAll();
    expect(events.map((e) => e.detail.object)).toEqual([
      { key: KEY, etag, size: Buffer.byteLength(CSV), sequencer: expect.any(String) },
    ]);
  });

  it.each([
    [
      'a changed signature',
      (u: URL) => u.searchParams.set('X-Amz-Signature', '0'.repeat(64)),
      {},
      'SignatureDoesNotMatch',
    ],
    [
      'another key',
      (u: URL) => (u.pathname = u.pathname.replace('source.csv', 'target.csv')),
      {},
      'SignatureDoesNotMatch',
    ],
    [
      'a content type other than the signed one',
      () => undefined,
      { 'content-type': 'text/plain' },
      'SignatureDoesNotMatch',
    ],
    [
      'a longer expiry than signed',
      (u: URL) => u.searchParams.set('X-Amz-Expires', '3600'),
      {},
      'SignatureDoesNotMatch',
    ],
    [
      'another access key',
      (u: URL) =>
        u.searchParams.set('X-Amz-Credential', u.searchParams.get('X-Amz-Credential')!.replace('local/', 'other/')),
      {},
      'InvalidAccessKeyId',
    ],
  ])('refuses %s with 403 and S3 XML', async (_what, tamper, headers: Record<string, string>, code) => {
    const url = new URL(await presign());
    tamper(url);

    const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/csv', ...headers }, body: CSV });

    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/xml');
    const error = s3Error(await res.text());
    expect(error.code).toBe(code);
    expect(error.message).toBeTruthy();
    expect(error.requestId).toMatch(/^[0-9A-F]{16}$/);
    expect(await receiveAll()).toEqual([]);
  });

  it('refuses an expired URL: 403 AccessDenied "Request has expired"', async () => {
    const url = await presign();
    clockOffsetMs = 301_000;
    try {
      const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/csv' }, body: CSV });

      expect(res.status).toBe(403);
      expect(s3Error(await res.text())).toMatchObject({
        code: 'AccessDenied',
        message: 'Request has expired',
        key: KEY,
      });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('refuses anonymous requests, and a signature made with another secret', async () => {
    const anonymous = await fetch(`${router.url}/${BUCKET}/${KEY}`, { method: 'PUT', body: CSV });
    const wrongSecret = s3At(router.url, { accessKeyId: 'local', secretAccessKey: 'guess' });

    expect(anonymous.status).toBe(403);
    expect(s3Error(await anonymous.text()).code).toBe('AccessDenied');
    await expect(wrongSecret.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }))).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
    });
  });

  it("keeps serving the stack's own SDK clients (Authorization header), reads and writes", async () => {
    const client = s3At(router.url);

    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'policies/extra.md', Body: '# Extra\n' }));
    const read = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'policies/extra.md' }));

    expect(await read.Body?.transformToString()).toBe('# Extra\n');
    expect((await receiveAll()).map((e) => e.detail.object.key)).toEqual(['policies/extra.md']);
  });
});

describe('local S3 front door: keys', () => {
  it.each([
    ['../../escaped.csv', 'incoming/../../escaped.csv'],
    ['%2E%2E segments', 'incoming/%2E%2E/%2E%2E/escaped.csv'],
    ['a "." segment', 'incoming/./trades.csv'],
    ['an empty segment', 'incoming//trades.csv'],
    ['a ".." bucket', '/../escaped.csv'],
  ])('refuses %s with 400 and writes nothing outside the data directory', async (_what, rawKey) => {
    // fauxqs keeps objects as files under data/s3/<bucket>/: `../..` would land in data/ or above.
    const res = await rawPut(rawKey.startsWith('/') ? rawKey : `/${BUCKET}/${rawKey}`, CSV);

    expect(res.status).toBe(400);
    expect(s3Error(res.text).code).toMatch(/^(InvalidArgument|InvalidBucketName)$/);
    for (const dir of [root, join(root, 'data'), join(root, 'data', 's3')])
      expect(existsSync(join(dir, 'escaped.csv'))).toBe(false);
  });

  it('refuses a signed SDK request with a ".." key too', async () => {
    await expect(
      s3At(router.url).send(new PutObjectCommand({ Bucket: BUCKET, Key: 'incoming/../../escaped.csv', Body: CSV })),
    ).rejects.toMatchObject({ name: 'InvalidArgument', $metadata: { httpStatusCode: 400 } });
    expect(existsSync(join(root, 'data', 'escaped.csv'))).toBe(false);
  });

  it('refuses writes outside incoming/ and policies/ with 400, even when signed', async () => {
    const res = await fetch(await presign('processed/trades.csv'), {
      method: 'PUT',
      headers: { 'content-type': 'text/csv' },
      body: CSV,
    });

    expect(res.status).toBe(400);
    expect(s3Error(await res.text())).toMatchObject({ code: 'InvalidArgument', key: 'processed/trades.csv' });
  });
});

describe('local S3 front door: large single PUTs', () => {
  it('takes a 13 MB pre-signed PUT (over the emulator 11 MiB body limit) as a multipart object, and its event carries that ETag', async () => {
    const body = Buffer.alloc(13 * 1000 * 1000, 'a');
    const key = 'incoming/trades/2025-12-11/source.csv';

    const res = await fetch(await presign(key, body.length), {
      method: 'PUT',
      headers: { 'content-type': 'text/csv' },
      body,
    });

    expect(res.status).toBe(200);
    const etag = res.headers.get('etag') ?? '';
    expect(etag).toMatch(/^"[0-9a-f]{32}-2"$/);
    const head = await direct.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head).toMatchObject({ ContentLength: body.length, ETag: etag, ContentType: 'text/csv' });
    expect((await receiveAll()).map((e) => e.detail.object)).toEqual([
      { key, etag: etag.replaceAll('"', ''), size: body.length, sequencer: expect.any(String) },
    ]);
  });

  it('refuses a body that does not match the SHA-256 an SDK client signed, leaving no object', async () => {
    const key = 'incoming/trades/2025-12-12/source.csv';
    const body = Buffer.alloc(9 * 1024 * 1024, 'b');
    const client = s3At(router.url);
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        request.headers['x-amz-content-sha256'] = createHash('sha256').update('something else').digest('hex');
        return next(args);
      },
      { step: 'build' },
    );

    await expect(client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }))).rejects.toMatchObject({
      name: 'XAmzContentSHA256Mismatch',
    });
    await expect(direct.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).rejects.toMatchObject({
      name: 'NotFound',
    });
  });
});

describe('local S3 front door: no acknowledged upload is lost', () => {
  it('records the event before answering: with the queue unreachable the PUT is answered, and a restart sends it', async () => {
    const outboxDir = join(root, 'outbox-crash');
    const deadSqs = new SQSClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials,
      maxAttempts: 1,
    });
    const first = await startRouter({ sqs: deadSqs, outboxDir });
    const previous = router;
    router = first;
    let res: Response;
    try {
      res = await fetch(await presign('incoming/trades/2025-12-13/target.csv'), {
        method: 'PUT',
        headers: { 'content-type': 'text/csv' },
        body: CSV,
      });
    } finally {
      router = previous;
    }
    expect(res.status).toBe(200);
    expect(readdirSync(outboxDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);
    await first.stop();

    const second = await startRouter({ outboxDir });
    try {
      const events = await receiveAll();
      expect(events.map((e) => e.detail.object.key)).toEqual(['incoming/trades/2025-12-13/target.csv']);
      await expect.poll(() => readdirSync(outboxDir).filter((f) => f.endsWith('.json'))).toEqual([]);
      await expect.poll(() => second.pending()).toBe(0);
    } finally {
      await second.stop();
    }
  });
});

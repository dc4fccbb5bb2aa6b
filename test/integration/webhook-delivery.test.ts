/**
 * Business events to a webhook, end to end on the local stack: an event published on the business
 * events topic reaches the notifications queue (subscribed to it), whose consumer posts it as
 * Slack-compatible JSON to a receiver on 127.0.0.1 — retried with backoff while the receiver
 * fails, delivered once it answers, and left in the queue's DLQ when it never does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SNSClient } from '@aws-sdk/client-sns';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SnsBusinessNotifier } from '../../functions/shared/adapters/sns-notifier.ts';
import { criticalEvent, overdueEvent } from '../../functions/shared/notifications.ts';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';

/** The receiver: fails the next `failNext` posts (all of them when `failAlways`), records every post. */
const receiver = { failNext: 0, failAlways: false, posts: [] as { status: number; body: unknown }[] };
let server: Server;
let dataDir: string;
let stack: LocalStack;
let notifier: SnsBusinessNotifier;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      const fail = receiver.failAlways || receiver.failNext > 0;
      if (receiver.failNext > 0) receiver.failNext--;
      const status = fail ? 503 : 200;
      receiver.posts.push({ status, body: JSON.parse(body) });
      res.writeHead(status).end(fail ? 'unavailable' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  dataDir = mkdtempSync(join(tmpdir(), 'tally-webhook-'));
  // One second of visibility: a failed delivery comes back at once, so the DLQ is reached in seconds.
  stack = await startLocalStack({
    dataDir,
    visibilityTimeoutSeconds: 1,
    webhookUrls: [`http://127.0.0.1:${port}/hooks/T000/B000/secret`],
  });
  notifier = new SnsBusinessNotifier(
    new SNSClient({
      region: 'us-east-1',
      endpoint: stack.endpoints.sns,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
    stack.topics.businessEvents.arn,
  );
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dataDir, { recursive: true, force: true });
});

const exception = {
  exception_id: 'c'.repeat(32),
  dataset: 'trades',
  business_date: '2026-12-04',
  exception_type: 'AMOUNT_MISMATCH',
  run_id: 'run-1',
};

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('webhook delivery of business events', () => {
  it('retries a failing webhook with backoff, then delivers the Slack-compatible message', async () => {
    receiver.posts.length = 0;
    receiver.failNext = 2;

    await notifier.publish(criticalEvent(exception, '2026-12-04T10:00:00.000Z'));
    await until(() => receiver.posts.some((p) => p.status === 200));

    // Two failures, then the delivery: all within one message's delivery (3 tries per URL).
    expect(receiver.posts.map((p) => p.status)).toEqual([503, 503, 200]);
    expect(receiver.posts[2]?.body).toEqual({
      text: expect.stringContaining(`New CRITICAL AMOUNT_MISMATCH exception ${exception.exception_id}`),
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: expect.stringContaining('New CRITICAL') } },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: expect.stringContaining('critical · trades · 2026-12-04') }],
        },
      ],
    });
    await stack.waitForIdle();
    expect((await stack.counts()).queues.notifications).toMatchObject({ visible: 0, inFlight: 0, dlq: 0 });
  }, 90_000);

  it('leaves the event in the notifications DLQ when the webhook never accepts it', async () => {
    receiver.posts.length = 0;
    receiver.failAlways = true;

    await notifier.publish(
      overdueEvent({ ...exception, due_at: '2026-12-05T00:00:00.000Z' }, '2026-12-05T01:00:00.000Z'),
    );
    await until(async () => (await stack.counts()).queues.notifications?.dlq === 1, 80_000);

    // Every receive of the message (maxReceiveCount 5) tried the URL three times.
    expect(receiver.posts.length).toBeGreaterThanOrEqual(3 * 2);
    expect(receiver.posts.every((p) => p.status === 503)).toBe(true);
    const dead = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.queues.notifications.dlq, MaxNumberOfMessages: 10 }),
    );
    expect((dead.Messages ?? []).map((m) => JSON.parse(m.Body ?? '{}'))).toEqual([
      expect.objectContaining({
        kind: 'overdue',
        exception_id: exception.exception_id,
        due_at: '2026-12-05T00:00:00.000Z',
      }),
    ]);
    receiver.failAlways = false;
  }, 120_000);
});

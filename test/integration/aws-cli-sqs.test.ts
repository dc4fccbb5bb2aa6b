/**
 * The real `aws` CLI v2 against the local stack's SQS endpoint, as a user would run it with the
 * endpoint from .tally/endpoints.json. Debian's awscli 2.9 speaks SQS's query protocol, which the
 * emulator does not: scripts/local/sqs-query-protocol.ts translates. Skipped, with the reason
 * printed, where no CLI 2.x is installed (`apt-get install awscli`; .ci/run installs it) or where
 * the CLI found speaks the JSON protocol instead (2.13 and later), which other tests cover.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';

/** The CLI to use: $TALLY_AWS_CLI alone if set, else Debian's or the first on PATH; none unless 2.x. */
function findCli(): { path?: string; reason: string } {
  const chosen = process.env.TALLY_AWS_CLI;
  const candidates = chosen ? [chosen] : ['/usr/bin/aws', 'aws'];
  const seen: string[] = [];
  for (const candidate of candidates) {
    let version: string;
    try {
      version = execFileSync(candidate, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch {
      seen.push(`${candidate}: not runnable`);
      continue;
    }
    if (/^aws-cli\/2\./.test(version)) return { path: candidate, reason: version };
    seen.push(`${candidate}: ${version}`);
  }
  return { reason: `no aws CLI 2.x found (${seen.join('; ') || 'none'}); install one with apt-get install awscli` };
}

const cli = findCli();
if (!cli.path) console.log(`skipping the aws CLI SQS test: ${cli.reason}`);

let dataDir: string;
let stack: LocalStack;
let endpoints: {
  region: string;
  endpoints: { sqs: string };
  queues: Record<string, { main: string; dlq: string; mainArn: string; dlqArn: string }>;
  /** Each topic's ARN and the queue subscribed to it (what the business events topic sent). */
  topics: Record<string, { arn: string; inbox: string }>;
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `aws --endpoint-url <sqs> sqs ...`, credentials and region as README gives them, nothing from ~/.aws. */
function aws(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cli.path as string,
      ['--endpoint-url', endpoints.endpoints.sqs, '--output', 'json', 'sqs', ...args],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dataDir,
          AWS_ACCESS_KEY_ID: 'local',
          AWS_SECRET_ACCESS_KEY: 'local',
          AWS_DEFAULT_REGION: endpoints.region,
          AWS_CONFIG_FILE: join(dataDir, 'no-aws-config'),
          AWS_SHARED_CREDENTIALS_FILE: join(dataDir, 'no-aws-credentials'),
          AWS_PAGER: '',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok(...args: string[]): Promise<Record<string, unknown>> {
  const run = await aws(...args);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return run.stdout.trim() === '' ? {} : (JSON.parse(run.stdout) as Record<string, unknown>);
}

describe.skipIf(!cli.path)(`the aws CLI (${cli.reason}) on the local SQS endpoint`, () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tally-aws-cli-'));
    stack = await startLocalStack({ dataDir });
    endpoints = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as typeof endpoints;
  });
  afterAll(async () => {
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists the queues and reads a DLQ as README shows, then sends, receives, deletes and purges', async (ctx) => {
    const listed = await aws('list-queues', '--debug');
    // botocore logs the request it makes: a query-protocol CLI sends Action=ListQueues.
    if (!listed.stderr.includes("'Action': 'ListQueues'")) {
      console.log(`skipping: ${cli.reason} speaks the JSON protocol to SQS, not the query protocol`);
      ctx.skip();
    }
    expect(listed.code).toBe(0);
    const dlq = endpoints.queues.ingest?.dlq as string;
    const all = [
      ...Object.values(endpoints.queues).flatMap((q) => [q.main, q.dlq]),
      ...Object.values(endpoints.topics).map((t) => t.inbox),
    ];
    expect((JSON.parse(listed.stdout) as { QueueUrls: string[] }).QueueUrls.sort()).toEqual(all.sort());
    expect((await ok('get-queue-url', '--queue-name', stack.names.queues.ingest.dlq)).QueueUrl).toBe(dlq);
    const main = (
      await ok(
        'get-queue-attributes',
        '--queue-url',
        endpoints.queues.ingest?.main as string,
        '--attribute-names',
        'All',
      )
    ).Attributes as Record<string, string>;
    expect(JSON.parse(main.RedrivePolicy as string)).toMatchObject({
      deadLetterTargetArn: endpoints.queues.ingest?.dlqArn,
    });

    await ok(
      'send-message',
      '--queue-url',
      dlq,
      '--message-body',
      '{"detail":{"object":{"key":"incoming/x.csv"}}}',
      '--message-attributes',
      '{"TallyErrorCode":{"DataType":"String","StringValue":"BAD_KEY"},"Attempt":{"DataType":"Number","StringValue":"5"}}',
    );
    const batch = await ok(
      'send-message-batch',
      '--queue-url',
      dlq,
      '--entries',
      JSON.stringify([
        { Id: 'one', MessageBody: 'first\r\nline & <two>' },
        { Id: 'two', MessageBody: 'second' },
      ]),
    );
    expect((batch.Successful as { Id: string }[]).map((e) => e.Id)).toEqual(['one', 'two']);

    const received = await ok(
      'receive-message',
      '--queue-url',
      dlq,
      '--attribute-names',
      'All',
      '--message-attribute-names',
      'TallyErrorCode',
      '--max-number-of-messages',
      '10',
      '--wait-time-seconds',
      '1',
      '--visibility-timeout',
      '60',
    );
    const messages = received.Messages as {
      Body: string;
      ReceiptHandle: string;
      Attributes: Record<string, string>;
      MessageAttributes?: Record<string, unknown>;
    }[];
    expect(messages.map((m) => m.Body).sort()).toEqual(
      ['first\r\nline & <two>', 'second', '{"detail":{"object":{"key":"incoming/x.csv"}}}'].sort(),
    );
    const flagged = messages.find((m) => m.MessageAttributes) as (typeof messages)[number];
    expect(flagged.MessageAttributes).toEqual({ TallyErrorCode: { DataType: 'String', StringValue: 'BAD_KEY' } });
    expect(flagged.Attributes).toMatchObject({ ApproximateReceiveCount: '1', SenderId: expect.any(String) });

    const [a, b, c] = messages as [(typeof messages)[number], (typeof messages)[number], (typeof messages)[number]];
    await ok(
      'change-message-visibility',
      '--queue-url',
      dlq,
      '--receipt-handle',
      a.ReceiptHandle,
      '--visibility-timeout',
      '120',
    );
    await ok('delete-message', '--queue-url', dlq, '--receipt-handle', a.ReceiptHandle);
    const deleted = await ok(
      'delete-message-batch',
      '--queue-url',
      dlq,
      '--entries',
      JSON.stringify([{ Id: 'b', ReceiptHandle: b.ReceiptHandle }]),
    );
    expect(deleted.Successful).toEqual([{ Id: 'b' }]);
    const depth = async () =>
      (
        await ok(
          'get-queue-attributes',
          '--queue-url',
          dlq,
          '--attribute-names',
          'ApproximateNumberOfMessages',
          'ApproximateNumberOfMessagesNotVisible',
        )
      ).Attributes;
    expect(await depth()).toEqual({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '1' });
    expect(c.ReceiptHandle).toBeTruthy();
    await ok('purge-queue', '--queue-url', dlq);
    expect(await depth()).toEqual({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  }, 180_000); // a dozen CLI starts (Python): about 10 s on a quiet machine, a minute on a loaded one

  it('reports SQS errors by their query codes, with the exit code the CLI gives service errors', async () => {
    const missing = await aws('get-queue-url', '--queue-name', 'no-such-queue');
    expect(missing.code).toBe(254);
    expect(missing.stderr).toContain(
      'An error occurred (AWS.SimpleQueueService.NonExistentQueue) when calling the GetQueueUrl operation: The specified queue does not exist.',
    );
    const stale = await aws(
      'change-message-visibility',
      '--queue-url',
      endpoints.queues.ingest?.dlq as string,
      '--receipt-handle',
      'not-a-handle',
      '--visibility-timeout',
      '5',
    );
    expect(stale.code).toBe(254);
    expect(stale.stderr).toContain('(AWS.SimpleQueueService.MessageNotInflight)');
  });
});

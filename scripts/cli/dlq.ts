/**
 * `tally dlq list|peek|redrive`: what on-call needs when a DLQ alarm fires — how many messages,
 * what they are and why they failed, and, once the cause is fixed, back to the source queue.
 * Local mode (default) uses the queues of `npm start`; `--region`/`--aws` uses the deployed ones.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { failureId, type FailureRecord } from '../../functions/shared/message-failures.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { DEFAULT_PREFIX, QUEUE_NAMES, resourceNames, type QueueName } from '../../functions/shared/resources.ts';
import { UsageError } from './usage.ts';

export const dlqHelp = `Usage: tally dlq <list|peek|redrive> [--queue ingest|recon|triage] [options]

Inspect and redrive the dead-letter queues. See docs/runbooks/dlq-depth.md.

Commands:
  list      depth of every DLQ (or --queue's), one line per message with its first failure
  peek      one DLQ's messages in full: decoded body, receive count, first and last failure
  redrive   move one DLQ's messages back to its source queue, to be processed again

Where (default: the local stack):
  --data-dir DIR     local stack state, holding endpoints.json             [default: .tally]
  --region REGION    the deployed queues in REGION (implies --aws)
  --aws              the deployed queues, in AWS_REGION
  --prefix PREFIX    resource name prefix on AWS                            [default: ${DEFAULT_PREFIX}]

Options:
  --queue NAME       ingest, recon or triage                 [required for peek and redrive]
  --max N            list/peek: show at most N messages per DLQ                  [default: 10]
  --no-wait          redrive on AWS: start the move task and return
  --json             JSON instead of tables
  -h, --help         show this help

Reading leaves the messages where they are (each read counts as a receive). Redrive on AWS is SQS's own StartMessageMoveTask; locally (the emulator lacks it) each
message is sent to the source queue with its body and attributes, then deleted from the DLQ.
Messages are at-least-once either way; the consumers are idempotent on their data, never on the
message id (which a redriven message does not keep).

Exit status: 0 done; 1 an AWS or local-stack error; 2 bad usage.

Examples:
  npx tally dlq list
  npx tally dlq peek --queue ingest
  npx tally dlq redrive --queue ingest --region eu-west-1 --prefix acme-tally
`;

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

interface QueuePair {
  readonly name: QueueName;
  readonly mainUrl: string;
  readonly dlqUrl: string;
  readonly mainArn: string;
  readonly dlqArn: string;
}

interface Target {
  readonly mode: 'local' | 'aws';
  readonly where: string;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBDocumentClient;
  readonly failuresTable: string;
  queue(name: QueueName): Promise<QueuePair>;
}

interface DlqMessage {
  readonly messageId: string;
  readonly receiveCount: number;
  readonly sentAt?: string;
  readonly body: string;
  readonly failure?: FailureRecord;
}

class DlqError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DlqError';
  }
}

/** Runs `tally dlq ...`; returns the exit status. Streams are injectable for tests. */
export async function runDlq(argv: string[], io: Io): Promise<number> {
  try {
    return await dlq(argv, io);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`tally dlq: ${(error as Error).message}\n\n${dlqHelp}`);
      return 2;
    }
    const e = error as Error & { code?: string };
    if (e.code === 'ECONNREFUSED' || /ECONNREFUSED/.test(e.message)) {
      io.stderr.write(
        'tally dlq: the local stack is not running (connection refused): start it with "npm start", or use --region for AWS\n',
      );
      return 1;
    }
    io.stderr.write(`tally dlq: ${error instanceof DlqError ? e.message : `${e.name}: ${e.message}`}\n`);
    return 1;
  }
}

export const dlqCommand = (argv: string[]): Promise<number> =>
  runDlq(argv, { stdout: process.stdout, stderr: process.stderr });

async function dlq(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      queue: { type: 'string' },
      region: { type: 'string' },
      aws: { type: 'boolean' },
      prefix: { type: 'string' },
      'data-dir': { type: 'string' },
      max: { type: 'string' },
      'no-wait': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(dlqHelp);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action === undefined) throw new UsageError('say what to do: list, peek or redrive', dlqHelp);
  if (!['list', 'peek', 'redrive'].includes(action)) throw new UsageError(`unknown dlq command "${action}"`, dlqHelp);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, dlqHelp);
  const queue = values.queue;
  if (queue !== undefined && !(QUEUE_NAMES as string[]).includes(queue))
    throw new UsageError(`--queue must be one of ${QUEUE_NAMES.join(', ')}, got "${queue}"`, dlqHelp);
  if (queue === undefined && action !== 'list')
    throw new UsageError(`${action} needs --queue (${QUEUE_NAMES.join(', ')})`, dlqHelp);
  const max = values.max === undefined ? 10 : Number(values.max);
  if (!Number.isInteger(max) || max < 1)
    throw new UsageError(`--max must be a positive whole number, got "${values.max}"`, dlqHelp);
  const aws = Boolean(values.aws || values.region);
  if (!aws && values.prefix)
    throw new UsageError(
      '--prefix applies to AWS (--region or --aws); locally the names come from endpoints.json',
      dlqHelp,
    );
  if (aws && values['data-dir'])
    throw new UsageError('--data-dir applies to the local stack, not with --region/--aws', dlqHelp);

  const env = io.env ?? process.env;
  const target = aws
    ? awsTarget(values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION, values.prefix ?? DEFAULT_PREFIX)
    : localTarget(resolve(io.cwd ?? REPO_ROOT, values['data-dir'] ?? '.tally'));
  try {
    if (action === 'list')
      return await list(
        target,
        queue === undefined ? QUEUE_NAMES : [queue as QueueName],
        max,
        io,
        Boolean(values.json),
      );
    if (action === 'peek') return await peek(target, queue as QueueName, max, io, Boolean(values.json));
    return await redrive(target, queue as QueueName, !values['no-wait'], io, Boolean(values.json));
  } finally {
    target.sqs.destroy();
    target.dynamo.destroy();
  }
}

interface LocalEndpoints {
  region: string;
  endpoints: { sqs: string; dynamodb: string };
  names: { tables: Record<string, string> };
  queues: Record<QueueName, { main: string; dlq: string; mainArn: string; dlqArn: string }>;
}

function localTarget(dataDir: string): Target {
  const file = join(dataDir, 'endpoints.json');
  let local: LocalEndpoints;
  try {
    local = JSON.parse(readFileSync(file, 'utf8')) as LocalEndpoints;
  } catch {
    throw new DlqError(
      `no local stack state at ${file}: start it with "npm start" (or pass --data-dir), or use --region for AWS`,
    );
  }
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  return {
    mode: 'local',
    where: `local stack (${file})`,
    sqs: new SQSClient({
      region: local.region,
      endpoint: local.endpoints.sqs,
      credentials,
      useQueueUrlAsEndpoint: false,
    }),
    dynamo: DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: local.region, endpoint: local.endpoints.dynamodb, credentials }),
    ),
    failuresTable: local.names.tables.failures ?? resourceNames().tables.failures,
    async queue(name) {
      const q = local.queues[name];
      if (!q) throw new DlqError(`${file} has no ${name} queue`);
      return { name, mainUrl: q.main, dlqUrl: q.dlq, mainArn: q.mainArn, dlqArn: q.dlqArn };
    },
  };
}

function awsTarget(region: string | undefined, prefix: string): Target {
  if (!region) throw new UsageError('--aws needs a region: --region REGION or AWS_REGION', dlqHelp);
  const names = resourceNames(prefix);
  const sqs = new SQSClient({ region });
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes
      ?.QueueArn as string;
  return {
    mode: 'aws',
    where: `AWS ${region}, prefix ${prefix}`,
    sqs,
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({ region })),
    failuresTable: names.tables.failures,
    async queue(name) {
      const urlOf = async (queueName: string) => {
        try {
          return (await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl as string;
        } catch (error) {
          if ((error as Error).name.includes('NonExistentQueue'))
            throw new DlqError(`queue ${queueName} does not exist in ${region} (wrong --prefix or --region?)`);
          throw error;
        }
      };
      const [mainUrl, dlqUrl] = await Promise.all([urlOf(names.queues[name].main), urlOf(names.queues[name].dlq)]);
      const [mainArn, dlqArn] = await Promise.all([arnOf(mainUrl), arnOf(dlqUrl)]);
      return { name, mainUrl, dlqUrl, mainArn, dlqArn };
    },
  };
}

async function depth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/**
 * Reads up to `max` messages without consuming them: received with a zero visibility timeout,
 * so they stay visible (and redrivable) throughout. Rounds continue until one brings nothing new.
 * (Receiving with a timeout and handing messages back with ChangeMessageVisibility 0 would do the
 * same on AWS, but loses the message in the local emulator, fauxqs 2.4.)
 */
async function readMessages(target: Target, pair: QueuePair, max: number): Promise<DlqMessage[]> {
  const seen = new Map<string, Message>();
  while (seen.size < max) {
    const out = await target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pair.dlqUrl,
        MaxNumberOfMessages: Math.min(10, max - seen.size),
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const fresh = (out.Messages ?? []).filter((m) => !seen.has(m.MessageId as string));
    if (fresh.length === 0) break;
    for (const m of fresh) seen.set(m.MessageId as string, m);
  }
  const messages = [...seen.values()];
  const failures = await lookUpFailures(
    target,
    pair.mainArn,
    messages.map((m) => m.Body ?? ''),
  );
  return messages.map((m) => {
    const sent = Number(m.Attributes?.SentTimestamp);
    const failure = failures.get(failureId(pair.mainArn, m.Body ?? ''));
    return {
      messageId: m.MessageId as string,
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
      ...(Number.isFinite(sent) && sent > 0 ? { sentAt: new Date(sent).toISOString() } : {}),
      body: m.Body ?? '',
      ...(failure ? { failure } : {}),
    };
  });
}

/** Failure records written by the consumers (functions/shared/message-failures.ts), if any. */
async function lookUpFailures(target: Target, queueArn: string, bodies: string[]): Promise<Map<string, FailureRecord>> {
  const found = new Map<string, FailureRecord>();
  const ids = [...new Set(bodies.map((b) => failureId(queueArn, b)))];
  try {
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = ids.slice(i, i + 100).map((id) => ({ id }));
      while (keys && keys.length > 0) {
        const out: BatchGetCommandOutput = await target.dynamo.send(
          new BatchGetCommand({ RequestItems: { [target.failuresTable]: { Keys: keys } } }),
        );
        for (const item of out.Responses?.[target.failuresTable] ?? [])
          found.set(item.id as string, item as FailureRecord);
        keys = out.UnprocessedKeys?.[target.failuresTable]?.Keys;
      }
    }
  } catch {
    // Reasons are a convenience: without the table (or access to it) the listing still works.
  }
  return found;
}

/** A one-line description of what the message is about, from the shapes the queues carry. */
export function describeBody(body: string): string {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body) as Record<string, unknown>;
  } catch {
    return `(not JSON) ${body.slice(0, 60)}`;
  }
  const detail = parsed.detail as { bucket?: { name?: string }; object?: { key?: string; etag?: string } } | undefined;
  if (parsed['detail-type'] === 'Object Created' && detail?.object?.key)
    return `s3://${detail.bucket?.name}/${detail.object.key} (etag ${detail.object.etag})`;
  if (typeof parsed.exception_id === 'string') return `exception ${parsed.exception_id} (run ${String(parsed.run_id)})`;
  if (typeof parsed.run_id === 'string') {
    const of = [parsed.dataset, parsed.business_date].filter((v) => typeof v === 'string').join(' ');
    return `recon run ${parsed.run_id}${of ? ` (${of})` : ''}`;
  }
  return body.slice(0, 60);
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return (
    rows
      .map((r) =>
        r
          .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** The table keeps to one line per message; peek shows the whole reason. */
const reasonOf = (m: DlqMessage) => {
  const reason = m.failure?.first_reason ?? '(not recorded)';
  return reason.length > 100 ? `${reason.slice(0, 99)}…` : reason;
};

async function list(target: Target, queues: readonly QueueName[], max: number, io: Io, json: boolean): Promise<number> {
  const report = [];
  for (const name of queues) {
    const pair = await target.queue(name);
    const [dlqDepth, mainDepth] = await Promise.all([depth(target.sqs, pair.dlqUrl), depth(target.sqs, pair.mainUrl)]);
    // Depth counts in-flight messages too: being read or moved, they are still in the DLQ.
    const total = dlqDepth.visible + dlqDepth.inFlight;
    const messages = total > 0 ? await readMessages(target, pair, max) : [];
    report.push({
      queue: name,
      dlq: pair.dlqUrl,
      depth: total,
      inFlight: dlqDepth.inFlight,
      sourceDepth: mainDepth.visible + mainDepth.inFlight,
      messages,
    });
  }
  if (json) {
    io.stdout.write(`${JSON.stringify({ where: target.where, queues: report })}\n`);
    return 0;
  }
  io.stdout.write(`DLQs in ${target.where}\n\n`);
  io.stdout.write(
    table([
      ['QUEUE', 'DLQ DEPTH', 'IN FLIGHT', 'SOURCE DEPTH'],
      ...report.map((r) => [r.queue, String(r.depth), String(r.inFlight), String(r.sourceDepth)]),
    ]),
  );
  for (const r of report.filter((q) => q.messages.length > 0)) {
    io.stdout.write(
      `\n${r.queue} DLQ: ${r.depth} message(s)${r.depth > r.messages.length ? `, first ${r.messages.length} shown` : ''}\n`,
    );
    io.stdout.write(
      table([
        ['MESSAGE ID', 'RECEIVES', 'SENT', 'ABOUT', 'FIRST FAILURE'],
        ...r.messages.map((m) => [
          m.messageId,
          String(m.receiveCount),
          m.sentAt ?? '-',
          describeBody(m.body),
          reasonOf(m),
        ]),
      ]),
    );
  }
  return 0;
}

async function peek(target: Target, name: QueueName, max: number, io: Io, json: boolean): Promise<number> {
  const pair = await target.queue(name);
  const messages = await readMessages(target, pair, max);
  const decoded = messages.map((m) => ({ ...m, body: decode(m.body) }));
  if (json) {
    io.stdout.write(`${JSON.stringify({ where: target.where, queue: name, messages: decoded })}\n`);
    return 0;
  }
  io.stdout.write(`${name} DLQ in ${target.where}: ${messages.length} message(s) read\n`);
  for (const m of decoded) {
    io.stdout.write(`\n--- ${m.messageId}\n`);
    io.stdout.write(
      `receives       ${m.receiveCount}\nsent           ${m.sentAt ?? '-'}\nabout          ${describeBody(messages.find((x) => x.messageId === m.messageId)?.body ?? '')}\n`,
    );
    if (m.failure) {
      io.stdout.write(`first failure  ${m.failure.first_failed_at}  ${m.failure.first_reason}\n`);
      io.stdout.write(
        `last failure   ${m.failure.last_failed_at}  ${m.failure.last_reason}  (${m.failure.failures} failure(s) recorded)\n`,
      );
    } else {
      io.stdout.write('first failure  (not recorded)\n');
    }
    io.stdout.write(`body\n${typeof m.body === 'string' ? m.body : JSON.stringify(m.body, null, 2)}\n`);
  }
  return 0;
}

function decode(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

async function redrive(target: Target, name: QueueName, wait: boolean, io: Io, json: boolean): Promise<number> {
  const pair = await target.queue(name);
  const result =
    target.mode === 'aws'
      ? await moveTask(target.sqs, pair, wait)
      : { moved: await moveOneByOne(target.sqs, pair), status: 'COMPLETED' };
  if (json) {
    io.stdout.write(`${JSON.stringify({ where: target.where, queue: name, ...result })}\n`);
  } else {
    const detail =
      'failureReason' in result && result.failureReason
        ? ` (${result.failureReason})`
        : 'taskHandle' in result && result.status === 'RUNNING'
          ? ` (task ${result.taskHandle}; follow with aws sqs list-message-move-tasks --source-arn ${pair.dlqArn})`
          : '';
    io.stdout.write(
      `${name}: ${result.status === 'COMPLETED' ? `moved ${result.moved} message(s)` : `move task ${result.status}${detail}`} from ${pair.dlqUrl} back to ${pair.mainUrl}\n`,
    );
  }
  return result.status === 'FAILED' || result.status === 'CANCELLED' ? 1 : 0;
}

/** AWS: SQS moves the messages itself, in order, at its own pace. */
async function moveTask(
  sqs: SQSClient,
  pair: QueuePair,
  wait: boolean,
): Promise<{ moved: number; status: string; taskHandle?: string; failureReason?: string }> {
  const started = await sqs.send(
    new StartMessageMoveTaskCommand({ SourceArn: pair.dlqArn, DestinationArn: pair.mainArn }),
  );
  const taskHandle = started.TaskHandle as string;
  if (!wait) return { moved: 0, status: 'RUNNING', taskHandle };
  // A move task runs at up to 500 messages/s; half an hour is a DLQ far beyond anything normal.
  const deadline = Date.now() + 30 * 60 * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 2000));
    const out = await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: pair.dlqArn, MaxResults: 1 }));
    const task = out.Results?.find((t) => t.TaskHandle === taskHandle) ?? out.Results?.[0];
    if (task && task.Status !== 'RUNNING' && task.Status !== 'CANCELLING') {
      return {
        moved: task.ApproximateNumberOfMessagesMoved ?? 0,
        status: task.Status ?? 'UNKNOWN',
        taskHandle,
        ...(task.FailureReason ? { failureReason: task.FailureReason } : {}),
      };
    }
  }
  return { moved: 0, status: 'RUNNING', taskHandle };
}

/**
 * Local: the emulator has no StartMessageMoveTask. Send a copy (same body and attributes), then
 * delete the original — a crash in between leaves a duplicate, never a loss; the consumers'
 * idempotency absorbs the duplicate.
 */
async function moveOneByOne(sqs: SQSClient, pair: QueuePair): Promise<number> {
  let moved = 0;
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: pair.dlqUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 60,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) return moved;
    for (const m of messages) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: pair.mainUrl,
          MessageBody: m.Body ?? '',
          ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length > 0
            ? { MessageAttributes: m.MessageAttributes as Record<string, MessageAttributeValue> }
            : {}),
        }),
      );
      await sqs.send(new DeleteMessageCommand({ QueueUrl: pair.dlqUrl, ReceiptHandle: m.ReceiptHandle as string }));
      moved++;
    }
  }
}

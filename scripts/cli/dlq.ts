/**
 * `tally dlq list|peek|redrive`: what on-call needs when a DLQ alarm fires — how many messages,
 * what they are and why they failed, and, once the cause is fixed, back to the source queue.
 * Local mode (default) uses the queues of `npm start`; `--region`/`--aws` uses the deployed ones.
 *
 * This file: help, arguments and exit status. dlq-target.ts says where (local or AWS),
 * dlq-messages.ts reads a DLQ, dlq-redrive.ts moves messages back, dlq-report.ts prints.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { DEFAULT_PREFIX, QUEUE_NAMES, type QueueName } from '../../functions/shared/resources.ts';
import { list, peek, redrive, type Io } from './dlq-report.ts';
import { awsTarget, DlqError, localTarget } from './dlq-target.ts';
import { isUsageError, UsageError, usageErrorText } from './usage.ts';

export const dlqHelp = `Usage: tally dlq <list|peek|redrive> [--queue ${QUEUE_NAMES.join('|')}] [options]

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
  --queue NAME       ${QUEUE_NAMES.join(', ')}       [required for peek and redrive]
  --max N            list/peek: show at most N messages per DLQ                  [default: 10]
  --no-wait          redrive on AWS: start the move task and return
  --json             JSON instead of tables
  -h, --help         show this help

Reading leaves the messages where they are (each read counts as a receive). Redrive on AWS is SQS's own StartMessageMoveTask; locally (the emulator lacks it) each
message the DLQ held when it began is sent to the source queue with its body and attributes, then
deleted from the DLQ (one that fails straight back waits for the next redrive).
Messages are at-least-once either way; the consumers are idempotent on their data, never on the
message id (which a redriven message does not keep).

Exit status: 0 done; 1 an AWS or local-stack error; 2 bad usage (or no local stack state).

Examples:
  npx tally dlq list
  npx tally dlq peek --queue ingest
  npx tally dlq redrive --queue ingest --region eu-west-1 --prefix acme-tally
`;

/** Runs `tally dlq ...`; returns the exit status. Streams are injectable for tests. */
export async function runDlq(argv: string[], io: Io): Promise<number> {
  try {
    return await dlq(argv, io);
  } catch (error) {
    if (isUsageError(error)) {
      io.stderr.write(usageErrorText('dlq', error));
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
  const region = values.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (aws && !region) throw new UsageError('--aws needs a region: --region REGION or AWS_REGION', dlqHelp);
  const dataDir = resolve(io.cwd ?? REPO_ROOT, values['data-dir'] ?? '.tally');
  // Which stack to read is the caller's to say: bad usage (exit 2), as tally reindex reports it.
  if (!(aws && region) && !existsSync(join(dataDir, 'endpoints.json')))
    throw new UsageError(
      `no local stack state at ${join(dataDir, 'endpoints.json')}: start it with "npm start" (or pass --data-dir), or use --region for AWS`,
      dlqHelp,
    );
  const target = aws && region ? awsTarget(region, values.prefix ?? DEFAULT_PREFIX) : localTarget(dataDir);
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
    target.close();
  }
}

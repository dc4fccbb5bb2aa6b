/** What `tally dlq list|peek|redrive` print: aligned text for people, one JSON line with --json. */
import type { QueueName } from '../../functions/shared/resources.ts';
import { depth, describeMessage, readMessages, type DlqMessage } from './dlq-messages.ts';
import { moveOneByOne, moveTask } from './dlq-redrive.ts';
import type { Target } from './dlq-target.ts';
import { table } from './table.ts';

export interface Io {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** The table keeps to one line per message; peek shows the whole reason. */
const REASON_COLUMN = 4;
const REASON_WIDTH = 100;

export async function list(
  target: Target,
  queues: readonly QueueName[],
  max: number,
  io: Io,
  json: boolean,
): Promise<number> {
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
    table(
      ['QUEUE', 'DLQ DEPTH', 'IN FLIGHT', 'SOURCE DEPTH'],
      report.map((r) => [r.queue, String(r.depth), String(r.inFlight), String(r.sourceDepth)]),
    ),
  );
  for (const r of report.filter((q) => q.messages.length > 0)) {
    io.stdout.write(
      `\n${r.queue} DLQ: ${r.depth} message(s)${r.depth > r.messages.length ? `, first ${r.messages.length} shown` : ''}\n`,
    );
    io.stdout.write(
      table(
        ['MESSAGE ID', 'RECEIVES', 'SENT', 'ABOUT', 'FIRST FAILURE'],
        r.messages.map((m: DlqMessage) => [
          m.messageId,
          String(m.receiveCount),
          m.sentAt ?? '-',
          describeMessage(r.queue, m.body),
          m.deadLettered
            ? `${m.deadLettered.code}: ${m.deadLettered.reason}`
            : (m.failure?.first_reason ?? '(not recorded)'),
        ]),
        { [REASON_COLUMN]: REASON_WIDTH },
      ),
    );
  }
  return 0;
}

export async function peek(target: Target, name: QueueName, max: number, io: Io, json: boolean): Promise<number> {
  const pair = await target.queue(name);
  const messages = await readMessages(target, pair, max);
  if (json) {
    const decoded = messages.map((m) => ({ ...m, body: decode(m.body) }));
    io.stdout.write(`${JSON.stringify({ where: target.where, queue: name, messages: decoded })}\n`);
    return 0;
  }
  io.stdout.write(`${name} DLQ in ${target.where}: ${messages.length} message(s) read\n`);
  for (const m of messages) {
    const body = decode(m.body);
    io.stdout.write(`\n--- ${m.messageId}\n`);
    io.stdout.write(
      `receives       ${m.receiveCount}\nsent           ${m.sentAt ?? '-'}\nabout          ${describeMessage(name, m.body)}\n`,
    );
    if (m.deadLettered) {
      io.stdout.write(
        `dead-lettered  ${m.deadLettered.failedAt}  ${m.deadLettered.code}: ${m.deadLettered.reason}  (permanent: not retried)\n`,
      );
    }
    if (m.failure) {
      io.stdout.write(`first failure  ${m.failure.first_failed_at}  ${m.failure.first_reason}\n`);
      io.stdout.write(
        `last failure   ${m.failure.last_failed_at}  ${m.failure.last_reason}  (${m.failure.failures} failure(s) recorded)\n`,
      );
    } else {
      io.stdout.write('first failure  (not recorded)\n');
    }
    io.stdout.write(`body\n${typeof body === 'string' ? body : JSON.stringify(body, null, 2)}\n`);
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

export async function redrive(target: Target, name: QueueName, wait: boolean, io: Io, json: boolean): Promise<number> {
  const pair = await target.queue(name);
  const result = target.mode === 'aws' ? await moveTask(target.sqs, pair, wait) : await moveOneByOne(target.sqs, pair);
  if (json) {
    io.stdout.write(`${JSON.stringify({ where: target.where, queue: name, ...result })}\n`);
  } else {
    const detail = result.failureReason
      ? ` (${result.failureReason})`
      : result.taskHandle && result.status === 'RUNNING'
        ? ` (task ${result.taskHandle}; follow with aws sqs list-message-move-tasks --source-arn ${pair.dlqArn})`
        : '';
    io.stdout.write(
      `${name}: ${result.status === 'COMPLETED' ? `moved ${result.moved} message(s)` : `move task ${result.status}${detail}`} from ${pair.dlqUrl} back to ${pair.mainUrl}\n`,
    );
  }
  return result.status === 'FAILED' || result.status === 'CANCELLED' ? 1 : 0;
}

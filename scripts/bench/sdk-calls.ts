/**
 * `npm run bench:sdk`: the CPU the AWS SDK itself spends on the DynamoDB calls a member triage
 * makes — an UpdateItem carrying a triage and a stored embedding, and a BatchGetItem of 100
 * exception-sized items — with the SDK's default logger and with ours (`SDK_LOGGER`,
 * functions/shared/adapters/clients.ts), side by side in the same run. The transport is a stub
 * that answers at once, so the figures are the SDK's work alone (serialising, signing, the
 * middleware, parsing), not a network's or an emulator's.
 *
 * A measurement, not a test: it exits 0 whatever the figures.
 */
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SDK_LOGGER } from '../../functions/shared/adapters/clients.ts';

const help = `Usage: npm run bench:sdk -- [--rounds N] [--calls N]

Options:
  --rounds N   alternating rounds per logger (default 5; the median is printed)
  --calls N    UpdateItem calls a round (default 2000; BatchGetItem calls are a tenth of it)
  -h, --help   this text
`;

/** A stored exception's size and shape, roughly: ~40 attributes, ~5 KB. */
function item(i: number): Record<string, { S: string }> {
  return Object.fromEntries(
    Array.from({ length: 40 }, (_, j) => [`attribute_${j}`, { S: `exception ${i} value ${j} `.repeat(5) }]),
  );
}

function client(logger: 'sdk default' | 'SDK_LOGGER', batchGetBody: string): DynamoDBDocumentClient {
  const requestHandler = {
    handle: async (request: { body?: unknown; headers: Record<string, string> }) => ({
      response: {
        statusCode: 200,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        body: new Blob([request.headers['x-amz-target']?.endsWith('BatchGetItem') ? batchGetBody : '{}']).stream(),
      },
    }),
  };
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
      requestHandler: requestHandler as never,
      ...(logger === 'SDK_LOGGER' ? { logger: SDK_LOGGER } : {}),
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
}

async function round(doc: DynamoDBDocumentClient, calls: number): Promise<{ update: number; batchGet: number }> {
  const summary = 'The amount differs by less than the policy tolerance; '.repeat(60);
  const embedding = `sparse:${'A'.repeat(3300)}`;
  let start = process.cpuUsage();
  for (let i = 0; i < calls; i++)
    await doc.send(
      new UpdateCommand({
        TableName: 'exceptions',
        Key: { pk: `exception#${i}` },
        UpdateExpression: 'SET #triage = :triage, #embedding = :embedding',
        ConditionExpression: '#hash = :hash',
        ExpressionAttributeNames: { '#triage': 'triage', '#embedding': 'embedding', '#hash': 'content_hash' },
        ExpressionAttributeValues: {
          ':triage': {
            summary,
            severity: 'HIGH',
            citations: [{ source: 'policies/runbook.md', text: summary.slice(0, 300) }],
          },
          ':embedding': embedding,
          ':hash': 'a'.repeat(64),
        },
      }),
    );
  const updateCpu = process.cpuUsage(start);
  start = process.cpuUsage();
  const gets = Math.max(1, Math.round(calls / 10));
  for (let i = 0; i < gets; i++)
    await doc.send(
      new BatchGetCommand({
        RequestItems: { exceptions: { Keys: Array.from({ length: 100 }, (_, k) => ({ pk: `exception#${k}` })) } },
      }),
    );
  const getCpu = process.cpuUsage(start);
  return {
    update: (updateCpu.user + updateCpu.system) / 1000 / calls,
    batchGet: (getCpu.user + getCpu.system) / 1000 / gets,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string' }, calls: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(help);
    return;
  }
  const rounds = Number(values.rounds ?? 5);
  const calls = Number(values.calls ?? 2000);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(calls) || calls < 10)
    throw new Error('--rounds must be an integer of at least 1 and --calls of at least 10');
  const batchGetBody = JSON.stringify({ Responses: { exceptions: Array.from({ length: 100 }, (_, i) => item(i)) } });
  const loggers = ['sdk default', 'SDK_LOGGER'] as const;
  const clients = loggers.map((l) => client(l, batchGetBody));
  // Warm both (module loading, JIT) before anything is counted.
  for (const doc of clients) await round(doc, Math.min(calls, 200));
  const figures = loggers.map(() => ({ update: [] as number[], batchGet: [] as number[] }));
  for (let r = 0; r < rounds; r++)
    for (const [i, doc] of clients.entries()) {
      const { update, batchGet } = await round(doc, calls);
      figures[i]?.update.push(update);
      figures[i]?.batchGet.push(batchGet);
      process.stderr.write('.');
    }
  process.stderr.write('\n');
  process.stdout.write(
    `SDK CPU a call (median of ${rounds} alternating rounds; stub transport)\n` +
      `logger        UpdateItem (triage + embedding)   BatchGetItem (100 items, ~5 KB each)\n` +
      loggers
        .map(
          (l, i) =>
            `${l.padEnd(13)} ${`${median(figures[i]?.update ?? []).toFixed(3)} ms`.padEnd(33)} ${median(figures[i]?.batchGet ?? []).toFixed(2)} ms`,
        )
        .join('\n') +
      '\n',
  );
}

await main();

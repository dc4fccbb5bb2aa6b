/**
 * Uploads through the documented path reach ingest whatever their size, and an upload whose
 * event never reached the queue is found and ingested without anyone asking: the local stack,
 * end to end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { uploadCommand } from '../../scripts/cli/upload.ts';
import { ENV } from '../../functions/shared/resources.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';

let dataDir: string;
let stack: LocalStack;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-intake-'));
  // Any upload without a record counts as missed at once (the default waits two minutes).
  process.env[ENV.sweepMinAgeSeconds] = '0';
  stack = await startLocalStack({ dataDir });
});
afterAll(async () => {
  delete process.env[ENV.sweepMinAgeSeconds];
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function fileRecord(date: string, side: string) {
  return stack.dynamo
    .send(new GetCommand({ TableName: stack.names.tables.files, Key: { dataset_date: `trades#${date}`, side } }))
    .then((out) => out.Item);
}

describe('intake on the local stack', () => {
  it('`tally upload` of a 14 MB extract (over the emulator 11 MiB body limit) is stored and ingested', async () => {
    const rows = 380_000;
    const lines = ['trade_id,account_id,trade_date,amount'];
    for (let i = 0; i < rows; i++) lines.push(`T${String(i).padStart(7, '0')},ACCT1001,2025-12-14,${i}.25`);
    const file = join(dataDir, 'big.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    let out = '';
    const io = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (out += t) },
      env: {},
    } as unknown as CliIo;

    const code = await uploadCommand(
      [file, '--dataset', 'trades', '--date', '2025-12-14', '--side', 'source', '--api', stack.endpoints.api],
      io,
    );
    await stack.waitForIdle();

    expect(out).toMatch(/^uploaded .* \(1[34]\d{6} bytes\)/);
    expect(code).toBe(0);
    const record = await fileRecord('2025-12-14', 'source');
    expect(record).toMatchObject({ status: 'ACCEPTED', rows });
    expect(record?.etag).toMatch(/^[0-9a-f]{32}-2$/);
  });

  it('an upload whose event never reached the queue is ingested by the sweep when the stack starts', async () => {
    // Straight into the emulator, behind the front door: no event, as if it had been lost.
    const direct = new S3Client({
      region: 'us-east-1',
      endpoint: stack.endpoints.sqs,
      forcePathStyle: true,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    await direct.send(
      new PutObjectCommand({
        Bucket: stack.names.bucket,
        Key: 'incoming/trades/2025-12-16/target.csv',
        Body: 'trade_id,account_id,trade_date,amount\nT1,ACCT1,2025-12-16,1.00\n',
      }),
    );
    direct.destroy();
    await stack.stop();

    stack = await startLocalStack({ dataDir });
    await stack.waitForIdle();

    expect(await fileRecord('2025-12-16', 'target')).toMatchObject({ status: 'ACCEPTED', rows: 1 });
    expect(await fileRecord('2025-12-14', 'source')).toMatchObject({ status: 'ACCEPTED' });
  });

  it("a restart writes the queue URLs of its own port to endpoints.json, not the first start's", async () => {
    const before = stack.endpoints.sqs;
    await stack.stop();

    stack = await startLocalStack({ dataDir });
    const written = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8')) as {
      endpoints: { sqs: string };
      queues: Record<string, { main: string; dlq: string }>;
    };

    expect(stack.endpoints.sqs).not.toBe(before);
    expect(written.endpoints.sqs).toBe(stack.endpoints.sqs);
    for (const q of Object.values(written.queues)) {
      expect(q.main.startsWith(`${stack.endpoints.sqs}/`)).toBe(true);
      expect(q.dlq.startsWith(`${stack.endpoints.sqs}/`)).toBe(true);
    }
  });

  it('a side uploaded as source.csv, then as source.jsonl, stays on the later upload through restarts (the sweep sends neither again)', async () => {
    const date = '2025-12-18';
    const csv = `trade_id,account_id,trade_date,amount\nT1,ACCT1,${date},1.00\n`;
    await stack.upload(`incoming/trades/${date}/target.csv`, csv);
    await stack.upload(`incoming/trades/${date}/source.csv`, csv);
    await stack.waitForIdle();
    await stack.upload(`incoming/trades/${date}/source.jsonl`, `{"trade_id":"T1"}\n`);
    await stack.waitForIdle();
    const latest = await fileRecord(date, 'source');
    expect(latest).toMatchObject({
      key: `incoming/trades/${date}/source.jsonl`,
      status: 'REJECTED',
      error: { code: 'FORMAT_MISMATCH' },
    });

    // Each start sweeps incoming/ (minimum age 0 here): the csv is older than the recorded jsonl.
    let ingested = 0;
    const onInvocation = (i: { name: string; received: number }) => {
      if (i.name === 'ingest-worker') ingested += i.received;
    };
    for (let i = 0; i < 2; i++) {
      await stack.stop();
      stack = await startLocalStack({ dataDir, onInvocation });
      await stack.waitForIdle();
    }

    expect(ingested).toBe(0);
    expect(await fileRecord(date, 'source')).toEqual(latest);
  });
});

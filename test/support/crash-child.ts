/**
 * The crash test's child process: one local stack on a data directory, driven like a client
 * would (policies, then the two sides of a day), then a snapshot of the final state on stdout.
 * Run with TALLY_CRASH_AT=<point> it dies by SIGKILL at that point (functions/shared/crash-point.ts);
 * run again on the same directory it resumes, re-sending only what the client never saw
 * acknowledged (client.json) — as a client retries a request that got no answer.
 *
 *   node test/support/crash-child.ts DATA_DIR
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { startLocalStack } from '../../scripts/local/stack.ts';
import { lockDataDir } from '../../scripts/local/data-dir-lock.ts';
import { TABLES, type IndexDef } from '../../functions/shared/resources.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';

export const CRASH_DATASET = { dataset: 'trades', date: '2025-12-10' };
const SOURCE = ['trade_id,account_id,trade_date,amount', ...rows(40, 0)].join('\n');
const TARGET = ['trade_id,account_id,trade_date,amount', ...rows(36, 3)].join('\n');

/** Small extracts with every kind of break the sample has: missing, amount differences. */
function rows(n: number, skew: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const amount = (100 + i + (i % 7 === 0 ? skew : 0)).toFixed(2);
    return `T${String(i).padStart(4, '0')},ACCT${1000 + (i % 5)},2025-12-03,${amount}`;
  });
}

async function scanAll(doc: DynamoDBDocumentClient, table: string, index?: string) {
  const items: Record<string, unknown>[] = [];
  let cursor: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(
      new ScanCommand({ TableName: table, ...(index ? { IndexName: index } : {}), ExclusiveStartKey: cursor }),
    );
    items.push(...((out.Items ?? []) as Record<string, unknown>[]));
    cursor = out.LastEvaluatedKey;
  } while (cursor);
  return items;
}

async function main() {
  const dataDir = process.argv[2] as string;
  const lock = lockDataDir(dataDir);
  const stack = await startLocalStack({ dataDir, visibilityTimeoutSeconds: 1 });
  const progressFile = join(dataDir, 'client.json');
  const acked: string[] = existsSync(progressFile) ? JSON.parse(readFileSync(progressFile, 'utf8')) : [];
  const step = async (name: string, act: () => Promise<unknown>) => {
    if (acked.includes(name)) return;
    await act();
    acked.push(name);
    // Written aside and renamed: the crash point kills this process from any thread, and a kill
    // between truncating and writing the file left it empty (a CI run failed on JSON.parse).
    writeFileSync(`${progressFile}.tmp`, JSON.stringify(acked));
    renameSync(`${progressFile}.tmp`, progressFile);
  };
  await step('policies', () => stack.loadPolicies());
  await stack.waitForIdle(60_000);
  const prefix = `incoming/${CRASH_DATASET.dataset}/${CRASH_DATASET.date}`;
  await step('source', () => stack.upload(`${prefix}/source.csv`, SOURCE));
  await step('target', () => stack.upload(`${prefix}/target.csv`, TARGET));
  await stack.waitForIdle(60_000);

  const { tables } = stack.names;
  const exceptions = await scanAll(stack.dynamo, tables.exceptions);
  // Each index entry as `id partition sort`: what the GSI holds against what the item's own
  // attributes say it should hold (exceptions-index-keys.ts), so a stale key (a status changed
  // without its index key following) fails as surely as a missing or ghost entry.
  const entry = (id: unknown, keys: Record<string, unknown>, def: IndexDef) =>
    `${String(id)} ${String(keys[def.partitionKey.name])} ${String(keys[def.sortKey?.name ?? ''])}`;
  const listings = Object.fromEntries(
    await Promise.all(
      Object.entries(TABLES.exceptions.indexes).map(async ([index, def]: [string, IndexDef]) => {
        const listed = (await scanAll(stack.dynamo, tables.exceptions, index)).map((i) =>
          entry(i.exception_id, i, def),
        );
        const expected = exceptions.flatMap((e) => {
          // The derived keys, and an index sorted by one of the item's own attributes (due_at).
          const keys = { ...e, ...exceptionIndexKeys(e) };
          return keys[def.partitionKey.name] === undefined || keys[def.sortKey?.name ?? ''] === undefined
            ? []
            : [entry(e.exception_id, keys, def)];
        });
        return [index, { listed: listed.sort(), expected: expected.sort() }];
      }),
    ),
  );
  const counts = await stack.counts();
  const snapshot = {
    files: (await scanAll(stack.dynamo, tables.files))
      .map((f) => ({ key: f.key, status: f.status, rows: f.rows, etag: f.etag }))
      .sort((a, b) => String(a.key).localeCompare(String(b.key))),
    runs: (await scanAll(stack.dynamo, tables.runs))
      .map((r) => ({
        run_id: r.run_id,
        status: r.status,
        exceptions: (r.summary as { exceptions?: unknown } | undefined)?.exceptions,
      }))
      .sort((a, b) => String(a.run_id).localeCompare(String(b.run_id))),
    exceptions: exceptions
      .map((e) => ({
        id: e.exception_id,
        type: e.exception_type,
        status: e.status,
        severity: e.severity,
        triaged: e.triage !== undefined,
      }))
      .sort((a, b) => String(a.id).localeCompare(String(b.id))),
    listings,
    counts,
  };
  process.stdout.write(`${JSON.stringify(snapshot)}\n`);
  await stack.stop();
  lock.release();
}

await main();

/**
 * `npm start` with a dataset whose policy sets a small `engine.large_above_bytes`: the local
 * stack's recon reconciles it on the SQL engine (DuckDB, injected by scripts/local/recon-handler.ts)
 * and stores the same exceptions the in-memory engine finds for the same files under the default
 * limit, without line numbers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`);
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`);
const SAMPLE_COUNTS = { AMOUNT_MISMATCH: 2, MISSING_IN_TARGET: 2, DUPLICATE_IN_TARGET: 1 };

/** The trades policy as another dataset's, with the SQL engine above 100 bytes. */
const BIG_TRADES = readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8').replace(
  '"dataset": "trades",',
  '"dataset": "bigtrades",\n  "engine": { "large_above_bytes": 100 },',
);

let dataDir: string;
let stack: LocalStack;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-it-sql-'));
  stack = await startLocalStack({ dataDir });
  await stack.loadPolicies();
  await stack.upload('policies/datasets/bigtrades.md', Buffer.from(BIG_TRADES));
  await stack.waitForIdle();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface StoredException {
  exception_type: string;
  key: Record<string, string>;
  diffs: unknown[];
  severity: string;
  lines: { source: number[]; target: number[] };
  reason?: string;
}

async function exceptionsFor(dataset: string, date: string): Promise<StoredException[]> {
  const out = await stack.dynamo.send(
    // The base table itself (the indexes are sharded): every item of the dataset-day.
    new ScanCommand({
      TableName: stack.names.tables.exceptions,
      FilterExpression: 'dataset_date = :d',
      ExpressionAttributeValues: { ':d': `${dataset}#${date}` },
      ConsistentRead: true,
    }),
  );
  return (out.Items ?? []) as StoredException[];
}

const comparable = (e: StoredException) =>
  JSON.stringify({ type: e.exception_type, key: e.key, diffs: e.diffs, severity: e.severity });

describe('the local stack with the SQL engine', () => {
  it('reconciles a dataset above its large_above_bytes on DuckDB: the same exceptions, no line numbers', async () => {
    // Act: the same files under both datasets.
    for (const dataset of ['trades', 'bigtrades']) {
      await stack.upload(`incoming/${dataset}/2025-12-10/source.csv`, SOURCE);
      await stack.upload(`incoming/${dataset}/2025-12-10/target.csv`, TARGET);
    }
    await stack.waitForIdle();
    // Assess
    const memory = await exceptionsFor('trades', '2025-12-10');
    const sql = await exceptionsFor('bigtrades', '2025-12-10');
    const counts = (items: StoredException[]) =>
      items.reduce<Record<string, number>>(
        (c, e) => ({ ...c, [e.exception_type]: (c[e.exception_type] ?? 0) + 1 }),
        {},
      );
    expect(counts(memory)).toEqual(SAMPLE_COUNTS);
    expect(sql.map(comparable).sort()).toEqual(memory.map(comparable).sort());
    expect(memory.every((e) => e.lines.source.length + e.lines.target.length > 0)).toBe(true);
    expect(sql.every((e) => e.lines.source.length + e.lines.target.length === 0)).toBe(true);
    expect(sql.every((e) => e.reason?.includes('line numbers are not known to the SQL engine'))).toBe(true);
  }, 120_000);
});

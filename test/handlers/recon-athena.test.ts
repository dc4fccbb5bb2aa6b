/**
 * A run on Athena through the recon handler: above the policy's engine.large_above_bytes, with no
 * in-process SQL engine, recon starts the run's statements on Athena (a fake port that serves the
 * findings by writing JSON Lines objects where the UNLOAD points), the run's delayed checks come
 * back through the same handler, and the store consumer completes the run from the UNLOADed
 * objects. DynamoDB is dynalite; S3 and SQS are mocked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ListObjectsV2Command, type ListObjectsV2CommandInput } from '@aws-sdk/client-s3';
import { GetCommand, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { getItemsInOrder, queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { createHandler, defaultDeps } from '../../functions/recon/handler.ts';
import { createHandler as createStoreHandler, defaultDeps as storeDeps } from '../../functions/store/handler.ts';
import { reconcileInto } from '../../functions/recon/engine.ts';
import type { Finding } from '../../functions/recon/findings.ts';
import type { AthenaCheck, AthenaPort, QueryState } from '../../functions/recon/sql/athena.ts';
import type { TextRow } from '../../functions/recon/sql/summary.ts';
import { S3ChunkObjects } from '../../functions/shared/adapters/s3-results.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { mockS3Objects } from '../support/s3-objects.ts';
import { recordRunInputs } from '../support/run-inputs.ts';
import { mockSqsSends } from '../support/sqs-sends.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8');
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8');
const TRADES = parseReconPolicy(readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8'));
/** Far above the trades policy's engine.large_above_bytes (its default). */
const LARGE = 2 ** 40;

let dynamo: TestDynamo;
let dateCounter = 0;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

/** The findings the in-memory engine finds for the pair: what the fake Athena UNLOADs. */
async function memoryFindings(): Promise<Finding[]> {
  const findings: Finding[] = [];
  await reconcileInto(
    { name: 'source.csv', stream: Readable.from([Buffer.from(SOURCE)]) },
    { name: 'target.csv', stream: Readable.from([Buffer.from(TARGET)]) },
    TRADES,
    async (f) => void findings.push(f),
  );
  return findings;
}

/**
 * Athena as a script: each query is RUNNING at its first check, then SUCCEEDED (or FAILED when
 * `fails` matches its SQL). UNLOAD writes the findings as two plain JSON Lines objects under its
 * target; the summary's `GROUP BY type` query counts them.
 */
class FakeAthena implements AthenaPort {
  readonly started: { sql: string; token: string | undefined }[] = [];
  private readonly polls = new Map<string, number>();
  private readonly put: (key: string, body: string) => void;
  private readonly findings: readonly Finding[];
  private readonly fails: (sql: string) => boolean;
  constructor(
    put: (key: string, body: string) => void,
    findings: readonly Finding[],
    fails: (sql: string) => boolean = () => false,
  ) {
    this.put = put;
    this.findings = findings;
    this.fails = fails;
  }
  async start(sql: string, _database: string | undefined, token?: string): Promise<string> {
    // As ClientRequestToken does: the same token gives the same query back.
    const same = this.started.findIndex((s) => token !== undefined && s.token === token);
    if (same >= 0) return `q${same + 1}`;
    this.started.push({ sql, token });
    const id = `q${this.started.length}`;
    const unload = /^UNLOAD .* TO 's3:\/\/[^/]+\/([^']+)'/s.exec(sql);
    if (unload) {
      const lines = this.findings.map((f) => `${JSON.stringify(f)}\n`);
      const half = Math.ceil(lines.length / 2);
      this.put(`${unload[1]}20250201_000000_00001_a`, lines.slice(0, half).join(''));
      this.put(`${unload[1]}20250201_000000_00001_b`, lines.slice(half).join(''));
    }
    return id;
  }
  async status(id: string): Promise<{ state: QueryState; reason?: string }> {
    const n = this.polls.get(id) ?? 0;
    this.polls.set(id, n + 1);
    if (n === 0) return { state: 'RUNNING' };
    if (this.fails(this.sqlOf(id))) return { state: 'FAILED', reason: 'HIVE_BAD_DATA: bad row' };
    return { state: 'SUCCEEDED' };
  }
  async rows(id: string): Promise<TextRow[]> {
    const sql = this.sqlOf(id);
    if (sql.includes('GROUP BY type')) {
      const counts = new Map<string, number>();
      for (const f of this.findings) counts.set(f.type, (counts.get(f.type) ?? 0) + 1);
      return [...counts].map(([type, n]) => ({ type, n: String(n) }));
    }
    if (sql.includes('AS rows_s'))
      return [
        {
          rows_s: '20',
          rows_t: '19',
          rejected_s: '0',
          rejected_t: '0',
          valid_keys: '21',
          attached: '0',
          matched: '15',
        },
      ];
    return [];
  }
  private sqlOf(id: string): string {
    return this.started[Number(id.slice(1)) - 1]?.sql ?? '';
  }
}

function setup(fails?: (sql: string) => boolean) {
  const objects = mockS3Objects();
  objects.s3.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => ({
    Contents: objects
      .keys()
      .filter((k) => k.startsWith(input.Prefix ?? ''))
      .sort()
      .map((Key) => ({ Key })),
    IsTruncated: false,
  }));
  const sqs = mockSqsSends();
  const checks: { check: AthenaCheck; delay: number }[] = [];
  let athena: FakeAthena | undefined;
  const handler = createHandler(() => ({
    ...defaultDeps(),
    athena: {
      athena: athena as FakeAthena,
      checks: { sendDelayed: async (check: AthenaCheck, delay: number) => void checks.push({ check, delay }) },
      listResults: (bucket: string, prefix: string) => new S3ChunkObjects(objects.s3 as never).list(bucket, prefix),
    },
  }));
  const storeHandler = createStoreHandler(storeDeps);
  const date = `2025-03-${String(++dateCounter).padStart(2, '0')}`;

  async function requestRun(runId: string) {
    athena = new FakeAthena((key, body) => void objects.put(key, body), await memoryFindings(), fails);
    // Sizes as ingest records them: above the policy's engine.large_above_bytes.
    return recordRunInputs(dynamo, objects, { runId, date, source: SOURCE, target: TARGET, size: LARGE });
  }

  const invoke = async (body: unknown) => {
    const response = await handler(sqsEvent(sqsRecord(body)), lambdaContext);
    expect(response.batchItemFailures).toEqual([]);
  };
  let delivered = 0;
  /** Delivers the run's checks as the recon queue would (each once), until none is left. */
  async function deliverChecks(limit = 500) {
    for (let i = 0; delivered < checks.length && i < limit; i++) await invoke(checks[delivered++]?.check);
  }
  let stored = 0;
  async function drainStore() {
    for (let sent = sqs.bodiesTo('-store'); stored < sent.length; sent = sqs.bodiesTo('-store')) {
      const response = await storeHandler(sqsEvent(sqsRecord(sent[stored++])), lambdaContext);
      expect(response.batchItemFailures).toEqual([]);
    }
  }
  async function run(runId: string) {
    return (await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: runId } })))
      .Item;
  }
  async function exceptions() {
    const { items } = await queryAllShards(dynamo.doc, dynamo.names.tables.exceptions, 'by_dataset_date_sharded', {
      attribute: 'gsi_dataset_date',
      values: shardedValues(`trades#${date}`),
    });
    // The index carries what listings filter on; the items themselves by key.
    return (await getItemsInOrder(dynamo.doc, dynamo.names.tables.exceptions, ['exception_id'], items)) as NonNullable<
      QueryCommandOutput['Items']
    >;
  }
  return {
    requestRun,
    invoke,
    deliverChecks,
    drainStore,
    run,
    exceptions,
    checks,
    athena: () => athena as FakeAthena,
    stores: () => sqs.bodiesTo('-store'),
  };
}

describe('recon on Athena', () => {
  let env: ReturnType<typeof setup>;
  beforeEach(() => {
    env = setup();
  });

  it('defers a large run to Athena, carries it by delayed checks, and the store consumer completes it with the in-memory exceptions', async () => {
    // Prepare
    const request = await env.requestRun('run-athena');
    // Act: the request starts the run; no Lambda waits for a query.
    await env.invoke(request);
    // Assess: RUNNING on Athena, its first statement started, its first check queued.
    expect(await env.run('run-athena')).toMatchObject({ status: 'RUNNING', engine: 'athena', athena_step: 0 });
    expect(env.athena().started).toHaveLength(1);
    expect(env.checks).toHaveLength(1);
    expect(env.checks[0]?.check).toMatchObject({ kind: 'athena-check', run_id: 'run-athena', step: 0 });
    // Act: the checks, then the store consumer on the UNLOADed objects.
    await env.deliverChecks();
    expect(await env.run('run-athena')).toMatchObject({ status: 'STORING', chunks_total: 2 });
    await env.drainStore();
    // Assess: the same exceptions as the in-memory engine finds (test/handlers/recon-handler.test.ts).
    const stored = await env.exceptions();
    expect(stored.map((e) => `${e.exception_type}:${e.key.trade_id}`).sort()).toEqual([
      'AMOUNT_MISMATCH:T0005',
      'AMOUNT_MISMATCH:T0018',
      'DUPLICATE_IN_TARGET:T0012',
      'MISSING_IN_TARGET:T0007',
      'MISSING_IN_TARGET:T0014',
    ]);
    expect(await env.run('run-athena')).toMatchObject({
      status: 'COMPLETED',
      chunks_total: 2,
      chunks_stored: 2,
      summary: { matched: 15, new: 5 },
      // The runaway guard decided with STORING, on Athena's summary as on the other engines'.
      triage: { state: 'PENDING' },
    });
    expect(env.stores().map((s) => s.chunk)).toEqual([0, 1]);
    // Each UNLOADed object went through the break patterns: rewritten as the run's chunk of the same
    // number with every finding's pattern, which the store wrote on each exception.
    expect(env.stores().map((s) => s.key)).toEqual([
      'results/run-athena/part-00000.jsonl.gz',
      'results/run-athena/part-00001.jsonl.gz',
    ]);
    expect(stored.every((e) => /^pat_[0-9a-f]{16}$/.test(String(e.pattern_id)))).toBe(true);
    const missing = stored.filter((e) => e.exception_type === 'MISSING_IN_TARGET');
    expect(new Set(missing.map((e) => e.pattern_id)).size).toBe(1);
    expect(new Set(stored.map((e) => e.pattern_id)).size).toBe(4);
    expect((await env.run('run-athena'))?.patterns).toEqual({ patterns: 0, members: 0, singletons: 5 });
    // Every statement started once, with the attempt's own names.
    const sqls = env.athena().started.map((s) => s.sql);
    expect(new Set(sqls).size).toBe(sqls.length);
    expect(sqls.at(-1)).toMatch(/^DROP DATABASE IF EXISTS `tally_run_run_athena_\d+` CASCADE$/);
  });

  it('does nothing on a redelivered check, and leaves the run to its checks on a redelivered request', async () => {
    // Prepare: the run started, its first check delivered once (the query started).
    const request = await env.requestRun('run-redelivered');
    await env.invoke(request);
    const first = env.checks[0]?.check;
    await env.deliverChecks(1);
    const started = env.athena().started.length;
    const checksBefore = env.checks.length;
    // Act: the same check again, and the recon request again.
    await env.invoke(first);
    await env.invoke(request);
    // Assess: no query started twice, no check sent twice, the run still on Athena.
    expect(env.athena().started).toHaveLength(started);
    expect(env.checks).toHaveLength(checksBefore);
    expect(await env.run('run-redelivered')).toMatchObject({ status: 'RUNNING', engine: 'athena' });
    // The chain still completes the run.
    await env.deliverChecks();
    await env.drainStore();
    expect(await env.run('run-redelivered')).toMatchObject({ status: 'COMPLETED' });
  });
});

describe('recon on Athena, a failing query', () => {
  it('fails the run naming the step', async () => {
    // Prepare
    const env = setup((sql) => sql.startsWith('CREATE TABLE cmp'));
    const request = await env.requestRun('run-athena-fails');
    // Act
    await env.invoke(request);
    await env.deliverChecks();
    // Assess
    const run = await env.run('run-athena-fails');
    expect(run).toMatchObject({ status: 'FAILED', error: { code: 'ATHENA_QUERY_FAILED' } });
    expect(run?.error.message).toContain('Athena step cmp failed: HIVE_BAD_DATA');
    expect(env.stores()).toEqual([]);
  });
});

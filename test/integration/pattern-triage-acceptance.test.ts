/**
 * Issue 12's acceptance, on the local stack as `npm start` runs it: a generated payments run with a
 * planted systematic error — 5,000 JPY payments whose target amount is the source's x100 — and 50
 * random breaks is triaged with at most (patterns + singletons) model calls, counted by a
 * recording model (an OpenAI-compatible server on 127.0.0.1 in the provider chain); and the
 * runaway guard holds an absurd run until it is released through the CLI.
 *
 * The break patterns are computed in recon (functions/shared/patterns/): the 5,000 JPY mismatches
 * share one signature (target = source x100), so they cost one call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { getItemsInOrder, queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import type { ApiRun } from '../../functions/shared/api-types.ts';
import { runsCommand } from '../../scripts/cli/runs.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { startRecordingModel } from '../support/recording-model.ts';

const DATE = '2025-12-15';
const JPY_MISMATCHES = 5000;
const OTHER_PAYMENTS = 7000;
const RANDOM_BREAKS = 50;

/** A deterministic generator (mulberry32): the same run every time. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Payments in the payments policy's shapes: `;`-delimited CSV with decimal commas on the source,
 * JSON Lines on the target. JPY payments: target = source x100. Of the others, 50 random breaks:
 * 20 amounts off by a random amount (1% to 300%), 15 payments missing in the target, 15 statuses changed.
 */
function generate(): { source: string; target: string; breaks: number } {
  const next = random(12);
  const source = ['PaymentRef;ValueDate;Ccy;Amt;Status;Beneficiary'];
  const target: string[] = [];
  const day = (i: number) => `${String(1 + (i % 28)).padStart(2, '0')}/12/2025`;
  const iso = (i: number) => `2025-12-${String(1 + (i % 28)).padStart(2, '0')}`;
  for (let i = 0; i < JPY_MISMATCHES; i++) {
    const id = `PAY-J${String(i).padStart(5, '0')}`;
    const yen = 1000 + Math.floor(next() * 900_000);
    source.push(`${id};${day(i)};JPY;${yen};SETTLED;Kabushiki ${i % 7}`);
    target.push(
      JSON.stringify({ payment_id: id, value_date: iso(i), currency: 'JPY', amount: yen * 100, status: 'SETTLED' }),
    );
  }
  const currencies = ['EUR', 'USD', 'GBP'];
  // Which of the others break, and how: 50 distinct positions.
  const positions = new Set<number>();
  while (positions.size < RANDOM_BREAKS) positions.add(Math.floor(next() * OTHER_PAYMENTS));
  const broken = [...positions];
  const kind = new Map(broken.map((p, k) => [p, k < 20 ? 'amount' : k < 35 ? 'missing' : 'status']));
  for (let i = 0; i < OTHER_PAYMENTS; i++) {
    const id = `PAY-X${String(i).padStart(5, '0')}`;
    const currency = currencies[i % 3] as string;
    const cents = 100 + Math.floor(next() * 5_000_000);
    const amount = `${Math.floor(cents / 100)},${String(cents % 100).padStart(2, '0')}`;
    source.push(`${id};${day(i)};${currency};${amount};SETTLED;Counterparty ${i % 11}`);
    const how = kind.get(i);
    if (how === 'missing') continue;
    // Off by 1% to 300% of the amount: always outside the policy's tolerance (0.05%, at least 0.01).
    const off = how === 'amount' ? Math.floor(cents * (0.01 + next() * 3)) + 100 : 0;
    target.push(
      JSON.stringify({
        payment_id: id,
        value_date: iso(i),
        currency,
        amount: (cents + off) / 100,
        status: how === 'status' ? 'PENDING' : 'SETTLED',
      }),
    );
  }
  return { source: `${source.join('\n')}\n`, target: `${target.join('\n')}\n`, breaks: JPY_MISMATCHES + RANDOM_BREAKS };
}

let dataDir: string;
let stack: LocalStack;
let model: Awaited<ReturnType<typeof startRecordingModel>>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-acceptance-'));
  model = await startRecordingModel();
  stack = await startLocalStack({
    dataDir,
    visibilityTimeoutSeconds: 5,
    triageProviders: { chain: 'openai:recording-model,rules', openaiBaseUrl: model.url },
  });
  await stack.loadPolicies();
  await stack.waitForIdle();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
  await model?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`${stack.endpoints.api}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function runOf(dataset: string, date: string): Promise<ApiRun> {
  const page = await api<{ items: ApiRun[] }>(`/runs?dataset=${dataset}&business_date=${date}`);
  return page.items[0] as ApiRun;
}

async function exceptionsOf(dataset: string, date: string) {
  const { items } = await queryAllShards(stack.dynamo, stack.names.tables.exceptions, 'by_dataset_date_sharded', {
    attribute: 'gsi_dataset_date',
    values: shardedValues(`${dataset}#${date}`),
  });
  // The index carries what listings filter on; the items themselves by key.
  return (await getItemsInOrder(stack.dynamo, stack.names.tables.exceptions, ['exception_id'], items)) as NonNullable<
    QueryCommandOutput['Items']
  >;
}

describe('a run with one systematic error and 50 random breaks', () => {
  let run: ApiRun;
  let exceptions: Awaited<ReturnType<typeof exceptionsOf>>;
  const generated = generate();

  beforeAll(async () => {
    await stack.upload(`incoming/payments/${DATE}/source.csv`, generated.source);
    await stack.upload(`incoming/payments/${DATE}/target.jsonl`, generated.target);
    await stack.waitForIdle(900_000);
    run = await runOf('payments', DATE);
    exceptions = await exceptionsOf('payments', DATE);
  }, 900_000);

  it('is reconciled, not held, and dispatched with a plan', () => {
    expect(run).toMatchObject({ status: 'COMPLETED', triage: { state: 'DISPATCHED' } });
    expect(exceptions).toHaveLength(generated.breaks);
    expect(run.triage_plan).toBeDefined();
    // Every exception that needed triage is a pattern member or a singleton.
    expect((run.triage_plan?.members ?? 0) + (run.triage_plan?.singletons ?? 0)).toBe(generated.breaks);
  });

  it('costs at most one model call per pattern plus one per singleton', () => {
    const plan = run.triage_plan as NonNullable<ApiRun['triage_plan']>;
    expect(model.calls()).toBeLessThanOrEqual(plan.patterns + plan.singletons);
    // Nothing failed over to rules: each planned call reached the model exactly once.
    expect(model.calls()).toBe(plan.patterns + plan.singletons);
    expect(model.patternCalls()).toBe(plan.patterns);
  });

  it("leaves every exception triaged, pattern members with their pattern's triage", () => {
    expect(exceptions.filter((e) => e.triage === undefined).map((e) => e.exception_id)).toEqual([]);
    const inherited = exceptions.filter((e) => e.triage?.inherited === true);
    expect(inherited).toHaveLength(run.triage_plan?.members ?? -1);
    for (const e of inherited) expect(e.triage.pattern_id).toBe(e.pattern_id);
  });

  it('groups the 5,000 JPY mismatches into one pattern triaged once', async () => {
    const plan = run.triage_plan as NonNullable<ApiRun['triage_plan']>;
    // The 5,000 in one pattern; the 50 random breaks in small patterns or alone.
    expect(plan.members).toBeGreaterThanOrEqual(JPY_MISMATCHES);
    expect(plan.singletons).toBeLessThanOrEqual(RANDOM_BREAKS);
    expect(model.calls()).toBeLessThanOrEqual(1 + RANDOM_BREAKS);
    const jpy = exceptions.filter((e) => String(e.key?.payment_id).startsWith('PAY-J'));
    const patternIds = new Set(jpy.map((e) => e.triage?.pattern_id));
    expect(patternIds.size).toBe(1);
    const patterns = await api<{
      items: { pattern_id: string; size: number; segments: { field: string; value: string; share: number }[] }[];
    }>(`/runs/${run.run_id}/patterns`);
    const big = patterns.items.find((p) => patternIds.has(p.pattern_id));
    expect(big?.size).toBeGreaterThanOrEqual(JPY_MISMATCHES);
    expect(big?.segments.find((s) => s.field === 'currency' && s.value === 'JPY')?.share).toBeGreaterThanOrEqual(0.95);
  });
});

describe('an absurd run', () => {
  it('is held, announced once on the business events topic, and triaged once released from the CLI', async () => {
    const date = '2025-12-16';
    const before = model.calls();
    const triagedBefore = (await stack.counts()).triaged;
    // Every target amount x100: a break rate of 1.
    const source = ['PaymentRef;ValueDate;Ccy;Amt;Status;Beneficiary'];
    const target: string[] = [];
    for (let i = 0; i < 40; i++) {
      source.push(`PAY-H${i};01/12/2025;EUR;${100 + i},00;SETTLED;B`);
      target.push(
        JSON.stringify({
          payment_id: `PAY-H${i}`,
          value_date: '2025-12-01',
          currency: 'EUR',
          amount: (100 + i) * 100,
          status: 'SETTLED',
        }),
      );
    }
    await stack.upload(`incoming/payments/${date}/source.csv`, `${source.join('\n')}\n`);
    await stack.upload(`incoming/payments/${date}/target.jsonl`, `${target.join('\n')}\n`);
    await stack.waitForIdle();

    const held = await runOf('payments', date);
    expect(held).toMatchObject({ status: 'COMPLETED', triage: { state: 'HELD', notified: true } });
    expect(held.triage?.reason).toMatch(/break rate 1\.000000 is above 0\.5/);
    expect(model.calls()).toBe(before);
    expect((await exceptionsOf('payments', date)).every((e) => e.triage === undefined)).toBe(true);
    // The stack's own count (npm start's summary) does not call a held run's exceptions triaged.
    expect((await stack.counts()).triaged).toBe(triagedBefore);
    const told = await stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: stack.topics.businessEvents.inbox,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect((told.Messages ?? []).map((m) => JSON.parse(m.Body ?? '{}'))).toEqual([
      expect.objectContaining({ type: 'RUN_TRIAGE_HELD', run_id: held.run_id, dataset: 'payments', exceptions: 40 }),
    ]);

    let out = '';
    const io = {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (out += t) },
      env: { TALLY_API_URL: stack.endpoints.api },
    } as unknown as CliIo;
    expect(await runsCommand(['triage', held.run_id, '--release'], io)).toBe(0);
    expect(out).toMatch(new RegExp(`run ${held.run_id}: triage RELEASED by local-analyst`));
    await stack.waitForIdle();

    const released = await runOf('payments', date);
    expect(released.triage?.state).toBe('DISPATCHED');
    expect((await exceptionsOf('payments', date)).every((e) => e.triage !== undefined)).toBe(true);
    expect((await stack.counts()).triaged).toBe(triagedBefore + 40);
    const plan = released.triage_plan as NonNullable<ApiRun['triage_plan']>;
    expect(model.calls() - before).toBe(plan.patterns + plan.singletons);
  }, 300_000);
});

/**
 * Triage's cost, budget, routes and severity floor against a real DynamoDB API (dynalite): each
 * model call priced and ADDed to its run and its day, a spent budget answered by rules, the route
 * recorded, the stored severity never below the policy's (and the by_severity key with it), and
 * GET /usage reading the days back.
 */
import { policyIndexAt } from '../support/policy-index.ts';
import { NO_DATASET_POLICIES } from '../../functions/triage/dataset-policy.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';
import { DynamoTriageStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { DynamoCircuitBreaker } from '../../functions/shared/tables/circuit-breaker-dynamo.ts';
import { DynamoRunCosts, DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import { DynamoUsageStore } from '../../functions/shared/tables/usage-dynamo.ts';
import {
  exceptionIndexKeys,
  exceptionShard,
  shardedValue,
} from '../../functions/shared/tables/exceptions-index-keys.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import { loadReconPolicyFile } from '../../functions/shared/recon-policy-file.ts';
import { EXCEPTION_RECORD_TYPE } from '../../functions/shared/exceptions.ts';
import type { BusinessMetrics } from '../../functions/shared/metrics.ts';
import type { MetricKey } from '../../functions/shared/resources.ts';
import type { ExceptionRecord, Severity, Triage } from '../../functions/shared/types.ts';
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import { RulesProvider } from '../../functions/triage/providers/rules.ts';
import type { ProviderAnswer, ProviderInput, TriageProvider } from '../../functions/triage/providers/types.ts';
import { parsePriceTable } from '../../functions/triage/cost.ts';
import { buildRouteTable, parseProviderChain, parseRouteTable } from '../../functions/triage/routing.ts';
import { triageException, type TriageDeps } from '../../functions/triage/triage.ts';
import { countTriage } from '../../functions/triage/handler.ts';
import { createHandler as createApiHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import type { UsageReport } from '../../functions/shared/api-types.ts';

/** Nova Micro: $0.035 in, $0.14 out per million tokens. 1,000 in + 500 out = 35 + 70 = 105 micro-dollars. */
const CHEAP = 'amazon.nova-micro-v1:0';
const STRONG = 'amazon.nova-pro-v1:0';
const CALL_MICRO_USD = 105;
const DAY = '2025-12-10';
const NOW = Date.parse(`${DAY}T09:00:00Z`);

/** A model that answers with the severity it is given, citing the first passage, and records its calls. */
class ScriptedModel implements TriageProvider {
  readonly name = 'bedrock';
  readonly kind = 'model' as const;
  readonly model: string;
  severity: Severity = 'MEDIUM';
  readonly calls: string[] = [];
  constructor(model: string) {
    this.model = model;
  }
  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    this.calls.push(input.exception.exception_id);
    return {
      answer: {
        severity: this.severity,
        summary: 'Amounts differ.',
        recommended_actions: ['Check the booking.'],
        root_cause_hypotheses: ['Fees.'],
        policy_citations: ['P1'],
      },
      inputTokens: 1000,
      outputTokens: 500,
    };
  }
}

let dynamo: TestDynamo;
let vectorDir: string;
const embedder = new HashingEmbedder();
let policyIndex: LocalVectorIndex;
let counter = 0;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  vectorDir = mkdtempSync(join(tmpdir(), 'tally-triage-cost-'));
  policyIndex = await policyIndexAt(join(vectorDir, 'policies.jsonl'), embedder);
});
afterAll(async () => {
  await dynamo.stop();
});

async function storeRun(runId: string): Promise<void> {
  const ref = { bucket: 'b', key: 'k', etag: 'e' };
  await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request({
    run_id: runId,
    dataset: 'trades',
    business_date: DAY,
    source: ref,
    target: ref,
    status: 'STORING',
    requested_at: `${DAY}T08:00:00Z`,
    requested_by: 'test',
  } as RunRecord);
}

async function storeException(overrides: Partial<ExceptionRecord> = {}) {
  const id = `cost-ex-${++counter}`;
  const record = {
    exception_id: id,
    run_id: 'run-cost',
    dataset: 'trades',
    business_date: DAY,
    exception_type: 'AMOUNT_MISMATCH' as const,
    key: { trade_id: `T${counter}` },
    source: { trade_id: `T${counter}`, amount: '450.00' },
    target: { trade_id: `T${counter}`, amount: '475.00' },
    diffs: [{ field: 'amount', source: '450.00', target: '475.00', delta: '25.00' }],
    lines: { source: [2], target: [2] },
    policy_severity: 'MEDIUM' as Severity,
    status: 'OPEN' as const,
    created_at: `${DAY}T08:00:00Z`,
    updated_at: `${DAY}T08:00:00Z`,
    version: 1,
    history: [],
    content_hash: `hash-${counter}`,
    record_type: EXCEPTION_RECORD_TYPE,
    dataset_date: `trades#${DAY}`,
    ...overrides,
  };
  await dynamo.doc.send(
    new PutCommand({ TableName: dynamo.names.tables.exceptions, Item: { ...record, ...exceptionIndexKeys(record) } }),
  );
  return record;
}

async function stored(id: string) {
  return (
    await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.exceptions, Key: { exception_id: id } }))
  ).Item as ExceptionRecord & { triage: Triage; gsi_severity?: string };
}

async function runCost(runId: string) {
  return (await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).get(runId))?.cost;
}

function recordingMetrics(): BusinessMetrics & { counted: Map<MetricKey, number> } {
  const counted = new Map<MetricKey, number>();
  return {
    counted,
    count: (metric, value = 1) => void counted.set(metric, (counted.get(metric) ?? 0) + value),
    flush: () => undefined,
  };
}

const ROUTES = JSON.stringify([
  { name: 'critical-amounts', match: { policy_severity: 'CRITICAL' }, providers: `bedrock:${STRONG}` },
  { name: 'invalid-rows', match: { exception_type: 'INVALID_RECORD' }, providers: 'rules' },
]);

describe('triage cost, budget, routes and severity floor', () => {
  let cheap: ScriptedModel;
  let strong: ScriptedModel;
  let usageTable: string;
  let metrics: ReturnType<typeof recordingMetrics>;
  let clock: number;

  /** A fresh usage table per test: its days are shared by every call of a test. */
  let usageCounter = 0;
  beforeEach(async () => {
    cheap = new ScriptedModel(CHEAP);
    strong = new ScriptedModel(STRONG);
    metrics = recordingMetrics();
    clock = NOW + ++usageCounter * 366 * 86_400_000; // a day of its own per test in the one usage table
    usageTable = dynamo.names.tables.usage;
  });
  const today = () => new Date(clock).toISOString().slice(0, 10);

  function deps(overrides: Partial<TriageDeps> = {}): TriageDeps {
    const rules = new RulesProvider(loadReconPolicyFile(join(POLICIES_DIR, 'recon-policy.md')));
    const table = parseRouteTable(ROUTES, parseProviderChain(`bedrock:${CHEAP}`).providers, {
      openaiConfigured: false,
    });
    return {
      store: new DynamoTriageStore(dynamo.doc, dynamo.names.tables.exceptions),
      policies: NO_DATASET_POLICIES,
      embedder,
      policyIndex,
      exceptionsIndex: LocalVectorIndex.load(join(vectorDir, `exceptions-${counter}.jsonl`)),
      routes: buildRouteTable(table, (spec) =>
        spec.kind === 'rules' ? rules : spec.model === STRONG ? strong : cheap,
      ),
      prices: parsePriceTable(undefined),
      usage: new DynamoUsageStore(dynamo.doc, usageTable),
      runCosts: new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs),
      metrics,
      breaker: new DynamoCircuitBreaker(dynamo.doc, dynamo.names.tables.circuit_breaker, {
        threshold: 3,
        cooldownMs: 60_000,
      }),
      now: () => clock,
      sleep: async () => undefined,
      maxThrottleRetries: 0,
      ...overrides,
    };
  }
  const triage = (e: { exception_id: string; run_id: string; content_hash: string }, d: TriageDeps) =>
    triageException({ exception_id: e.exception_id, run_id: e.run_id, content_hash: e.content_hash }, d);

  it('prices each model call and adds it to its run and its day: two calls sum exactly', async () => {
    await storeRun('run-two-calls');
    const d = deps();
    const first = await storeException({ run_id: 'run-two-calls' });
    const second = await storeException({ run_id: 'run-two-calls' });

    await triage(first, d);
    await triage(second, d);

    const expected = { micro_usd: 2 * CALL_MICRO_USD, input_tokens: 2000, output_tokens: 1000, calls: 2 };
    expect(await runCost('run-two-calls')).toEqual(expected);
    expect(await d.usage.get(today())).toEqual(expected);
    expect((await stored(first.exception_id)).triage).toMatchObject({
      route: 'default',
      cost_micro_usd: CALL_MICRO_USD,
      model: CHEAP,
    });
    expect(metrics.counted.get('triageCost')).toBe(2 * CALL_MICRO_USD);
  });

  it('adds concurrent calls exactly, to a run whose cost does not exist yet and to one day', async () => {
    await storeRun('run-concurrent');
    const runCosts = new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs);
    const usage = new DynamoUsageStore(dynamo.doc, usageTable);
    const call = (i: number) => ({ micro_usd: 100 + i, input_tokens: 1000 + i, output_tokens: 10, calls: 1 });

    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        Promise.all([runCosts.addCost('run-concurrent', call(i)), usage.add(today(), call(i))]),
      ),
    );

    // Σ(100 + i) for i < 25 = 2,500 + 300; Σ(1,000 + i) = 25,000 + 300.
    const expected = { micro_usd: 2800, input_tokens: 25300, output_tokens: 250, calls: 25 };
    expect(await runCost('run-concurrent')).toEqual(expected);
    expect(await usage.get(today())).toEqual(expected);
  });

  it('adds no cost to a run that does not exist, and creates no run', async () => {
    const runCosts = new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs);

    expect(await runCosts.addCost('run-nowhere', { micro_usd: 1, input_tokens: 1, output_tokens: 1, calls: 1 })).toBe(
      false,
    );
    expect(await runCost('run-nowhere')).toBeUndefined();
    expect(
      (await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: 'run-nowhere' } })))
        .Item,
    ).toBeUndefined();
  });

  it('past the daily budget answers with rules, degraded for the reason "budget", counts the metric and spends nothing', async () => {
    await storeRun('run-budget');
    const d = deps({ dailyBudgetMicroUsd: 2 * CALL_MICRO_USD });
    const calls = await Promise.all([1, 2, 3].map(() => storeException({ run_id: 'run-budget' })));

    // Two calls spend the budget exactly; the third finds it spent.
    for (const e of calls) await triage(e, d);
    const outcome = await triage(await storeException({ run_id: 'run-budget' }), d);

    expect(cheap.calls).toHaveLength(2);
    const third = (await stored(calls[2]?.exception_id as string)).triage;
    expect(third).toMatchObject({
      provider: 'rules',
      degraded: true,
      degraded_reason: 'budget',
      route: 'default',
      attempts: [{ provider: 'bedrock', model: CHEAP, outcome: 'skipped: the daily budget is spent' }],
    });
    expect(third.cost_micro_usd).toBeUndefined();
    expect(third.model_severity).toBeUndefined();
    expect(outcome).toMatchObject({ outcome: 'TRIAGED', provider: 'rules', degraded: true, degradedReason: 'budget' });
    expect(metrics.counted.get('triageBudgetExceeded')).toBe(2);
    expect(await runCost('run-budget')).toEqual({
      micro_usd: 2 * CALL_MICRO_USD,
      input_tokens: 2000,
      output_tokens: 1000,
      calls: 2,
    });
  });

  it('asks the model again for an exception answered for budget once a new day has budget', async () => {
    await storeRun('run-next-day');
    const e = await storeException({ run_id: 'run-next-day' });
    const d = deps({ dailyBudgetMicroUsd: 1 });
    await new DynamoUsageStore(dynamo.doc, usageTable).add(today(), {
      micro_usd: 1,
      input_tokens: 0,
      output_tokens: 0,
      calls: 1,
    });
    await triage(e, d);
    expect((await stored(e.exception_id)).triage.degraded_reason).toBe('budget');

    clock += 86_400_000;
    const again = await triage(e, d);

    expect(again).toMatchObject({ outcome: 'TRIAGED', provider: 'bedrock', degraded: false });
    expect((await stored(e.exception_id)).triage.degraded_reason).toBeUndefined();
    expect(cheap.calls).toEqual([e.exception_id]);
  });

  it('does not count a budget answer as a model failure (its own metric and alarm)', () => {
    const counted = recordingMetrics();
    countTriage(
      {
        outcome: 'TRIAGED',
        provider: 'rules',
        model: 'rules',
        degraded: true,
        degradedReason: 'budget',
        route: 'default',
        citations: 1,
      },
      counted,
    );
    countTriage(
      { outcome: 'TRIAGED', provider: 'rules', model: 'rules', degraded: true, route: 'default', citations: 1 },
      counted,
    );

    expect(counted.counted.get('triageDegraded')).toBe(1);
    expect(counted.counted.get('triages')).toBe(2);
  });

  it('records the route that chose the chain, and a rules-only route calls no model and costs nothing', async () => {
    await storeRun('run-routes');
    const d = deps({ dailyBudgetMicroUsd: 1_000_000 });
    const critical = await storeException({ run_id: 'run-routes', policy_severity: 'CRITICAL' });
    const invalid = await storeException({
      run_id: 'run-routes',
      exception_type: 'INVALID_RECORD',
      diffs: [],
      target: null,
      reason: 'bad amount',
    });

    await triage(critical, d);
    await triage(invalid, d);

    expect((await stored(critical.exception_id)).triage).toMatchObject({ route: 'critical-amounts', model: STRONG });
    expect((await stored(invalid.exception_id)).triage).toMatchObject({
      route: 'invalid-rows',
      provider: 'rules',
      degraded: false,
    });
    expect(strong.calls).toEqual([critical.exception_id]);
    expect(cheap.calls).toEqual([]);
    // Nova Pro: $0.80 in, $3.20 out per million: 800 + 1,600.
    expect(await runCost('run-routes')).toEqual({ micro_usd: 2400, input_tokens: 1000, output_tokens: 500, calls: 1 });
  });

  it('keeps the policy severity when the model says lower: the stored severity and its index key stay', async () => {
    await storeRun('run-floor');
    const e = await storeException({ run_id: 'run-floor', policy_severity: 'HIGH' });
    cheap.severity = 'LOW';

    await triage(e, deps());

    const item = await stored(e.exception_id);
    expect(item.severity).toBe('HIGH');
    expect(item.triage).toMatchObject({ severity: 'HIGH', model_severity: 'LOW' });
    expect(item.policy_severity).toBe('HIGH');
    expect(item.gsi_severity).toBe(shardedValue('HIGH', exceptionShard(e.exception_id)));
  });

  it('raises the severity when the model says higher, and the by_severity key follows', async () => {
    await storeRun('run-raise');
    const e = await storeException({ run_id: 'run-raise', policy_severity: 'LOW' });
    cheap.severity = 'CRITICAL';

    await triage(e, deps());

    const item = await stored(e.exception_id);
    expect(item.severity).toBe('CRITICAL');
    expect(item.triage).toMatchObject({ severity: 'CRITICAL', model_severity: 'CRITICAL' });
    expect(item.policy_severity).toBe('LOW');
    expect(item.gsi_severity).toBe(shardedValue('CRITICAL', exceptionShard(e.exception_id)));
  });
});

describe('GET /usage and the run cost through the query API', () => {
  function call(deps: QueryApiDeps, method: string, path: string, query: Record<string, string> = {}) {
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: path,
      rawQueryString: new URLSearchParams(query).toString(),
      headers: {},
      ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
      requestContext: {
        http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
        requestId: 'r',
        routeKey: '$default',
        stage: '$default',
        timeEpoch: NOW,
      },
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEventV2;
    return createApiHandler(() => deps)(event, lambdaContext) as Promise<APIGatewayProxyStructuredResultV2>;
  }

  function apiDeps(budget: number | undefined, now: number): QueryApiDeps {
    return {
      store: queryStoreOf(dynamo),
      uploads: { presignPut: vi.fn() },
      healthChecks: [],
      embedder: embedder,
      exceptionsIndex: policyIndex,
      queues: { depths: vi.fn(async () => []) },
      usage: { queries: new DynamoUsageStore(dynamo.doc, dynamo.names.tables.usage), dailyBudgetMicroUsd: budget },
      paginationSecret: 'secret',
      corsOrigins: [],
      localIdentity: 'analyst',
      now: () => now,
    };
  }

  it('lists the last N UTC days, today first, with tokens, calls, the budget and what remains', async () => {
    const now = Date.parse('2031-03-02T10:00:00Z');
    const usage = new DynamoUsageStore(dynamo.doc, dynamo.names.tables.usage);
    await usage.add('2031-03-02', { micro_usd: 1_500_000, input_tokens: 10, output_tokens: 5, calls: 2 });
    await usage.add('2031-02-28', { micro_usd: 3_000_000, input_tokens: 20, output_tokens: 8, calls: 3 });

    const res = await call(apiDeps(2_000_000, now), 'GET', '/usage', { days: '3' });
    const body = JSON.parse(res.body as string) as UsageReport;

    expect(res.statusCode).toBe(200);
    expect(body.budget_micro_usd).toBe(2_000_000);
    expect(body.days).toEqual([
      {
        day: '2031-03-02',
        micro_usd: 1_500_000,
        input_tokens: 10,
        output_tokens: 5,
        calls: 2,
        budget_micro_usd: 2_000_000,
        remaining_micro_usd: 500_000,
      },
      {
        day: '2031-03-01',
        micro_usd: 0,
        input_tokens: 0,
        output_tokens: 0,
        calls: 0,
        budget_micro_usd: 2_000_000,
        remaining_micro_usd: 2_000_000,
      },
      {
        day: '2031-02-28',
        micro_usd: 3_000_000,
        input_tokens: 20,
        output_tokens: 8,
        calls: 3,
        budget_micro_usd: 2_000_000,
        remaining_micro_usd: 0,
      },
    ]);
    expect(body.total).toEqual({ micro_usd: 4_500_000, input_tokens: 30, output_tokens: 13, calls: 5 });
  });

  it('reports no budget as null, defaults to 7 days, and refuses a day count out of range', async () => {
    const deps = apiDeps(undefined, Date.parse('2031-03-02T10:00:00Z'));

    const body = JSON.parse((await call(deps, 'GET', '/usage')).body as string) as UsageReport;
    expect(body.days).toHaveLength(7);
    expect(body.days[0]).toMatchObject({ budget_micro_usd: null, remaining_micro_usd: null });

    for (const days of ['0', '91', 'x']) expect((await call(deps, 'GET', '/usage', { days })).statusCode).toBe(400);
  });

  it("shows the run's cost in the run detail and the run list", async () => {
    await storeRun('run-shown');
    await new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs).addCost('run-shown', {
      micro_usd: 105,
      input_tokens: 1000,
      output_tokens: 500,
      calls: 1,
    });
    const deps = apiDeps(undefined, NOW);

    const detail = JSON.parse((await call(deps, 'GET', '/runs/run-shown')).body as string) as RunRecord;
    const list = JSON.parse((await call(deps, 'GET', '/runs', { dataset: 'trades' })).body as string) as {
      items: RunRecord[];
    };

    const cost = { micro_usd: 105, input_tokens: 1000, output_tokens: 500, calls: 1 };
    expect(detail.cost).toEqual(cost);
    expect(list.items.find((r) => r.run_id === 'run-shown')?.cost).toEqual(cost);
  });
});

/** `tally usage`: per-day cost against the budget, and one run's cost, through a real API server. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { DynamoRunCosts, DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import { DynamoUsageStore } from '../../functions/shared/tables/usage-dynamo.ts';
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import { startApiServer, type ApiServer } from '../../scripts/local/api-server.ts';
import { usageCommand } from '../../scripts/cli/usage-cost.ts';
import { runsCommand } from '../../scripts/cli/runs.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

const NOW = Date.parse('2030-06-15T12:00:00Z');
let dynamo: TestDynamo;
let api: ApiServer;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const usage = new DynamoUsageStore(dynamo.doc, dynamo.names.tables.usage);
  await usage.add('2030-06-15', { micro_usd: 1_234_567, input_tokens: 4000, output_tokens: 900, calls: 7 });
  await usage.add('2030-06-13', { micro_usd: 5_000_000, input_tokens: 9000, output_tokens: 2000, calls: 20 });
  const ref = { bucket: 'b', key: 'k', etag: 'e' };
  await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request({
    run_id: 'run-cli-cost',
    dataset: 'trades',
    business_date: '2030-06-15',
    source: ref,
    target: ref,
    status: 'COMPLETED',
    requested_at: '2030-06-15T08:00:00Z',
    requested_by: 'test',
  } as RunRecord);
  // A run whose three planned triages the rules answered: no model call, no cost.
  await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request({
    run_id: 'run-cli-rules',
    dataset: 'trades',
    business_date: '2030-06-14',
    source: ref,
    target: ref,
    status: 'COMPLETED',
    requested_at: '2030-06-14T08:00:00Z',
    requested_by: 'test',
    triage_plan: { patterns: 1, singletons: 2, members: 5 },
  } as RunRecord);
  await new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs).addCost('run-cli-cost', {
    micro_usd: 210,
    input_tokens: 2000,
    output_tokens: 1000,
    calls: 2,
  });
  const deps: QueryApiDeps = {
    store: queryStoreOf(dynamo),
    uploads: { presignPut: vi.fn() },
    healthChecks: [],
    embedder: { id: 'fake', dimensions: 2, embed: async (texts) => texts.map(() => [1, 0]) },
    exceptionsIndex: {} as QueryApiDeps['exceptionsIndex'],
    queues: { depths: async () => [] },
    usage: { queries: usage, dailyBudgetMicroUsd: 2_000_000 },
    paginationSecret: 'cli-usage-secret',
    corsOrigins: ['*'],
    localIdentity: 'local-analyst',
    now: () => NOW,
  };
  api = await startApiServer({ handler: createHandler(() => deps), host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await api?.stop();
  await dynamo?.stop();
});

function capture() {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t), isTTY: false, columns: 100 },
    env: { TALLY_API_URL: api.url },
  };
  return { io, out: () => out, err: () => err };
}

describe('tally usage', () => {
  it('prints each day, today first, with its cost in dollars and what is left of the budget', async () => {
    const c = capture();

    expect(await usageCommand(['--days', '3'], c.io)).toBe(0);

    const lines = c.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DAY\s+COST\s+CALLS\s+INPUT TOKENS\s+OUTPUT TOKENS\s+BUDGET LEFT$/);
    expect(lines[1]).toMatch(/^2030-06-15\s+\$1\.234567\s+7\s+4000\s+900\s+\$0\.765433$/);
    expect(lines[2]).toMatch(/^2030-06-14\s+\$0\.000000\s+0\s+0\s+0\s+\$2\.000000$/);
    expect(lines[3]).toMatch(/^2030-06-13\s+\$5\.000000\s+20\s+9000\s+2000\s+\$0\.000000$/);
    expect(c.err()).toContain('3 day(s): $6.234567 in all; daily budget $2.000000');
  });

  it("prints the API's JSON for scripts", async () => {
    const c = capture();

    expect(await usageCommand(['--json'], c.io)).toBe(0);

    const body = JSON.parse(c.out());
    expect(body.days).toHaveLength(7);
    expect(body.total).toEqual({ micro_usd: 6_234_567, input_tokens: 13000, output_tokens: 2900, calls: 27 });
  });

  it("prints one run's cost", async () => {
    const c = capture();

    expect(await usageCommand(['--run', 'run-cli-cost'], c.io)).toBe(0);

    expect(c.out()).toBe('run-cli-cost: $0.000210 for 2 model call(s), 2000 input and 1000 output tokens\n');
  });

  it("says a run's planned triages the rules answered cost no model call, as `runs` shows them side by side", async () => {
    const cost = capture();
    const runs = capture();

    expect(await usageCommand(['--run', 'run-cli-rules'], cost.io)).toBe(0);
    expect(await runsCommand(['--dataset', 'trades', '--date', '2030-06-14'], runs.io)).toBe(0);

    expect(cost.out()).toBe(
      'run-cli-rules: $0.000000 for 0 model call(s), 0 input and 0 output tokens (3 triages planned: the rest were answered by the rules, or are still to come)\n',
    );
    const [header, row] = runs.out().trimEnd().split('\n');
    expect(header).toMatch(/\bTRIAGES\s+MODEL CALLS$/);
    expect(row).toMatch(/^run-cli-rules\s.*\s3 \(1 patterns \+ 2 singletons\)\s+0$/);
  });

  it('rejects bad usage before calling the API, reports a missing run, and prints help', async () => {
    await expect(usageCommand(['--days', '91'], capture().io)).rejects.toThrow(
      /--days must be an integer from 1 to 90/,
    );
    await expect(usageCommand(['--run', 'r', '--days', '2'], capture().io)).rejects.toThrow(/do not go together/);
    await expect(usageCommand(['extra'], capture().io)).rejects.toThrow(/takes no arguments/);
    const missing = capture();
    expect(await usageCommand(['--run', 'run-nowhere'], missing.io)).toBe(1);
    expect(missing.err()).toMatch(/no run with id run-nowhere/);
    const help = capture();
    expect(await usageCommand(['--help'], help.io)).toBe(0);
    expect(help.out()).toContain('Usage: tally usage');
  });
});

/**
 * The Athena runner without Athena: the statements a run executes, the step machine that carries
 * it through re-enqueued check messages (polling never holds a Lambda), and the Trino SQL kept
 * free of DuckDB-only functions. (Athena itself cannot run here: the SQL's Trino features are
 * listed in athena.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { parseReconPolicy, requiredColumns, type ReconPolicy } from '../../functions/shared/policy.ts';
import {
  advanceAthenaRun,
  athenaCheckSchema,
  AthenaQueryError,
  AthenaUnsupportedError,
  continueAthenaRun,
  delayFor,
  firstCheck,
  planAthenaRun,
  type AthenaCheck,
  type AthenaPort,
  type QueryState,
} from '../../functions/recon/sql/athena.ts';
import { compileRecon } from '../../functions/recon/sql/compile.ts';
import { trino } from '../../functions/recon/sql/dialect.ts';
import type { TextRow } from '../../functions/recon/sql/summary.ts';

const policyAt = (path: string) => parseReconPolicy(readFileSync(join(REPO_ROOT, path), 'utf8'));
const payments = policyAt('policies/datasets/payments.md');
const trades = policyAt('policies/datasets/trades.md');

function layouts(policy: ReconPolicy) {
  return {
    source: { header: [...requiredColumns(policy, 'source'), 'note'] },
    target: { header: requiredColumns(policy, 'target') },
  };
}

const request = {
  run_id: 'run-7f3a',
  dataset: 'payments',
  business_date: '2025-12-05',
  source: { bucket: 'data', key: 'incoming/payments/2025-12-05/source.csv', etag: 'e1' },
  target: { bucket: 'data', key: 'incoming/payments/2025-12-05/target.jsonl', etag: 'e2' },
};

function plan(policy: ReconPolicy = payments, attempt?: string) {
  return planAthenaRun({
    runId: request.run_id,
    policy,
    layouts: layouts(policy),
    source: request.source,
    target: request.target,
    bucket: 'data',
    ...(attempt === undefined ? {} : { attempt }),
  });
}

/** Athena as a script: each started query runs for `runningPolls` checks, then ends in `outcome`. */
class FakeAthena implements AthenaPort {
  readonly started: { sql: string; database: string | undefined }[] = [];
  private readonly polls = new Map<string, number>();
  private readonly runningPolls: number;
  private readonly outcome: (sql: string) => { state: QueryState; reason?: string };
  private readonly results: (sql: string) => TextRow[];
  constructor(
    runningPolls = 1,
    outcome: (sql: string) => { state: QueryState; reason?: string } = () => ({ state: 'SUCCEEDED' }),
    results: (sql: string) => TextRow[] = () => [],
  ) {
    this.runningPolls = runningPolls;
    this.outcome = outcome;
    this.results = results;
  }
  async start(sql: string, database: string | undefined): Promise<string> {
    this.started.push({ sql, database });
    const id = `q${this.started.length}`;
    this.polls.set(id, 0);
    return id;
  }
  async status(id: string): Promise<{ state: QueryState; reason?: string }> {
    const n = this.polls.get(id) ?? 0;
    this.polls.set(id, n + 1);
    if (n < this.runningPolls) return { state: 'RUNNING' };
    return this.outcome(this.sqlOf(id));
  }
  async rows(id: string): Promise<TextRow[]> {
    return this.results(this.sqlOf(id));
  }
  private sqlOf(id: string): string {
    return this.started[Number(id.slice(1)) - 1]?.sql ?? '';
  }
}

describe('the statements of a run on Athena', () => {
  it('creates the run database, reads each side from its own object, stages by CTAS, UNLOADs the findings, drops it all', () => {
    // Act
    const p = plan();
    // Assess
    const names = p.steps.map((s) => s.name);
    expect(names.slice(0, 5)).toEqual(['database', 's_file', 's_raw', 't_file', 't_raw']);
    expect(names.slice(-7)).toEqual([
      'unload',
      'summary_counts',
      'summary_exceptions',
      'summary_fieldStats',
      'summary_controlTotals',
      'summary_amountTotals',
      'drop',
    ]);
    expect(names).toEqual(expect.arrayContaining(['pairs', 'cmp', 'findings']));
    expect(p.database).toBe('tally_run_run_7f3a');
    const step = (name: string) => p.steps.find((s) => s.name === name)?.sql ?? '';
    expect(step('s_file')).toContain("LOCATION 's3://data/incoming/payments/2025-12-05/'");
    expect(step('s_file')).toContain("'separatorChar' = ';'");
    expect(step('s_raw')).toContain(`"$path" = 's3://data/incoming/payments/2025-12-05/source.csv'`);
    expect(step('t_raw')).toContain(`"$path" = 's3://data/incoming/payments/2025-12-05/target.jsonl'`);
    expect(step('cmp')).toContain("external_location = 's3://data/athena/run-7f3a/cmp/'");
    expect(step('unload')).toBe(
      "UNLOAD (SELECT finding FROM findings) TO 's3://data/results/run-7f3a/' WITH (format = 'TEXTFILE', compression = 'GZIP')",
    );
    expect(p.resultsPrefix).toBe('results/run-7f3a/');
    expect(step('drop')).toBe('DROP DATABASE IF EXISTS `tally_run_run_7f3a` CASCADE');
    expect(
      p.steps.filter((s) => s.name !== 'database' && s.name !== 'drop').every((s) => s.database === p.database),
    ).toBe(true);
  });

  it('leaves out the summary queries a policy does not need', () => {
    const names = plan(trades).steps.map((s) => s.name);
    expect(names).not.toContain('summary_controlTotals');
    expect(names).not.toContain('summary_amountTotals');
  });

  it('refuses what OpenCSVSerde cannot read (Latin-1) and Parquet sides', () => {
    const latin = parseReconPolicy(
      readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8').replace(
        '"source": { "format": "csv" }',
        '"source": { "format": "csv", "encoding": "latin-1" }',
      ),
    );
    const parquet = parseReconPolicy(
      readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8').replace(
        '"target": { "format": "csv" }',
        '"target": { "format": "parquet" }',
      ),
    );
    expect(() => plan(latin)).toThrow(AthenaUnsupportedError);
    expect(() => plan(parquet)).toThrow(/Parquet/);
  });

  it('writes Trino: none of the DuckDB-only functions the DuckDB dialect uses', () => {
    for (const policy of [payments, trades]) {
      const compiled = compileRecon(policy, layouts(policy), trino);
      const sql = [
        ...compiled.stages.map((s) => s.sql),
        compiled.counts,
        compiled.fieldStats,
        compiled.controlTotals ?? '',
        compiled.amountTotals ?? '',
        ...plan(policy).steps.map((s) => s.sql),
      ].join('\n');
      for (const duckdbOnly of [
        'regexp_full_match',
        'json_object(',
        'list_filter',
        'list_transform',
        'lambda x',
        'arg_max',
        'to_json(',
        'len(',
        'json_valid',
        'json_type',
        'json_extract_string',
        'read_csv',
      ])
        expect({ duckdbOnly, found: sql.includes(duckdbOnly) }).toEqual({ duckdbOnly, found: false });
      expect(sql).toContain('regexp_like(');
    }
  });
});

describe('a run carried by check messages', () => {
  const policy = payments;
  const headers = { source: layouts(policy).source.header, target: layouts(policy).target.header };

  it('starts each statement after the last succeeded, waiting between checks, then reads the summary', async () => {
    // Prepare: every query runs for one check; the summary queries answer with canned rows.
    const athena = new FakeAthena(
      1,
      () => ({ state: 'SUCCEEDED' }),
      (sql) => {
        if (sql.includes('AS rows_s'))
          return [
            {
              rows_s: '10',
              rows_t: '9',
              rejected_s: '1',
              rejected_t: '0',
              valid_keys: '10',
              attached: '1',
              matched: '7',
            },
          ];
        if (sql.includes('GROUP BY type'))
          return [
            { type: 'AMOUNT_MISMATCH', n: '1' },
            { type: 'MISSING_IN_TARGET', n: '1' },
            { type: 'INVALID_RECORD', n: '1' },
          ];
        if (sql.includes('AS total'))
          return [
            { side: 'source', total: '100.50000000000000000', scale: '2' },
            { side: 'target', total: '90.25000000000000000', scale: '2' },
          ];
        return [];
      },
    );
    const sent: { check: AthenaCheck; delay: number }[] = [];
    const queue = { sendDelayed: async (check: AthenaCheck, delay: number) => void sent.push({ check, delay }) };
    let check = firstCheck(request, headers, 1_000);
    // Act: deliver each re-enqueued check, as the recon queue would.
    let done;
    for (let i = 0; i < 200 && done === undefined; i++) {
      const advance = await continueAthenaRun(athenaCheckSchema.parse(JSON.parse(JSON.stringify(check))), policy, {
        bucket: 'data',
        athena,
        queue,
        now: () => 61_000,
      });
      if (advance.action === 'done') done = advance;
      else check = advance.check;
    }
    // Assess: the plan of the run's attempt (its first check's start time).
    const steps = plan(policy, '1000').steps;
    expect(athena.started.map((s) => s.sql)).toEqual(steps.map((s) => s.sql));
    expect(athena.started.map((s) => s.database)).toEqual(steps.map((s) => s.database));
    // One check per start and one per running poll: never a wait inside the function.
    expect(sent).toHaveLength(steps.length * 2);
    expect(sent.every((s) => s.delay >= 5 && s.delay <= 60)).toBe(true);
    expect(done?.resultsPrefix).toBe('results/run-7f3a/1000/');
    expect(steps[0]?.sql).toBe('CREATE DATABASE IF NOT EXISTS `tally_run_run_7f3a_1000`');
    expect(steps.find((s) => s.name === 'cmp')?.sql).toContain(
      "external_location = 's3://data/athena/run-7f3a/1000/cmp/'",
    );
    expect(done?.summary).toMatchObject({
      rows: { source: 10, target: 9 },
      matched: 7,
      keys: 10,
      keys_with_exception: 3,
      exceptions: { AMOUNT_MISMATCH: 1, MISSING_IN_TARGET: 1, INVALID_RECORD: 1 },
      amount_totals: { source: '100.50', target: '90.25', net_difference: '10.25' },
      outcome: 'FAIL',
      duration_ms: 60_000,
    });
  });

  it('waits longer the longer a query runs, up to a minute', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map(delayFor)).toEqual([5, 10, 20, 40, 60, 60, 60]);
  });

  it('fails the run naming the step when a query fails', async () => {
    const athena = new FakeAthena(0, (sql) =>
      sql.startsWith('CREATE TABLE cmp') ? { state: 'FAILED', reason: 'HIVE_BAD_DATA' } : { state: 'SUCCEEDED' },
    );
    let check = firstCheck(request, headers, 0);
    const run = async () => {
      for (;;) {
        const advance = await advanceAthenaRun(check, policy, 'data', athena, () => 0);
        if (advance.action === 'done') return advance;
        check = advance.check;
      }
    };
    await expect(run()).rejects.toThrow(new AthenaQueryError('cmp', 'HIVE_BAD_DATA'));
  });
});

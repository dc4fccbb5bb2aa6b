/**
 * `tally recon --engine sql`: the policy compiled to SQL on embedded DuckDB gives the same
 * exceptions (same ids: same type and key) as the in-memory engine, except that an invalid row is
 * identified by a digest of its fields rather than its line; `--engine auto` picks the SQL engine
 * above the policy's `engine.large_above_bytes`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

const run = promisify(execFile);
const tally = join(REPO_ROOT, 'scripts/cli/tally.ts');
const policy = join(REPO_ROOT, 'policies/datasets/payments.md');
const files = [
  '--source',
  join(REPO_ROOT, 'scripts/local/sample/payments/source.csv'),
  '--target',
  join(REPO_ROOT, 'scripts/local/sample/payments/target.jsonl'),
];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function recon(...args: string[]): Promise<Outcome> {
  return run(process.execPath, [tally, 'recon', ...args, '--date', '2025-12-05']).then(
    (r) => ({ code: 0, ...r }),
    (e: Outcome) => e,
  );
}

interface ExceptionLine {
  exception_id: string;
  exception_type: string;
  lines: { source: number[]; target: number[] };
  reason?: string;
}

const records = (o: Outcome) =>
  o.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ExceptionLine);

describe('tally recon --engine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-cli-sql-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sql gives the same exceptions and summary as memory, without line numbers', async () => {
    // Act
    const memory = await recon('--policy', policy, ...files);
    const sql = await recon('--policy', policy, ...files, '--engine', 'sql');
    // Assess
    expect(memory.code).toBe(1);
    expect(sql.code).toBe(1);
    const ids = (o: Outcome) =>
      records(o)
        .filter((r) => r.exception_type !== 'INVALID_RECORD')
        .map((r) => r.exception_id)
        .sort();
    expect(ids(sql)).toEqual(ids(memory));
    expect(ids(sql).length).toBeGreaterThan(3);
    expect(
      records(sql)
        .map((r) => r.exception_type)
        .sort(),
    ).toEqual(
      records(memory)
        .map((r) => r.exception_type)
        .sort(),
    );
    expect(records(sql).every((r) => r.lines.source.length === 0 && r.lines.target.length === 0)).toBe(true);
    expect(records(sql).every((r) => r.reason?.includes('line numbers are not known to the SQL engine'))).toBe(true);
    const summary = (o: Outcome) => {
      const {
        duration_ms: _d,
        exceptions,
        ...rest
      } = (JSON.parse(o.stderr.trim()) as { summary: Record<string, unknown> }).summary;
      return { ...rest, exceptions: Object.fromEntries(Object.entries(exceptions as object).sort()) };
    };
    expect(summary(sql)).toEqual(summary(memory));
  });

  it('auto takes the SQL engine above the policy engine.large_above_bytes, memory below it', async () => {
    // Prepare: the payments policy with a limit below and one above the sample's size.
    const text = readFileSync(policy, 'utf8');
    const withLimit = (bytes: number) => {
      const path = join(dir, `payments-${bytes}.md`);
      writeFileSync(
        path,
        text.replace('"dataset": "payments",', `"dataset": "payments", "engine": { "large_above_bytes": ${bytes} },`),
      );
      return path;
    };
    // Act
    const small = await recon('--policy', withLimit(100), ...files, '--engine', 'auto');
    const large = await recon('--policy', withLimit(100_000_000), ...files, '--engine', 'auto');
    // Assess
    expect(records(small).every((r) => r.lines.source.length === 0 && r.lines.target.length === 0)).toBe(true);
    expect(records(large).some((r) => r.lines.source.length > 0)).toBe(true);
  });

  it("says when a side is read by the in-memory engine's reader instead of DuckDB's, and why", async () => {
    // Prepare: the sample source with a blank line before its header, which DuckDB would take as it.
    const source = join(dir, 'blank-first.csv');
    writeFileSync(source, `\n${readFileSync(files[1] as string, 'utf8')}`);
    // Act
    const sql = await recon('--policy', policy, '--source', source, '--target', files[3] as string, '--engine', 'sql');
    // Assess
    expect(sql.code).toBe(1);
    expect(sql.stderr.split('\n')[0]).toBe(
      `tally recon: note: source read by the in-memory engine's reader, not DuckDB's (slower): ${source}: blank lines before the header`,
    );
    expect(sql.stderr).not.toContain('target read by');
  });

  it('refuses an unknown engine with exit 2', async () => {
    const bad = await recon('--policy', policy, ...files, '--engine', 'spark');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--engine must be one of memory, sql, auto, got "spark"');
  });
});

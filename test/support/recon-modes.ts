/**
 * `reconcile` for the engine's tests, run in memory and again partitioned (under memory budgets
 * that make the engine spill at its first row, part-way through the source, and part-way through
 * the target): the partitioned runs must give the same findings (as a multiset: they come
 * partition by partition) and the same summary, or fail with the same error, and leave nothing in
 * their temporary directory. Returns the in-memory result, so a test's own assertions still hold.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import * as engine from '../../functions/recon/engine.ts';
import type { Finding, ReconInput, ReconOptions, ReconResult } from '../../functions/recon/engine.ts';
import type { ReconPolicy } from '../../functions/shared/policy.ts';

type Chunk = Uint8Array | string;

/** Spilling opens and removes many small files: on tmpfs when there is one (ext4 here is ~3x slower). */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** A stream read once into memory, replayable chunk for chunk (and error for error). */
async function replayable(input: ReconInput): Promise<{ again: () => ReconInput; bytes: number }> {
  const chunks: Chunk[] = [];
  let failure: unknown;
  let failed = false;
  try {
    for await (const chunk of input.stream) chunks.push(chunk);
  } catch (error) {
    failure = error;
    failed = true;
  }
  async function* replay(): AsyncGenerator<Chunk> {
    for (const chunk of chunks) yield chunk;
    if (failed) throw failure;
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  return { again: () => ({ name: input.name, stream: replay() }), bytes };
}

export const sortedFindings = (findings: readonly Finding[]): string[] => findings.map((f) => JSON.stringify(f)).sort();

export function withoutDuration(summary: ReconResult['summary']): Omit<ReconResult['summary'], 'duration_ms'> {
  const { duration_ms: _, ...rest } = summary;
  return rest;
}

/** Runs partitioned under `budget`; whether it spilled (seen from the sink) and what it found. */
export async function reconcilePartitioned(
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  budget: number,
): Promise<{ result: ReconResult; spilled: boolean }> {
  const dir = mkdtempSync(join(TMP, 'tally-modes-'));
  try {
    const findings: Finding[] = [];
    let spilled = false;
    try {
      const summary = await engine.reconcileInto(
        source,
        target,
        policy,
        (f) => {
          // Findings of a partitioned run are emitted while its partition files exist.
          if (findings.length === 0) spilled = readdirSync(dir).length > 0;
          findings.push(f);
        },
        { memoryBudgetBytes: budget, tmpDir: dir },
      );
      return { result: { findings, summary }, spilled };
    } finally {
      expect(readdirSync(dir), 'temporary files left behind').toEqual([]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Drop-in for the engine's `reconcile` that checks the partitioned mode against it. */
export async function reconcile(
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  options?: ReconOptions,
): Promise<ReconResult> {
  const [s, t] = await Promise.all([replayable(source), replayable(target)]);
  let memory: ReconResult | undefined;
  let memoryError: unknown;
  try {
    memory = await engine.reconcile(s.again(), t.again(), policy, options);
  } catch (error) {
    memoryError = error;
  }
  // Spill at the first row; about half-way through the source; about half-way through the target.
  const budgets = [1, s.bytes + 40 * Math.ceil(s.bytes / 60), 2 * s.bytes + 60 * t.bytes];
  for (const budget of budgets) {
    let partitioned: { result: ReconResult; spilled: boolean } | undefined;
    let error: unknown;
    try {
      partitioned = await reconcilePartitioned(s.again(), t.again(), policy, budget);
    } catch (e) {
      error = e;
    }
    if (memory === undefined) {
      expect(error, `budget ${budget}: the same failure`).toEqual(memoryError);
      expect((error as Error).constructor).toBe((memoryError as Error).constructor);
      continue;
    }
    if (partitioned === undefined) throw error;
    const { result } = partitioned;
    expect(sortedFindings(result.findings), `budget ${budget}: the same findings`).toEqual(
      sortedFindings(memory.findings),
    );
    expect(withoutDuration(result.summary), `budget ${budget}: the same summary`).toEqual(
      withoutDuration(memory.summary),
    );
    // Seen from the sink, so only when there are findings; the budget is looked at before a row
    // is held and once the source is in, so a lone target row is held without spilling.
    if (budget === 1 && result.findings.length > 0 && memory.summary.rows.source > 0)
      expect(partitioned.spilled, 'a budget of 1 byte partitions').toBe(true);
  }
  if (memory === undefined) throw memoryError;
  return memory;
}

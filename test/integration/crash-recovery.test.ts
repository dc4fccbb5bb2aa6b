/**
 * Recovery without a person: for each phase of the pipeline, the local stack runs in a child
 * process that is killed (SIGKILL, at a named point: functions/shared/crash-point.ts) in the
 * middle of it; a new process on the same data directory must reach exactly the state an
 * uninterrupted run reaches — files, runs, exceptions by type and status, every listing (GSI)
 * equal to the base table, all triaged and searchable, queues and DLQs empty — with no command
 * typed (the restart re-sends only uploads the client never saw acknowledged).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRASH_AT_ENV, type CrashPoint } from '../../functions/shared/crash-point.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

const CHILD = join(REPO_ROOT, 'test/support/crash-child.ts');

interface Snapshot {
  files: unknown[];
  runs: unknown[];
  exceptions: { id: string; triaged: boolean }[];
  listings: Record<string, { listed: string[]; expected: string[] }>;
  counts: {
    exceptions: Record<string, number>;
    triaged: number;
    searchable: number;
    policy_passages: number;
    queues: Record<string, { visible: number; inFlight: number; dlq: number }>;
  };
}

function runChild(
  dataDir: string,
  crashAt?: CrashPoint,
): Promise<{ signal: string | null; code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' };
    delete env[CRASH_AT_ENV];
    if (crashAt) env[CRASH_AT_ENV] = crashAt;
    const child = spawn(process.execPath, [CHILD, dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
}

function snapshotOf(run: { code: number | null; out: string; err: string }): Snapshot {
  if (run.code !== 0) throw new Error(`the stack exited with ${run.code}:\n${run.err.slice(-3000)}`);
  return JSON.parse(run.out.trim().split('\n').at(-1) as string) as Snapshot;
}

const PHASES: readonly CrashPoint[] = [
  'upload:recorded',
  'ingest:indexing',
  'ingest:recorded',
  'recon:claimed',
  'recon:storing',
  'store:chunk',
  'store:completed',
  'triage:handled',
];

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-crash-'));
  dirs.push(dir);
  return dir;
};

let baseline: Snapshot;
const recovered = new Map<CrashPoint, { killed: string | null; snapshot: Snapshot }>();

beforeAll(async () => {
  // Independent data directories: the phases run side by side, two at a time.
  const jobs = [
    async () => {
      baseline = snapshotOf(await runChild(tempDir()));
    },
    ...PHASES.map((phase) => async () => {
      const dir = tempDir();
      const crashed = await runChild(dir, phase);
      recovered.set(phase, { killed: crashed.signal, snapshot: snapshotOf(await runChild(dir)) });
    }),
  ];
  await Promise.all(
    [0, 1].map(async () => {
      for (let job = jobs.shift(); job; job = jobs.shift()) await job();
    }),
  );
  // Nine phases: two child stacks each, two at a time (~100 s on a quiet machine, 244 s at load 20).
}, 360_000);

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function expectWhole(s: Snapshot) {
  for (const [index, { listed, expected }] of Object.entries(s.listings)) expect(listed, index).toEqual(expected);
  expect(s.exceptions.length).toBeGreaterThan(0);
  expect(s.exceptions.every((e) => e.triaged)).toBe(true);
  expect(s.counts.searchable).toBe(s.exceptions.length);
  for (const [queue, depth] of Object.entries(s.counts.queues))
    expect(depth, queue).toEqual({ visible: 0, inFlight: 0, dlq: 0 });
}

describe('a local stack killed at any moment recovers by itself', () => {
  it('the uninterrupted run is whole: every listing equals its table, all triaged and searchable', () => {
    expectWhole(baseline);
    expect(Object.keys(baseline.counts.exceptions).sort()).toEqual(['AMOUNT_MISMATCH', 'MISSING_IN_TARGET']);
  });

  it.each(PHASES)('killed at %s, a restart reaches the uninterrupted state', (phase) => {
    const { killed, snapshot } = recovered.get(phase) as { killed: string | null; snapshot: Snapshot };

    expect(killed).toBe('SIGKILL');
    expectWhole(snapshot);
    expect(snapshot.files).toEqual(baseline.files);
    expect(snapshot.runs).toEqual(baseline.runs);
    expect(snapshot.exceptions).toEqual(baseline.exceptions);
    expect(snapshot.counts.exceptions).toEqual(baseline.counts.exceptions);
    expect(snapshot.counts.policy_passages).toBe(baseline.counts.policy_passages);
  });
});

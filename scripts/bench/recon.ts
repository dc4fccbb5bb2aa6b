/**
 * `npm run bench:recon`: reconciles generated 1M-row source/target pairs with Tally's engine and
 * with DuckDB, each in its own child process, and prints them side by side. Two cases: trades
 * (comma CSV on both sides, the short-form policy) and payments (the hub's `;` CSV with decimal
 * commas against JSON Lines, mapped columns, relative tolerance, dates a day apart, equivalents).
 *
 * A measurement, not a test: it exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { EXCEPTION_TYPES } from '../../functions/shared/types.ts';
import { generatePair } from './generate.ts';
import { generatePayments } from './generate-payments.ts';
// The engines are imported only by the child that runs them, so neither child's peak RSS includes
// the other engine (DuckDB's native library alone is tens of megabytes).

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DATA_DIR = `${REPO_ROOT}bench-data`;
const SEED = 42;
const PAYMENTS_SEED = 7;

type CaseName = 'trades' | 'payments';
const CASES: Record<CaseName, { policy: string; source: string; target: string; maxRatio: number }> = {
  trades: {
    policy: `${REPO_ROOT}policies/recon-policy.md`,
    source: `${DATA_DIR}/source.csv`,
    target: `${DATA_DIR}/target.csv`,
    maxRatio: 1.3,
  },
  payments: {
    policy: `${REPO_ROOT}policies/datasets/payments.md`,
    source: `${DATA_DIR}/payments-source.csv`,
    target: `${DATA_DIR}/payments-target.jsonl`,
    maxRatio: Infinity,
  },
};
/** V8 flags for the Tally child: none (a larger young generation made no measurable difference). */
const TALLY_NODE_FLAGS: string[] = [];

const help = `Usage: npm run bench:recon -- [options]

Generates (once, seeded) source/target extract pairs with about 1% of each exception kind into
bench-data/, then reconciles each with Tally's engine and with DuckDB, each in its own child
process, and prints time, throughput, peak RSS and exception counts side by side.

Cases: trades (comma CSV both sides, policies/recon-policy.md) and payments (';' CSV with decimal
commas and DD/MM/YYYY dates against JSON Lines, policies/datasets/payments.md).

Options:
  --case NAME   trades, payments or all                                       [default: all]
  --trades N    rows to generate per case                                 [default: 1000000]
  --runs N      runs per engine, alternating; the median run is reported        [default: 3]
  -h, --help    show this help

The files are reused when bench-data/ already holds a pair for the same row count.
Targets: trades within 1.3x of DuckDB's time; peak RSS < 1 GB for every engine and case; the
payments case reports its ratio. Always exits 0.
`;

interface ChildResult {
  readonly engine: string;
  readonly ms: number;
  readonly maxRssMb: number;
  readonly rows: { source: number; target: number };
  readonly records: number;
  readonly exceptions: Record<string, number>;
  readonly note?: string;
}

interface Manifest {
  readonly trades: number;
  readonly seed: number;
  readonly planted: Record<string, number>;
}

async function loadPolicy(name: CaseName): Promise<ReconPolicy> {
  const path = CASES[name].policy;
  return parseReconPolicy(await readFile(path, 'utf8'), path);
}

/** Child: Tally's engine, from opening the files to every exception record serialised. */
async function runTally(name: CaseName, sourcePath: string, targetPath: string): Promise<ChildResult> {
  const { reconcile } = await import('../../functions/recon/engine.ts');
  const { toExceptionRecord } = await import('../../functions/recon/exception-record.ts');
  const policy = await loadPolicy(name);
  const ctx = { runId: 'bench', dataset: 'bench', businessDate: '2026-01-02', now: '2026-01-02T00:00:00.000Z' };
  const started = performance.now();
  const { findings, summary } = await reconcile(
    { name: sourcePath, stream: createReadStream(sourcePath) },
    { name: targetPath, stream: createReadStream(targetPath) },
    policy,
  );
  const records: string[] = new Array<string>(findings.length);
  for (let i = 0; i < findings.length; i++) records[i] = JSON.stringify(toExceptionRecord(findings[i]!, ctx));
  const ms = performance.now() - started;
  // Outside the timing: every input row is accounted for exactly once.
  let sLines = 0;
  let tLines = 0;
  for (const f of findings) {
    sLines += f.lines.source.length;
    tLines += f.lines.target.length;
  }
  const balanced = summary.rows.source === summary.matched + sLines && summary.rows.target === summary.matched + tLines;
  return {
    engine: 'tally',
    ms,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    rows: summary.rows,
    records: records.length,
    exceptions: summary.exceptions as Record<string, number>,
    ...(balanced
      ? {}
      : {
          note: `row accounting does not balance: rows ${JSON.stringify(summary.rows)}, matched ${summary.matched}, finding lines ${sLines}/${tLines}`,
        }),
  };
}

async function runDuckdb(name: CaseName, sourcePath: string, targetPath: string): Promise<ChildResult> {
  const result =
    name === 'trades'
      ? await (await import('./duckdb-query.ts')).duckdbReconcile(sourcePath, targetPath, await loadPolicy(name))
      : await (
          await import('./duckdb-payments.ts')
        ).duckdbReconcilePayments(sourcePath, targetPath, await loadPolicy(name));
  return {
    engine: 'duckdb',
    ms: result.ms,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    rows: result.rows,
    records: result.records,
    exceptions: result.exceptions,
  };
}

function runChild(
  name: CaseName,
  engine: string,
  flags: string[],
  sourcePath: string,
  targetPath: string,
): Promise<ChildResult> {
  const args = [
    ...flags,
    fileURLToPath(import.meta.url),
    '--case',
    name,
    '--child',
    engine,
    '--source',
    sourcePath,
    '--target',
    targetPath,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${engine} child exited with status ${code}`));
      try {
        resolve(JSON.parse(last) as ChildResult);
      } catch {
        reject(new Error(`${engine} child printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

async function ensureData(name: CaseName, trades: number): Promise<Manifest> {
  mkdirSync(DATA_DIR, { recursive: true });
  const manifestPath = `${DATA_DIR}/${name === 'trades' ? 'manifest' : 'manifest-payments'}.json`;
  const seed = name === 'trades' ? SEED : PAYMENTS_SEED;
  if (existsSync(manifestPath) && existsSync(CASES[name].source) && existsSync(CASES[name].target)) {
    try {
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
      if (manifest.trades === trades && manifest.seed === seed) {
        console.log(`Reusing bench-data/ (${trades.toLocaleString('en-US')} ${name}, seed ${seed}).`);
        return manifest;
      }
    } catch {
      // regenerate
    }
  }
  rmSync(manifestPath, { force: true }); // an interrupted run must not leave a manifest for other files
  console.log(`Generating ${trades.toLocaleString('en-US')} ${name} into bench-data/ (seed ${seed})...`);
  const t0 = performance.now();
  const pair =
    name === 'trades' ? await generatePair(DATA_DIR, trades, seed) : await generatePayments(DATA_DIR, trades, seed);
  const manifest: Manifest = { trades, seed, planted: pair.planted };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`Generated in ${((performance.now() - t0) / 1000).toFixed(1)} s.`);
  return manifest;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      trades: { type: 'string' },
      runs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      child: { type: 'string' },
      case: { type: 'string' },
      source: { type: 'string' },
      target: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const caseOption = values.case ?? 'all';
  if (caseOption !== 'all' && caseOption !== 'trades' && caseOption !== 'payments') {
    process.stderr.write(`--case must be trades, payments or all, got "${caseOption}"\n\n${help}`);
    return 2;
  }
  if (values.child) {
    const name = caseOption === 'all' ? 'trades' : caseOption;
    const result =
      values.child === 'tally'
        ? await runTally(name, values.source!, values.target!)
        : await runDuckdb(name, values.source!, values.target!);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const trades = values.trades === undefined ? 1_000_000 : Number(values.trades);
  if (!Number.isSafeInteger(trades) || trades < 1) {
    process.stderr.write(`--trades must be a positive integer, got "${values.trades}"\n\n${help}`);
    return 2;
  }
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    process.stderr.write(`--runs must be a positive integer, got "${values.runs}"\n\n${help}`);
    return 2;
  }
  const names: CaseName[] = caseOption === 'all' ? ['trades', 'payments'] : [caseOption];
  for (const name of names) await benchCase(name, await ensureData(name, trades), trades, runs);
  return 0;
}

async function benchCase(name: CaseName, manifest: Manifest, trades: number, runs: number): Promise<void> {
  const { source: sourcePath, target: targetPath, maxRatio } = CASES[name];
  console.log(`\n== ${name} ==`);

  // Alternate the engines so that a noisy neighbour on the machine affects both alike.
  const tallyRuns: ChildResult[] = [];
  const duckRuns: ChildResult[] = [];
  for (let i = 1; i <= runs; i++) {
    const t = await runChild(name, 'tally', TALLY_NODE_FLAGS, sourcePath, targetPath);
    tallyRuns.push(t);
    const d = await runChild(name, 'duckdb', [], sourcePath, targetPath);
    duckRuns.push(d);
    console.log(`run ${i}/${runs}: tally ${(t.ms / 1000).toFixed(2)} s, duckdb ${(d.ms / 1000).toFixed(2)} s`);
  }
  const median = (all: ChildResult[]): ChildResult =>
    [...all].sort((a, b) => a.ms - b.ms)[(all.length - 1) >> 1] as ChildResult;
  const tally = median(tallyRuns);
  const duck = median(duckRuns);
  const same = (all: ChildResult[]): boolean =>
    all.every((r) => EXCEPTION_TYPES.every((t) => (r.exceptions[t] ?? 0) === (all[0]?.exceptions[t] ?? 0)));
  if (!same(tallyRuns) || !same(duckRuns))
    console.log('WARNING: exception counts differ between runs of the same engine');

  const rowsOf = (r: ChildResult): number => r.rows.source + r.rows.target;
  const fmt = (n: number): string => n.toLocaleString('en-US');
  const results = [tally, duck];
  console.log('');
  console.log(
    `Pair: ${fmt(tally.rows.source)} source rows + ${fmt(tally.rows.target)} target rows (${fmt(trades)} ${name}); median of ${runs} run(s) per engine`,
  );
  console.log(
    table(
      ['engine', 'seconds', 'rows/s', 'peak RSS MB', 'exceptions'],
      results.map((r) => [
        r.engine,
        (r.ms / 1000).toFixed(2),
        fmt(Math.round(rowsOf(r) / (r.ms / 1000))),
        r.maxRssMb.toFixed(0),
        fmt(r.records),
      ]),
    ),
  );
  console.log('');
  const types = [...EXCEPTION_TYPES];
  console.log(
    table(
      ['exception type', 'planted', 'tally', 'duckdb'],
      types.map((t) => [t, fmt(manifest.planted[t] ?? 0), fmt(tally.exceptions[t] ?? 0), fmt(duck.exceptions[t] ?? 0)]),
    ),
  );
  console.log('');
  for (const t of types) {
    const p = manifest.planted[t] ?? 0;
    const a = tally.exceptions[t] ?? 0;
    const b = duck.exceptions[t] ?? 0;
    if (a !== b || a !== p) console.log(`WARNING: ${t} counts disagree: planted ${p}, tally ${a}, duckdb ${b}`);
  }
  if (rowsOf(tally) !== rowsOf(duck))
    console.log(`WARNING: row counts disagree: tally ${rowsOf(tally)}, duckdb ${rowsOf(duck)}`);
  if (tally.note) console.log(`WARNING: ${tally.note}`);
  const ratio = tally.ms / duck.ms;
  console.log(`Tally/DuckDB time ratio: ${ratio.toFixed(2)}x`);
  console.log(
    `Note: the Tally child runs with ${TALLY_NODE_FLAGS.length > 0 ? `node ${TALLY_NODE_FLAGS.join(' ')}` : 'no extra node flags'}; DuckDB with its defaults (threads = cores).`,
  );
  if (Number.isFinite(maxRatio))
    console.log(`${ratio <= maxRatio ? 'PASS' : 'MISS'}  Tally within ${maxRatio}x of DuckDB (${ratio.toFixed(2)}x)`);
  else console.log(`INFO  Tally/DuckDB ${ratio.toFixed(2)}x (no target for this case)`);
  for (const r of results)
    console.log(`${r.maxRssMb < 1024 ? 'PASS' : 'MISS'}  ${r.engine} peak RSS < 1 GB (${r.maxRssMb.toFixed(0)} MB)`);
}

process.exitCode = await main();

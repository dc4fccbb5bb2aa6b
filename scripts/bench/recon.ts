/**
 * `npm run bench:recon`: reconciles generated source/target pairs (1M rows by default; `--rows
 * 5000000` or `20000000` for the scaling cases) with Tally and with DuckDB, each in its own child
 * process, and prints them side by side. Two cases: trades
 * (comma CSV on both sides, the short-form policy) and payments (the hub's `;` CSV with decimal
 * commas against JSON Lines, mapped columns, relative tolerance, dates a day apart, equivalents).
 *
 * A measurement, not a test: it exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { EXCEPTION_TYPES } from '../../functions/shared/types.ts';
import { generatePair } from './generate.ts';
import { generatePayments } from './generate-payments.ts';
// The engines are imported only by the child that runs them, so neither child's peak RSS includes
// the other engine (DuckDB's native library alone is tens of megabytes).

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SEED = 42;
const PAYMENTS_SEED = 7;

type CaseName = 'trades' | 'payments';
interface Case {
  readonly policy: string;
  readonly source: string;
  readonly target: string;
  readonly maxRatio: number;
}
function casesIn(dir: string): Record<CaseName, Case> {
  return {
    trades: {
      policy: `${REPO_ROOT}policies/recon-policy.md`,
      source: `${dir}/source.csv`,
      target: `${dir}/target.csv`,
      maxRatio: 1.3,
    },
    payments: {
      policy: `${REPO_ROOT}policies/datasets/payments.md`,
      source: `${dir}/payments-source.csv`,
      target: `${dir}/payments-target.jsonl`,
      maxRatio: Infinity,
    },
  };
}
const POLICIES: Record<CaseName, string> = {
  trades: casesIn('').trades.policy,
  payments: casesIn('').payments.policy,
};
/** Above this many rows a side Tally runs as `tally recon` (findings streamed), not `reconcile()`. */
const CLI_ABOVE_ROWS = 2_000_000;
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
  --rows N      rows to generate per case (also --trades)                 [default: 1000000]
  --runs N      runs per engine, alternating; the median run is reported        [default: 3]
  --via MODE    how Tally runs: engine (reconcile() and every record in memory, as before)
                or cli (tally recon: exceptions streamed to a file)
                                                 [default: engine up to 2M rows, cli above]
  --scratch     generate into a fresh temp directory and delete it at the end (the 5M and
                20M pairs are 0.2 and 0.9 GB a file) instead of reusing bench-data/
  -h, --help    show this help

The files are reused when bench-data/ already holds a pair for the same row count.
Targets: trades within 1.3x of DuckDB's time; peak RSS < 1 GB for every engine and case
(Tally < 1.5 GB above 2M rows); the payments case reports its ratio. Always exits 0.
Examples: npm run bench:recon -- --case trades --rows 20000000 --runs 1 --scratch
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
  const path = POLICIES[name];
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

/**
 * Child: `tally recon` as the command runs it (its `reconCommand`, in this process so its peak
 * RSS is this process's), exceptions written to a file, from parsing the arguments to the summary.
 */
async function runCli(name: CaseName, sourcePath: string, targetPath: string): Promise<ChildResult> {
  const { reconCommand } = await import('../cli/recon.ts');
  const out = `${sourcePath}.tally-out.jsonl`;
  let summaryLine = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = String(chunk);
    if (!text.startsWith('{"summary"')) return write(chunk, ...rest);
    summaryLine = text;
    return true;
  }) as typeof process.stderr.write;
  const started = performance.now();
  await reconCommand(['--policy', POLICIES[name], '--source', sourcePath, '--target', targetPath, '--out', out]);
  const ms = performance.now() - started;
  process.stderr.write = write;
  rmSync(out, { force: true });
  const summary = (
    JSON.parse(summaryLine) as { summary: { rows: ChildResult['rows']; exceptions: Record<string, number> } }
  ).summary;
  return {
    engine: 'tally recon',
    ms,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    rows: summary.rows,
    records: Object.values(summary.exceptions).reduce((a, b) => a + b, 0),
    exceptions: summary.exceptions,
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

async function ensureData(dir: string, name: CaseName, trades: number): Promise<Manifest> {
  const cases = casesIn(dir);
  mkdirSync(dir, { recursive: true });
  const manifestPath = `${dir}/${name === 'trades' ? 'manifest' : 'manifest-payments'}.json`;
  const seed = name === 'trades' ? SEED : PAYMENTS_SEED;
  if (existsSync(manifestPath) && existsSync(cases[name].source) && existsSync(cases[name].target)) {
    try {
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
      if (manifest.trades === trades && manifest.seed === seed) {
        console.log(`Reusing ${dir} (${trades.toLocaleString('en-US')} ${name}, seed ${seed}).`);
        return manifest;
      }
    } catch {
      // regenerate
    }
  }
  rmSync(manifestPath, { force: true }); // an interrupted run must not leave a manifest for other files
  console.log(`Generating ${trades.toLocaleString('en-US')} ${name} into ${dir} (seed ${seed})...`);
  const t0 = performance.now();
  const pair = name === 'trades' ? await generatePair(dir, trades, seed) : await generatePayments(dir, trades, seed);
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
      rows: { type: 'string' },
      runs: { type: 'string' },
      via: { type: 'string' },
      scratch: { type: 'boolean' },
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
        : values.child === 'tally-cli'
          ? await runCli(name, values.source!, values.target!)
          : await runDuckdb(name, values.source!, values.target!);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  const rowsOption = values.rows ?? values.trades;
  const trades = rowsOption === undefined ? 1_000_000 : Number(rowsOption);
  if (!Number.isSafeInteger(trades) || trades < 1) {
    process.stderr.write(`--rows must be a positive integer, got "${rowsOption}"\n\n${help}`);
    return 2;
  }
  const via = values.via ?? (trades > CLI_ABOVE_ROWS ? 'cli' : 'engine');
  if (via !== 'engine' && via !== 'cli') {
    process.stderr.write(`--via must be engine or cli, got "${via}"\n\n${help}`);
    return 2;
  }
  const runs = values.runs === undefined ? 3 : Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    process.stderr.write(`--runs must be a positive integer, got "${values.runs}"\n\n${help}`);
    return 2;
  }
  const names: CaseName[] = caseOption === 'all' ? ['trades', 'payments'] : [caseOption];
  const dir = values.scratch ? mkdtempSync(join(tmpdir(), 'tally-bench-')) : `${REPO_ROOT}bench-data`;
  try {
    for (const name of names)
      await benchCase(casesIn(dir)[name], name, await ensureData(dir, name, trades), trades, runs, via);
  } finally {
    if (values.scratch) rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}

async function benchCase(
  { source: sourcePath, target: targetPath, maxRatio }: Case,
  name: CaseName,
  manifest: Manifest,
  trades: number,
  runs: number,
  via: 'engine' | 'cli',
): Promise<void> {
  console.log(`\n== ${name} ==`);
  const tallyChild = via === 'cli' ? 'tally-cli' : 'tally';
  const rssTargetMb = trades > CLI_ABOVE_ROWS ? 1536 : 1024;

  // Alternate the engines so that a noisy neighbour on the machine affects both alike.
  const tallyRuns: ChildResult[] = [];
  const duckRuns: ChildResult[] = [];
  for (let i = 1; i <= runs; i++) {
    const t = await runChild(name, tallyChild, TALLY_NODE_FLAGS, sourcePath, targetPath);
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
    `Note: the Tally child runs ${via === 'cli' ? 'tally recon (exceptions streamed to a file)' : 'reconcile() and builds every record'} with ${TALLY_NODE_FLAGS.length > 0 ? `node ${TALLY_NODE_FLAGS.join(' ')}` : 'no extra node flags'}; DuckDB with its defaults (threads = cores).`,
  );
  console.log(
    `Load average (1, 5, 15 min) at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
  if (Number.isFinite(maxRatio))
    console.log(`${ratio <= maxRatio ? 'PASS' : 'MISS'}  Tally within ${maxRatio}x of DuckDB (${ratio.toFixed(2)}x)`);
  else console.log(`INFO  Tally/DuckDB ${ratio.toFixed(2)}x (no target for this case)`);
  for (const r of results) {
    const target = r.engine === 'duckdb' ? 1024 : rssTargetMb;
    console.log(
      `${r.maxRssMb < target ? 'PASS' : 'MISS'}  ${r.engine} peak RSS < ${target / 1024} GB (${r.maxRssMb.toFixed(0)} MB)`,
    );
  }
}

process.exitCode = await main();

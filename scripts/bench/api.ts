/**
 * `npm run bench:api`: latency of GET /search and GET /exceptions under concurrent callers, with
 * the HNSW index and, side by side in the same run on the same data, the exact-scan index it
 * replaced.
 *
 * Loads N synthetic exceptions (embedding texts synthesised from type, key and amounts) straight
 * into the exceptions table and the vector log of a local stack in a temporary data folder, then
 * a child process runs C closed-loop callers on 127.0.0.1 for a bounded time against:
 *   - the stack's API (GET /search, answered from the sparse postings for the hashing embedder's
 *     queries, from the distinct heads and postings for the hybrid's, ann-index.ts; GET /exceptions),
 *   - the same query-api handler behind the same local API server, once with the HNSW graph
 *     (postings off) and once with the exact index, both reading the same vector log.
 *
 * A measurement, not a test: it exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { exceptionId } from '../../functions/shared/keys.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { ENV, indexNames } from '../../functions/shared/resources.ts';
import { AnnVectorIndex } from '../../functions/shared/search/ann-index.ts';
import { exceptionDocument, exceptionEmbeddingText } from '../../functions/shared/search/exception-document.ts';
import { createEmbedder } from '../../functions/shared/search/factory.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import type { Embedder, VectorIndex } from '../../functions/shared/search/ports.ts';
import { EXCEPTION_TYPES, type ExceptionRecord } from '../../functions/shared/types.ts';
import { startApiServer, type ApiServer, type HttpApiHandler } from '../local/api-server.ts';
import { startLocalStack, type LocalStack } from '../local/stack.ts';
import { cpuBetween, sampleThreads, withThreadCpu } from './thread-cpu.ts';

const help = `Usage: npm run bench:api -- [options]

Loads N synthetic exceptions into a local stack (temporary data folder), then runs C concurrent
callers against GET /search and GET /exceptions for S seconds each, printing p50/p95/p99 and
requests a second: the stack's API, and the query-api handler with the HNSW index beside the
same handler with the previous exact-scan index, on the same data.

Options:
  --exceptions N   exceptions to load                                        [default: 100000]
  --callers C      concurrent callers                                             [default: 50]
  --seconds S      seconds per measured route and index                           [default: 15]
  --warmup S       seconds the callers run first, at the same load, before the measured
                   seconds start: a freshly started stack is slower under load until V8 has
                   optimised its hot code (at 100k: the first second 2-5x slower, the first
                   12 s ~800 requests a second against ~950-1,000 after). Printed on lines of
                   their own (with its p95 every 2 s), not counted in the figures or the
                   target                                                          [default: 10]
  --stack-only     measure only the stack's API (GET /search, GET /exceptions)
  --client KIND    the callers' HTTP client: fetch, or http (node:http, keep-alive) [default: fetch]
  --embedder NAME  hybrid, semantic or hashing: the stack's embedder, which also embeds the
                   loaded exceptions                  [default: TALLY_EMBEDDER, else the stack's: hybrid]
  --data-dir DIR   keep the loaded stack's data in DIR and reuse it on the next run with the
                   same --exceptions, --embedder and --counterparties (loading 100k takes minutes)
                                                         [default: a temporary folder, removed]
  --counterparties N
                   give each exception a counterparty, one of N names (letters only): the
                   exceptions of one type then have up to N different gists, hence as many
                   distinct model vectors for the hybrid embedder (real extracts carry names
                   and words beside ids and amounts). 0: none, one gist per type    [default: 0]
  -h, --help       show this help

Each measured route also gets the CPU a request cost in each thread of the stack (query-api,
main, dynalite...) and in the callers' process: on one machine they share the same cores.

Target: GET /search p95 under 100 ms at 100k exceptions with 50 callers. Always exits 0.
`;

const DATASETS = ['trades', 'payments', 'positions', 'cash'];
const DATE = '2025-12-10';
const STATUSES = ['OPEN', 'OPEN', 'OPEN', 'ACKNOWLEDGED', 'RESOLVED'];

/** The search callers' queries (a fixed set: the model's vector of a query text is cached per instance). */
const QUERIES = [
  ['amount mismatch', {}],
  ['missing in target', { status: 'OPEN' }],
  ['duplicate in source', { dataset: 'payments' }],
  ['trade T000004217', {}],
  ['amount differs account ACCT4217', { exception_type: 'AMOUNT_MISMATCH' }],
  ['field mismatch currency', { status: 'OPEN', dataset: 'trades' }],
  ['invalid record', { severity: 'HIGH' }],
  ['missing in source', { run_id: 'run-cash-3' }],
] as const;

/** The warm-up's p95 is printed for each slice of this many seconds. */
const WARMUP_SLICE_S = 2;

/** A search request's URL for one of QUERIES (the warm-up and the callers send the same ones). */
function searchUrl(base: string, [q, filter]: (typeof QUERIES)[number]): string {
  return `${base}/search?${new URLSearchParams({ q, k: '10', ...filter })}`;
}

/** A stretch of requests: how many, how many failed, over how long, and their latencies. */
interface Window {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

interface Stats extends Window {
  readonly label: string;
  /** The callers' process's CPU (user + system) over the warm-up and the measurement, in milliseconds. */
  readonly clientCpuMs: number;
  /** The requests sent during the warm-up (`--warmup`), not in the figures above. */
  readonly warmup: Window;
  /**
   * The warm-up's p95 in each WARMUP_SLICE_S of it, in order: how long the stack took to settle
   * (NaN, null through JSON, for a slice in which no request was sent: every caller still waiting).
   */
  readonly warmupP95s: readonly (number | null)[];
  /** The same per request kind (query and filter, or listing). */
  readonly kinds: readonly {
    readonly kind: string;
    readonly requests: number;
    readonly p50: number;
    readonly p95: number;
  }[];
}

/** The nearest-rank percentile of latencies sorted ascending (NaN for none). */
const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

function windowOf(latencies: number[], errors: number, seconds: number): Window {
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      exceptions: { type: 'string' },
      callers: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      'stack-only': { type: 'boolean' },
      client: { type: 'string' },
      embedder: { type: 'string' },
      'data-dir': { type: 'string' },
      counterparties: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      // Internal: run as the load-generating child.
      load: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(help);
    return;
  }
  if (values.load) return runLoad(JSON.parse(values.load) as LoadSpec);

  const total = Number(values.exceptions ?? 100_000);
  const callers = Number(values.callers ?? 50);
  const seconds = Number(values.seconds ?? 15);
  const warmup = Number(values.warmup ?? 10);
  if (!(warmup >= 0)) throw new Error(`--warmup is a number of seconds, 0 or more, not ${values.warmup}`);
  const client = values.client ?? 'fetch';
  if (client !== 'http' && client !== 'fetch') throw new Error(`--client is http or fetch, not ${client}`);
  const counterparties = Number(values.counterparties ?? 0);
  if (!Number.isInteger(counterparties) || counterparties < 0)
    throw new Error(`--counterparties is a whole number, 0 or more, not ${values.counterparties}`);
  if (values.embedder) process.env[ENV.embedder] = values.embedder;
  const kept = values['data-dir'];
  if (kept) mkdirSync(kept, { recursive: true });
  const dir = kept ?? mkdtempSync(join(tmpdir(), 'tally-bench-api-'));
  let stack: LocalStack | undefined;
  const servers: ApiServer[] = [];
  try {
    stack = await startLocalStack({ dataDir: dir });
    const logPath = join(dir, 'vectors', `${indexNames().exceptions}.jsonl`);

    // The stack's own embedder (the one its functions use) embeds the loaded exceptions, so its
    // query-api searches them as it would searches triage's.
    const embedder = createEmbedder({ ...process.env, ...stack.environments['query-api'] });
    let t = performance.now();
    // What a kept folder holds: reused only for the same count and embedder.
    const loadedPath = join(dir, 'bench-api-loaded.json');
    // (`ids`: loads from before the exceptions had ids recon would give them say nothing of it.)
    const loaded = JSON.stringify({
      total,
      embedder: embedder.id,
      ...(counterparties > 0 ? { counterparties } : {}),
      ids: 'recon',
    });
    const reuse = kept !== undefined && existsSync(loadedPath) && readFileSync(loadedPath, 'utf8') === loaded;
    if (kept !== undefined && !reuse && existsSync(loadedPath))
      throw new Error(`${kept} holds another load (${readFileSync(loadedPath, 'utf8')}): give an empty --data-dir`);
    if (!reuse) await load(stack, logPath, total, embedder, counterparties);
    const loadSeconds = (performance.now() - t) / 1000;
    const stackOnly = values['stack-only'] === true;
    const sparse = embedder instanceof HashingEmbedder;
    t = performance.now();
    // Built once here and snapshotted beside the log: every instance that opens it reuses the graph.
    // The stack answers from postings, without the graph, the hashing embedder's sparse queries and
    // the hybrid's while its distinct gists are few (7 by default); from the graph, which must be
    // built before the clock starts, the semantic embedder's and the hybrid's with many gists
    // (--counterparties). A reused folder's snapshot is the graph of the same documents: kept.
    const snapshotted = reuse && existsSync(`${logPath}.graph.json`);
    if ((!stackOnly || !sparse) && !snapshotted) await settleGraph(logPath);
    const graphSeconds = (performance.now() - t) / 1000;
    if (kept !== undefined) writeFileSync(loadedPath, loaded);
    // As npm start does once up: the query API's threads load the index before the first search
    // (here waited for: the warm-up requests then find it loaded).
    await stack.warm();
    process.stdout.write(
      `embedder ${embedder.id} (${stack.embedder.from === 'default' ? 'the default' : stack.embedder.from}); ${reuse ? 'reused' : 'loaded'} ${total.toLocaleString('en')} exceptions${reuse ? ` from ${dir}` : ''} in ${loadSeconds.toFixed(0)} s${stackOnly && sparse ? '' : snapshotted ? '; its HNSW graph snapshot reused' : `; HNSW graph built and snapshotted in ${graphSeconds.toFixed(0)} s`}\n` +
        `distinct gists (what the hybrid's model part embeds): ${gists(total, counterparties).toLocaleString('en')}\n`,
    );

    // The same handler and server for both indexes, so only the index differs.
    const stackEnv = (stack as { environments?: Record<string, Record<string, string>> }).environments;
    if (stackEnv?.['query-api']) Object.assign(process.env, stackEnv['query-api']);
    const { createHandler, defaultDeps } = await import('../../functions/query-api/handler.ts');
    const serve = async (index: VectorIndex) => {
      const server = await startApiServer({
        handler: createHandler(() => ({ ...defaultDeps(), exceptionsIndex: index })) as unknown as HttpApiHandler,
        host: '127.0.0.1',
        port: 0,
      });
      servers.push(server);
      return server.url;
    };
    const ann = stackOnly ? undefined : await serve(AnnVectorIndex.load(logPath, { sparse: false }));
    let exact: string | undefined;
    let exactFailure = '';
    try {
      if (!stackOnly) exact = await serve(LocalVectorIndex.load(logPath));
    } catch (error) {
      // The exact index reads its whole log as one string: past 512 MiB it cannot open at all.
      exactFailure = (error as Error).message;
    }

    const rows: Stats[] = [];
    const measure = async (label: string, base: string, route: 'search' | 'exceptions') => {
      // A warm-up loads the index (or the snapshot) before the clock starts: concurrent requests,
      // so that each query-api instance of the stack gets one.
      // Each search query goes to both instances (each query once in flight per instance): an
      // instance's first sight of a query text runs the semantic model (25-50 ms, seconds under
      // load) while later ones use its cached vector, and that first sight is not what is measured.
      const warm =
        route === 'search'
          ? QUERIES.flatMap((query) => [searchUrl(base, query), searchUrl(base, query)])
          : Array.from({ length: 8 }, () => `${base}/exceptions?limit=1`);
      await Promise.all(warm.map((url) => fetch(url).then((r) => r.arrayBuffer())));
      // The stack's main thread serves every request (HTTP, then a worker thread): a stall there
      // delays all of them, whatever the query.
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      const threadsBefore = await sampleThreads();
      const cpuBefore = process.cpuUsage();
      const row = await loadChild({ label, base, route, callers, seconds, warmup, client });
      const cpu = process.cpuUsage(cpuBefore);
      const threadsAfter = await sampleThreads();
      rows.push(row);
      delay.disable();
      // Where a request's CPU goes: the machine has two cores, shared by the stack and the callers.
      // Over the warm-up and the measured seconds alike: the CPU is sampled around the whole child.
      const served = row.requests + row.warmup.requests;
      const perRequest = (ms: number) => (ms / Math.max(1, served)).toFixed(2);
      const byThread = cpuBetween(threadsBefore, threadsAfter, (cpu.user + cpu.system) / 1000)
        .filter((t) => t.ms / Math.max(1, served) >= 0.01)
        .map((t) => `${t.name.replace(/ \(.*/, '')} ${perRequest(t.ms)}`);
      process.stdout.write(
        `  measured ${label}; the stack's main thread: event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms, max ${(delay.max / 1e6).toFixed(0)} ms\n` +
          `    CPU ms a request, by thread: ${byThread.join(', ')}; the callers' process ${perRequest(row.clientCpuMs)}\n`,
      );
    };
    await measure('GET /search     stack API', stack.endpoints.api, 'search');
    if (ann) await measure('GET /search     handler,   HNSW index', ann, 'search');
    if (exact) await measure('GET /search     handler,   exact index (before)', exact, 'search');
    await measure('GET /exceptions stack API', stack.endpoints.api, 'exceptions');

    // A window with no request has no percentile: NaN here, null once through the callers' JSON.
    const shown = (x: number | null, digits: number) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));
    const ms = (x: number) => `${shown(x, 1)} ms`.padStart(11);
    const line = (label: string, w: Window) =>
      `${label}${ms(w.p50)}${ms(w.p95)}${ms(w.p99)}${Math.round(w.requests / w.seconds)
        .toString()
        .padStart(9)}${String(w.errors).padStart(8)}`;
    process.stdout.write(
      [
        '',
        `${total.toLocaleString('en')} exceptions, ${callers} concurrent callers (${client} client), ${seconds} s each after a ${warmup} s warm-up, on 127.0.0.1, embedder ${embedder.id}`,
        `${'route and index'.padEnd(48)}${'p50'.padStart(11)}${'p95'.padStart(11)}${'p99'.padStart(11)}${'req/s'.padStart(9)}${'errors'.padStart(8)}`,
        ...rows.flatMap((r) => [
          line(r.label.padEnd(48), r),
          // Each request kind's share of it, so a slow query shows rather than hides in the tail.
          ...r.kinds.map(
            (k) =>
              `    ${k.kind.slice(0, 44).padEnd(44)}${ms(k.p50)}${ms(k.p95)}${''.padStart(11)}${Math.round(
                k.requests / r.seconds,
              )
                .toString()
                .padStart(9)}`,
          ),
          // The warm-up's own figures: what the first seconds after a start cost, not hidden.
          ...(r.warmup.requests > 0
            ? [
                line(`    ${`warm-up, first ${warmup} s (not counted above)`.padEnd(44)}`, r.warmup),
                `    ${`warm-up p95, each ${WARMUP_SLICE_S} s`.padEnd(44)}${r.warmupP95s.map((p) => shown(p, 0)).join(', ')} ms`,
              ]
            : []),
        ]),
        ...(exactFailure
          ? [`GET /search     handler,   exact index (before): cannot open the log: ${exactFailure}`]
          : []),
        `target: GET /search p95 < 100 ms (the stack's API): ${(rows[0]?.p95 ?? Infinity) < 100 ? 'met' : 'NOT met'}`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const server of servers) await server.stop();
    await stack?.stop();
    if (kept === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds and snapshots the graph in a thread of its own: the instance holds every vector and the
 * graph (GBs at 100k dense vectors), and kept in the stack's main thread it was collected in the
 * middle of the measurement, a pause of seconds for every request in flight.
 */
async function settleGraph(logPath: string): Promise<void> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { settle: logPath } });
  const [code] = (await once(worker, 'exit')) as [number];
  if (code !== 0) throw new Error(`building the HNSW graph failed (thread exit code ${code})`);
}

/** Synthetic exceptions, written with recon's own batch writer and in bulk to the vector log. */
export async function load(
  stack: LocalStack,
  logPath: string,
  total: number,
  embedder: Embedder,
  counterparties = 0,
): Promise<void> {
  const store = new DynamoExceptionStore(stack.dynamo, stack.names.tables.exceptions);
  const index = AnnVectorIndex.load(logPath);
  const now = new Date().toISOString();
  const CHUNK = 500;
  for (let start = 0; start < total; start += CHUNK) {
    const records = Array.from({ length: Math.min(CHUNK, total - start) }, (_, j) =>
      synthetic(start + j, now, counterparties),
    );
    const vectors = await embedder.embed(records.map(exceptionEmbeddingText));
    const writes: Promise<void>[] = [];
    // A few batch writers at once: dynalite keeps up with about that many.
    for (let i = 0; i < records.length; i += 125)
      writes.push(
        store.putNew(
          records
            .slice(i, i + 125)
            .map((r) => ({ ...r, content_hash: `h${r.exception_id}`, last_changed_run_id: r.run_id })),
        ),
      );
    await Promise.all(writes);
    await index.replaceMany(records.map((r, i) => exceptionDocument(r, vectors[i] as number[])));
    const done = start + records.length;
    // Loading 100k takes minutes: say how far it is.
    if (done % 10_000 < CHUNK || done === total)
      process.stderr.write(`  loaded ${done.toLocaleString('en')} of ${total.toLocaleString('en')} exceptions\n`);
  }
}

/** How many different gists `synthetic` gives `total` exceptions (type and counterparty). */
function gists(total: number, counterparties: number): number {
  const seen = new Set<string>();
  for (let i = 0; i < total; i++)
    seen.add(`${i % EXCEPTION_TYPES.length}:${counterparties > 0 ? i % counterparties : ''}`);
  return seen.size;
}

/** A name of letters only (the gist keeps it): n written in syllables, capitalised. */
function counterpartyName(n: number): string {
  const syllables = ['ba', 'ko', 'ri', 'de', 'lu', 'ma', 'ne', 'so', 'ta', 'vi', 'ga', 'pe', 'zu', 'ho', 'fi', 'ca'];
  let word = '';
  let rest = n;
  do {
    word += syllables[rest % syllables.length];
    rest = Math.floor(rest / syllables.length);
  } while (rest > 0);
  return `${word[0]?.toUpperCase()}${word.slice(1)} Capital`;
}

function synthetic(i: number, now: string, counterparties = 0): ExceptionRecord {
  const type = EXCEPTION_TYPES[i % EXCEPTION_TYPES.length] as ExceptionRecord['exception_type'];
  const dataset = DATASETS[i % DATASETS.length] as string;
  const source = {
    trade_id: `T${String(i).padStart(9, '0')}`,
    account_id: `ACCT${1000 + (i % 9000)}`,
    amount: `${(i * 37) % 100000}.${i % 100}`,
    currency: 'USD',
    ...(counterparties > 0 ? { counterparty: counterpartyName(i % counterparties) } : {}),
  };
  const target = type === 'AMOUNT_MISMATCH' ? { ...source, amount: `${(i * 41) % 100000}.00` } : source;
  const severity = (['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const)[i % 4] as 'LOW';
  return {
    // An id as recon gives one (the API refuses any other shape), so each can be opened and worked.
    exception_id: exceptionId(dataset, DATE, type, source.trade_id),
    run_id: `run-${dataset}-${i % 20}`,
    dataset,
    business_date: DATE,
    exception_type: type,
    key: { trade_id: source.trade_id },
    source: type === 'MISSING_IN_SOURCE' ? null : source,
    target: type === 'MISSING_IN_TARGET' ? null : target,
    diffs: type === 'AMOUNT_MISMATCH' ? [{ field: 'amount', source: source.amount, target: target.amount }] : [],
    lines: {},
    policy_severity: severity,
    severity,
    status: STATUSES[i % STATUSES.length] as 'OPEN',
    created_at: now,
    updated_at: now,
    version: 1,
    history: [],
  } as unknown as ExceptionRecord;
}

interface LoadSpec {
  readonly label: string;
  readonly base: string;
  readonly route: 'search' | 'exceptions';
  readonly callers: number;
  readonly seconds: number;
  /** Seconds the callers run before the measured ones; their requests are reported apart. */
  readonly warmup: number;
  /**
   * The callers share the machine's cores with the stack they measure: fetch (undici) took
   * 0.9 ms of CPU a request in the caller process here, node:http with a keep-alive agent
   * 0.23 ms, so fetch alone took about a third of the CPU a search costs end to end.
   */
  readonly client: 'http' | 'fetch';
}

/** The callers run in a child process, so they do not share an event loop with the servers. */
function loadChild(spec: LoadSpec): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), '--load', JSON.stringify(spec)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(JSON.parse(out) as Stats);
      } catch {
        reject(new Error(`load child printed no figures: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** Closed-loop callers: each sends its next request when the last one answered, until time is up. */
async function runLoad(spec: LoadSpec): Promise<void> {
  const lists = [
    'limit=25',
    'status=OPEN&limit=25',
    'exception_type=AMOUNT_MISMATCH&limit=50',
    'dataset=trades&limit=25',
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: spec.callers });
  const get = (url: string): Promise<boolean> =>
    spec.client === 'fetch'
      ? fetch(url).then(async (response) => {
          await response.arrayBuffer();
          return response.ok;
        })
      : new Promise((resolve, reject) => {
          request(url, { agent }, (response) => {
            response.on('data', () => undefined);
            response.on('end', () => resolve((response.statusCode ?? 500) < 400));
            response.on('error', reject);
          })
            .on('error', reject)
            .end();
        });
  const latencies: number[] = [];
  const warming: number[] = [];
  // Each warm-up request's latency by the slice of the warm-up it was sent in.
  const warmingSlices: number[][] = [];
  let warmingErrors = 0;
  let warmingEnded = 0;
  const byKind = new Map<string, number[]>();
  let errors = 0;
  const cpuStart = process.cpuUsage();
  const warmupStarted = performance.now();
  // A request counts if it was sent in the measured seconds (the warm-up's last ones still count
  // as warm-up even when they are answered after it).
  const started = warmupStarted + spec.warmup * 1000;
  const until = started + spec.seconds * 1000;
  await Promise.all(
    Array.from({ length: spec.callers }, async (_, caller) => {
      for (let n = caller; performance.now() < until; n += spec.callers) {
        const query = QUERIES[n % QUERIES.length] as (typeof QUERIES)[number];
        const [q, filter] = query;
        const kind =
          spec.route === 'search'
            ? `${q}${Object.keys(filter).length ? ` ${new URLSearchParams(filter)}` : ''}`
            : (lists[n % lists.length] as string);
        const url = spec.route === 'search' ? searchUrl(spec.base, query) : `${spec.base}/exceptions?${kind}`;
        const t = performance.now();
        const measured = t >= started;
        const ok = await get(url).catch(() => false);
        const took = performance.now() - t;
        if (!measured) {
          warming.push(took);
          const slice = Math.floor((t - warmupStarted) / (WARMUP_SLICE_S * 1000));
          (warmingSlices[slice] ??= []).push(took);
          if (!ok) warmingErrors++;
          warmingEnded = Math.max(warmingEnded, t + took);
          continue;
        }
        if (!ok) errors++;
        latencies.push(took);
        const ofKind = byKind.get(kind);
        if (ofKind) ofKind.push(took);
        else byKind.set(kind, [took]);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const stats: Stats = {
    label: spec.label,
    ...windowOf(latencies, errors, seconds),
    clientCpuMs: (cpu.user + cpu.system) / 1000,
    // Until its last request was answered (a slow route's run past the warm-up's end).
    warmup: windowOf(warming, warmingErrors, warming.length > 0 ? (warmingEnded - warmupStarted) / 1000 : spec.warmup),
    warmupP95s: Array.from(warmingSlices, (took) => windowOf(took ?? [], 0, WARMUP_SLICE_S).p95),
    kinds: [...byKind].map(([kind, took]) => {
      const { requests, p50, p95 } = windowOf(took, 0, seconds);
      return { kind, requests, p50, p95 };
    }),
  };
  agent.destroy();
  process.stdout.write(JSON.stringify(stats));
}

if (!isMainThread && (workerData as { settle?: string } | null)?.settle) {
  await AnnVectorIndex.load((workerData as { settle: string }).settle, { sparse: false }).settle();
} else if (isMainThread && import.meta.url === `file://${process.argv[1]}`) {
  // Every thread of the stack answers for its CPU; the callers' child needs no preload.
  if (process.argv.includes('--load')) await main();
  else await withThreadCpu(import.meta.url, main);
}

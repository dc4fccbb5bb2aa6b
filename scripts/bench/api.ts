/**
 * `npm run bench:api`: latency of GET /search and GET /exceptions under concurrent callers, with
 * the HNSW index and, side by side in the same run on the same data, the exact-scan index it
 * replaced.
 *
 * Loads N synthetic exceptions (embedding texts synthesised from type, key and amounts) straight
 * into the exceptions table and the vector log of a local stack in a temporary data folder, then
 * a child process runs C closed-loop callers on 127.0.0.1 for a bounded time against:
 *   - the stack's API (GET /search, answered from the sparse postings for the hashing embedder's
 *     queries; GET /exceptions),
 *   - the same query-api handler behind the same local API server, once with the HNSW graph
 *     (postings off) and once with the exact index, both reading the same vector log.
 *
 * A measurement, not a test: it exits 0 whether or not the targets are met.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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

const help = `Usage: npm run bench:api -- [options]

Loads N synthetic exceptions into a local stack (temporary data folder), then runs C concurrent
callers against GET /search and GET /exceptions for S seconds each, printing p50/p95/p99 and
requests a second: the stack's API, and the query-api handler with the HNSW index beside the
same handler with the previous exact-scan index, on the same data.

Options:
  --exceptions N   exceptions to load                                        [default: 100000]
  --callers C      concurrent callers                                             [default: 50]
  --seconds S      seconds per measured route and index                           [default: 15]
  --stack-only     measure only the stack's API (GET /search, GET /exceptions)
  --client KIND    the callers' HTTP client: fetch, or http (node:http, keep-alive) [default: fetch]
  --embedder NAME  hybrid, semantic or hashing: the stack's embedder, which also embeds the
                   loaded exceptions                  [default: TALLY_EMBEDDER, else the stack's: hybrid]
  -h, --help       show this help

Target: GET /search p95 under 100 ms at 100k exceptions with 50 callers. Always exits 0.
`;

const DATASETS = ['trades', 'payments', 'positions', 'cash'];
const DATE = '2025-12-10';
const STATUSES = ['OPEN', 'OPEN', 'OPEN', 'ACKNOWLEDGED', 'RESOLVED'];

interface Stats {
  readonly label: string;
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      exceptions: { type: 'string' },
      callers: { type: 'string' },
      seconds: { type: 'string' },
      'stack-only': { type: 'boolean' },
      client: { type: 'string' },
      embedder: { type: 'string' },
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
  const client = values.client ?? 'fetch';
  if (client !== 'http' && client !== 'fetch') throw new Error(`--client is http or fetch, not ${client}`);
  if (values.embedder) process.env[ENV.embedder] = values.embedder;
  const dir = mkdtempSync(join(tmpdir(), 'tally-bench-api-'));
  let stack: LocalStack | undefined;
  const servers: ApiServer[] = [];
  try {
    stack = await startLocalStack({ dataDir: dir });
    const logPath = join(dir, 'vectors', `${indexNames().exceptions}.jsonl`);

    // The stack's own embedder (the one its functions use) embeds the loaded exceptions, so its
    // query-api searches them as it would searches triage's.
    const embedder = createEmbedder({ ...process.env, ...stack.environments['query-api'] });
    let t = performance.now();
    await load(stack, logPath, total, embedder);
    const loadSeconds = (performance.now() - t) / 1000;
    const stackOnly = values['stack-only'] === true;
    const sparse = embedder instanceof HashingEmbedder;
    t = performance.now();
    // Built once here and snapshotted beside the log: every instance that opens it reuses the graph.
    // The stack answers the hashing embedder's sparse queries from postings, without the graph; a
    // dense embedder's (hybrid, semantic) from the graph, which must be built before the clock starts.
    if (!stackOnly || !sparse) await AnnVectorIndex.load(logPath, { sparse: false }).settle();
    const graphSeconds = (performance.now() - t) / 1000;
    process.stdout.write(
      `embedder ${embedder.id} (${stack.embedder.from === 'default' ? 'the default' : stack.embedder.from}); loaded ${total.toLocaleString('en')} exceptions in ${loadSeconds.toFixed(0)} s${stackOnly && sparse ? '' : `; HNSW graph built and snapshotted in ${graphSeconds.toFixed(0)} s`}\n`,
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
      const warm = `${base}/${route === 'search' ? 'search?q=warm' : 'exceptions?limit=1'}`;
      await Promise.all(Array.from({ length: 8 }, () => fetch(warm).then((r) => r.arrayBuffer())));
      rows.push(await loadChild({ label, base, route, callers, seconds, client }));
      process.stdout.write(`  measured ${label}\n`);
    };
    await measure('GET /search     stack API', stack.endpoints.api, 'search');
    if (ann) await measure('GET /search     handler,   HNSW index', ann, 'search');
    if (exact) await measure('GET /search     handler,   exact index (before)', exact, 'search');
    await measure('GET /exceptions stack API', stack.endpoints.api, 'exceptions');

    const ms = (x: number) => `${x.toFixed(1)} ms`.padStart(11);
    process.stdout.write(
      [
        '',
        `${total.toLocaleString('en')} exceptions, ${callers} concurrent callers (${client} client), ${seconds} s each, on 127.0.0.1, embedder ${embedder.id}`,
        `${'route and index'.padEnd(48)}${'p50'.padStart(11)}${'p95'.padStart(11)}${'p99'.padStart(11)}${'req/s'.padStart(9)}${'errors'.padStart(8)}`,
        ...rows.map(
          (r) =>
            `${r.label.padEnd(48)}${ms(r.p50)}${ms(r.p95)}${ms(r.p99)}${Math.round(r.requests / r.seconds)
              .toString()
              .padStart(9)}${String(r.errors).padStart(8)}`,
        ),
        ...(exactFailure
          ? [`GET /search     handler,   exact index (before): cannot open the log: ${exactFailure}`]
          : []),
        `target: GET /search p95 < 100 ms with the HNSW index: ${(rows[0]?.p95 ?? Infinity) < 100 ? 'met' : 'NOT met'}`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const server of servers) await server.stop();
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Synthetic exceptions, written with recon's own batch writer and in bulk to the vector log. */
export async function load(stack: LocalStack, logPath: string, total: number, embedder: Embedder): Promise<void> {
  const store = new DynamoExceptionStore(stack.dynamo, stack.names.tables.exceptions);
  const index = AnnVectorIndex.load(logPath);
  const now = new Date().toISOString();
  const CHUNK = 500;
  for (let start = 0; start < total; start += CHUNK) {
    const records = Array.from({ length: Math.min(CHUNK, total - start) }, (_, j) => synthetic(start + j, now));
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
  }
}

function synthetic(i: number, now: string): ExceptionRecord {
  const type = EXCEPTION_TYPES[i % EXCEPTION_TYPES.length] as ExceptionRecord['exception_type'];
  const dataset = DATASETS[i % DATASETS.length] as string;
  const source = {
    trade_id: `T${String(i).padStart(9, '0')}`,
    account_id: `ACCT${1000 + (i % 9000)}`,
    amount: `${(i * 37) % 100000}.${i % 100}`,
    currency: 'USD',
  };
  const target = type === 'AMOUNT_MISMATCH' ? { ...source, amount: `${(i * 41) % 100000}.00` } : source;
  const severity = (['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const)[i % 4] as 'LOW';
  return {
    exception_id: `bench${String(i).padStart(27, '0')}`,
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
  const queries = [
    ['amount mismatch', {}],
    ['missing in target', { status: 'OPEN' }],
    ['duplicate in source', { dataset: 'payments' }],
    ['trade T000004217', {}],
    ['amount differs account ACCT4217', { exception_type: 'AMOUNT_MISMATCH' }],
    ['field mismatch currency', { status: 'OPEN', dataset: 'trades' }],
    ['invalid record', { severity: 'HIGH' }],
    ['missing in source', { run_id: 'run-cash-3' }],
  ] as const;
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
  let errors = 0;
  const started = performance.now();
  const until = started + spec.seconds * 1000;
  await Promise.all(
    Array.from({ length: spec.callers }, async (_, caller) => {
      for (let n = caller; performance.now() < until; n += spec.callers) {
        const url =
          spec.route === 'search'
            ? (() => {
                const [q, filter] = queries[n % queries.length] as (typeof queries)[number];
                return `${spec.base}/search?${new URLSearchParams({ q, k: '10', ...filter })}`;
              })()
            : `${spec.base}/exceptions?${lists[n % lists.length]}`;
        const t = performance.now();
        try {
          if (!(await get(url))) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const stats: Stats = {
    label: spec.label,
    requests: latencies.length,
    errors,
    seconds,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
  };
  agent.destroy();
  process.stdout.write(JSON.stringify(stats));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();

/**
 * `npm start`: the whole Tally pipeline locally, no AWS account, no Docker.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { SAMPLE_DIR, REPO_ROOT } from '../../functions/shared/paths.ts';
import { datasetDateKey } from '../../functions/shared/keys.ts';
import { FUNCTIONS } from '../../functions/shared/resources.ts';
import { storedText } from '../../functions/shared/tables/runs.ts';
import { startLocalStack, type LocalStack } from './stack.ts';
import { startTwoRegions } from './regions.ts';
import { nextSteps } from './next-steps.ts';
import { DataDirLockedError, ignoreDataDir, lockDataDir } from './data-dir-lock.ts';
import { uploadCommand } from '../cli/upload.ts';
import { buildWeb, WEB_DIST, webBuildIsStale } from '../build-web.ts';
import type { CliIo } from '../cli/api-client.ts';
import { DASHBOARD_CLIENT_ID, passwordSignIn, startLocalOidc } from './oidc.ts';

/** Options of the one-region stack that `--two-regions` does not honour. */
const TWO_REGION_REFUSES = ['once', 'auth', 'auth-port', 'store-workers'] as const;

/** Where `npm start -- --auth`'s OpenID provider listens: \`tally login\` looks there by default. */
const DEFAULT_AUTH_PORT = 3001;

const help = `Usage: npm start -- [options]

Starts Tally locally: S3, SQS and DynamoDB emulators on 127.0.0.1, the S3 event router, and the
ingest, recon, store and triage functions polling their queues, and the query API with the web dashboard
on the same origin (building dist/web first when it is missing or stale). Loads the policy corpus
(policies/*.md, policies/datasets/*.md) and the samples like uploads — trades (CSV, 20 source rows,
19 target rows) and payments (semicolon CSV with decimal commas against JSON Lines) — then keeps
running until Ctrl-C.

Options:
  --once             load the samples, wait until the pipeline is idle, print one JSON line of
                     stored counts (and each sample dataset's latest run) and exit
  --data-dir DIR     where local state persists (relative: to the repository; it
                     ignores itself in git)                 [default: .tally]
  --port N           port of the query API and dashboard    [default: $TALLY_API_PORT or 3000]
  --no-sample        do not upload the sample files
  --verbose          show the functions' structured logs (info level)
  --auth             sign-in required: starts a local OpenID Connect provider (oidc-provider) on
                     127.0.0.1 with a user per role (printed with their passwords); the dashboard
                     and \`npx tally login\` sign in there, and the API verifies the tokens as API
                     Gateway's JWT authorizer does. Without it every request is a local admin.
  --auth-port N      port of that provider                   [default: 3001]
  --store-workers N  findings chunks stored at once (the store consumer's concurrency; on AWS
                     functions.store.maxConcurrency)  [default: ${FUNCTIONS.store.maxConcurrency}]
  --two-regions      run as two regions (DATA-DIR/regions/<region>/; APIs on --port and the next
                     port): us-east-1 active, us-west-2 standby, tables and incoming/ + policies/
                     replicated, each region's search index fed by its table's stream. Loads the
                     policy corpus into the primary, no samples. Then: npx tally region status
                     (docs/runbooks/region-failover.md; npm run drill:failover rehearses it).
                     Without sign-in: refuses --auth, --auth-port, --once and --store-workers
  -h, --help         show this help
`;

/** The samples, uploaded as a client would: each dataset runs under its own policy. */
const SAMPLES = [
  {
    dataset: 'trades',
    businessDate: '2025-12-10',
    files: { source: `${SAMPLE_DIR}source.csv`, target: `${SAMPLE_DIR}target.csv` },
  },
  {
    dataset: 'payments',
    businessDate: '2025-12-10',
    files: { source: `${SAMPLE_DIR}payments/source.csv`, target: `${SAMPLE_DIR}payments/target.jsonl` },
  },
] as const;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      once: { type: 'boolean', default: false },
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      'no-sample': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      'store-workers': { type: 'string' },
      auth: { type: 'boolean', default: false },
      'auth-port': { type: 'string' },
      'two-regions': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  // The two-region stack has no sign-in, samples or one-shot mode: refused rather than ignored
  // (with --auth ignored, a stack open to every local caller would pass for a signed-in one).
  const ignored = values['two-regions']
    ? TWO_REGION_REFUSES.filter((name) => values[name] !== undefined && values[name] !== false)
    : [];
  if (ignored.length > 0) {
    process.stderr.write(
      `tally start: --two-regions does not take ${ignored.map((name) => `--${name}`).join(', ')} (it runs without sign-in, samples or --once)\n\n${help}`,
    );
    return 2;
  }
  process.env.POWERTOOLS_LOG_LEVEL ??= values.verbose ? 'INFO' : 'WARN';
  const dataDir = resolve(REPO_ROOT, values['data-dir'] ?? '.tally');
  mkdirSync(dataDir, { recursive: true });
  ignoreDataDir(dataDir);
  let lock;
  try {
    lock = lockDataDir(dataDir);
  } catch (error) {
    if (!(error instanceof DataDirLockedError)) throw error;
    process.stderr.write(`tally start: ${error.message}\n`);
    return 1;
  }
  // Released on every way out of main, including an error; a kill -9 leaves it, and the next
  // start sees its pid is gone and takes over.
  try {
    return values['two-regions'] ? await runTwoRegions(values, dataDir) : await run(values, dataDir);
  } finally {
    lock.release();
  }
}

async function run(
  values: {
    once?: boolean;
    port?: string;
    'no-sample'?: boolean;
    verbose?: boolean;
    'store-workers'?: string;
    auth?: boolean;
    'auth-port'?: string;
  },
  dataDir: string,
): Promise<number> {
  const say = (line: string) => {
    if (!values.once) process.stdout.write(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  };

  const portText = values.port ?? process.env.TALLY_API_PORT ?? '3000';
  const apiPort = Number(portText);
  if (!Number.isInteger(apiPort) || apiPort < 0 || apiPort > 65535) {
    process.stderr.write(`tally start: --port must be a port number (0-65535), got "${portText}"\n\n${help}`);
    return 2;
  }
  const authPort = Number(values['auth-port'] ?? DEFAULT_AUTH_PORT);
  if (!Number.isInteger(authPort) || authPort < 0 || authPort > 65535) {
    process.stderr.write(`tally start: --auth-port must be a port number, got "${values['auth-port']}"\n\n${help}`);
    return 2;
  }
  const oidc = values.auth ? await startLocalOidc({ port: authPort }) : undefined;
  // The dashboard is served from dist/web: a clean clone (npm ci && npm start) builds it here.
  if (webBuildIsStale()) {
    say('Building the web dashboard (dist/web) ...');
    await buildWeb();
  }
  const stack = await startLocalStack({
    dataDir,
    apiPort,
    webDir: WEB_DIST,
    ...(values['store-workers'] ? { consumerConcurrency: { store: Number(values['store-workers']) } } : {}),
    ...(oidc ? { auth: { issuer: oidc.issuer, audience: oidc.audience, dashboardClientId: DASHBOARD_CLIENT_ID } } : {}),
    onInvocation: (i) => {
      if (i.error || i.failed > 0)
        say(
          `  ! ${i.name}: ${i.failed} of ${i.received} message(s) failed${i.error ? ` (${i.error.message})` : ''}; they will be retried, then moved to the DLQ`,
        );
    },
    onRouterError: (error) => say(`  ! S3 event router: ${error.message}`),
  });
  say('Tally local stack');
  say(`  data      ${dataDir} (persists across restarts; delete it to start over)`);
  say(`  S3        ${stack.endpoints.s3}  bucket ${stack.names.bucket}`);
  say(`  SQS       ${stack.endpoints.sqs}`);
  say(`  DynamoDB  ${stack.endpoints.dynamodb}`);
  say(`  API       ${stack.endpoints.api}  (try: curl ${stack.endpoints.api}/exceptions)`);
  say(`  Dashboard ${stack.endpoints.api}/`);
  say(
    `  Search    ${stack.embedder.name} embedder (${
      stack.embedder.from === 'data directory'
        ? `what this data directory's indexes were built with; delete ${dataDir} to start over with the default`
        : stack.embedder.from === 'TALLY_EMBEDDER'
          ? 'TALLY_EMBEDDER'
          : 'the offline default; TALLY_EMBEDDER=hashing|semantic|hybrid picks another'
    })`,
  );
  if (oidc) {
    say(`  Sign-in   ${oidc.issuer} (OpenID Connect; the API needs a bearer token from it)`);
    say(`            users (e-mail / password / roles / datasets):`);
    for (const u of oidc.users)
      say(
        `              ${u.email.padEnd(24)} ${u.password.padEnd(14)} ${u.roles.join(',').padEnd(9)} ${u.datasets.join(' ')}`,
      );
    say(`            CLI: npx tally login --issuer ${oidc.issuer}  (or set TALLY_API_TOKEN)`);
  } else
    say(`  Sign-in   none: every request acts as the local admin "local-analyst" (npm start -- --auth to sign in)`);

  // Policies first: triage cites them, so the corpus should be indexed before exceptions arrive.
  const policies = await stack.loadPolicies();
  say(`\nLoading the policy corpus: ${policies.map((p) => `policies/${p}`).join(', ')}`);
  await stack.waitForIdle();

  if (!values['no-sample']) {
    say(`\nUploading the samples through POST /uploads and the pre-signed URLs it returns ...`);
    // Signed in, the samples are uploaded as the seeded admin, through the provider like anyone.
    const admin = oidc?.users.find((u) => u.roles.includes('admin'));
    const sampleToken =
      oidc && admin
        ? (await passwordSignIn({ issuer: oidc.issuer, email: admin.email, password: admin.password })).accessToken
        : undefined;
    for (const sample of SAMPLES) {
      for (const side of ['source', 'target'] as const) {
        // Exactly what an analyst's client does: ask the API for a URL, PUT the file to it.
        const lines: string[] = [];
        const io = {
          stdout: { write: (t: string) => lines.push(t) },
          stderr: { write: (t: string) => lines.push(t) },
          env: sampleToken ? { TALLY_API_TOKEN: sampleToken } : {},
        } as unknown as CliIo;
        const code = await uploadCommand(
          [
            sample.files[side],
            '--dataset',
            sample.dataset,
            '--date',
            sample.businessDate,
            '--side',
            side,
            '--api',
            stack.endpoints.api,
            '--no-progress',
          ],
          io,
        );
        if (code !== 0)
          throw new Error(`uploading the ${sample.dataset} sample ${side} failed: ${lines.join('').trim()}`);
        say(`  ${lines.join('').trim()}`);
      }
    }
  }
  await stack.waitForIdle();
  const counts = await stack.counts();
  if (values.once) {
    const datasets: Record<string, unknown> = {};
    for (const sample of SAMPLES) {
      const run = await latestRun(stack, sample.dataset, sample.businessDate);
      datasets[sample.dataset] = run
        ? {
            run_id: run.run_id,
            run: run.status,
            outcome: run.summary?.outcome ?? null,
            triage: run.triage?.state ?? null,
            exceptions: run.summary?.exceptions ?? {},
          }
        : null;
    }
    process.stdout.write(`${JSON.stringify({ ...counts, datasets })}\n`);
    await stack.stop();
    await oidc?.stop();
    return 0;
  }
  if (!values['no-sample']) for (const sample of SAMPLES) await report(stack, sample, say);
  say(`\nStored: ${JSON.stringify(counts)}`);
  say(`\n${nextSteps(stack.endpoints.api, dataDir)}\nRunning; Ctrl-C to stop.`);
  // Up: the search index loads now, in the background, rather than in the first search.
  void stack.warm();
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  say('\nStopping...');
  await stack.stop();
  await oidc?.stop();
  return 0;
}

/** `--two-regions`: the failover drill's stack, left running for an operator to try `tally region` on. */
async function runTwoRegions(values: { port?: string }, dataDir: string): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const port = Number(values.port ?? process.env.TALLY_API_PORT ?? '3000');
  if (!Number.isInteger(port) || port < 0 || port > 65534) {
    process.stderr.write(`tally start: --port must be a port number (0-65534), got "${values.port}"\n\n${help}`);
    return 2;
  }
  const regions = await startTwoRegions({
    dataDir: join(dataDir, 'regions'),
    apiPorts: { primary: port, secondary: port === 0 ? 0 : port + 1 },
    onRouterError: (error) => say(`  ! ${error.message}`),
  });
  await regions.primary.loadPolicies();
  await regions.waitForIdle();
  say('Tally local stack, two regions');
  for (const stack of [regions.primary, regions.secondary])
    say(
      `  ${stack.region}  ${await stack.multiRegion?.role.read()}  API ${stack.endpoints.api}  bucket ${stack.names.bucket}`,
    );
  say(`\nTry: npx tally region status; npx tally region fence ${regions.primary.region}; npx tally region promote ${regions.secondary.region}
The API commands take --api URL for either region. Running; Ctrl-C to stop.`);
  for (const stack of [regions.primary, regions.secondary]) void stack.warm();
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  say('\nStopping...');
  await regions.stop();
  return 0;
}

async function latestRun(stack: LocalStack, dataset: string, businessDate: string) {
  const runs = await stack.dynamo.send(
    new QueryCommand({
      TableName: stack.names.tables.runs,
      IndexName: 'by_dataset_date',
      KeyConditionExpression: 'dataset_date = :dd',
      ExpressionAttributeValues: { ':dd': datasetDateKey(dataset, businessDate) },
      ScanIndexForward: false,
      Limit: 1,
    }),
  );
  return runs.Items?.[0];
}

async function report(stack: LocalStack, sample: (typeof SAMPLES)[number], say: (line: string) => void): Promise<void> {
  const files = await stack.dynamo.send(
    new QueryCommand({
      TableName: stack.names.tables.files,
      KeyConditionExpression: 'dataset_date = :dd',
      ExpressionAttributeValues: { ':dd': datasetDateKey(sample.dataset, sample.businessDate) },
    }),
  );
  say(`\n${sample.dataset}: files`);
  for (const f of files.Items ?? [])
    say(`  ${f.side.padEnd(6)} ${f.status} ${f.rows} rows${f.error ? ` — ${f.error.code}: ${f.error.message}` : ''}`);
  const run = await latestRun(stack, sample.dataset, sample.businessDate);
  if (!run) return;
  say(
    `\n${sample.dataset}: latest run ${run.run_id}: ${run.status}${run.summary?.outcome ? ` ${run.summary.outcome}` : ''} (policy ${run.policy_version ?? '-'})`,
  );
  if (run.summary) {
    const s = run.summary;
    say(
      `  rows source ${s.rows.source}, target ${s.rows.target}; matched ${s.matched}; rejected ${s.rejected.source + s.rejected.target}; ${s.duration_ms} ms`,
    );
    say(
      `  exceptions ${
        Object.entries(s.exceptions)
          .map(([t, n]) => `${t} ${n}`)
          .join(', ') || 'none'
      }`,
    );
    say(
      `  stored: ${storedText(s)}; ${s.triage_enqueued} need triage` +
        ((s.cut_for_storage ?? 0) > 0 ? `; ${s.cut_for_storage} cut to fit one DynamoDB item` : ''),
    );
  }
  if (run.triage?.state === 'HELD')
    say(
      `  triage HELD by the runaway guard: ${run.triage.reason ?? ''}\n  release it: npx tally runs triage ${run.run_id} --release (or Release on the dashboard's Runs view)`,
    );
  else if (run.triage_plan)
    say(
      `  triage ${run.triage?.state ?? ''}: ${run.triage_plan.patterns + run.triage_plan.singletons} model calls (${run.triage_plan.patterns} patterns + ${run.triage_plan.singletons} singletons)`,
    );
  if (run.error) say(`  error ${run.error.code}: ${run.error.message}`);
}

process.exitCode = await main().catch((error: Error) => {
  process.stderr.write(`tally start: ${error.stack ?? error.message}\n`);
  return 1;
});

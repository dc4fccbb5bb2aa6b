/**
 * `npm run drill:failover`: a region failover and failback, end to end, on the two-region local
 * stack (scripts/local/regions.ts), with the operator's own commands (`tally region`):
 *
 *   1. upload and reconcile yesterday's trades in the primary (replicated to the secondary)
 *   2. fence the primary: its /health fails, its API refuses writes
 *   3. promote the secondary: its /health answers 200 (measured: the time to recover)
 *   4. list and search in the secondary: yesterday's exceptions are there
 *   5. upload and reconcile today's trades in the secondary, and acknowledge one exception
 *   6. the primary comes back unfenced (its role put back to active, as after an outage the fence
 *      never reached): it yields to the later-promoted secondary (/health 503, writes refused),
 *      the secondary keeps serving, and the operator fences it
 *   7. fail back: fence the secondary, promote the primary (measured)
 *   8. in the primary, everything written during the outage is listed and searchable
 *
 * Prints each step's outcome and its time, and the measured times to recover; exits 1 at the
 * first step that fails. `--data-dir DIR` keeps the regions' state (default: a temp dir, removed).
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { runRegion, type RegionStores } from '../cli/region.ts';
import { scriptOptions } from '../cli/usage.ts';
import { startTwoRegions, type TwoRegions } from '../local/regions.ts';
import { REGION_ROLE_FILE, type LocalStack } from '../local/stack.ts';

const DATASET = 'trades';
const DAY_MS = 86_400_000;

export class DrillStepError extends Error {}

interface Step {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail: string;
}

export interface DrillResult {
  readonly ok: boolean;
  readonly steps: readonly Step[];
  /** Fence of the primary to the secondary's /health answering 200. */
  readonly failoverMs?: number;
  /** Fence of the secondary to the primary's /health answering 200. */
  readonly failbackMs?: number;
}

async function api(stack: LocalStack, method: string, path: string, body?: unknown) {
  const response = await fetch(`${stack.endpoints.api}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: (text ? JSON.parse(text) : null) as Record<string, unknown> & { items?: Item[] },
  };
}

interface Item {
  exception_id: string;
  status: string;
  version: number;
}

async function listAll(stack: LocalStack, query: Record<string, string>): Promise<Item[]> {
  const items: Item[] = [];
  let token: string | undefined;
  do {
    const q = new URLSearchParams({ ...query, limit: '100', ...(token ? { next_token: token } : {}) });
    const res = await api(stack, 'GET', `/exceptions?${q}`);
    if (res.status !== 200)
      throw new DrillStepError(`GET /exceptions answered ${res.status}: ${JSON.stringify(res.body)}`);
    items.push(...(res.body.items ?? []));
    token = res.body.next_token as string | undefined;
  } while (token);
  return items;
}

async function search(stack: LocalStack, query: Record<string, string>): Promise<string[]> {
  const res = await api(stack, 'GET', `/search?${new URLSearchParams({ k: '50', ...query })}`);
  if (res.status !== 200) throw new DrillStepError(`GET /search answered ${res.status}: ${JSON.stringify(res.body)}`);
  return (res.body.items ?? []).map((i) => i.exception_id);
}

/** Polls /health until it answers `status`; resolves with when it did. */
async function healthBecomes(stack: LocalStack, status: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${stack.endpoints.api}/health`).catch(() => undefined);
    if (res?.status === status) return Date.now();
    if (Date.now() > deadline)
      throw new DrillStepError(
        `${stack.region} /health still answers ${res?.status ?? 'nothing'}, not ${status}, after ${timeoutMs} ms`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function uploadDay(stack: LocalStack, date: string): Promise<void> {
  await stack.upload(`incoming/${DATASET}/${date}/source.csv`, readFileSync(join(SAMPLE_DIR, 'source.csv')));
  await stack.upload(`incoming/${DATASET}/${date}/target.csv`, readFileSync(join(SAMPLE_DIR, 'target.csv')));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  return x.size === new Set(b).size && b.every((id) => x.has(id));
}

async function regionCommand(action: string, region: string, stores: RegionStores): Promise<void> {
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) } };
  const code = await runRegion(action, region, stores, io);
  if (code !== 0) throw new DrillStepError(`tally region ${action} ${region} exited ${code}: ${out.join('').trim()}`);
}

export async function runDrill(options: {
  readonly dataDir: string;
  readonly print?: (line: string) => void;
  readonly now?: Date;
}): Promise<DrillResult> {
  const print = options.print ?? (() => undefined);
  const steps: Step[] = [];
  const today = (options.now ?? new Date()).toISOString().slice(0, 10);
  const yesterday = new Date(Date.parse(today) - DAY_MS).toISOString().slice(0, 10);
  const measured: { failoverMs?: number; failbackMs?: number } = {};
  const errors: string[] = [];

  const step = async (name: string, run: () => Promise<string>): Promise<void> => {
    const started = Date.now();
    try {
      const detail = await run();
      steps.push({ name, ok: true, ms: Date.now() - started, detail });
      print(`  ok    ${name} (${Date.now() - started} ms): ${detail}`);
    } catch (error) {
      const detail = (error as Error).message;
      steps.push({ name, ok: false, ms: Date.now() - started, detail });
      print(`  FAIL  ${name} (${Date.now() - started} ms): ${detail}`);
      throw error;
    }
  };

  let regions: TwoRegions | undefined;
  try {
    await step('start two regions', async () => {
      regions = await startTwoRegions({
        dataDir: options.dataDir,
        onRouterError: (error) => errors.push(error.message),
      });
      return `${regions.primary.region} (active) at ${regions.primary.endpoints.api}, ${regions.secondary.region} (standby) at ${regions.secondary.endpoints.api}`;
    });
    const { primary, secondary } = regions as TwoRegions;
    const two = regions as TwoRegions;
    const stores: RegionStores = new Map([
      [primary.region, primary.multiRegion!.role],
      [secondary.region, secondary.multiRegion!.role],
    ]);
    const day = (date: string) => ({ dataset: DATASET, business_date: date });

    let yesterdays: Item[] = [];
    await step(`upload and reconcile ${yesterday} in the primary`, async () => {
      await primary.loadPolicies();
      await two.waitForIdle();
      await uploadDay(primary, yesterday);
      await two.waitForIdle();
      yesterdays = await listAll(primary, day(yesterday));
      if (yesterdays.length === 0) throw new DrillStepError('the run stored no exceptions');
      const found = await search(primary, { q: 'amount mismatch', ...day(yesterday) });
      if (
        !sameSet(
          found,
          yesterdays.map((e) => e.exception_id),
        )
      )
        throw new DrillStepError(`search finds ${found.length} of the ${yesterdays.length} exceptions`);
      const replicated = two.replicationCounts();
      if (replicated.objects < 2)
        throw new DrillStepError(`only ${replicated.objects} objects replicated to the secondary`);
      return `${yesterdays.length} exceptions, all searchable; ${replicated.applied} table writes and ${replicated.objects} objects replicated`;
    });

    // The primary's role as it stood before the fence: put back later to play an outage the fence never reached.
    const primaryRoleFile = join(options.dataDir, primary.region, REGION_ROLE_FILE);
    const unfencedRole = readFileSync(primaryRoleFile);

    let fencedAt = 0;
    await step(`fence the primary (${primary.region})`, async () => {
      fencedAt = Date.now();
      await regionCommand('fence', primary.region, stores);
      const unhealthyAt = await healthBecomes(primary, 503);
      const [first] = yesterdays as [Item];
      const write = await api(primary, 'PATCH', `/exceptions/${first.exception_id}`, {
        version: first.version,
        status: 'ACKNOWLEDGED',
      });
      const code = (write.body.error as { code?: string } | undefined)?.code;
      if (write.status !== 503 || code !== 'REGION_NOT_ACTIVE')
        throw new DrillStepError(`a write to the fenced primary answered ${write.status} ${code ?? ''}`);
      return `/health 503 after ${unhealthyAt - fencedAt} ms; a write answers 503 REGION_NOT_ACTIVE`;
    });

    await step(`promote the secondary (${secondary.region})`, async () => {
      await regionCommand('promote', secondary.region, stores);
      const healthyAt = await healthBecomes(secondary, 200);
      measured.failoverMs = healthyAt - fencedAt;
      return `/health 200 ${measured.failoverMs} ms after the primary was fenced`;
    });

    await step(`list and search ${yesterday} in the secondary`, async () => {
      const listed = await listAll(secondary, day(yesterday));
      if (
        !sameSet(
          listed.map((e) => e.exception_id),
          yesterdays.map((e) => e.exception_id),
        )
      )
        throw new DrillStepError(`the secondary lists ${listed.length} of the ${yesterdays.length} exceptions`);
      const found = await search(secondary, { q: 'amount mismatch', ...day(yesterday) });
      if (
        !sameSet(
          found,
          listed.map((e) => e.exception_id),
        )
      )
        throw new DrillStepError(`search in the secondary finds ${found.length} of the ${listed.length} exceptions`);
      return `${listed.length} listed, ${found.length} found by search`;
    });

    let todays: Item[] = [];
    let acknowledged = '';
    await step(`upload and reconcile ${today} in the secondary; acknowledge one exception`, async () => {
      await uploadDay(secondary, today);
      await two.waitForIdle();
      todays = await listAll(secondary, day(today));
      if (todays.length === 0) throw new DrillStepError('the run in the secondary stored no exceptions');
      const [first] = yesterdays as [Item];
      const current = (await api(secondary, 'GET', `/exceptions/${first.exception_id}`)).body as unknown as Item;
      const patched = await api(secondary, 'PATCH', `/exceptions/${first.exception_id}`, {
        version: current.version,
        status: 'ACKNOWLEDGED',
      });
      if (patched.status !== 200)
        throw new DrillStepError(`PATCH in the secondary answered ${patched.status}: ${JSON.stringify(patched.body)}`);
      acknowledged = first.exception_id;
      await two.waitForIdle();
      return `${todays.length} exceptions of ${today}; ${acknowledged} acknowledged`;
    });

    await step(`the primary comes back unfenced (its role still active): it yields to the secondary`, async () => {
      // A hard outage: the fence could not reach the primary, so its role still reads active, as written before.
      const tmp = `${primaryRoleFile}.drill`;
      writeFileSync(tmp, unfencedRole);
      renameSync(tmp, primaryRoleFile);
      const [first] = yesterdays as [Item];
      const deadline = Date.now() + 30_000;
      let refusal: string;
      for (;;) {
        const write = await api(primary, 'PATCH', `/exceptions/${first.exception_id}`, {
          version: first.version,
          status: 'ACKNOWLEDGED',
        });
        const error = write.body.error as { code?: string; message?: string } | undefined;
        if (write.status === 503 && /made active later/.test(error?.message ?? '')) {
          refusal = error?.code ?? '';
          break;
        }
        if (write.status !== 503 || error?.code !== 'REGION_NOT_ACTIVE')
          throw new DrillStepError(`a write to the returned primary answered ${write.status} ${error?.code ?? ''}`);
        if (Date.now() > deadline) throw new DrillStepError('the returned primary never read its role back as active');
        await new Promise((r) => setTimeout(r, 250));
      }
      if ((await api(primary, 'GET', '/health')).status !== 503)
        throw new DrillStepError("the returned primary's /health passes: Route 53 would fail back on its own");
      if ((await api(secondary, 'GET', '/health')).status !== 200)
        throw new DrillStepError('the secondary stopped serving when the primary came back');
      // The runbook: fence the old primary as soon as it is reachable, so its role says what it does.
      await regionCommand('fence', primary.region, stores);
      return `primary /health 503 and writes refused (${refusal}, "made active later"); secondary still serving; primary fenced`;
    });

    let failbackStarted = 0;
    await step(`fail back: fence the secondary, promote the primary`, async () => {
      failbackStarted = Date.now();
      await regionCommand('fence', secondary.region, stores);
      // Writes accepted by the secondary until its fence took effect replicate before the primary serves.
      await healthBecomes(secondary, 503);
      await two.waitForIdle();
      await regionCommand('promote', primary.region, stores);
      const healthyAt = await healthBecomes(primary, 200);
      measured.failbackMs = healthyAt - failbackStarted;
      return `primary /health 200 ${measured.failbackMs} ms after the secondary was fenced`;
    });

    await step(`in the primary: everything written during the outage is listed and searchable`, async () => {
      const listed = await listAll(primary, day(today));
      if (
        !sameSet(
          listed.map((e) => e.exception_id),
          todays.map((e) => e.exception_id),
        )
      )
        throw new DrillStepError(`the primary lists ${listed.length} of the ${todays.length} exceptions of ${today}`);
      const found = await search(primary, { q: 'amount mismatch', ...day(today) });
      if (
        !sameSet(
          found,
          listed.map((e) => e.exception_id),
        )
      )
        throw new DrillStepError(
          `search in the primary finds ${found.length} of the ${listed.length} exceptions of ${today}`,
        );
      const acked = await search(primary, { q: 'amount mismatch', ...day(yesterday), status: 'ACKNOWLEDGED' });
      if (!acked.includes(acknowledged))
        throw new DrillStepError(`the acknowledgement made in the secondary is not in the primary's index`);
      const item = (await api(primary, 'GET', `/exceptions/${acknowledged}`)).body as unknown as Item;
      if (item.status !== 'ACKNOWLEDGED')
        throw new DrillStepError(`the primary's table has ${acknowledged} ${item.status}`);
      return `${listed.length} of ${today} listed and found; the acknowledgement is in the table and the index`;
    });
  } catch (error) {
    if (!(error instanceof DrillStepError) && steps.every((s) => s.ok))
      steps.push({ name: 'drill', ok: false, ms: 0, detail: (error as Error).stack ?? String(error) });
  } finally {
    await regions?.stop();
  }
  if (errors.length > 0) print(`  (local stack errors seen: ${[...new Set(errors)].slice(0, 5).join('; ')})`);
  return { ok: steps.length > 0 && steps.every((s) => s.ok), steps, ...measured };
}

const USAGE = `Usage: npm run drill:failover [-- --data-dir DIR]

A region failover and failback, end to end, on the two-region local stack; exits 1 at the first
step that fails.
  --data-dir DIR   keep the regions' state in DIR (default: a temp dir, removed)
  -h, --help       this text
`;

async function main(): Promise<number> {
  const values = scriptOptions(
    () => parseArgs({ options: { 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }),
    USAGE,
  );
  if (typeof values === 'number') return values;
  const dataDir = values['data-dir'] ? resolve(values['data-dir']) : mkdtempSync(join(tmpdir(), 'tally-drill-'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  // The functions' logs would bury the steps (the refused writes are logged as errors): opt in with the variable.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  say(`Failover drill: two local regions under ${dataDir}`);
  const started = Date.now();
  const result = await runDrill({ dataDir, print: say });
  say('');
  if (result.failoverMs !== undefined)
    say(`Time to recover (failover): ${result.failoverMs} ms from fencing the primary to the secondary serving`);
  if (result.failbackMs !== undefined)
    say(`Time to fail back:          ${result.failbackMs} ms from fencing the secondary to the primary serving`);
  say(`Drill ${result.ok ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
  if (!values['data-dir']) rmSync(dataDir, { recursive: true, force: true });
  return result.ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main();

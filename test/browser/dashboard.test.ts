/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core
 * (no browser download), against the local stack exactly as `npm start` serves it — the sample
 * loaded through POST /uploads, the built web assets at `/` on the API's origin.
 * Screenshots of the main views go to test/browser/screenshots/ (git-ignored).
 */
import type { UsageReport } from '../../functions/shared/api-types.ts';
import { launchChromium } from '../support/chromium.ts';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { uploadCommand } from '../../scripts/cli/upload.ts';
import { policyCommand } from '../../scripts/cli/policy.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { ENV } from '../../functions/shared/resources.ts';

const SHOTS = join(REPO_ROOT, 'test', 'browser', 'screenshots');
const SAMPLE = { dataset: 'trades', date: '2025-12-10' };
const CORRECTED_TARGET = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8').replace(
  'T0005,ACCT1004,2025-12-03,475.00',
  'T0005,ACCT1004,2025-12-03,450.00',
);

let dataDir: string;
let stack: LocalStack;
let browser: Browser;
let page: Page;
let base: string;

async function uploadSample(api: string, date: string = SAMPLE.date): Promise<void> {
  for (const side of ['source', 'target'] as const) {
    const lines: string[] = [];
    const io = {
      stdout: { write: (t: string) => lines.push(t) },
      stderr: { write: (t: string) => lines.push(t) },
      env: {},
    } as unknown as CliIo;
    const code = await uploadCommand(
      [
        `${SAMPLE_DIR}${side}.csv`,
        '--dataset',
        SAMPLE.dataset,
        '--date',
        date,
        '--side',
        side,
        '--api',
        api,
        '--no-progress',
      ],
      io,
    );
    if (code !== 0) throw new Error(`uploading the sample ${side} failed: ${lines.join('')}`);
  }
}

/** README's screenshots (docs/screenshots/), rewritten only by `npm run screenshots`. */
const DOCS_SHOTS =
  process.env.TALLY_UPDATE_DOCS_SCREENSHOTS === '1' ? join(REPO_ROOT, 'docs', 'screenshots') : undefined;
const DOCS_VIEWS = new Set(['exceptions', 'exception-detail', 'search', 'upload', 'files', 'runs', 'operations']);

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  // The visible viewport only: the top of each view, small enough for the README.
  if (DOCS_SHOTS && DOCS_VIEWS.has(name)) {
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: join(DOCS_SHOTS, `${name}.png`), scale: 'css' });
  }
}

/** Waits until the exceptions table has loaded with `n` rows (a filter change reloads it). */
async function expectRows(n: number): Promise<void> {
  await expect
    .poll(
      async () => {
        const loading = await page.getByText('Loading exceptions…').count();
        return loading > 0 ? -1 : page.getByTestId('exception-row').count();
      },
      { timeout: 10_000 },
    )
    .toBe(n);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  if (DOCS_SHOTS) mkdirSync(DOCS_SHOTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'tally-browser-'));
  const webDir = join(dataDir, 'web');
  await buildWeb(webDir);
  // A daily budget, which the usage panel states (its chart, with the budget line, waits for a model
  // call: the local triage is rules only, nothing is spent).
  process.env[ENV.triageDailyBudgetUsd] = '5';
  stack = await startLocalStack({ dataDir, apiPort: 0, visibilityTimeoutSeconds: 1, webDir });
  await stack.loadPolicies();
  await stack.waitForIdle();
  await uploadSample(stack.endpoints.api);
  await stack.waitForIdle();
  base = stack.endpoints.api;
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('dashboard', () => {
  it('lists the five sample exceptions, newest first, with counts by type and severity', async () => {
    await page.goto(`${base}/`);

    await expectRows(5);
    await expect(page.getByRole('heading', { level: 1, name: 'Exceptions' }).isVisible()).resolves.toBe(true);
    const charts = page.getByRole('figure');
    await charts.first().waitFor();
    expect(await charts.first().textContent()).toMatch(/AMOUNT MISMATCH\s*2/);
    await shot('exceptions');
  });

  it('"Overdue only" narrows the charts with the listing (none of the samples is due yet)', async () => {
    const byType = page.getByRole('figure').first();
    await expect.poll(() => byType.textContent()).toMatch(/By type \(5 matching\)/);
    await page.getByTestId('overdue-only').check();

    await expectRows(0);
    await expect.poll(() => byType.textContent()).toMatch(/By type \(0 matching\)/);
    await page.getByTestId('overdue-only').uncheck();
    await expectRows(5);
  });

  it('a sparse filter whose first pages come back empty reads on to its matches, not "no exceptions"', async () => {
    // At scale an assignee's or a team's few exceptions sit behind pages the API answers empty
    // (each request reads a bounded share of the index): two such pages, then one match.
    const real = (await (await fetch(`${base}/exceptions?limit=1`)).json()) as { items: unknown[] };
    const asked: (string | null)[] = [];
    const sparse = /\/exceptions\?.*team=far-away/;
    await page.route(sparse, async (route) => {
      const token = new URL(route.request().url()).searchParams.get('next_token');
      asked.push(token);
      await route.fulfill({
        json:
          token === 't2'
            ? { items: real.items, count: 1, next_token: null }
            : { items: [], count: 0, next_token: token === 't1' ? 't2' : 't1' },
      });
    });
    await page.goto(`${base}/#/exceptions?team=far-away`);

    await expectRows(1);
    expect(asked).toEqual([null, 't1', 't2']);
    await expect(page.getByText('No exceptions match').count()).resolves.toBe(0);
    // Read past in place: this is page 1, with nothing before it.
    await expect(page.getByText(/Showing 1 exception, newest first \(page 1\)/).count()).resolves.toBe(1);
    await page.unroute(sparse);
    await page.goto(`${base}/`);
    await expectRows(5);
  });

  it('says when "soonest due first" ordered only the newest matches', async () => {
    // Past DUE_SORT_CAP matches the API sorts the newest that many and says so (truncated).
    const real = (await (await fetch(`${base}/exceptions?limit=1`)).json()) as { items: unknown[] };
    const byDue = /\/exceptions\?.*sort=due/;
    await page.route(byDue, (route) =>
      route.fulfill({ json: { items: real.items, count: 1, next_token: null, truncated: true } }),
    );
    await page.goto(`${base}/#/exceptions?sort=due`);

    await expectRows(1);
    await expect
      .poll(() => page.getByTestId('due-truncated').textContent())
      .toContain('the soonest due of the newest 1,000 only');
    await page.unroute(byDue);
    await page.goto(`${base}/#/exceptions?sort=due&dataset=trades`);
    await expectRows(5);
    await expect(page.getByTestId('due-truncated').count()).resolves.toBe(0);
    await page.goto(`${base}/`);
    await expectRows(5);
  });

  it("the runs view charts the days' model costs against the budget once a model was called", async () => {
    const real = (await (await fetch(`${base}/usage?days=14`)).json()) as UsageReport;
    // Yesterday a model was called and went past the budget: bars and the budget line.
    const days = real.days.map((d, i) =>
      i === 1
        ? { ...d, micro_usd: 6_000_000, calls: 40, input_tokens: 40_000, output_tokens: 8_000, remaining_micro_usd: 0 }
        : d,
    );
    const usage = /\/usage\?/;
    await page.route(usage, (route) => route.fulfill({ json: { ...real, days } }));
    await page.goto(`${base}/#/runs`);

    await page.getByTestId('budget-line').waitFor({ state: 'attached' });
    expect(await page.locator('.usage-chart rect').count()).toBe(14);
    expect(await page.locator('.usage-chart rect.over').count()).toBe(1);
    expect(await page.getByTestId('usage-none').count()).toBe(0);
    await page.unroute(usage);
    await page.goto(`${base}/`);
    await expectRows(5);
  });

  it('filtering by AMOUNT_MISMATCH shows the two amount breaks', async () => {
    await page.getByLabel('Type').selectOption('AMOUNT_MISMATCH');

    await expectRows(2);
    expect(page.url()).toContain('exception_type=AMOUNT_MISMATCH');
    const keys = await page.getByTestId('exception-row').locator('th a').allTextContents();
    expect(keys.sort()).toEqual(['T0005', 'T0018']);
  });

  it('an exception shows both amounts with the difference highlighted, its triage and its citations', async () => {
    await page.getByRole('link', { name: 'T0018' }).click();
    await page.getByRole('heading', { level: 1, name: /T0018/ }).waitFor();

    const amount = page.getByTestId('diff-row');
    expect(await amount.count()).toBe(1);
    expect(await amount.locator('th').textContent()).toContain('amount');
    expect(await amount.locator('td.differs mark').allTextContents()).toEqual(['310.00', '295.00']);
    expect(await amount.textContent()).toContain('Δ -15.00');
    const citations = page.getByTestId('citation');
    expect(await citations.count()).toBeGreaterThan(0);
    await citations.first().locator('summary').click();
    expect((await citations.first().locator('blockquote').textContent())?.length).toBeGreaterThan(20);
    expect(await page.getByText(/Triaged by rules/).count()).toBe(1);
    // The rules answer with the policy's severity: no model severity, the default route.
    expect(await page.getByTestId('severity-sources').textContent()).toMatch(/^ policy (LOW|MEDIUM|HIGH|CRITICAL)$/);
    expect(await page.getByTestId('triage-route').textContent()).toContain('route default');
    await shot('exception-detail');
  });

  it('acknowledging it changes its status and adds a history entry', async () => {
    const before = await page.getByTestId('history').locator('li').count();

    await page.getByLabel(/^Note/).fill('checking the fee schedule');
    await page.getByRole('button', { name: 'Acknowledge' }).click();

    await page.getByRole('status').filter({ hasText: 'Saved: status ACKNOWLEDGED' }).waitFor();
    expect(await page.getByTestId('status').textContent()).toBe('ACKNOWLEDGED');
    const history = page.getByTestId('history').locator('li');
    expect(await history.count()).toBe(before + 1);
    expect(await history.last().textContent()).toMatch(
      /Acknowledged by local-analyst \(OPEN → ACKNOWLEDGED\).*checking the fee schedule/,
    );
  });

  it('a concurrent change is reported as a conflict, not overwritten', async () => {
    const id = page.url().split('/exceptions/')[1] as string;
    const current = (await (await fetch(`${base}/exceptions/${id}`)).json()) as { version: number };
    // Someone else adds a note behind this page's back.
    const other = await fetch(`${base}/exceptions/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: current.version, note: 'from another analyst' }),
    });
    expect(other.status).toBe(200);

    await page.getByRole('button', { name: 'Resolve' }).click();

    const alert = page.getByRole('alert').filter({ hasText: 'Version conflict' });
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/Nothing was saved/);
    await shot('conflict');
    expect(await page.getByTestId('status').textContent()).toBe('ACKNOWLEDGED');
    await alert.getByRole('button', { name: 'Reload exception' }).click();
    await page.getByTestId('history').getByText('from another analyst').waitFor();
  });

  it('search returns scored results that say why they matched', async () => {
    await page.getByRole('link', { name: 'Search' }).click();
    await page.getByLabel('Search exceptions').fill('amount differs');
    await page.getByLabel('Search exceptions').press('Enter');

    const hits = page.getByTestId('search-hit');
    await hits.first().waitFor();
    expect(await hits.count()).toBeGreaterThan(0);
    expect(await hits.first().textContent()).toMatch(/score \d\.\d{3}/);
    expect(await hits.first().textContent()).toContain('AMOUNT MISMATCH');
    await shot('search');
    expect(new URL(page.url()).hash).toBe('#/search?q=amount+differs');
  });

  it('a link to #/search?q= opens with the search run', async () => {
    await page.goto(`${base}/#/exceptions`);
    await page.goto(`${base}/#/search?q=${encodeURIComponent('amount differs')}&exception_type=AMOUNT_MISMATCH`);

    const hits = page.getByTestId('search-hit');
    await hits.first().waitFor();
    expect(await page.getByLabel('Search exceptions').inputValue()).toBe('amount differs');
    expect(await hits.count()).toBe(2);
    expect(await hits.allTextContents()).toEqual([
      expect.stringContaining('AMOUNT MISMATCH'),
      expect.stringContaining('AMOUNT MISMATCH'),
    ]);
  });

  it('runs list the sample run with its summary; operations shows every queue and DLQ', async () => {
    await page.getByRole('link', { name: 'Runs' }).click();
    await page.getByTestId('run').first().waitFor();
    expect(await page.getByTestId('run').count()).toBe(1);
    expect(await page.getByTestId('run').first().textContent()).toMatch(/source 20, target 19.*Matched15/);
    expect(await page.getByTestId('run-outcome').first().textContent()).toMatch(/^FAIL/);
    // Triage usage per day against the budget: rules cost nothing.
    await page.getByTestId('usage-day').first().waitFor({ state: 'attached' });
    expect(await page.getByTestId('usage-day').count()).toBe(14);
    expect(await page.getByTestId('usage-panel').textContent()).toContain(
      'Today $0.000000 in 0 model call(s) of a $5.000000 daily budget ($5.000000 left',
    );
    // No model called (the local default): a sentence, not an empty plot with only the budget line.
    expect(await page.getByTestId('budget-line').count()).toBe(0);
    expect(await page.getByTestId('usage-none').textContent()).toContain('No model call in the last 14 days');
    expect(await page.getByTestId('run-cost').first().textContent()).toBe(
      'Triage cost $0.000000: 0 model calls, 0 input and 0 output tokens',
    );
    // The new summary: per compared field, unequal values and those within tolerance.
    const fields = page.getByTestId('run-fields').first();
    expect(await fields.locator('tbody th').allTextContents()).toEqual(expect.arrayContaining(['amount']));
    expect(await fields.locator('tbody tr').count()).toBeGreaterThan(0);
    const report = page.getByTestId('report-links').first().getByRole('link', { name: 'Report' });
    const reportHref = (await report.getAttribute('href')) as string;
    expect(reportHref).toMatch(/\/runs\/run-[^/]+\/report\?format=html$/);
    const served = await fetch(new URL(reportHref, base));
    expect(served.status).toBe(200);
    expect(await served.text()).toContain('<h2>Outcome: <span class="FAIL">FAIL</span></h2>');
    await shot('runs');

    await page.getByRole('link', { name: 'Operations' }).click();
    await page.getByTestId('queue-row').first().waitFor();
    expect(await page.getByTestId('queue-row').locator('th').allTextContents()).toEqual([
      'ingest',
      'recon',
      'store',
      'triage',
      // Business events on their way to the webhooks.
      'notifications',
    ]);
    expect(await page.getByText('All dead-letter queues are empty.').count()).toBe(1);
    const runbook = await page.getByRole('link', { name: /runbook|DLQ depth/ }).getAttribute('href');
    expect((await fetch(`${base}/${runbook}`)).status).toBe(200);
    await shot('operations');
  });

  it('uploading a corrected target through the page makes a new run that resolves the corrected exception', async () => {
    await page.getByRole('link', { name: 'Upload' }).click();
    await page.getByLabel('Dataset').fill(SAMPLE.dataset);
    await page.getByLabel('Business date').fill(SAMPLE.date);
    await page
      .getByLabel(/Target file/)
      .setInputFiles({ name: 'target.csv', mimeType: 'text/csv', buffer: Buffer.from(CORRECTED_TARGET) });

    await page.getByRole('button', { name: 'Upload and reconcile' }).click();

    const result = page.getByTestId('upload-run');
    await result.getByText('COMPLETED').waitFor({ timeout: 60_000 });
    expect(await page.locator('progress#p-target').getAttribute('value')).toBe('1');
    expect(await result.textContent()).toMatch(/AMOUNT MISMATCH 1.*1 resolved/);
    await shot('upload');
    await stack.waitForIdle();

    await result.getByRole('link', { name: /All exceptions for trades/ }).click();
    await expectRows(5);
    const t0005 = page.getByTestId('exception-row').filter({ has: page.getByRole('link', { name: 'T0005' }) });
    expect(await t0005.locator('.badge').nth(1).textContent()).toBe('RESOLVED');
    await page.getByLabel('Status').selectOption('OPEN');
    await expectRows(3); // T0018 was acknowledged above
  });

  it('works with the keyboard and at tablet width', async () => {
    await page.close();
    page = await browser.newPage({ viewport: { width: 820, height: 1000 } });
    await page.goto(`${base}/#/exceptions`);
    await expectRows(5);

    await page.keyboard.press('Tab');
    // (Expressions as strings: this file is type-checked without the DOM library.)
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(820);
    // Every form control has a label.
    const unlabelled = await page.evaluate(`[...document.querySelectorAll('input, select, textarea')]
      .filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).length`);
    expect(unlabelled).toBe(0);
    await shot('exceptions-tablet');
  });

  it('a rejected upload says why on the upload page and in Files, and the run and exceptions say they are behind it', async () => {
    await page.goto(`${base}/#/upload`);
    await page.getByLabel('Dataset').fill(SAMPLE.dataset);
    await page.getByLabel('Business date').fill(SAMPLE.date);
    const semicolons = CORRECTED_TARGET.replaceAll(',', ';');
    await page
      .getByLabel(/Target file/)
      .setInputFiles({ name: 'target.csv', mimeType: 'text/csv', buffer: Buffer.from(semicolons) });

    await page.getByRole('button', { name: 'Upload and reconcile' }).click();

    const refused = page.getByTestId('upload-rejected');
    await refused.waitFor({ timeout: 60_000 });
    expect(await refused.textContent()).toMatch(/target file was rejected.*MISSING_COLUMNS.*semicolon-delimited/);
    await refused.getByRole('link', { name: /Files for trades/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Files' }).waitFor();
    const rows = page.getByTestId('file-row');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(2);
    const target = rows.filter({ hasText: 'target' });
    expect(await target.locator('.badge').textContent()).toBe('REJECTED');
    expect(await target.textContent()).toMatch(
      /MISSING_COLUMNS at line 1.*semicolon-delimited; this side.s policy reads comma-delimited files/,
    );
    expect(await rows.filter({ hasText: 'source' }).textContent()).toMatch(/ACCEPTED\s*20/);
    await shot('files');

    await page.getByLabel('Status').selectOption('REJECTED');
    await expect.poll(() => page.getByTestId('file-row').count(), { timeout: 10_000 }).toBe(1);

    await page.getByRole('link', { name: 'Runs' }).click();
    const latest = page.getByTestId('run').first();
    await latest.getByTestId('stale-upload').waitFor();
    expect(await latest.getByTestId('stale-upload').textContent()).toMatch(
      /latest target upload was rejected.*MISSING_COLUMNS.*reconciles the previous target file/,
    );
    expect(await latest.textContent()).toMatch(
      /Took\s*[\d.]+ (ms|s) \(queued [\d.]+ (ms|s), processing [\d.]+ (ms|s)\)/,
    );

    await page.goto(`${base}/#/exceptions?dataset=${SAMPLE.dataset}&business_date=${SAMPLE.date}`);
    await expectRows(5);
    await page.getByTestId('stale-upload').waitFor();
    expect(await page.getByTestId('stale-upload').textContent()).toMatch(/latest target upload was rejected/);
  });

  it('a run’s break patterns: the panel shows each saved pattern, links to its members and acknowledges them all', async () => {
    // The trades policy with patterns of two members (the sample's two missing trades make one), for a new day.
    const file = join(dataDir, 'trades.md');
    writeFileSync(
      file,
      readFileSync(join(REPO_ROOT, 'policies', 'datasets', 'trades.md'), 'utf8').replace(
        '"default_severity": "MEDIUM"\n}',
        '"default_severity": "MEDIUM",\n  "triage": { "pattern_min_members": 2 }\n}',
      ),
    );
    const quiet = { stdout: { write: () => true }, stderr: { write: () => true }, env: {} } as unknown as CliIo;
    expect(await policyCommand(['push', file, '--api', base], quiet)).toBe(0);
    await stack.waitForIdle();
    await uploadSample(base, '2025-12-11');
    await stack.waitForIdle();

    await page.goto(`${base}/#/runs`);
    const run = page.getByTestId('run').filter({ hasText: 'trades / 2025-12-11' });
    const panel = run.getByTestId('run-patterns');
    await panel.waitFor();
    expect(await panel.locator('summary').textContent()).toMatch(
      /1 pattern of 2 exceptions, 3 singletons \(4 triage calls\)/,
    );
    await panel.locator('summary').click();
    const pattern = panel.getByTestId('pattern');
    await pattern.waitFor();
    expect(await pattern.getByRole('heading').textContent()).toMatch(/^MISSING_IN_TARGET \(2 members\)/);
    expect(await pattern.getByTestId('pattern-statuses').textContent()).toMatch(/OPEN\s*2/);
    await shot('runs-patterns');

    await pattern.getByRole('button', { name: /^Acknowledge:/ }).click();
    await pattern.getByTestId('pattern-action-result').waitFor();
    expect(await pattern.getByTestId('pattern-action-result').textContent()).toMatch(/^2 moved, 0 version conflicts/);
    await expect
      .poll(() => pattern.getByTestId('pattern-statuses').textContent(), { timeout: 10_000 })
      .toMatch(/ACKNOWLEDGED\s*2/);

    await pattern.getByRole('link', { name: 'its 2 members' }).click();
    await expectRows(2);
    expect(await page.getByTestId('pattern-filter').textContent()).toMatch(/Members of break pattern pat_[0-9a-f]{16}/);
    const keys = await page.getByTestId('exception-row').locator('th').allTextContents();
    expect(keys.sort()).toEqual(['T0007', 'T0014']);
  });

  it('a run the runaway guard held shows a banner; Release starts its triage', async () => {
    // A wrong target: every amount x100, so the break rate is far above the default hold_above.
    const date = '2025-12-20';
    const wrong = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8').replace(
      /,(-?\d+)\.(\d+)$/gm,
      (_, units: string, cents: string) => `,${units}${cents}.00`,
    );
    await stack.upload(`incoming/${SAMPLE.dataset}/${date}/source.csv`, readFileSync(`${SAMPLE_DIR}source.csv`));
    await stack.upload(`incoming/${SAMPLE.dataset}/${date}/target.csv`, wrong);
    await stack.waitForIdle();

    await page.goto(`${base}/#/runs`);
    const held = page.getByTestId('run').filter({ hasText: date }).first();
    await held.getByTestId('run-held').waitFor();
    expect(await held.getByTestId('run-held').textContent()).toMatch(/Triage held.*break rate [\d.]+ is above 0\.5/);
    await shot('run-held');

    await held.getByRole('button', { name: 'Release' }).click();

    await held.getByTestId('run-triage').waitFor();
    expect(await held.getByTestId('run-triage').textContent()).toMatch(/Triage released by local-analyst/);
    await stack.waitForIdle();
    await page.reload();
    const released = page.getByTestId('run').filter({ hasText: date }).first();
    await released.getByTestId('run-triage').waitFor();
    expect(await released.getByTestId('run-triage').textContent()).toMatch(
      /Triage dispatched.*\d+ triage calls? \(\d+ patterns? \+ \d+ singletons?/,
    );
  });

  it('an exception cut to fit its stored item says so, and lists its first line numbers with their count', async () => {
    // A key on 50,000 rows: 50,000 line numbers are over one DynamoDB item; the first 1,000 are stored.
    const date = '2025-12-21';
    const source = `${readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8')}${'T9000,ACCT1,2025-12-21,1.00\n'.repeat(50_000)}`;
    await stack.upload(`incoming/${SAMPLE.dataset}/${date}/source.csv`, Buffer.from(source));
    await stack.upload(`incoming/${SAMPLE.dataset}/${date}/target.csv`, readFileSync(`${SAMPLE_DIR}target.csv`));
    await stack.waitForIdle();
    const listed = (await (
      await fetch(
        `${base}/exceptions?dataset=${SAMPLE.dataset}&business_date=${date}&exception_type=DUPLICATE_IN_SOURCE`,
      )
    ).json()) as { items: { exception_id: string }[] };
    const id = listed.items[0]?.exception_id;

    await page.goto(`${base}/#/exceptions/${id}`);
    await page.getByTestId('row-omitted').waitFor();

    expect(await page.getByTestId('row-omitted').textContent()).toBe(
      "Source row: not stored (over DynamoDB's item size): line numbers after the first 1000 of 50000.",
    );
    const lines = Array.from({ length: 20 }, (_, i) => i + 22).join(', ');
    expect(await page.locator('table.rows caption').textContent()).toContain(
      `(lines: source ${lines}, … (1000 stored); target —)`,
    );
    expect(await page.locator('table.rows th[scope="row"]').allTextContents()).not.toContain('_omitted');

    // Its run counts it among what it stored.
    await page.locator(`a[href^="#/runs?run="]`).click();
    await page.getByTestId('run-cut').waitFor();
    expect(await page.getByTestId('run-cut').textContent()).toBe(
      ' (1 cut to fit one DynamoDB item: each says what in its row)',
    );
  });
});

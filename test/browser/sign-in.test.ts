/**
 * The dashboard signing in, in a real browser (Debian's Chromium, headless, playwright-core)
 * against `npm start -- --auth`: the page redirects to the local OpenID provider, the user signs
 * in on its form, the page comes back with a code, exchanges it (PKCE) and calls the API with the
 * token, exactly as it does against Cognito. Each user sees and may do what their roles and
 * datasets allow.
 */
import { launchChromium } from '../support/chromium.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import {
  DASHBOARD_CLIENT_ID,
  LOCAL_USERS,
  passwordSignIn,
  startLocalOidc,
  type LocalOidc,
} from '../../scripts/local/oidc.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { uploadCommand } from '../../scripts/cli/upload.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { API_ROUTES, routeKey } from '../../functions/query-api/route-table.ts';

let dataDir: string;
let oidc: LocalOidc;
let stack: LocalStack;
let browser: Browser;
let base: string;
const passwordOf = (email: string) => LOCAL_USERS.find((u) => u.email === email)?.password as string;
const tokenOf = async (email: string) =>
  (await passwordSignIn({ issuer: oidc.issuer, email, password: passwordOf(email) })).accessToken;

/** Both samples, uploaded through the API as the seeded admin (what `npm start -- --auth` does). */
async function uploadSamples(token: string): Promise<void> {
  const files = [
    ['trades', 'source', 'source.csv'],
    ['trades', 'target', 'target.csv'],
    ['payments', 'source', 'payments/source.csv'],
    ['payments', 'target', 'payments/target.jsonl'],
  ] as const;
  for (const [dataset, side, file] of files) {
    const lines: string[] = [];
    const io = {
      stdout: { write: (t: string) => lines.push(t) },
      stderr: { write: (t: string) => lines.push(t) },
      env: { TALLY_API_TOKEN: token },
    } as unknown as CliIo;
    const args = [`${SAMPLE_DIR}${file}`, '--dataset', dataset, '--date', '2025-12-10', '--side', side];
    const code = await uploadCommand([...args, '--api', base, '--no-progress'], io);
    if (code !== 0) throw new Error(`uploading ${dataset} ${side} failed: ${lines.join('')}`);
  }
}

/** Opens the dashboard in a fresh context and signs in on the provider's form. */
async function signIn(email: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  // The page sends itself to the issuer as soon as its script runs: a wait tied to one navigation
  // (goto's load, waitForURL) can see it aborted by the next, so poll where the page is instead.
  await page.goto(`${base}/`, { waitUntil: 'commit' });
  await expect.poll(() => page.url().startsWith(`${oidc.issuer}/interaction/`), { timeout: 15_000 }).toBe(true);
  await page.getByLabel('E-mail').fill(email, { timeout: 15_000 });
  await page.getByLabel('Password').fill(passwordOf(email));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => page.url().startsWith(base), { timeout: 15_000 }).toBe(true);
  // Back on the dashboard is not signed in yet: the page still exchanges the code for its token.
  // A test's next navigation before that reloads it without a token (it starts over at the
  // issuer): wait until it shows who is signed in.
  await page.getByTestId('who').filter({ hasText: email }).waitFor({ timeout: 15_000 });
  return page;
}

async function rowCount(page: Page): Promise<number> {
  const loading = await page.getByText('Loading exceptions…').count();
  return loading > 0 ? -1 : page.getByTestId('exception-row').count();
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-sign-in-'));
  const webDir = join(dataDir, 'web');
  await buildWeb(webDir);
  oidc = await startLocalOidc();
  stack = await startLocalStack({
    dataDir: join(dataDir, 'data'),
    apiPort: 0,
    visibilityTimeoutSeconds: 1,
    webDir,
    auth: { issuer: oidc.issuer, audience: oidc.audience, dashboardClientId: DASHBOARD_CLIENT_ID },
  });
  base = stack.endpoints.api;
  await stack.loadPolicies();
  await stack.waitForIdle();
  await uploadSamples(await tokenOf('admin@tally.local'));
  await stack.waitForIdle();
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await oidc?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('dashboard sign-in', () => {
  it('an approver signs in on the provider, sees both datasets and acknowledges as themselves', async () => {
    const page = await signIn('approver@tally.local');

    await expect.poll(() => rowCount(page), { timeout: 15_000 }).toBeGreaterThan(5);
    expect(await page.getByTestId('who').textContent()).toBe('approver@tally.local · approver · all datasets');
    await page.getByRole('link', { name: 'T0018' }).click();
    await page.getByRole('heading', { level: 1, name: /T0018/ }).waitFor();
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved: status ACKNOWLEDGED' }).waitFor();
    expect(await page.getByTestId('history').locator('li').last().textContent()).toMatch(
      /Acknowledged by approver@tally\.local/,
    );
    await page.context().close();
  });

  it('a viewer of trades sees only the five trades exceptions and is refused a change', async () => {
    const page = await signIn('viewer@tally.local');

    await expect.poll(() => rowCount(page), { timeout: 15_000 }).toBe(5);
    expect(await page.getByTestId('who').textContent()).toBe('viewer@tally.local · viewer · trades');
    await page.getByRole('link', { name: 'T0005' }).click();
    await page.getByRole('heading', { level: 1, name: /T0005/ }).waitFor();
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /needs the analyst role/ })
      .waitFor();
    expect(await page.getByTestId('status').textContent()).toBe('OPEN');
    await page.context().close();
  });

  // Maker-checker is W2's (POST /exceptions/{id}/approval, the approval queue on the dashboard):
  // this step runs once that route is in the table.
  const approvals = API_ROUTES.some((r) => routeKey(r) === 'POST /exceptions/{id}/approval');
  it.runIf(approvals)('a false positive marked by one approver is approved by a second one', async () => {
    const maker = await tokenOf('approver@tally.local');
    const list = (await (
      await fetch(`${base}/exceptions?dataset=trades&status=OPEN&limit=1`, {
        headers: { authorization: `Bearer ${maker}` },
      })
    ).json()) as { items: { exception_id: string; version: number }[] };
    const target = list.items[0] as { exception_id: string; version: number };
    const marked = await fetch(`${base}/exceptions/${target.exception_id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${maker}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: target.version, status: 'FALSE_POSITIVE', note: 'duplicate booking' }),
    });
    const pending = (await marked.json()) as { status: string; version: number };
    expect(pending.status).toBe('AWAITING_APPROVAL');
    const self = await fetch(`${base}/exceptions/${target.exception_id}/approval`, {
      method: 'POST',
      headers: { authorization: `Bearer ${maker}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: pending.version, decision: 'approve' }),
    });
    expect(self.status).toBe(403);

    const page = await signIn('approver2@tally.local');
    await page.goto(`${base}/#/exceptions/${target.exception_id}`);
    await page.getByRole('button', { name: /^Approve/ }).click();
    await expect.poll(() => page.getByTestId('status').textContent(), { timeout: 10_000 }).toBe('FALSE POSITIVE');
    await page.context().close();
  });
});

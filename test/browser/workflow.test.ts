/**
 * The exception workflow of issue 14 in a real browser (Debian's Chromium, headless, as
 * dashboard.test.ts drives it) against the local stack with the trades sample loaded: a bulk
 * acknowledge of the selected rows with each row's outcome, and accepting a suggested match, which
 * then waits for an approver who is not the maker (the local stack's one user is refused), and an
 * exception triaged again from its page.
 */
import { launchChromium } from '../support/chromium.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Browser, Page } from 'playwright-core';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { buildWeb } from '../../scripts/build-web.ts';
import { uploadCommand } from '../../scripts/cli/upload.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { SAMPLE_DIR } from '../../functions/shared/paths.ts';

let dataDir: string;
let stack: LocalStack;
let browser: Browser;
let page: Page;
let base: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-browser-workflow-'));
  const webDir = join(dataDir, 'web');
  await buildWeb(webDir);
  stack = await startLocalStack({ dataDir, apiPort: 0, visibilityTimeoutSeconds: 1, webDir });
  await stack.loadPolicies();
  await stack.waitForIdle();
  // 2025-12-10: the sample (five exceptions). 2025-12-11: the target also books T0007 under a
  // mistyped key, T0O07: the engine reports a MISSING_IN_TARGET and a MISSING_IN_SOURCE.
  const mistyped = join(dataDir, 'target-mistyped.csv');
  writeFileSync(
    mistyped,
    `${readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8').trimEnd()}\nT0O07,ACCT1002,2025-12-04,600.00\n`,
  );
  for (const [date, side, file] of [
    ['2025-12-10', 'source', `${SAMPLE_DIR}source.csv`],
    ['2025-12-10', 'target', `${SAMPLE_DIR}target.csv`],
    ['2025-12-11', 'source', `${SAMPLE_DIR}source.csv`],
    ['2025-12-11', 'target', mistyped],
  ] as const) {
    const lines: string[] = [];
    const io = {
      stdout: { write: (t: string) => lines.push(t) },
      stderr: { write: (t: string) => lines.push(t) },
      env: {},
    } as unknown as CliIo;
    const args = [file, '--dataset', 'trades', '--date', date, '--side', side];
    const code = await uploadCommand([...args, '--api', stack.endpoints.api, '--no-progress'], io);
    if (code !== 0) throw new Error(`uploading ${file} for ${date} failed: ${lines.join('')}`);
  }
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

async function expectRows(n: number): Promise<void> {
  await expect
    .poll(
      async () =>
        (await page.getByText('Loading exceptions…').count()) > 0 ? -1 : page.getByTestId('exception-row').count(),
      { timeout: 10_000 },
    )
    .toBe(n);
}

describe('dashboard workflow', () => {
  it('acknowledges the selected rows in one change and shows each row’s outcome', async () => {
    await page.goto(`${base}/#/exceptions?dataset=trades&business_date=2025-12-10`);
    await expectRows(5);

    await page.getByLabel('Select every exception on this page').check();
    await page.getByLabel('Select T0018').uncheck();
    await page.getByLabel('Move to').selectOption('ACKNOWLEDGED');
    await page.getByLabel('Note', { exact: true }).fill('morning sweep');
    await page.getByRole('button', { name: 'Apply to selected' }).click();

    const outcomes = page.getByTestId('row-outcome');
    await expect.poll(async () => (await outcomes.allTextContents()).filter((t) => t === 'updated').length).toBe(4);
    await expect
      .poll(async () => page.getByTestId('exception-row').filter({ hasText: 'ACKNOWLEDGED' }).count())
      .toBe(4);
    const untouched = page.getByTestId('exception-row').filter({ hasText: 'T0018' });
    expect(await untouched.textContent()).toContain('OPEN');
  });

  it('accepting a suggested match asks for approval, which the maker cannot give but can withdraw', async () => {
    await page.goto(`${base}/#/exceptions?dataset=trades&business_date=2025-12-11`);
    await page.getByRole('link', { name: 'T0O07' }).click();
    await page.getByRole('heading', { level: 1, name: /T0O07/ }).waitFor();

    const suggestions = page.getByTestId('suggestion');
    await suggestions.first().waitFor();
    // T0007: the same account, date and amount, and a key one edit away.
    const best = await suggestions.first().textContent();
    expect(best).toContain('T0007');
    expect(best).toContain('score 100');
    expect(best).toContain('keys T0007 and T0O07 are 1 edit(s) apart');
    await page.getByLabel('Reason for a match').selectOption('KEY_TYPO');
    await suggestions.first().getByRole('button', { name: 'Accept match' }).click();

    await page.getByRole('status').filter({ hasText: 'Match asked' }).waitFor();
    await expect.poll(() => page.getByTestId('status').textContent()).toBe('AWAITING APPROVAL');
    const approval = page.getByTestId('approval');
    expect(await approval.textContent()).toMatch(/asked to move it from OPEN to RESOLVED as a match with/);
    // The page's user asked for it (no sign-in: one local user): Approve is not theirs to give.
    const withdraw = approval.getByRole('button', { name: 'Withdraw request' });
    await withdraw.waitFor();
    expect(await approval.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
    expect(await approval.textContent()).toContain('You asked for it: someone else approves it');
    const detail = page.url();

    // Who the user is, asked once per page load: the header and the approval panel share the answer.
    const asked: string[] = [];
    const count = (request: { url(): string }) => {
      if (new URL(request.url()).pathname === '/me') asked.push(request.url());
    };
    page.on('request', count);
    await page.reload();
    await page.getByTestId('approval').getByRole('button', { name: 'Withdraw request' }).waitFor();
    await page.getByTestId('who').waitFor();
    page.off('request', count);
    expect(asked).toHaveLength(1);

    // Both sides wait in the approval queue, where the maker is offered Withdraw, not Approve.
    await page.getByRole('link', { name: 'Approvals' }).click();
    await expectRows(2);
    const rows = page.getByTestId('exception-row');
    expect((await rows.allTextContents()).join(' ')).toMatch(/T0O07[\s\S]*T0007|T0007[\s\S]*T0O07/);
    for (const row of await rows.all()) {
      await row.getByRole('button', { name: 'Withdraw request' }).waitFor();
      expect(await row.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
    }

    // Withdrawn: both sides go back to where they were, and the queue is empty.
    await page.goto(detail);
    await page.getByTestId('approval').getByRole('button', { name: 'Withdraw request' }).click();
    await expect.poll(() => page.getByTestId('status').textContent()).toBe('OPEN');
    await page.getByRole('link', { name: 'Approvals' }).click();
    await expectRows(0);
  });
  it('"Triage again" has an exception that cited nothing triaged anew by the stack, and shows the new triage', async () => {
    await page.goto(`${base}/#/exceptions?dataset=trades&business_date=2025-12-10`);
    await page.getByRole('link', { name: 'T0018' }).click();
    await page.getByRole('heading', { level: 1, name: /T0018/ }).waitFor();
    // As if triaged before the policy corpus was indexed: no citation.
    const id = decodeURIComponent(page.url().split('#/exceptions/')[1] as string);
    await stack.dynamo.send(
      new UpdateCommand({
        TableName: stack.names.tables.exceptions,
        Key: { exception_id: id },
        UpdateExpression: 'SET triage.policy_citations = :none',
        ExpressionAttributeValues: { ':none': [] },
      }),
    );
    await page.reload();
    await page.getByTestId('no-citations').waitFor();
    const triaged = page.locator('.triage .small').first();
    const before = await triaged.textContent();

    await page.getByRole('button', { name: 'Triage again' }).click();

    await page.getByRole('status').filter({ hasText: 'Triaged again by' }).waitFor({ timeout: 30_000 });
    const after = await triaged.textContent();
    expect(after).toMatch(/Triaged by .* at \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    expect(after).not.toBe(before);
    expect(await page.getByTestId('citation').count()).toBeGreaterThan(0);
    expect(await page.getByTestId('no-citations').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Triage again' }).isEnabled()).toBe(true);
  });

  it('"Triage selected again" asks for each selected row and shows each row\'s outcome', async () => {
    await page.goto(`${base}/#/exceptions?dataset=trades&business_date=2025-12-10`);
    await expectRows(5);

    await page.getByLabel('Select T0018').check();
    await page.getByLabel('Select T0014').check();
    await page.getByRole('button', { name: 'Triage selected again' }).click();

    const outcomes = page.getByTestId('row-outcome');
    await expect
      .poll(async () => (await outcomes.allTextContents()).filter((t) => t === 'triage asked').length)
      .toBe(2);
    const asked = page.getByTestId('exception-row').filter({ hasText: 'triage asked' });
    expect((await asked.allTextContents()).join(' ')).toMatch(/T0018[\s\S]*T0014|T0014[\s\S]*T0018/);
    await stack.waitForIdle();
  });
});

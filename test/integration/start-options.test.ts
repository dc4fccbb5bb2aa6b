/**
 * `npm start` refuses options the mode it was asked for would ignore: `--two-regions` runs without
 * sign-in, samples or one-shot mode, and `--two-regions --auth` once started a stack open to
 * every local caller while the command line said sign-in was required.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

const dir = mkdtempSync(join(tmpdir(), 'tally-start-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(...args: string[]) {
  return spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', 'scripts/local/start.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('npm start -- --two-regions with options it does not honour', () => {
  it.each([
    [['--auth'], '--auth'],
    [['--auth-port', '3101'], '--auth-port'],
    [['--once'], '--once'],
    [['--store-workers', '4', '--auth'], '--auth, --store-workers'],
  ])('%j exits 2 naming them, before touching the data directory', (extra, named) => {
    const dataDir = join(dir, `d-${extra.join('')}`);
    const result = start('--two-regions', '--data-dir', dataDir, '--port', '0', ...extra);

    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`tally start: --two-regions does not take ${named}`);
    expect(result.stderr).toContain('Usage: npm start -- [options]');
    expect(existsSync(dataDir)).toBe(false);
  });
});

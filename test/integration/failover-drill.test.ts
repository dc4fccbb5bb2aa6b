/**
 * The failover drill as CI runs it: `npm run drill:failover` on a clean temp dir, two local
 * regions, every step passing and the times to recover printed (issue 15's acceptance).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

describe('npm run drill:failover', () => {
  it('fails over to the secondary and back with nothing written during the outage lost', () => {
    const run = spawnSync('npm', ['run', '--silent', 'drill:failover'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    });

    expect(run.stdout).toMatch(/Drill passed/);
    expect(run.status).toBe(0);
    const steps = run.stdout.split('\n').filter((l) => /^\s+(ok|FAIL)\s/.test(l));
    expect(steps).toHaveLength(9);
    expect(steps.every((l) => l.trim().startsWith('ok'))).toBe(true);
    expect(run.stdout).toMatch(/list and search \d{4}-\d{2}-\d{2} in the secondary .*: 5 listed, 5 found by search/);
    // After an outage the fence never reached, the old primary yields to the later-promoted secondary.
    expect(run.stdout).toMatch(/ok +the primary comes back unfenced .*: primary \/health 503 and writes refused/);
    expect(run.stdout).toMatch(/Time to recover \(failover\): \d+ ms/);
    expect(run.stdout).toMatch(/Time to fail back: +\d+ ms/);
  }, 240_000);
});

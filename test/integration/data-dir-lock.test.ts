/**
 * A second `npm start` on the same data directory says which process holds it and exits,
 * instead of dying later with "Database is closed"; a lock left by a killed stack is taken over.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DATA_DIR_GITIGNORE,
  DataDirLockedError,
  ignoreDataDir,
  LOCK_FILE,
  lockDataDir,
} from '../../scripts/local/data-dir-lock.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';

let dir: string;
let holder: ChildProcess;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-lock-'));
  // Stands in for a running stack: a live process whose pid is in the lock file.
  holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await once(holder, 'spawn');
});
afterAll(() => {
  holder?.kill();
  rmSync(dir, { recursive: true, force: true });
});

function deadPid(): number {
  const gone = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
  return gone.pid as number;
}

describe('the data directory lock', () => {
  it('refuses a second holder while the first is alive, naming its pid', () => {
    const first = lockDataDir(dir, holder.pid);
    try {
      expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
      expect(() => lockDataDir(dir)).toThrow(new RegExp(`pid ${holder.pid}`));
    } finally {
      first.release();
    }
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('takes over a lock whose process is gone, and says whose it was', () => {
    const gone = deadPid();
    writeFileSync(join(dir, LOCK_FILE), `${gone}\n`);

    const lock = lockDataDir(dir);

    expect(lock.previousPid).toBe(gone);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  it('`npm start` on a data directory in use exits 1 with a message naming the running pid', async () => {
    writeFileSync(join(dir, LOCK_FILE), `${holder.pid}\n`);
    try {
      const start = spawnSync(
        process.execPath,
        [
          '--disable-warning=ExperimentalWarning',
          'scripts/local/start.ts',
          '--data-dir',
          dir,
          '--no-sample',
          '--port',
          '0',
        ],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
      );

      expect(start.status).toBe(1);
      expect(start.stderr).toContain(`another Tally local stack (pid ${holder.pid}) is already using ${dir}`);
      expect(start.stderr).not.toContain('Database is closed');
      // The running stack's lock is left alone.
      expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(holder.pid));
      // The data directory ignores itself in git (ignoreDataDir, below).
      expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe(DATA_DIR_GITIGNORE);
    } finally {
      rmSync(join(dir, LOCK_FILE), { force: true });
    }
  });

  it('a data directory inside a git work tree ignores itself, and a .gitignore already there is kept', () => {
    // Prepare: a work tree with a data directory in it holding an emulator's file.
    const tree = mkdtempSync(join(tmpdir(), 'tally-tree-'));
    try {
      const git = (...args: string[]) => spawnSync('git', ['-C', tree, ...args], { encoding: 'utf8' });
      expect(git('init', '-q').status).toBe(0);
      const data = join(tree, 'mydata');
      mkdirSync(data);
      writeFileSync(join(data, 'endpoints.json'), '{}');
      expect(git('status', '--porcelain').stdout).toContain('mydata/');

      // Act
      ignoreDataDir(data);

      // Assess: git sees nothing of it; a second call, or a folder's own .gitignore, is kept.
      expect(git('status', '--porcelain').stdout).toBe('');
      ignoreDataDir(data);
      expect(readFileSync(join(data, '.gitignore'), 'utf8')).toBe(DATA_DIR_GITIGNORE);
      const own = join(tree, 'own');
      mkdirSync(own);
      writeFileSync(join(own, '.gitignore'), '*.tmp\n');
      ignoreDataDir(own);
      expect(readFileSync(join(own, '.gitignore'), 'utf8')).toBe('*.tmp\n');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

/**
 * One local stack per data directory. Two would share the emulators' files (the second start
 * used to die with "Database is closed"); the lock file names the running one's pid so the
 * second start can say which process to stop.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'tally.pid';

/** What a data directory ignores of itself: everything (its emulators' files are never source). */
export const DATA_DIR_GITIGNORE = "# The Tally local stack's data (npm start): never source.\n*\n";

export class DataDirLockedError extends Error {
  readonly pid: number;
  readonly lockFile: string;
  constructor(pid: number, lockFile: string, dataDir: string) {
    super(
      `another Tally local stack (pid ${pid}) is already using ${dataDir}; stop it first (kill ${pid}), or start this one with --data-dir DIR. If pid ${pid} is not a Tally stack, delete ${lockFile}.`,
    );
    this.name = 'DataDirLockedError';
    this.pid = pid;
    this.lockFile = lockFile;
  }
}

export interface DataDirLock {
  /** The pid of a stack that held the directory and is gone (it crashed or was killed), if any. */
  readonly previousPid: number | undefined;
  release(): void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(lockFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(lockFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the lock file unless it exists ('wx': of two starts racing, only one creates it). */
function tryCreate(lockFile: string, pid: number): boolean {
  try {
    writeFileSync(lockFile, `${pid}\n`, { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Takes the data directory for this process, or throws DataDirLockedError naming the holder. */
export function lockDataDir(dataDir: string, pid: number = process.pid): DataDirLock {
  const lockFile = join(dataDir, LOCK_FILE);
  let previousPid: number | undefined;
  if (!tryCreate(lockFile, pid)) {
    const current = holder(lockFile);
    if (current !== undefined && current !== pid && isAlive(current))
      throw new DataDirLockedError(current, lockFile, dataDir);
    // Left by a stack that is gone (killed, crashed): take over.
    previousPid = current;
    rmSync(lockFile, { force: true });
    if (!tryCreate(lockFile, pid)) throw new DataDirLockedError(holder(lockFile) ?? 0, lockFile, dataDir);
  }
  return {
    previousPid,
    release: () => {
      if (holder(lockFile) === pid) rmSync(lockFile, { force: true });
    },
  };
}

/**
 * Makes the data directory ignore itself in git: `--data-dir mydata` resolves against the
 * repository, and the emulators' files there showed in `git status`, one `git add .` from a
 * commit. A `.gitignore` already there (the directory is someone's own) is left as it is.
 */
export function ignoreDataDir(dataDir: string): void {
  try {
    writeFileSync(join(dataDir, '.gitignore'), DATA_DIR_GITIGNORE, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * A durable outbox: one JSON file per entry in a directory under the data dir. `add` returns
 * only after the entry and its directory entry are on disk (write to a temporary name, fsync,
 * rename, fsync the directory), so what the front door acknowledged survives `kill -9` and a
 * power cut; a torn write leaves only a `.tmp` file, removed when the outbox is opened again.
 * Entries list in the order they were added (names start with a zero-padded time and counter).
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export interface OutboxEntry<T> {
  readonly id: string;
  readonly value: T;
}

export interface Outbox<T> {
  add(value: T): Promise<string>;
  remove(id: string): Promise<void>;
  list(): Promise<OutboxEntry<T>[]>;
}

const SUFFIX = '.json';

/** fsync a file or (flags 'r') a directory, so a rename into it is on disk too. */
export async function fsyncPath(path: string, flags: string): Promise<void> {
  const handle = await open(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function fileOutbox<T>(dir: string): Outbox<T> {
  mkdirSync(dir, { recursive: true });
  // Left by a write that never finished: its PUT was not answered, so nothing was promised.
  for (const name of readdirSync(dir)) if (name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
  let counter = 0;
  return {
    async add(value) {
      counter = (counter + 1) % 1_000_000;
      const id = `${String(Date.now()).padStart(15, '0')}-${String(counter).padStart(6, '0')}-${randomUUID()}`;
      const tmp = join(dir, `${id}.tmp`);
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(JSON.stringify(value));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, join(dir, `${id}${SUFFIX}`));
      await fsyncPath(dir, 'r');
      return id;
    },
    async remove(id) {
      await rm(join(dir, `${id}${SUFFIX}`), { force: true });
    },
    async list() {
      const names = (await readdir(dir)).sort();
      const entries: OutboxEntry<T>[] = [];
      for (const name of names) {
        if (!name.endsWith(SUFFIX)) continue;
        const id = name.slice(0, -SUFFIX.length);
        entries.push({ id, value: JSON.parse(await readFile(join(dir, name), 'utf8')) as T });
      }
      return entries;
    },
  };
}

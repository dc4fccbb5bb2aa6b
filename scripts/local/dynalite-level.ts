/**
 * LevelDB options for dynalite's store (imported before dynalite: it reads `level`'s `Level` when
 * it loads). dynalite opens LevelDB with the defaults: snappy compression of every block, a 4 MiB
 * write buffer (a flush and, soon, a compaction every 4 MiB of writes) and an 8 MiB block cache.
 * A run of the 300k pair writes and rewrites tens of MiB of items and index entries.
 *
 * Measured with `npm run bench:pipeline` (5,322 breaks), CPU after the run completed outside any
 * JavaScript thread (LevelDB's and libuv's pool threads, GC, compilers): 8.1-10.0 s with the
 * defaults, 5.6-6.3 s with these (three runs and two). A local data folder trades a little disk
 * for it: blocks are stored uncompressed.
 *
 * What a kill leaves is unchanged: every write still goes to LevelDB's log first (a larger write
 * buffer only means a longer log to replay at the next open, at most these 64 MiB).
 *
 * Reads are served on the calling thread (`getSync`; dynalite has a thread of its own), not as
 * libuv work: an async `get` is a snapshot, a job on the pool, a completion and two promises, and
 * in the pipeline's profile the native part of those gets alone was ~1.9 s of dynalite's thread
 * after the run completed. A read of what LevelDB holds in memory (its write buffer, its block
 * cache) takes ~2.4 us this way against ~25 us of CPU queued (10,000 gets of 8 KB values). What a
 * get sees is the same: LevelDB's state when it is called. `bench:api` at 2k, GET /exceptions
 * (16 Queries and a BatchGetItem a page), alternated twice: dynalite 8.4-8.8 ms of CPU a page
 * against 9.8-10.2, LevelDB's pool and GC 12.0-12.9 against 15.3-16.2, 56-61 pages a second
 * against 48-51. Writes and iterators stay asynchronous (classic-level has no synchronous batch).
 */
import { createRequire } from 'node:module';

export const LEVEL_OPTIONS = {
  compression: false,
  writeBufferSize: 64 * 1024 * 1024,
  cacheSize: 64 * 1024 * 1024,
} as const;

interface LevelInstance {
  readonly status: string;
  get(key: unknown, options?: unknown): Promise<unknown>;
  getSync(key: unknown, options?: unknown): unknown;
}
type LevelClass = new (location: string, options?: Record<string, unknown>) => LevelInstance;

// `level` as dynalite resolves it (its own dependency), so the class it constructs is this one.
const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
const level = fromDynalite('level') as { Level: LevelClass; tuned?: true };
if (!level.tuned) {
  const Original = level.Level;
  level.Level = class TunedLevel extends Original {
    constructor(location: string, options: Record<string, unknown> = {}) {
      super(location, { ...LEVEL_OPTIONS, ...options });
    }

    // Read on the calling thread (see above); until the database is open, as dynalite's level does.
    override get(key: unknown, options?: unknown): Promise<unknown> {
      if (this.status !== 'open') return super.get(key, options);
      try {
        return Promise.resolve(this.getSync(key, options));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
  };
  level.tuned = true;
}

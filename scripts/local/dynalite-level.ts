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
 */
import { createRequire } from 'node:module';

export const LEVEL_OPTIONS = {
  compression: false,
  writeBufferSize: 64 * 1024 * 1024,
  cacheSize: 64 * 1024 * 1024,
} as const;

type LevelClass = new (location: string, options?: Record<string, unknown>) => object;

// `level` as dynalite resolves it (its own dependency), so the class it constructs is this one.
const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
const level = fromDynalite('level') as { Level: LevelClass; tuned?: true };
if (!level.tuned) {
  const Original = level.Level;
  level.Level = class TunedLevel extends Original {
    constructor(location: string, options: Record<string, unknown> = {}) {
      super(location, { ...LEVEL_OPTIONS, ...options });
    }
  };
  level.tuned = true;
}

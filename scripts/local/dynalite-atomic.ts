/**
 * dynalite (the local DynamoDB) made crash-safe: an item and its index entries in ONE LevelDB batch.
 *
 * dynalite 4 writes a put/update/delete as separate LevelDB writes: first the index entries
 * (deletes, then puts, in parallel), then the item. A process killed in between leaves a ghost
 * index entry (a listing returned 5,407 rows for 5,400 exceptions after a kill during recon) or an
 * item missing from its indexes (3 exceptions absent from four of six listings). Every table,
 * item and index lives in one LevelDB under key prefixes (`item-<table>~`, `index-global~<table>~
 * <index>~`), and a LevelDB batch is one write-ahead-log record: applied whole or not at all.
 *
 * So, at run time and without editing the package (as emulators.ts rewrites fauxqs' listen host):
 * `updateIndexes` computes the index writes with dynalite's own `getIndexActions` and hands them
 * to the item write that every caller makes next under the same per-key lock (putItem,
 * updateItem, deleteItem; batchWriteItem goes through the first and last), which then writes
 * them and the item in one batch. The check at the end refuses to start if dynalite's internals
 * are not the shape this relies on.
 *
 * Why this and not the alternatives: DynamoDB Local needs Java on every machine and in CI, and a
 * wrapper to keep it on loopback; an index rebuild at every unclean start reads the whole base
 * table (seconds at 100k items) and still trusts a half-written item. Cost here: none measurable
 * (one batch instead of 1 + 2n writes). The crash test (test/integration/crash-recovery.test.ts)
 * kills the stack while exceptions are stored and compares every listing with the base table.
 */
import { createRequire } from 'node:module';

interface LevelOp {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
}
type Callback = (err?: Error | null) => void;
interface SubDb {
  put(key: string, value: unknown, cb: Callback): void;
  del(key: string, cb: Callback): void;
  __tallyAtomic?: true;
}
interface Store {
  db: { batch(ops: LevelOp[], cb: Callback): void };
  getItemDb(name: string): SubDb;
  __tallyPending?: Map<string, { ops: LevelOp[]; change: TableChange }>;
}
interface Table {
  TableName: string;
  KeySchema?: { AttributeName: string }[];
  LocalSecondaryIndexes?: unknown[];
  GlobalSecondaryIndexes?: unknown[];
}
interface IndexAction {
  index: string;
  key: string;
  item?: unknown;
}
interface DynaliteDb {
  create(options: unknown): Store;
  createKey(item: unknown, table: Table): string;
  getIndexActions(
    indexes: unknown[],
    existing: unknown,
    item: unknown,
    table: Table,
  ): { puts: IndexAction[]; deletes: IndexAction[] };
  updateIndexes(store: Store, table: Table, existing: unknown, item: unknown, cb: Callback): void;
  __tallyAtomic?: true;
}

/**
 * One committed item write, as DynamoDB Streams would describe it (NEW_AND_OLD_IMAGES): images in
 * the wire format (AttributeValue maps), absent where there is no item before or after.
 */
export interface TableChange {
  readonly table: string;
  readonly keys: Record<string, unknown>;
  readonly oldImage?: Record<string, unknown>;
  readonly newImage?: Record<string, unknown>;
  /** When the write committed (ms since the epoch). */
  readonly at: number;
}

const require = createRequire(import.meta.url);

/** Told of every committed write, when given (the local stack's table streams). */
let changeListener: ((change: TableChange) => void) | undefined;

/** The level keys dynalite's sub-databases use (db/index.js getItemDb / getIndexDb). */
const itemPrefix = (table: string) => `item-${table}~`;
const indexPrefix = (type: 'Local' | 'Global', table: string, index: string) =>
  `index-${type.toLowerCase()}~${table}~${index}~`;
const pendingKey = (table: string, key: string) => `${table}\u0000${key}`;

/**
 * `onChange`: every committed item write, after its batch is written (the write path is the one
 * place that knows both images, so this is where a stream is captured: no table scan, no diff).
 */
export function makeDynaliteWritesAtomic(onChange?: (change: TableChange) => void): void {
  changeListener = onChange ?? changeListener;
  const db = require('dynalite/db') as DynaliteDb;
  if (db.__tallyAtomic) return;
  for (const fn of ['create', 'createKey', 'getIndexActions', 'updateIndexes'] as const)
    if (typeof db[fn] !== 'function')
      throw new Error(
        `dynalite's db.${fn} is not a function: the atomic-write patch (scripts/local/dynalite-atomic.ts) needs updating`,
      );

  db.updateIndexes = (store, table, existing, item, cb) => {
    if (!existing && !item) return void setImmediate(cb);
    const ops = indexWrites(db, table, existing, item);
    const pending = (store.__tallyPending ??= new Map());
    const image = (item ?? existing) as Record<string, unknown>;
    const keys = Object.fromEntries((table.KeySchema ?? []).map((k) => [k.AttributeName, image[k.AttributeName]]));
    pending.set(pendingKey(table.TableName, db.createKey(item ?? existing, table)), {
      ops,
      change: {
        table: table.TableName,
        keys,
        ...(existing ? { oldImage: existing as Record<string, unknown> } : {}),
        ...(item ? { newImage: item as Record<string, unknown> } : {}),
        at: 0,
      },
    });
    setImmediate(cb);
  };

  const create = db.create;
  db.create = (options) => {
    const store = create(options);
    const getItemDb = store.getItemDb.bind(store);
    store.getItemDb = (name) => {
      // The same object every time (it carries the per-key lock): patched once, in place.
      const sub = getItemDb(name);
      if (sub.__tallyAtomic) return sub;
      const take = (key: string) => {
        const pending = store.__tallyPending?.get(pendingKey(name, key));
        store.__tallyPending?.delete(pendingKey(name, key));
        return pending;
      };
      // The change is announced once its batch is written: a failed write is no change.
      const committed = (change: TableChange | undefined, cb: Callback) => (err?: Error | null) => {
        if (!err && change && changeListener) changeListener({ ...change, at: Date.now() });
        cb(err);
      };
      sub.put = (key, value, cb) => {
        const pending = take(key);
        store.db.batch(
          [...(pending?.ops ?? []), { type: 'put', key: itemPrefix(name) + key, value }],
          committed(pending?.change, cb),
        );
      };
      sub.del = (key, cb) => {
        const pending = take(key);
        store.db.batch(
          [...(pending?.ops ?? []), { type: 'del', key: itemPrefix(name) + key }],
          committed(pending?.change, cb),
        );
      };
      sub.__tallyAtomic = true;
      return sub;
    };
    return store;
  };
  db.__tallyAtomic = true;
}

/**
 * The LevelDB writes that keep `table`'s index entries in step with an item going from `existing`
 * to `item` (either absent): dynalite's own `getIndexActions`, deletes first. An entry the write
 * leaves as it was (same key, same projected attributes) is not written again: a triage write
 * changes two of the exceptions table's seven entries, and rewriting the other five was ~60% of
 * the index writes after a run completes (scripts/bench/RESULTS.md, session 30).
 */
export function indexWrites(
  db: Pick<DynaliteDb, 'getIndexActions'>,
  table: Table,
  existing: unknown,
  item: unknown,
): LevelOp[] {
  const deletes: LevelOp[] = [];
  const puts: LevelOp[] = [];
  for (const type of ['Local', 'Global'] as const) {
    const indexes = table[`${type}SecondaryIndexes`] ?? [];
    const actions = db.getIndexActions(indexes, existing, item, table);
    for (const d of actions.deletes)
      deletes.push({ type: 'del', key: indexPrefix(type, table.TableName, d.index) + d.key });
    const before =
      existing && actions.puts.length > 0
        ? new Map(
            db
              .getIndexActions(indexes, undefined, existing, table)
              .puts.map((p) => [`${p.index}\u0000${p.key}`, p.item]),
          )
        : undefined;
    for (const p of actions.puts) {
      if (before !== undefined && sameValue(before.get(`${p.index}\u0000${p.key}`), p.item)) continue;
      puts.push({ type: 'put', key: indexPrefix(type, table.TableName, p.index) + p.key, value: p.item });
    }
  }
  return [...deletes, ...puts];
}

/** Deep equality of two JSON-shaped values (items' AttributeValue maps). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((x, i) => sameValue(x, other[i]));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  if (keys.length !== Object.keys(y).length) return false;
  for (const k of keys) if (!Object.hasOwn(y, k) || !sameValue(x[k], y[k])) return false;
  return true;
}

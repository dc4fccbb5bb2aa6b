/**
 * The exceptions table's GSI keys, the one place they are derived: every write path (recon's
 * putNew and update, triage's severity, the API's PATCH), the local stack's upgrade and the AWS
 * backfill call these, so an index key cannot drift from the attribute it indexes.
 *
 * Each index partition `v` (a status, a run id, ...) is spread over EXCEPTION_INDEX_SHARDS
 * partitions `v#00` ... `v#15`; an exception's shard is a hash of its id, the same in every index
 * and for its whole life. The sort key `<created_at>#<exception_id>` is unique, so the shards
 * merge into one total order: created_at, then exception_id. (`#` sorts below every character
 * an ISO timestamp holds, so the suffix never reorders two timestamps.)
 */
import { isOpen } from '../exception-lifecycle.ts';
import {
  DEGRADED_TRIAGE,
  EXCEPTION_INDEX_SHARDS,
  TABLES,
  TRIAGE_STAMP,
  UNCITED_TRIAGE,
  type IndexDef,
} from '../resources.ts';

export type ExceptionIndexName = keyof typeof TABLES.exceptions.indexes;

const INDEXES = Object.entries(TABLES.exceptions.indexes) as [ExceptionIndexName, IndexDef][];

/** The GSI sort key attribute (the same for every exceptions index). */
export const EXCEPTION_SORT_ATTRIBUTE = TABLES.exceptions.indexes.by_created_sharded.sortKey.name;

/** Every attribute this module writes: what the API hides and the backfill compares. */
export const EXCEPTION_INDEX_ATTRIBUTES: readonly string[] = [
  // (Two indexes may share a partition key: by_status_due_sharded sorts by_status_sharded's by due date.)
  ...new Set(INDEXES.map(([, def]) => def.partitionKey.name)),
  EXCEPTION_SORT_ATTRIBUTE,
];

/** FNV-1a over the id's UTF-8 bytes: cheap, stable across runtimes and versions, well spread. */
export function exceptionShard(exceptionId: string, shards: number = EXCEPTION_INDEX_SHARDS): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(exceptionId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

export function shardedValue(value: string, shard: number): string {
  return `${value}#${String(shard).padStart(2, '0')}`;
}

/** The physical partitions of one logical partition value, shard 0 first. */
export function shardedValues(value: string, shards: number = EXCEPTION_INDEX_SHARDS): string[] {
  return Array.from({ length: shards }, (_, shard) => shardedValue(value, shard));
}

/** True when `physical` is one of the shards of the logical partition `value` (a token's start key is checked with it). */
export function isShardOf(physical: string, value: string, shards: number = EXCEPTION_INDEX_SHARDS): boolean {
  if (!physical.startsWith(`${value}#`)) return false;
  const suffix = physical.slice(value.length + 1);
  return /^\d{2}$/.test(suffix) && Number(suffix) < shards;
}

export function exceptionSortValue(createdAt: string, exceptionId: string): string {
  return `${createdAt}#${exceptionId}`;
}

/**
 * The index attributes of a whole item. An index whose source attribute the item lacks (severity
 * before triage) gets no key: the item stays out of it, as DynamoDB's sparse indexes intend; so
 * does a closed item from an index kept `whileOpen`.
 */
export function exceptionIndexKeys(item: Readonly<Record<string, unknown>>): Record<string, string> {
  const id = item.exception_id;
  const createdAt = item.created_at;
  if (typeof id !== 'string' || typeof createdAt !== 'string')
    throw new Error('internal: an exception item needs exception_id and created_at for its index keys');
  const shard = exceptionShard(id);
  const keys: Record<string, string> = { [EXCEPTION_SORT_ATTRIBUTE]: exceptionSortValue(createdAt, id) };
  for (const [, def] of INDEXES) {
    const source = item[def.shardedFrom as string];
    if (typeof source !== 'string') continue;
    if (def.whileOpen === true && !(typeof item.status === 'string' && isOpen(item.status))) continue;
    keys[def.partitionKey.name] = shardedValue(source, shard);
  }
  return keys;
}

/** What a write read of the item it changes (under the version it expects): some of its attributes. */
export type IndexedBefore = object;

const WHILE_OPEN = INDEXES.filter(([, def]) => def.whileOpen === true).map(([, def]) => def);

/** Whether the change moves a closed exception (or one of unknown status) to an open status. */
function reopens(set: Readonly<Record<string, unknown>>, read: Readonly<Record<string, unknown>> | undefined): boolean {
  const wasOpen = typeof read?.status === 'string' && isOpen(read.status);
  return typeof set.status === 'string' && isOpen(set.status) && !wasOpen;
}

/**
 * The source attributes of the `whileOpen` indexes that a change reopening an exception must read
 * first (what `before` does not say), for indexKeyChanges to put it back in them: none for any
 * other change.
 */
export function reopenReads(
  set: Readonly<Record<string, unknown>>,
  remove: readonly string[] = [],
  before?: IndexedBefore,
): string[] {
  const read = before as Readonly<Record<string, unknown>> | undefined;
  if (!reopens(set, read)) return [];
  return WHILE_OPEN.map((def) => def.shardedFrom as string).filter(
    (source) => !(source in set) && !remove.includes(source) && !(read !== undefined && source in read),
  );
}

/**
 * What an update of `set` and `remove` must also set and remove so the indexes follow: the key of
 * every index whose source attribute it changes, and of every `whileOpen` index when it closes or
 * reopens the exception. `before`: the item as read — its status (a write of the source that knows
 * none writes the key as if open) and, for a reopening, the source it kept (reopenReads).
 * (created_at and the id never change after putNew.)
 */
export function indexKeyChanges(
  exceptionId: string,
  set: Readonly<Record<string, unknown>>,
  remove: readonly string[] = [],
  before?: IndexedBefore,
): { set: Record<string, string>; remove: string[] } {
  const shard = exceptionShard(exceptionId);
  const keys: Record<string, string> = {};
  const removed: string[] = [];
  const read = before as Readonly<Record<string, unknown>> | undefined;
  const status = 'status' in set ? set.status : read?.status;
  const open = typeof status !== 'string' || isOpen(status);
  const reopening = reopens(set, read);
  for (const [, def] of INDEXES) {
    const source = def.shardedFrom as string;
    const name = def.partitionKey.name;
    const value = set[source];
    if (source in set || remove.includes(source)) {
      if (typeof value === 'string' && (def.whileOpen !== true || open)) keys[name] = shardedValue(value, shard);
      else if (remove.includes(source) || def.whileOpen === true) removed.push(name);
      continue;
    }
    // Below: a `whileOpen` index whose source this change leaves, when it closes or reopens the exception.
    if (def.whileOpen !== true || !('status' in set)) continue;
    if (!open) removed.push(name);
    else if (!reopening) continue;
    else if (read === undefined || !(source in read))
      throw new Error(`internal: reopening ${exceptionId} needs its ${source} as read (reopenReads)`);
    else if (typeof read[source] === 'string') keys[name] = shardedValue(read[source] as string, shard);
  }
  return { set: keys, remove: removed };
}

/**
 * The top-level copy of what a triage answered for (resources.ts TRIAGE_STAMP): the indexes that
 * triage's listings filter do not carry the triage map itself. Written with every triage
 * (exceptions-dynamo.ts saveTriage) and by the local stack's upgrade. `uncited` is present only
 * for a triage citing no policy passage (UNCITED_TRIAGE; a triage of unknown citations, from
 * before they were recorded, counts as cited) or one the rules gave because every model failed
 * (DEGRADED_TRIAGE; not one a spent budget gave): a triage that is neither removes it
 * (triageStampRemovals).
 */
export function triageStamp(triage: {
  readonly content_hash?: string | undefined;
  readonly prompt_version?: string | undefined;
  readonly policy_citations?: readonly unknown[] | undefined;
  readonly degraded?: boolean | undefined;
  readonly degraded_reason?: string | undefined;
}): Record<string, string> {
  // Citing nothing comes first: a triage without passages is degraded too (call.ts), and is asked
  // again when the corpus gains one. One that cites some is degraded only by failing models.
  const uncited =
    triage.policy_citations?.length === 0
      ? UNCITED_TRIAGE
      : triage.degraded === true && triage.degraded_reason === undefined
        ? DEGRADED_TRIAGE
        : undefined;
  return {
    ...(triage.content_hash === undefined ? {} : { [TRIAGE_STAMP.contentHash]: triage.content_hash }),
    ...(triage.prompt_version === undefined ? {} : { [TRIAGE_STAMP.promptVersion]: triage.prompt_version }),
    ...(uncited === undefined ? {} : { [TRIAGE_STAMP.uncited]: uncited }),
  };
}

/** The stamp's attributes a triage's write removes: those its stamp does not set. */
export function triageStampRemovals(stamp: Readonly<Record<string, string>>): string[] {
  return Object.values(TRIAGE_STAMP).filter((attribute) => !(attribute in stamp));
}

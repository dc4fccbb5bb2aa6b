/**
 * A page of a GSI query, newest first: what the query API's listings (exceptions and runs) ask
 * of a table, and how the pages of a sharded index's partitions merge into one. No AWS SDK here.
 */

import { EXCEPTION_INDEX_SHARDS } from '../resources.ts';

/**
 * The limit of an `order: 'any'` page that reads to the end only to count (the dashboard's counts,
 * a pattern's members): such a page splits its limit among the shards, and this asks each for
 * 1,000 entries a call (each call also stops at 1 MB). 1,000 a page was 63 a shard: 100k
 * exceptions took 100 rounds of 16 calls, one after another (RESULTS.md, session 48).
 */
export const COUNTING_PAGE = 1000 * EXCEPTION_INDEX_SHARDS;

/** A table item as stored, index and bookkeeping attributes included. */
export type StoredItem = Readonly<Record<string, unknown>>;

export interface IndexQuery {
  readonly index: string;
  /**
   * The partition to read. For a sharded index (IndexDef.shardedFrom) it names the logical
   * partition (`status` = `OPEN`); the adapter reads every shard of it.
   */
  readonly partition: { readonly attribute: string; readonly value: string };
  /**
   * Conditions on other attributes, applied as a FilterExpression: equality unless `op` says
   * otherwise (`<=`, `>=`: at most, at least, as strings compare — ISO times and dates do; `<>`:
   * not equal).
   */
  readonly filters: readonly {
    readonly attribute: string;
    readonly value: string;
    readonly op?: '=' | '<=' | '>=' | '<>';
  }[];
  /**
   * One of these attribute paths (a map's member: `['source', 'account_id']`) equals the value —
   * an account in the key or in either row.
   */
  readonly anyOf?: { readonly paths: readonly (readonly string[])[]; readonly value: string } | undefined;
  /**
   * An attribute that must be one of these values (a caller's dataset entitlements), applied with
   * the filters. An empty list matches nothing.
   */
  readonly within?: { readonly attribute: string; readonly values: readonly string[] } | undefined;
  /** Items DynamoDB evaluates (before the filter) in this call; a sharded read spreads them over the shards. */
  readonly limit: number;
  /**
   * Only these attributes of each entry, besides the table's and the index's keys (always
   * returned: they place an entry and resume a read). Absent: all the index carries.
   */
  readonly attributes?: readonly string[];
  /** Resume after this key (a page's lastKey, or the key of the last item a caller kept). */
  readonly startKey?: Readonly<Record<string, unknown>>;
  /**
   * `any`: the caller wants every item once and not their order (counting). A sharded read then
   * reads each shard on from its own position, wasting nothing, and its lastKey (internal: never
   * put it in a token) holds every shard's position.
   */
  readonly order?: 'newest-first' | 'any';
}

export interface IndexPage {
  readonly items: StoredItem[];
  readonly lastKey?: Record<string, unknown>;
}

/**
 * DynamoDB orders string keys by their UTF-8 bytes, which is code point order; JavaScript's `<`
 * compares UTF-16 units, which differs past U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(i) as number;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return Math.sign(a.length - b.length);
}

/**
 * One page of a logical partition from one page of each of its shards, newest first. The sort key
 * must be unique across the shards (the exceptions' `<created_at>#<exception_id>`), which makes
 * the merged order total and lets one key resume every shard.
 *
 * A shard that has more (a lastKey) can still hold items older than its lastKey, never newer; so
 * only items at or above the newest of those lastKeys are certain of their place. They are
 * returned, and that lastKey resumes the read: every shard restarts below it (a shard that had
 * read further re-reads a few items, the price of a one-key cursor). Items below it are dropped
 * and read again next time. The bound's shard returned at least one item below the previous
 * position, so each page moves the position down: a read of the whole partition ends.
 */
export function mergeShardPages(pages: readonly IndexPage[], sortAttribute: string): IndexPage {
  const sortOf = (item: StoredItem) => String(item[sortAttribute]);
  let bound: Record<string, unknown> | undefined;
  for (const page of pages) {
    if (!page.lastKey) continue;
    if (!bound || compareKeys(String(page.lastKey[sortAttribute]), String(bound[sortAttribute])) > 0)
      bound = page.lastKey;
  }
  const floor = bound === undefined ? undefined : String(bound[sortAttribute]);
  const items = pages
    .flatMap((page) => page.items)
    .filter((item) => floor === undefined || compareKeys(sortOf(item), floor) >= 0)
    .sort((a, b) => compareKeys(sortOf(b), sortOf(a)));
  return { items, ...(bound ? { lastKey: bound } : {}) };
}

export interface ShardedPartition {
  /** The index's partition key attribute. */
  readonly attribute: string;
  /** Its values, one per shard. */
  readonly values: readonly string[];
  /** The index's sort key attribute: unique across the shards. */
  readonly sortAttribute: string;
}

/**
 * One page of a sharded partition: `queryOne` (one Query call) on every shard at once, merged
 * (mergeShardPages). A start key resumes every shard: it is the same position in each, with the
 * shard's own partition value (DynamoDB takes any well-formed key there; no item need be at it).
 */
export async function readShardedPage(
  query: IndexQuery,
  shards: ShardedPartition,
  queryOne: (query: IndexQuery) => Promise<IndexPage>,
): Promise<IndexPage> {
  if (query.order === 'any') return readShardsInAnyOrder(query, shards, queryOne);
  // Twice a fair share, so that a page usually needs one round even when the shards are uneven.
  const perShard = Math.min(query.limit, Math.ceil((2 * query.limit) / shards.values.length) + 1);
  const pages = await Promise.all(
    shards.values.map((value) =>
      queryOne({
        index: query.index,
        partition: { attribute: shards.attribute, value },
        filters: query.filters,
        within: query.within,
        anyOf: query.anyOf,
        limit: perShard,
        ...(query.attributes ? { attributes: query.attributes } : {}),
        ...(query.startKey ? { startKey: { ...query.startKey, [shards.attribute]: value } } : {}),
      }),
    ),
  );
  return mergeShardPages(pages, shards.sortAttribute);
}

/** The lastKey of an unordered sharded read: each shard's own position, null once it is read to its end. */
interface ShardPositions {
  readonly shards: (Record<string, unknown> | null | undefined)[];
}

async function readShardsInAnyOrder(
  query: IndexQuery,
  shards: ShardedPartition,
  queryOne: (query: IndexQuery) => Promise<IndexPage>,
): Promise<IndexPage> {
  const positions = (query.startKey as ShardPositions | undefined)?.shards ?? shards.values.map(() => undefined);
  if (positions.length !== shards.values.length) throw new Error('internal: a start key from another sharding');
  const open = positions.flatMap((position, i) => (position === null ? [] : [i]));
  const perShard = Math.max(1, Math.ceil(query.limit / Math.max(1, open.length)));
  const next = [...positions];
  const pages = await Promise.all(
    open.map(async (i) => {
      const position = positions[i];
      const page = await queryOne({
        index: query.index,
        partition: { attribute: shards.attribute, value: shards.values[i] as string },
        filters: query.filters,
        within: query.within,
        anyOf: query.anyOf,
        limit: perShard,
        ...(query.attributes ? { attributes: query.attributes } : {}),
        ...(position ? { startKey: position } : {}),
      });
      next[i] = page.lastKey ?? null;
      return page.items;
    }),
  );
  return { items: pages.flat(), ...(next.every((p) => p === null) ? {} : { lastKey: { shards: next } }) };
}

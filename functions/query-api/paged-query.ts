/**
 * One page of a GSI listing behind an opaque next_token: the loop every listing (exceptions, runs,
 * files) shares. It keeps querying until it holds one item more than asked for — which tells
 * "exactly `limit` left" from "more to come" without an empty last page — or the index ends, or
 * it has made `maxCalls` calls (a sparse filter then returns a short page with a token rather
 * than holding the request past API Gateway's 30 s). On a sharded index each call reads every
 * shard at once and merges them (shared/tables/index-query.ts); its sort key is unique, so the
 * key of the last item returned resumes all the shards and the token holds that one key.
 */
import type { IndexDef, TableDef } from '../shared/resources.ts';
import { isShardOf } from '../shared/tables/exceptions-index-keys.ts';
import { BadRequestError } from './errors.ts';
import { decodeToken, encodeToken } from './pagination.ts';
import type { IndexQuery, StoredItem } from '../shared/tables/index-query.ts';

/** With a FilterExpression, read this many items per call at least: fewer round trips for sparse matches. */
const FILTERED_BATCH = 100;

export interface PagePlan {
  readonly index: string;
  readonly partition: IndexQuery['partition'];
  readonly filters: IndexQuery['filters'];
  readonly within?: IndexQuery['within'];
  readonly anyOf?: IndexQuery['anyOf'];
}

export interface PageRequest {
  readonly plan: PagePlan;
  readonly table: TableDef;
  readonly limit: number;
  readonly nextToken: string | undefined;
  /** Hash of the filters the token is bound to: a token from other filters is refused. */
  readonly filterHash: string;
  readonly secret: string;
  readonly maxCalls: number;
  readonly query: (query: IndexQuery) => Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }>;
  /**
   * When `query` answers with index entries: reads the whole items of the entries the page keeps.
   * The shards give more entries than a page keeps (each a share of `limit + 1`, twice over, or
   * FILTERED_BATCH with a filter), and each whole item carries its triage and stored embedding:
   * reading them all cost 3-9 times the page's own items.
   */
  readonly whole?: (entries: StoredItem[]) => Promise<StoredItem[]>;
}

export async function readPage(request: PageRequest): Promise<{ items: StoredItem[]; next_token: string | null }> {
  const { plan, limit } = request;
  let startKey: Record<string, unknown> | undefined;
  if (request.nextToken !== undefined) {
    const cursor = decodeToken(request.secret, request.nextToken, request.filterHash);
    if (cursor.index !== plan.index || !isStartKeyOf(request.table, plan, cursor.startKey))
      throw new BadRequestError('NEXT_TOKEN_FILTER_MISMATCH', 'next_token was issued for a different set of filters');
    startKey = { ...cursor.startKey };
  }

  const collected: StoredItem[] = [];
  let exhausted = false;
  for (let calls = 0; calls < request.maxCalls; calls++) {
    const wanted = limit + 1 - collected.length;
    const page = await request.query({
      index: plan.index,
      partition: plan.partition,
      filters: plan.filters,
      ...(plan.within ? { within: plan.within } : {}),
      ...(plan.anyOf ? { anyOf: plan.anyOf } : {}),
      limit: plan.filters.length > 0 || plan.within || plan.anyOf ? Math.max(wanted, FILTERED_BATCH) : wanted,
      ...(startKey ? { startKey } : {}),
    });
    collected.push(...page.items);
    if (!page.lastKey) {
      exhausted = true;
      break;
    }
    startKey = page.lastKey;
    if (collected.length > limit) break;
  }

  let items = collected;
  let resumeFrom: Record<string, unknown> | undefined;
  if (collected.length > limit) {
    items = collected.slice(0, limit);
    resumeFrom = startKeyAfter(request.table, plan.index, items[items.length - 1] as StoredItem);
  } else if (!exhausted) {
    resumeFrom = startKey;
  }
  return {
    items: request.whole ? await request.whole(items) : items,
    next_token: resumeFrom
      ? encodeToken(request.secret, { index: plan.index, startKey: resumeFrom }, request.filterHash)
      : null,
  };
}

/**
 * A token's key must be a position in the partition this request reads: exactly the table's and
 * the index's key attributes, strings, and the index partition one of the plan's (or, sharded, one
 * of its shards). The token is signed, so this guards against our own mistakes (a key from another
 * index or another version), not forgery.
 */
function isStartKeyOf(table: TableDef, plan: PagePlan, key: Readonly<Record<string, unknown>>): boolean {
  const index = table.indexes[plan.index] as IndexDef | undefined;
  if (!index) return false;
  const expected = new Set(
    [table.partitionKey, table.sortKey, index.partitionKey, index.sortKey].flatMap((k) => (k ? [k.name] : [])),
  );
  const names = Object.keys(key);
  if (names.length !== expected.size || !names.every((n) => expected.has(n) && typeof key[n] === 'string'))
    return false;
  const partition = key[index.partitionKey.name] as string;
  return index.shardedFrom === undefined
    ? partition === plan.partition.value
    : isShardOf(partition, plan.partition.value);
}

/** The start key DynamoDB expects to resume a GSI query right after `item`: the table's key and the index's. */
function startKeyAfter(table: TableDef, indexName: string, item: StoredItem): Record<string, unknown> {
  const index = table.indexes[indexName];
  if (!index) throw new Error(`internal: ${indexName} is not an index of this table`);
  return {
    [table.partitionKey.name]: item[table.partitionKey.name],
    ...(table.sortKey ? { [table.sortKey.name]: item[table.sortKey.name] } : {}),
    [index.partitionKey.name]: item[index.partitionKey.name],
    ...(index.sortKey ? { [index.sortKey.name]: item[index.sortKey.name] } : {}),
  };
}

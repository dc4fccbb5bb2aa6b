/** GSI queries, newest first, with equality filters: shared by the exceptions, runs and files tables. */
import { BatchGetCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { retryUnprocessed } from '../retry.ts';
import { readShardedPage, type IndexPage, type IndexQuery, type ShardedPartition } from './index-query.ts';

/** DynamoDB's limit on the operands of one IN. */
const IN_OPERANDS = 100;
/** BatchGetItem's limit on the keys of one call. */
const BATCH_GET_KEYS = 100;
/** BatchGetItem calls of one read in flight at once: a few hide each round trip. */
const BATCH_GETS_AT_ONCE = 4;
/** Calls of one batch before its unprocessed rest is handed back as a transient failure. */
const MAX_BATCH_ATTEMPTS = 8;

/**
 * The items under these keys, in the keys' order (one BatchGetItem per 100 keys, a few at once,
 * unprocessed keys retried); a key with no item is left out. What a listing does after a query
 * on an index that projects only what its filters need: the page's whole items by key.
 */
export async function getItemsInOrder(
  doc: DynamoDBDocumentClient,
  table: string,
  keyAttributes: readonly string[],
  keys: readonly Readonly<Record<string, unknown>>[],
  options: { consistent?: boolean; projection?: readonly string[] } = {},
): Promise<Record<string, unknown>[]> {
  const keyOf = (item: Readonly<Record<string, unknown>>) => JSON.stringify(keyAttributes.map((a) => item[a]));
  const unique = new Map(keys.map((k) => [keyOf(k), Object.fromEntries(keyAttributes.map((a) => [a, k[a]]))]));
  const wanted = [...unique.values()];
  const found = new Map<string, Record<string, unknown>>();
  const names: Record<string, string> = {};
  const projection = options.projection
    ? [...new Set([...keyAttributes, ...options.projection])].map((attribute, i) => {
        names[`#a${i}`] = attribute;
        return `#a${i}`;
      })
    : undefined;
  let next = 0;
  const reader = async () => {
    while (next < wanted.length) {
      const batch = wanted.slice(next, next + BATCH_GET_KEYS);
      next += BATCH_GET_KEYS;
      await retryUnprocessed(
        batch,
        async (left) => {
          const out = await doc.send(
            new BatchGetCommand({
              RequestItems: {
                [table]: {
                  Keys: left,
                  ...(options.consistent ? { ConsistentRead: true } : {}),
                  ...(projection
                    ? { ProjectionExpression: projection.join(', '), ExpressionAttributeNames: names }
                    : {}),
                },
              },
            }),
          );
          for (const item of out.Responses?.[table] ?? []) found.set(keyOf(item), item);
          return (out.UnprocessedKeys?.[table]?.Keys ?? []) as Record<string, unknown>[];
        },
        { maxAttempts: MAX_BATCH_ATTEMPTS, gaveUp: (n) => `BatchGetItem left ${n} keys unprocessed` },
      );
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(BATCH_GETS_AT_ONCE, Math.ceil(wanted.length / BATCH_GET_KEYS)) }, reader),
  );
  return keys.flatMap((k) => {
    const item = found.get(keyOf(k));
    return item ? [item] : [];
  });
}

/**
 * One Query call on one partition. `keys`: the table's and the index's key attributes, returned
 * whatever `query.attributes` asks for.
 */
export async function queryIndexPage(
  doc: DynamoDBDocumentClient,
  table: string,
  query: IndexQuery,
  keys: readonly string[] = [],
): Promise<IndexPage> {
  const names: Record<string, string> = { '#pk': query.partition.attribute };
  const values: Record<string, unknown> = { ':pk': query.partition.value };
  const conditions = query.filters.map((f, i) => {
    names[`#f${i}`] = f.attribute;
    values[`:f${i}`] = f.value;
    return `#f${i} ${f.op ?? '='} :f${i}`;
  });
  if (query.anyOf) {
    values[':any'] = query.anyOf.value;
    const alternatives = query.anyOf.paths.map((path, i) =>
      path
        .map((segment, j) => {
          names[`#y${i}_${j}`] = segment;
          return `#y${i}_${j}`;
        })
        .join('.'),
    );
    conditions.push(`(${alternatives.map((a) => `${a} = :any`).join(' OR ')})`);
  }
  if (query.within) {
    // IN takes at most 100 operands: a longer list is an OR of INs.
    const { attribute, values: allowed } = query.within;
    if (allowed.length === 0) return { items: [] };
    names['#w'] = attribute;
    const groups: string[] = [];
    for (let start = 0; start < allowed.length; start += IN_OPERANDS) {
      const operands = allowed.slice(start, start + IN_OPERANDS).map((value, j) => {
        values[`:w${start + j}`] = value;
        return `:w${start + j}`;
      });
      groups.push(`#w IN (${operands.join(', ')})`);
    }
    conditions.push(groups.length === 1 ? (groups[0] as string) : `(${groups.join(' OR ')})`);
  }
  const projection = query.attributes
    ? [...new Set([...keys, ...query.attributes])].map((attribute, i) => {
        names[`#p${i}`] = attribute;
        return `#p${i}`;
      })
    : undefined;
  const out = await doc.send(
    new QueryCommand({
      TableName: table,
      IndexName: query.index,
      KeyConditionExpression: '#pk = :pk',
      ...(projection ? { ProjectionExpression: projection.join(', ') } : {}),
      ...(conditions.length > 0 ? { FilterExpression: conditions.join(' AND ') } : {}),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ScanIndexForward: false,
      Limit: query.limit,
      ...(query.startKey ? { ExclusiveStartKey: { ...query.startKey } } : {}),
    }),
  );
  return { items: out.Items ?? [], ...(out.LastEvaluatedKey ? { lastKey: out.LastEvaluatedKey } : {}) };
}

/** One page of a sharded partition, every shard queried at once and merged (index-query.ts). */
export function queryShardedPage(
  doc: DynamoDBDocumentClient,
  table: string,
  query: IndexQuery,
  shards: ShardedPartition,
  keys: readonly string[] = [],
): Promise<IndexPage> {
  return readShardedPage(query, shards, (one) => queryIndexPage(doc, table, one, keys));
}

/**
 * Every item of a sharded partition, in no particular order: each shard read to its end, all at
 * once — or, with `firstOfEach`, only each shard's first that many entries in its sort key's order
 * (ascending), which is all a caller needs to take the partition's first that many.
 */
export async function queryAllShards(
  doc: DynamoDBDocumentClient,
  table: string,
  index: string,
  shards: Pick<ShardedPartition, 'attribute' | 'values'>,
  options: {
    filter?: string;
    count?: boolean;
    /** Names and values the filter uses (beside `#pk` and `:pk`). */
    names?: Record<string, string>;
    values?: Record<string, unknown>;
    /** The attributes to read (all when absent). */
    projection?: readonly string[];
    /** Only the entries whose sort key is at most this (a key condition: nothing above it is read). */
    sortAtMost?: { readonly attribute: string; readonly value: string };
    /** Stop each shard after this many entries (its lowest sort keys). */
    firstOfEach?: number;
  } = {},
): Promise<{ items: Record<string, unknown>[]; count: number }> {
  const names: Record<string, string> = { ...options.names, '#pk': shards.attribute };
  const sortAtMost = options.sortAtMost;
  if (sortAtMost) names['#sk'] = sortAtMost.attribute;
  const first = options.firstOfEach;
  if (first !== undefined && first < 1) return { items: [], count: 0 };
  const projection = options.projection?.map((attribute, i) => {
    names[`#a${i}`] = attribute;
    return `#a${i}`;
  });
  const perShard = await Promise.all(
    shards.values.map(async (value) => {
      const items: Record<string, unknown>[] = [];
      let count = 0;
      let cursor: Record<string, unknown> | undefined;
      do {
        const out = await doc.send(
          new QueryCommand({
            TableName: table,
            IndexName: index,
            KeyConditionExpression: sortAtMost ? '#pk = :pk AND #sk <= :sk' : '#pk = :pk',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: {
              ...options.values,
              ':pk': value,
              ...(sortAtMost ? { ':sk': sortAtMost.value } : {}),
            },
            ...(options.filter ? { FilterExpression: options.filter } : {}),
            ...(projection ? { ProjectionExpression: projection.join(', ') } : {}),
            ...(options.count ? { Select: 'COUNT' as const } : {}),
            ...(first === undefined ? {} : { Limit: first - items.length }),
            ExclusiveStartKey: cursor,
          }),
        );
        items.push(...((out.Items ?? []) as Record<string, unknown>[]));
        count += out.Count ?? 0;
        cursor = out.LastEvaluatedKey;
        // A page ends at 1 MB as well as at its Limit: read on until the shard has given enough.
      } while (cursor && (first === undefined || items.length < first));
      return { items, count };
    }),
  );
  return {
    items: perShard.flatMap((s) => s.items),
    count: perShard.reduce((sum, s) => sum + s.count, 0),
  };
}

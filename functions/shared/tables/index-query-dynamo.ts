/** GSI queries, newest first, with equality filters: shared by the exceptions, runs and files tables. */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readShardedPage, type IndexPage, type IndexQuery, type ShardedPartition } from './index-query.ts';

/** One Query call on one partition. */
export async function queryIndexPage(
  doc: DynamoDBDocumentClient,
  table: string,
  query: IndexQuery,
): Promise<IndexPage> {
  const names: Record<string, string> = { '#pk': query.partition.attribute };
  const values: Record<string, unknown> = { ':pk': query.partition.value };
  const conditions = query.filters.map((f, i) => {
    names[`#f${i}`] = f.attribute;
    values[`:f${i}`] = f.value;
    return `#f${i} ${f.op ?? '='} :f${i}`;
  });
  const out = await doc.send(
    new QueryCommand({
      TableName: table,
      IndexName: query.index,
      KeyConditionExpression: '#pk = :pk',
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
): Promise<IndexPage> {
  return readShardedPage(query, shards, (one) => queryIndexPage(doc, table, one));
}

/** Every item of a sharded partition, in no particular order: each shard read to its end, all at once. */
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
    /** Attribute name placeholders (from `names`) to project. */
    projection?: string[];
  } = {},
): Promise<{ items: Record<string, unknown>[]; count: number }> {
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
            KeyConditionExpression: '#pk = :pk',
            ExpressionAttributeNames: { ...options.names, '#pk': shards.attribute },
            ExpressionAttributeValues: { ...options.values, ':pk': value },
            ...(options.filter ? { FilterExpression: options.filter } : {}),
            ...(options.count ? { Select: 'COUNT' as const } : {}),
            ...(options.projection ? { ProjectionExpression: options.projection.join(', ') } : {}),
            ExclusiveStartKey: cursor,
          }),
        );
        items.push(...((out.Items ?? []) as Record<string, unknown>[]));
        count += out.Count ?? 0;
        cursor = out.LastEvaluatedKey;
      } while (cursor);
      return { items, count };
    }),
  );
  return {
    items: perShard.flatMap((s) => s.items),
    count: perShard.reduce((sum, s) => sum + s.count, 0),
  };
}

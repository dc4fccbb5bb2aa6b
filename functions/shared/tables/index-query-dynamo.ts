/** GSI queries, newest first, with equality filters: shared by the exceptions, runs and files tables. */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readShardedPage, type IndexPage, type IndexQuery, type ShardedPartition } from './index-query.ts';

/** DynamoDB's limit on the operands of one IN. */
const IN_OPERANDS = 100;

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
    /** The attributes to read (all when absent). */
    projection?: readonly string[];
  } = {},
): Promise<{ items: Record<string, unknown>[]; count: number }> {
  const names: Record<string, string> = { ...options.names, '#pk': shards.attribute };
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
            KeyConditionExpression: '#pk = :pk',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ...options.values, ':pk': value },
            ...(options.filter ? { FilterExpression: options.filter } : {}),
            ...(projection ? { ProjectionExpression: projection.join(', ') } : {}),
            ...(options.count ? { Select: 'COUNT' as const } : {}),
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

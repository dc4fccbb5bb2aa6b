/** One call of a GSI Query, newest first, with equality filters: shared by the exceptions and runs tables. */
import { QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IndexPage, IndexQuery } from './index-query.ts';

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
    return `#f${i} = :f${i}`;
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

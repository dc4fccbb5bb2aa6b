/** The usage table on DynamoDB: one item per UTC day, counters summed with ADD. */
import { BatchGetCommand, GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { retryUnprocessed } from '../retry.ts';
import { NO_USAGE, type UsageCounts, type UsageDay, type UsageQueries, type UsageStore } from './usage.ts';

const COUNTERS = [
  'micro_usd',
  'input_tokens',
  'output_tokens',
  'calls',
] as const satisfies readonly (keyof UsageCounts)[];

/** BatchGetItem takes at most 100 keys a call. */
const BATCH_KEYS = 100;

function countsOf(item: Record<string, unknown> | undefined): UsageCounts {
  if (!item) return NO_USAGE;
  return Object.fromEntries(COUNTERS.map((c) => [c, Number(item[c] ?? 0)])) as unknown as UsageCounts;
}

export class DynamoUsageStore implements UsageStore, UsageQueries {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async add(day: string, counts: UsageCounts): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { day },
        // ADD creates a missing counter at the value added: the first call of a day needs no put.
        UpdateExpression: `ADD ${COUNTERS.map((c, i) => `#c${i} :c${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(COUNTERS.map((c, i) => [`#c${i}`, c])),
        ExpressionAttributeValues: Object.fromEntries(COUNTERS.map((c, i) => [`:c${i}`, counts[c]])),
      }),
    );
  }

  async get(day: string): Promise<UsageCounts> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { day } }));
    return countsOf(out.Item);
  }

  async getDays(days: readonly string[]): Promise<UsageDay[]> {
    const found = new Map<string, UsageCounts>();
    const unique = [...new Set(days)];
    for (let start = 0; start < unique.length; start += BATCH_KEYS) {
      await retryUnprocessed(
        unique.slice(start, start + BATCH_KEYS).map((day): Record<string, unknown> => ({ day })),
        async (keys) => {
          const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
          for (const item of out.Responses?.[this.table] ?? []) found.set(item.day as string, countsOf(item));
          return (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        },
        { maxAttempts: 8, gaveUp: (left) => `BatchGetItem left ${left} usage days unprocessed` },
      );
    }
    return days.map((day) => ({ day, ...(found.get(day) ?? NO_USAGE) }));
  }
}

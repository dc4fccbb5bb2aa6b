/** The failures table on DynamoDB: written by the queue consumers, read by `tally dlq`; expires by TTL. */
import { BatchGetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DLQ_RETENTION_SECONDS } from '../resources.ts';
import { retryUnprocessed } from '../retry.ts';
import { failureId, failureReason, type FailureReader, type FailureRecord, type FailureRecorder } from './failures.ts';

/** Long enough to outlive the message in its DLQ. */
const TTL_SECONDS = DLQ_RETENTION_SECONDS + 24 * 3600;
const MAX_BATCH_ATTEMPTS = 8;

export class DynamoFailureStore implements FailureRecorder, FailureReader {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async record(queueArn: string, body: string, error: unknown, now = Date.now()): Promise<void> {
    const at = new Date(now).toISOString();
    const reason = failureReason(error);
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { id: failureId(queueArn, body) },
        UpdateExpression:
          'SET queue_arn = :q, first_failed_at = if_not_exists(first_failed_at, :at), first_reason = if_not_exists(first_reason, :r), last_failed_at = :at, last_reason = :r, expires_at = :exp ADD failures :one',
        ExpressionAttributeValues: {
          ':q': queueArn,
          ':at': at,
          ':r': reason,
          ':exp': Math.floor(now / 1000) + TTL_SECONDS,
          ':one': 1,
        },
      }),
    );
  }

  async find(queueArn: string, bodies: readonly string[]): Promise<Map<string, FailureRecord>> {
    const found = new Map<string, FailureRecord>();
    const ids = [...new Set(bodies.map((b) => failureId(queueArn, b)))];
    // BatchGetItem: at most 100 keys a call.
    for (let i = 0; i < ids.length; i += 100) {
      await retryUnprocessed(
        ids.slice(i, i + 100).map((id): Record<string, unknown> => ({ id })),
        async (keys) => {
          const out = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
          for (const item of out.Responses?.[this.table] ?? []) found.set(item.id as string, item as FailureRecord);
          return (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        },
        { maxAttempts: MAX_BATCH_ATTEMPTS, gaveUp: (left) => `BatchGetItem left ${left} failure records unread` },
      );
    }
    return found;
  }
}

/** A consumer's failure recorder: none where no failures table is configured (recording is optional). */
export function failureStore(doc: DynamoDBDocumentClient, table: string | undefined): DynamoFailureStore | undefined {
  return table ? new DynamoFailureStore(doc, table) : undefined;
}

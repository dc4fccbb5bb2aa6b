/** The idempotency table on DynamoDB: a leased IN_PROGRESS record, then COMPLETED; expires by TTL. */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { applied } from './dynamo-expressions.ts';
import type { BeginResult, IdempotencyStore } from './idempotency.ts';

/** Idempotency records live a week: longer than SQS retries plus a DLQ redrive after a weekend. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

export class DynamoIdempotencyStore implements IdempotencyStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async begin(id: string, sequencer: string, now: number, leaseMs: number): Promise<BeginResult> {
    const acquired = await applied(
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            id,
            status: 'IN_PROGRESS',
            sequencer,
            lease_until: now + leaseMs,
            expires_at: Math.floor(now / 1000) + IDEMPOTENCY_TTL_SECONDS,
          },
          // A crashed worker's lease expires; its successor takes over.
          ConditionExpression: 'attribute_not_exists(id) OR (#s = :inProgress AND lease_until < :now)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':now': now },
        }),
      ),
    );
    if (acquired) return { state: 'acquired' };
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }));
    const item = out.Item;
    if (item?.status === 'COMPLETED') return { state: 'completed', sequencer: String(item.sequencer) };
    return { state: 'in_progress' };
  }

  async reopen(
    id: string,
    sequencer: string,
    previousSequencer: string,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { id },
          UpdateExpression: 'SET #s = :inProgress, sequencer = :seq, lease_until = :lease',
          ConditionExpression: '#s = :completed AND sequencer = :previous',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':inProgress': 'IN_PROGRESS',
            ':completed': 'COMPLETED',
            ':seq': sequencer,
            ':previous': previousSequencer,
            ':lease': now + leaseMs,
          },
        }),
      ),
    );
  }

  async complete(id: string, outcome: string, now: number): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { id },
        UpdateExpression: 'SET #s = :completed, outcome = :outcome, completed_at = :at REMOVE lease_until',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':completed': 'COMPLETED',
          ':outcome': outcome,
          ':at': new Date(now).toISOString(),
        },
      }),
    );
  }

  async release(id: string): Promise<void> {
    // Only an IN_PROGRESS lease is given back; a COMPLETED record stays (the condition fails quietly).
    await applied(
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { id },
          ConditionExpression: '#s = :inProgress',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS' },
        }),
      ),
    );
  }
}

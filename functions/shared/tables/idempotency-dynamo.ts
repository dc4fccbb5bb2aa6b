/** The idempotency table on DynamoDB: a leased IN_PROGRESS record, then COMPLETED; expires by TTL. */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { applied } from './dynamo-expressions.ts';
import { LeaseLostError } from '../lease.ts';
import type { BeginResult, IdempotencyStore, LeaseTerms } from './idempotency.ts';

/** Idempotency records live a week: longer than SQS retries plus a DLQ redrive after a weekend. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

export class DynamoIdempotencyStore implements IdempotencyStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async begin(id: string, sequencer: string, { owner, now, leaseMs }: LeaseTerms): Promise<BeginResult> {
    const acquired = await applied(
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            id,
            status: 'IN_PROGRESS',
            sequencer,
            lease_until: now + leaseMs,
            lease_owner: owner,
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
    { owner, now, leaseMs }: LeaseTerms,
  ): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { id },
          UpdateExpression: 'SET #s = :inProgress, sequencer = :seq, lease_until = :lease, lease_owner = :owner',
          ConditionExpression: '#s = :completed AND sequencer = :previous',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':inProgress': 'IN_PROGRESS',
            ':completed': 'COMPLETED',
            ':seq': sequencer,
            ':previous': previousSequencer,
            ':lease': now + leaseMs,
            ':owner': owner,
          },
        }),
      ),
    );
  }

  async renew(id: string, { owner, now, leaseMs }: LeaseTerms): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { id },
          UpdateExpression: 'SET lease_until = :lease',
          ConditionExpression: '#s = :inProgress AND lease_owner = :owner',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':owner': owner, ':lease': now + leaseMs },
        }),
      ),
    );
  }

  async complete(id: string, owner: string, outcome: string, now: number): Promise<void> {
    const done = await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { id },
          UpdateExpression:
            'SET #s = :completed, outcome = :outcome, completed_at = :at REMOVE lease_until, lease_owner',
          // Only the lease's holder completes: a worker that lost it must not report over its successor.
          ConditionExpression: '#s = :inProgress AND lease_owner = :owner',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':completed': 'COMPLETED',
            ':inProgress': 'IN_PROGRESS',
            ':owner': owner,
            ':outcome': outcome,
            ':at': new Date(now).toISOString(),
          },
        }),
      ),
    );
    if (!done) throw new LeaseLostError(`ingest ${id}`);
  }

  async release(id: string, owner: string): Promise<void> {
    // Only this owner's IN_PROGRESS lease is given back; a COMPLETED record or a successor's lease
    // stays (the condition fails quietly).
    await applied(
      this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { id },
          ConditionExpression: '#s = :inProgress AND lease_owner = :owner',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':owner': owner },
        }),
      ),
    );
  }
}

/**
 * A circuit breaker per provider whose state lives in DynamoDB, so every concurrent triage worker
 * sees the same state: after `threshold` consecutive failures the provider is skipped for
 * `cooldownMs`; the first call after the cool-down is a trial that closes or re-opens it.
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface CircuitBreaker {
  canCall(provider: string, now: number): Promise<boolean>;
  recordSuccess(provider: string): Promise<void>;
  recordFailure(provider: string, now: number): Promise<void>;
}

export interface BreakerSettings {
  readonly threshold: number;
  readonly cooldownMs: number;
}

export class DynamoCircuitBreaker implements CircuitBreaker {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly settings: BreakerSettings;

  constructor(doc: DynamoDBDocumentClient, table: string, settings: BreakerSettings) {
    this.doc = doc;
    this.table = table;
    this.settings = settings;
  }

  async canCall(provider: string, now: number): Promise<boolean> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { provider } }));
    const openedUntil = Number(out.Item?.opened_until ?? 0);
    return openedUntil <= now;
  }

  async recordSuccess(provider: string): Promise<void> {
    await this.doc
      .send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          UpdateExpression: 'SET failures = :zero REMOVE opened_until',
          // Healthy providers cost no write per call.
          ConditionExpression: 'attribute_exists(provider) AND failures > :zero',
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      )
      .catch((error: Error) => {
        if (error.name !== 'ConditionalCheckFailedException') throw error;
      });
  }

  async recordFailure(provider: string, now: number): Promise<void> {
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { provider },
        UpdateExpression: 'ADD failures :one SET last_failure_at = :now, expires_at = :expires',
        ExpressionAttributeValues: { ':one': 1, ':now': now, ':expires': Math.floor(now / 1000) + 86_400 },
        ReturnValues: 'ALL_NEW',
      }),
    );
    if (Number(out.Attributes?.failures ?? 0) >= this.settings.threshold) {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          UpdateExpression: 'SET opened_until = :until',
          ExpressionAttributeValues: { ':until': now + this.settings.cooldownMs },
        }),
      );
    }
  }
}

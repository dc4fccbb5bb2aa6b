/**
 * Why an SQS message failed, kept where `tally dlq` can show it next to the dead-lettered
 * message. Keyed by a hash of (source queue ARN, body): a redriven message gets a new message id
 * but keeps its body. The first failure's reason is kept; the latest one and a count are updated.
 * Recording is best effort — it must never turn one failure into another.
 */
import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DLQ_RETENTION_SECONDS, ENV } from './resources.ts';

export function failureId(queueArn: string, body: string): string {
  return createHash('sha256').update(queueArn).update('\n').update(body).digest('hex');
}

export interface FailureRecord {
  readonly id: string;
  readonly queue_arn: string;
  readonly first_failed_at: string;
  readonly first_reason: string;
  readonly last_failed_at: string;
  readonly last_reason: string;
  readonly failures: number;
}

/** Long enough to outlive the message in its DLQ. */
const TTL_SECONDS = DLQ_RETENTION_SECONDS + 24 * 3600;
const MAX_REASON = 1000;

export function failureReason(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return `${e.code ?? e.name ?? 'Error'}: ${e.message ?? String(error)}`.slice(0, MAX_REASON);
}

export async function recordFailure(
  doc: DynamoDBDocumentClient,
  table: string,
  queueArn: string,
  body: string,
  error: unknown,
  now = Date.now(),
): Promise<void> {
  const at = new Date(now).toISOString();
  const reason = failureReason(error);
  await doc.send(
    new UpdateCommand({
      TableName: table,
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

let client: DynamoDBDocumentClient | undefined;

/** Records with the table named in the environment; does nothing where none is configured. */
export async function recordFailureFromEnv(queueArn: string, body: string, error: unknown): Promise<void> {
  const table = process.env[ENV.failuresTable];
  if (!table) return;
  client ??= DynamoDBDocumentClient.from(new DynamoDBClient({}));
  await recordFailure(client, table, queueArn, body, error);
}

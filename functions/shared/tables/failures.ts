/**
 * The failures table: why an SQS message failed, kept where `tally dlq` can show it next to the
 * dead-lettered message. Keyed by a hash of (source queue ARN, body): a redriven message gets a
 * new message id but keeps its body. The first failure's reason is kept; the latest one and a
 * count are updated. Recording is best effort — it must never turn one failure into another.
 */
import { createHash } from 'node:crypto';

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

const MAX_REASON = 1000;

export function failureReason(error: unknown): string {
  const e = error as { name?: string; code?: string; message?: string };
  return `${e.code ?? e.name ?? 'Error'}: ${e.message ?? String(error)}`.slice(0, MAX_REASON);
}

/** The queue consumers' side (shared/sqs-batch.ts). */
export interface FailureRecorder {
  record(queueArn: string, body: string, error: unknown, now?: number): Promise<void>;
}

/** On-call's side (`tally dlq`). */
export interface FailureReader {
  /** The records of these bodies' failures on `queueArn`, by failureId; bodies never recorded are absent. */
  find(queueArn: string, bodies: readonly string[]): Promise<Map<string, FailureRecord>>;
}

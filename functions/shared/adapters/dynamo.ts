/** DynamoDB adapters for the stores in ports.ts. */
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { TransientError } from '../errors.ts';
import type {
  ExceptionChange,
  ExceptionStore,
  FileRecord,
  FileStore,
  IdempotencyStore,
  RunRecord,
  RunStore,
  StoredExceptionState,
} from '../ports.ts';
import type { ExceptionRecord, Side, Triage } from '../types.ts';
import { sleep } from './sqs-queue.ts';
import { EXCEPTION_RECORD_TYPE } from '../exceptions.ts';
import { RUN_RECORD_TYPE } from '../resources.ts';

const MAX_BATCH_ATTEMPTS = 8;

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException || (error as Error).name === 'ConditionalCheckFailedException'
  );
}

export function datasetDate(dataset: string, businessDate: string): string {
  return `${dataset}#${businessDate}`;
}

export class DynamoFileStore implements FileStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async get(dataset: string, businessDate: string, side: Side): Promise<FileRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { dataset_date: datasetDate(dataset, businessDate), side },
        ConsistentRead: true,
      }),
    );
    return out.Item as FileRecord | undefined;
  }

  async putIfNewer(file: FileRecord): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...file,
            dataset_date: datasetDate(file.dataset, file.business_date),
            sequencer_key: sequencerKey(file.sequencer),
          },
          ConditionExpression: 'attribute_not_exists(dataset_date) OR sequencer_key <= :seq',
          ExpressionAttributeValues: { ':seq': sequencerKey(file.sequencer) },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}

/** Sequencers compare as hex numbers; a fixed-width upper-case form compares right as a string. */
function sequencerKey(sequencer: string): string {
  return sequencer.toUpperCase().padStart(32, '0');
}

export class DynamoRunStore implements RunStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async request(run: RunRecord): Promise<{ created: boolean; run: RunRecord }> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          // record_type: the constant partition of by_requested (recent runs across datasets).
          Item: { ...run, dataset_date: datasetDate(run.dataset, run.business_date), record_type: RUN_RECORD_TYPE },
          ConditionExpression: 'attribute_not_exists(run_id)',
        }),
      );
      return { created: true, run };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.get(run.run_id);
      if (!existing) throw new TransientError(`run ${run.run_id} exists but could not be read`);
      return { created: false, run: existing };
    }
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { run_id: runId }, ConsistentRead: true }),
    );
    return out.Item as RunRecord | undefined;
  }

  async claim(
    runId: string,
    now: number,
    leaseMs: number,
  ): Promise<{ claimed: true } | { claimed: false; run: RunRecord | undefined }> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #s = :running, started_at = :started, lease_until = :lease',
          ConditionExpression:
            'attribute_exists(run_id) AND (#s IN (:requested, :failed) OR (#s = :running AND lease_until < :now))',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':running': 'RUNNING',
            ':requested': 'REQUESTED',
            ':failed': 'FAILED',
            ':started': new Date(now).toISOString(),
            ':lease': now + leaseMs,
            ':now': now,
          },
        }),
      );
      return { claimed: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return { claimed: false, run: await this.get(runId) };
    }
  }

  async finish(runId: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void> {
    const entries = Object.entries({ ...update, lease_until: 0 }).filter(([, v]) => v !== undefined);
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { run_id: runId },
        UpdateExpression: `SET ${entries.map((_, i) => `#k${i} = :v${i}`).join(', ')}`,
        ExpressionAttributeNames: Object.fromEntries(entries.map(([k], i) => [`#k${i}`, k])),
        ExpressionAttributeValues: Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v])),
      }),
    );
  }
}

const STATE_ATTRIBUTES = [
  'exception_id',
  'status',
  'content_hash',
  'version',
  'resolved_by_system',
  'last_changed_run_id',
];

export class DynamoExceptionStore implements ExceptionStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async getStates(ids: string[]): Promise<Map<string, StoredExceptionState>> {
    const states = new Map<string, StoredExceptionState>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] = unique.slice(i, i + 100).map((id) => ({ exception_id: id }));
      for (let attempt = 0; keys.length > 0; attempt++) {
        if (attempt === MAX_BATCH_ATTEMPTS)
          throw new TransientError(`BatchGetItem left ${keys.length} keys unprocessed`);
        if (attempt > 0) await sleep(backoff(attempt));
        const out = await this.doc.send(
          new BatchGetCommand({
            RequestItems: {
              [this.table]: {
                Keys: keys,
                ConsistentRead: true,
                ProjectionExpression: STATE_ATTRIBUTES.map((_, j) => `#a${j}`).join(', '),
                ExpressionAttributeNames: Object.fromEntries(STATE_ATTRIBUTES.map((a, j) => [`#a${j}`, a])),
              },
            },
          }),
        );
        for (const item of out.Responses?.[this.table] ?? [])
          states.set(item.exception_id as string, item as StoredExceptionState);
        keys = (out.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
      }
    }
    return states;
  }

  async listStatesForDate(dataset: string, businessDate: string): Promise<StoredExceptionState[]> {
    const states: StoredExceptionState[] = [];
    let cursor: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: 'by_dataset_date',
          KeyConditionExpression: 'dataset_date = :dd',
          ExpressionAttributeValues: { ':dd': datasetDate(dataset, businessDate) },
          ExclusiveStartKey: cursor,
        }),
      );
      states.push(...((out.Items ?? []) as StoredExceptionState[]));
      cursor = out.LastEvaluatedKey;
    } while (cursor);
    return states;
  }

  async putNew(records: (ExceptionRecord & { content_hash: string; last_changed_run_id: string })[]): Promise<void> {
    for (let i = 0; i < records.length; i += 25) {
      let requests: unknown[] = records.slice(i, i + 25).map((r) => ({
        PutRequest: {
          Item: {
            ...r,
            record_type: EXCEPTION_RECORD_TYPE,
            dataset_date: datasetDate(r.dataset, r.business_date),
            last_seen_at: r.created_at,
          },
        },
      }));
      for (let attempt = 0; requests.length > 0; attempt++) {
        if (attempt === MAX_BATCH_ATTEMPTS)
          throw new TransientError(`BatchWriteItem left ${requests.length} items unprocessed`);
        if (attempt > 0) await sleep(backoff(attempt));
        const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests as never } }));
        requests = out.UnprocessedItems?.[this.table] ?? [];
      }
    }
  }

  async update(change: ExceptionChange): Promise<boolean> {
    const entries = Object.entries(change.set);
    const sets = entries.map((_, i) => `#k${i} = :v${i}`);
    const values: Record<string, unknown> = Object.fromEntries(entries.map(([, v], i) => [`:v${i}`, v]));
    if (change.history.length > 0) {
      sets.push('history = list_append(if_not_exists(history, :empty), :history)');
      values[':history'] = change.history;
      values[':empty'] = [];
    }
    if (change.bumpVersion) {
      sets.push('version = version + :one');
      values[':one'] = 1;
    }
    values[':expected'] = change.expectedVersion;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: change.exceptionId },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'version = :expected',
          ExpressionAttributeNames: Object.fromEntries(entries.map(([k], i) => [`#k${i}`, k])),
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}

/** Idempotency records live a week: longer than SQS retries plus a DLQ redrive after a weekend. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

export class DynamoIdempotencyStore implements IdempotencyStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async begin(id: string, sequencer: string, now: number, leaseMs: number) {
    try {
      await this.doc.send(
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
      );
      return { state: 'acquired' as const };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }));
    const item = out.Item;
    if (item?.status === 'COMPLETED') return { state: 'completed' as const, sequencer: String(item.sequencer) };
    return { state: 'in_progress' as const };
  }

  async reopen(
    id: string,
    sequencer: string,
    previousSequencer: string,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    try {
      await this.doc.send(
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
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
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
    await this.doc
      .send(
        new DeleteCommand({
          TableName: this.table,
          Key: { id },
          ConditionExpression: '#s = :inProgress',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS' },
        }),
      )
      .catch((error: unknown) => {
        if (!isConditionFailure(error)) throw error;
      });
  }
}

function backoff(attempt: number): number {
  // Full jitter (AWS Architecture Blog), capped at 2 s.
  return Math.random() * Math.min(2000, 50 * 2 ** attempt);
}

/** What triage reads and writes on an exception. */
export class DynamoTriageStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async get(exceptionId: string): Promise<(ExceptionRecord & { content_hash: string }) | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { exception_id: exceptionId }, ConsistentRead: true }),
    );
    return out.Item as (ExceptionRecord & { content_hash: string }) | undefined;
  }

  async saveTriage(exceptionId: string, triage: Triage, contentHash: string): Promise<boolean> {
    try {
      // No version bump: triage does not touch what analysts edit, so their PATCHes stay valid.
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: exceptionId },
          UpdateExpression: 'SET triage = :t, severity = :s',
          ConditionExpression: 'content_hash = :h',
          ExpressionAttributeValues: { ':t': triage, ':s': triage.severity, ':h': contentHash },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}

/** The exceptions table on DynamoDB: recon's, triage's and the query API's views of it. */
import { BatchWriteCommand, GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { OPEN_STATUSES, LATE_ARRIVAL_STATUS } from '../exception-lifecycle.ts';
import { EXCEPTION_RECORD_TYPE } from '../exceptions.ts';
import { datasetDateKey } from '../keys.ts';
import { TABLES, TRIAGE_STAMP, type IndexDef } from '../resources.ts';
import { retryUnprocessed } from '../retry.ts';
import {
  EMBEDDING_ATTRIBUTE,
  EMBEDDING_MODEL_ATTRIBUTE,
  encodeEmbedding,
  type StoredEmbedding,
} from '../search/stored-embedding.ts';
import type { ExceptionRecord, Triage } from '../types.ts';
import { applied, conditionalWrite, updateExpression } from './dynamo-expressions.ts';
import type {
  DeadlineStore,
  ExceptionBookkeeping,
  ExceptionChange,
  ExceptionIndexKeys,
  ExceptionPatch,
  ExceptionQueries,
  ExceptionStore,
  StoredException,
  StoredExceptionState,
  TriageStore,
} from './exceptions.ts';
import {
  exceptionIndexKeys,
  indexKeyChanges,
  reopenReads,
  shardedValues,
  triageStamp,
  triageStampRemovals,
  type ExceptionIndexName,
  type IndexedBefore,
} from './exceptions-index-keys.ts';
import { compareKeys, type IndexPage, type IndexQuery, type StoredItem } from './index-query.ts';
import { getItemsInOrder, queryAllShards, queryShardedPage } from './index-query-dynamo.ts';

/** Calls of one batch before its unprocessed rest is handed back as a transient failure. */
const MAX_BATCH_ATTEMPTS = 8;
/** BatchWriteItem calls of one putNew in flight at once (bounded: a burst is throttled on AWS too). */
const PUT_CALLS_AT_ONCE = 4;
/** The table's key. */
const KEY = ['exception_id'] as const;
const keyOf = (exceptionId: string) => ({ exception_id: exceptionId });

/**
 * `before`, with what a change reopening the exception must know of it to put it back in the
 * indexes kept while open (reopenReads: its uncited stamp), read consistently when `before` does
 * not say. Only reopenings read: a closed exception's state, as recon lists it from an index, does
 * not carry the stamp.
 */
async function withReopenReads(
  doc: DynamoDBDocumentClient,
  table: string,
  exceptionId: string,
  set: Readonly<Record<string, unknown>>,
  remove: readonly string[],
  before: IndexedBefore | undefined,
): Promise<IndexedBefore | undefined> {
  const attributes = reopenReads(set, remove, before);
  if (attributes.length === 0) return before;
  // BatchGetItem, which every writer of the table is granted (GetItem is not, to store or deadlines).
  const [item] = await getItemsInOrder(doc, table, KEY, [keyOf(exceptionId)], {
    consistent: true,
    projection: ['exception_id', 'status', ...attributes],
  });
  return {
    ...before,
    status: (before as { status?: unknown } | undefined)?.status ?? item?.status,
    ...Object.fromEntries(attributes.map((attribute) => [attribute, item?.[attribute]])),
  };
}

const STATE_ATTRIBUTES = [
  'exception_id',
  'status',
  'content_hash',
  'version',
  'resolved_by_system',
  'last_changed_run_id',
  'run_id',
  // A manually matched exception found again unchanged stays resolved (exception-lifecycle.ts reconReopens).
  'match',
  'business_date',
  'due_at',
] as const satisfies readonly (keyof StoredException)[];

/**
 * Recon's view: change detection by state, brand-new records in batches, versioned changes; and
 * the deadline sweep's, which reads the open statuses' partitions of by_status_sharded.
 */
export class DynamoExceptionStore implements ExceptionStore, DeadlineStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async getStates(ids: string[]): Promise<Map<string, StoredExceptionState>> {
    // BatchGetItem, a few calls in flight (a store chunk of 5,000 findings is 50 calls, which one
    // after another took 1.2 of its 7 s locally).
    const items = await getItemsInOrder(this.doc, this.table, KEY, ids.map(keyOf), {
      consistent: true,
      projection: STATE_ATTRIBUTES,
    });
    return new Map(items.map((item) => [item.exception_id as string, item as unknown as StoredExceptionState]));
  }

  async listStatesForDate(dataset: string, businessDate: string): Promise<StoredExceptionState[]> {
    const { items } = await queryAllShards(
      this.doc,
      this.table,
      'by_dataset_date_sharded',
      shardsOf('by_dataset_date_sharded', datasetDateKey(dataset, businessDate)),
      // The states only: whole items carry rows, diffs and triage, and a run's completion reads them all.
      { projection: STATE_ATTRIBUTES },
    );
    return items as unknown as StoredExceptionState[];
  }

  async listOpenStatesForDataset(dataset: string): Promise<StoredExceptionState[]> {
    // by_status_sharded does not carry recon's state attributes (DynamoDB's 100 projected
    // attributes per table are spent on the listings): ids from the index, states by key.
    const lists = await Promise.all(
      OPEN_STATUSES.map((status) => this.byStatus(status, '#ds = :ds', { '#ds': 'dataset' }, { ':ds': dataset })),
    );
    return [...(await this.getStates(lists.flat().map((item) => item.exception_id as string))).values()];
  }

  async listExpiredPending(now: string): Promise<StoredException[]> {
    const items = await this.byStatus(LATE_ARRIVAL_STATUS, '#pu <= :now', { '#pu': 'pending_until' }, { ':now': now });
    return (await this.whole(items)) as unknown as StoredException[];
  }

  async listOverdueUnannounced(now: string): Promise<StoredException[]> {
    // Every open status but PENDING (a late arrival has no deadline running yet), read only up to
    // now on by_status_due_sharded: the due ones, not every open exception.
    const lists = await Promise.all(
      OPEN_STATUSES.filter((s) => s !== LATE_ARRIVAL_STATUS).map(async (status) => {
        const { items } = await queryAllShards(
          this.doc,
          this.table,
          'by_status_due_sharded',
          shardsOf('by_status_due_sharded', status),
          {
            sortAtMost: { attribute: 'due_at', value: now },
            filter: 'attribute_not_exists(#notified)',
            names: { '#notified': 'overdue_notified_at' },
            projection: KEY,
          },
        );
        return items;
      }),
    );
    return (await this.whole(lists.flat())) as unknown as StoredException[];
  }

  /** The items of index entries, read by key: the index carries only what its filters need. */
  private whole(entries: readonly Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
    return getItemsInOrder(
      this.doc,
      this.table,
      KEY,
      entries.map((e) => keyOf(e.exception_id as string)),
      {
        consistent: true,
      },
    );
  }

  /**
   * One status's partition of by_status_sharded, filtered (the ids only). The filter reads every
   * item of the status: fine for PENDING (late arrivals within their window), not for the open
   * ones (by_status_due_sharded serves the overdue notices).
   */
  private async byStatus(
    status: string,
    filter: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
  ): Promise<Record<string, unknown>[]> {
    const { items } = await queryAllShards(
      this.doc,
      this.table,
      'by_status_sharded',
      shardsOf('by_status_sharded', status),
      { filter, names, values, projection: KEY },
    );
    return items;
  }

  async putNew(records: (ExceptionRecord & ExceptionBookkeeping)[]): Promise<void> {
    // BatchWriteItem: at most 25 items a call; a few calls in flight hide each round trip.
    let next = 0;
    const writer = async () => {
      while (next < records.length) {
        const start = next;
        next += 25;
        await this.putBatch(records.slice(start, start + 25));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUT_CALLS_AT_ONCE, Math.ceil(records.length / 25)) }, writer));
  }

  private async putBatch(batch: (ExceptionRecord & ExceptionBookkeeping)[]): Promise<void> {
    await retryUnprocessed(
      batch.map((r) => {
        const stored = {
          ...r,
          record_type: EXCEPTION_RECORD_TYPE,
          dataset_date: datasetDateKey(r.dataset, r.business_date),
          last_seen_at: r.created_at,
        };
        const item: StoredException = { ...stored, ...(exceptionIndexKeys(stored) as unknown as ExceptionIndexKeys) };
        return { PutRequest: { Item: { ...item } as Record<string, unknown> } };
      }),
      async (requests) => {
        const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
        return (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
      },
      { maxAttempts: MAX_BATCH_ATTEMPTS, gaveUp: (left) => `BatchWriteItem left ${left} items unprocessed` },
    );
  }

  async update(change: ExceptionChange): Promise<boolean> {
    const remove = change.remove ?? [];
    const before = await withReopenReads(this.doc, this.table, change.exceptionId, change.set, remove, change.before);
    const keys = indexKeyChanges(change.exceptionId, change.set, remove, before);
    const update = updateExpression({
      set: { ...change.set, ...keys.set },
      append: { history: change.history },
      ...(change.bumpVersion ? { increment: { version: 1 } } : {}),
      ...(remove.length + keys.remove.length > 0 ? { remove: [...remove, ...keys.remove] } : {}),
    });
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: change.exceptionId },
          ...update,
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':expected': change.expectedVersion },
        }),
      ),
    );
  }
}

/** Triage's view: the exception to triage, and its answer kept only for the content it saw. */
export class DynamoTriageStore implements TriageStore {
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

  async saveTriage(
    exceptionId: string,
    triage: Triage,
    contentHash: string,
    also: Readonly<Record<string, string>> = {},
    embedding?: StoredEmbedding,
    status?: string,
  ): Promise<boolean> {
    // No version bump: triage does not touch what analysts edit, so their PATCHes stay valid.
    // The by_severity key follows the stored severity (the triage's, floored at the policy's);
    // by_uncited's, whether this triage cites a policy passage.
    const stamp = triageStamp(triage);
    const unstamped = triageStampRemovals(stamp);
    const keys = indexKeyChanges(
      exceptionId,
      { severity: triage.severity, ...stamp },
      unstamped,
      status === undefined ? undefined : { status },
    );
    const { UpdateExpression, ExpressionAttributeNames, ExpressionAttributeValues } = updateExpression({
      remove: [...unstamped, ...keys.remove],
      set: {
        ...also,
        triage,
        ...stamp,
        severity: triage.severity,
        ...keys.set,
        ...(embedding
          ? { [EMBEDDING_ATTRIBUTE]: encodeEmbedding(embedding.vector), [EMBEDDING_MODEL_ATTRIBUTE]: embedding.model }
          : {}),
      },
    });
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: exceptionId },
          UpdateExpression,
          ConditionExpression: 'content_hash = :h',
          ExpressionAttributeNames,
          ExpressionAttributeValues: { ...ExpressionAttributeValues, ':h': contentHash },
        }),
      ),
    );
  }

  async saveEmbedding(exceptionId: string, vector: readonly number[], model: string): Promise<void> {
    // Only onto an item that exists: never a ghost item holding nothing but a vector.
    await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: exceptionId },
          UpdateExpression: 'SET #e = :e, #m = :m',
          ConditionExpression: 'attribute_exists(exception_id)',
          ExpressionAttributeNames: { '#e': EMBEDDING_ATTRIBUTE, '#m': EMBEDDING_MODEL_ATTRIBUTE },
          ExpressionAttributeValues: { ':e': encodeEmbedding(vector), ':m': model },
        }),
      ),
    );
  }
}

/** The physical partitions of an exceptions index's logical partition `value`. */
function shardsOf(index: ExceptionIndexName, value: string): { attribute: string; values: string[] } {
  const def = TABLES.exceptions.indexes[index];
  if (def === undefined) throw new Error(`internal: ${index} is not an index of the exceptions table`);
  return { attribute: def.partitionKey.name, values: shardedValues(value) };
}

/**
 * Counts the items of a logical partition of an exceptions index (shards read at once, Select
 * COUNT): the local stack's and the benchmarks' diagnostics.
 */
export async function countExceptionPartition(
  doc: DynamoDBDocumentClient,
  table: string,
  index: ExceptionIndexName,
  value: string,
  filter?: string,
): Promise<number> {
  const { count } = await queryAllShards(doc, table, index, shardsOf(index, value), {
    count: true,
    ...(filter ? { filter } : {}),
  });
  return count;
}

/**
 * countExceptionPartition's filter for triaged exceptions: triage's stamp (saveTriage), which
 * by_run_sharded carries (the indexes do not carry the triage itself; recon writes `severity`
 * too, so it cannot tell a triaged exception from one a held run left untriaged).
 */
export const TRIAGED_FILTER = `attribute_exists(${TRIAGE_STAMP.contentHash})`;

/** A key no exception can have (ids are 32 hex characters): the health probe reads nothing. */
const HEALTH_PROBE_KEY = '__health_check__';

/** The query API's view: key reads, GSI pages, conditional patches. */
export class DynamoExceptionQueries implements ExceptionQueries {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async getException(id: string): Promise<StoredItem | undefined> {
    // Consistent: a PATCH compares versions against this read.
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { exception_id: id }, ConsistentRead: true }),
    );
    return out.Item;
  }

  async queryExceptions(query: IndexQuery): Promise<IndexPage> {
    const page = await this.queryExceptionEntries(query);
    return { ...page, items: await this.wholeExceptions(page.items) };
  }

  async queryExceptionEntries(query: IndexQuery): Promise<IndexPage> {
    const index = query.index as ExceptionIndexName;
    const def = TABLES.exceptions.indexes[index];
    // DynamoDB refuses a GSI read that names an attribute the index does not project. The one an
    // index leaves out is the attribute its partition fixes (resources.ts listingProjection): that
    // is the query's own value, filled in on each entry when asked for instead of asked of DynamoDB.
    // (The owner queues project whole items: every attribute.)
    const projection: IndexDef['projection'] = 'projection' in def ? def.projection : undefined;
    const projected = projection === undefined ? undefined : new Set<string>(projection);
    const attributes = query.attributes?.filter((a) => projected === undefined || projected.has(a));
    const { attribute, value } = query.partition;
    const page = await queryShardedPage(
      this.doc,
      this.table,
      { ...query, ...(attributes ? { attributes } : {}) },
      { ...shardsOf(index, value), sortAttribute: def.sortKey.name },
      [...KEY, def.partitionKey.name, def.sortKey.name],
    );
    if (query.attributes !== undefined && !query.attributes.includes(attribute)) return page;
    return { ...page, items: page.items.map((entry) => ({ [attribute]: value, ...entry })) };
  }

  async soonestDue(statuses: readonly string[], dueAtMost: string, limit: number): Promise<StoredItem[]> {
    const lists = await Promise.all(
      statuses.map(async (status) => {
        const { items } = await queryAllShards(
          this.doc,
          this.table,
          'by_status_due_sharded',
          shardsOf('by_status_due_sharded', status),
          { sortAtMost: { attribute: 'due_at', value: dueAtMost }, projection: [...KEY, 'due_at'], firstOfEach: limit },
        );
        return items.map((item) => ({ ...item, status }));
      }),
    );
    // DynamoDB's order of the due dates (ISO times of one length), then the ids.
    return lists
      .flat()
      .map((entry: StoredItem) => ({ entry, order: `${String(entry.due_at)}#${String(entry.exception_id)}` }))
      .sort((a, b) => compareKeys(a.order, b.order))
      .slice(0, limit)
      .map(({ entry }) => entry);
  }

  wholeExceptions(entries: readonly StoredItem[], attributes?: readonly string[]): Promise<StoredItem[]> {
    // The indexes carry what the filters need, not the triage, history or embedding: the whole
    // items by key, in the entries' order. Eventually consistent, as the index itself is.
    return getItemsInOrder(this.doc, this.table, KEY, entries, attributes ? { projection: attributes } : {});
  }

  async patchException(patch: ExceptionPatch): Promise<StoredItem | undefined> {
    const before = await withReopenReads(
      this.doc,
      this.table,
      patch.exceptionId,
      patch.set,
      patch.remove,
      patch.before,
    );
    const keys = indexKeyChanges(patch.exceptionId, patch.set, patch.remove, before);
    const update = updateExpression({
      set: { ...patch.set, ...keys.set },
      append: { history: patch.history },
      increment: { version: 1 },
      remove: [...patch.remove, ...keys.remove],
    });
    const out = await conditionalWrite(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { exception_id: patch.exceptionId },
          ...update,
          // Also false for a missing item (no version attribute): the caller re-reads to tell which.
          ConditionExpression: '#version = :expected',
          ExpressionAttributeNames: { ...update.ExpressionAttributeNames, '#version': 'version' },
          ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':expected': patch.expectedVersion },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out?.Attributes;
  }

  /** GetItem on a key that does not exist: proves the table answers, costs half a read unit. */
  async probe(): Promise<void> {
    await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { exception_id: HEALTH_PROBE_KEY },
        ProjectionExpression: 'exception_id',
      }),
    );
  }
}

/**
 * Creates, idempotently, the bucket, queues (each with its DLQ and redrive policy) and tables
 * that infra/ declares — from the same definitions in functions/shared/resources.ts.
 */
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ScanCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
  type AttributeValue,
  type DynamoDBClient,
  type KeySchemaElement,
  type Projection,
} from '@aws-sdk/client-dynamodb';
import {
  DLQ_RETENTION_SECONDS,
  FILE_RECORD_TYPE,
  indexProjection,
  QUEUE_NAMES,
  QUEUE_RETENTION_SECONDS,
  QUEUES,
  RUN_RECORD_TYPE,
  TABLES,
  TOPIC_NAMES,
  TOPICS,
  resourceNames,
  topicName,
  type TopicName,
  type IndexDef,
  type KeyDef,
  type QueueName,
  type ResourceNames,
  type TableDef,
} from '../../functions/shared/resources.ts';
import { exceptionIndexKeys, triageStamp } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { fsyncPath } from './outbox.ts';

export interface QueueUrls {
  readonly main: string;
  readonly dlq: string;
  readonly mainArn: string;
  readonly dlqArn: string;
}

export interface ProvisionOptions extends TableOptions {
  /** Locally a failed message comes back after this, not after 6x the Lambda timeout. */
  readonly visibilityTimeoutSeconds: number;
}

export async function provision(
  names: ResourceNames,
  clients: { s3: S3Client; sqs: SQSClient; dynamo: DynamoDBClient },
  options: ProvisionOptions,
): Promise<Record<QueueName, QueueUrls>> {
  await clients.s3.send(new CreateBucketCommand({ Bucket: names.bucket })).catch((error: Error) => {
    if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
  });
  const queues = {} as Record<QueueName, QueueUrls>;
  const origin = await endpointOrigin(clients.sqs);
  for (const name of QUEUE_NAMES) {
    const urls = await createQueueWithDlq(clients.sqs, names.queues[name], QUEUES[name].maxReceiveCount, options);
    queues[name] = { ...urls, main: atOrigin(urls.main, origin), dlq: atOrigin(urls.dlq, origin) };
  }
  await createTables(clients.dynamo, names, options);
  return queues;
}

/** Where the SQS client sends requests (this start's emulator port), as `http://host:port`. */
async function endpointOrigin(sqs: SQSClient): Promise<string | undefined> {
  const endpoint = await sqs.config.endpoint?.();
  if (!endpoint) return undefined;
  return `${endpoint.protocol.replace(/:?$/, ':')}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}`;
}

/**
 * The emulator keeps the URL a queue was created with, port included, and hands it back on every
 * later CreateQueue; the port changes with each start. Lookups ignore the host, so the URL at
 * this start's origin names the same queue and is the one other tools (endpoints.json) can use.
 */
function atOrigin(url: string, origin: string | undefined): string {
  if (origin === undefined) return url;
  const parsed = new URL(url);
  return `${origin}${parsed.pathname}`;
}

export interface TopicUrls {
  readonly arn: string;
  /** A queue subscribed to the topic (raw delivery: each message is the event's JSON): what the topic sent. */
  readonly inbox: string;
}

/**
 * Each SNS topic the functions publish to, in the emulator, with a queue subscribed to it: what
 * an e-mail or chat subscription receives on AWS, tests (and people) read there. Idempotent:
 * CreateTopic and Subscribe return what exists.
 */
export async function provisionTopics(
  prefix: string,
  clients: { sns: SNSClient; sqs: SQSClient },
): Promise<Record<TopicName, TopicUrls>> {
  const topics = {} as Record<TopicName, TopicUrls>;
  const origin = await endpointOrigin(clients.sqs);
  for (const topic of TOPIC_NAMES) {
    const name = topicName(topic, prefix);
    const created = await clients.sns.send(new CreateTopicCommand({ Name: name }));
    const inbox = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${name}-inbox` }));
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: created.TopicArn,
        Protocol: 'sqs',
        Endpoint: await queueArn(clients.sqs, inbox.QueueUrl as string),
        Attributes: { RawMessageDelivery: 'true' },
      }),
    );
    // The queues TOPICS names as its subscribers (the notifications queue: the webhooks' consumer).
    for (const queue of TOPICS[topic].subscribers) {
      const { QueueUrl } = await clients.sqs.send(
        new GetQueueUrlCommand({ QueueName: resourceNames(prefix).queues[queue].main }),
      );
      await clients.sns.send(
        new SubscribeCommand({
          TopicArn: created.TopicArn,
          Protocol: 'sqs',
          Endpoint: await queueArn(clients.sqs, QueueUrl as string),
          Attributes: { RawMessageDelivery: 'true' },
        }),
      );
    }
    topics[topic] = { arn: created.TopicArn as string, inbox: atOrigin(inbox.QueueUrl as string, origin) };
  }
  return topics;
}

export interface TableOptions {
  /**
   * Where a table being rebuilt with new indexes keeps its items meanwhile (the data directory
   * locally), so a rebuild interrupted at any moment is finished by the next start. Absent: a
   * temporary folder, gone with the process.
   */
  readonly rebuildDir?: string;
  /** A line for the person waiting (a rebuild of 100k exceptions takes about a minute). */
  readonly onProgress?: (line: string) => void;
}

export async function createTables(
  dynamo: DynamoDBClient,
  names: ResourceNames,
  options: TableOptions = {},
): Promise<void> {
  for (const [table, def] of Object.entries(TABLES) as [keyof typeof TABLES, TableDef][]) {
    await createTable(dynamo, names.tables[table], def, options);
  }
}

async function createQueueWithDlq(
  sqs: SQSClient,
  names: { main: string; dlq: string },
  maxReceiveCount: number,
  options: ProvisionOptions,
): Promise<QueueUrls> {
  const dlq = await sqs.send(
    new CreateQueueCommand({
      QueueName: names.dlq,
      Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
    }),
  );
  const dlqArn = await queueArn(sqs, dlq.QueueUrl as string);
  const main = await sqs.send(new CreateQueueCommand({ QueueName: names.main }));
  // Set (not create) attributes so a restart with other settings converges instead of failing.
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: main.QueueUrl,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(QUEUE_RETENTION_SECONDS),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  return {
    main: main.QueueUrl as string,
    dlq: dlq.QueueUrl as string,
    mainArn: await queueArn(sqs, main.QueueUrl as string),
    dlqArn,
  };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return out.Attributes?.QueueArn as string;
}

function keySchema(pk: KeyDef, sk?: KeyDef): KeySchemaElement[] {
  return [
    { AttributeName: pk.name, KeyType: 'HASH' },
    ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : []),
  ];
}

/** How the table waiters poll dynalite: at once, then from every 20 ms up to every second, for two minutes. */
const tableWait = (client: DynamoDBClient) => ({ client, maxWaitTime: 120, minDelay: 0.02, maxDelay: 1 });

async function createTable(dynamo: DynamoDBClient, name: string, def: TableDef, options: TableOptions): Promise<void> {
  const attributes = new Map<string, KeyDef>();
  for (const k of [
    def.partitionKey,
    def.sortKey,
    ...Object.values(def.indexes).flatMap((i) => [i.partitionKey, i.sortKey]),
  ]) {
    if (k) attributes.set(k.name, k);
  }
  const indexes = Object.entries(def.indexes);
  // Created, then waited for until it takes writes (dynalite answers CreateTable while CREATING).
  const create = async () => {
    await dynamo.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...attributes.values()].map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
        KeySchema: keySchema(def.partitionKey, def.sortKey),
        ...(indexes.length === 0
          ? {}
          : {
              GlobalSecondaryIndexes: indexes.map(([indexName, i]) => ({
                IndexName: indexName,
                KeySchema: keySchema(i.partitionKey, i.sortKey),
                Projection: projectionOf(i),
              })),
            }),
      }),
    );
    await waitUntilTableExists(tableWait(dynamo), { TableName: name });
  };
  if (options.rebuildDir !== undefined) {
    const files = rebuildFiles(options.rebuildDir, name, def);
    // A copy that never became complete: the table it came from was not touched.
    await rm(files.partial, { force: true });
    // A rebuild cut short after its copy was complete: the copy is the table.
    if (existsSync(files.complete)) return restoreFromCopy(dynamo, name, files, create, options);
  }
  try {
    await create();
  } catch (error) {
    if (!(error instanceof ResourceInUseException) && (error as Error).name !== 'ResourceInUseException') throw error;
    await rebuildWithMissingIndexes(dynamo, name, def, create, options);
  }
  // dynalite has no TTL; the attribute is still written, and infra/ enables TTL on AWS.
  await dynamo.send(new DescribeTableCommand({ TableName: name }));
}

function projectionOf(index: IndexDef): Projection {
  const p = indexProjection(index);
  return p.type === 'ALL'
    ? { ProjectionType: 'ALL' }
    : { ProjectionType: 'INCLUDE', NonKeyAttributes: p.nonKeyAttributes };
}

/** The same projection, whatever order DescribeTable lists the attributes in. */
function sameProjection(a: Projection | undefined, b: Projection): boolean {
  const attributes = (p: Projection | undefined) => [...(p?.NonKeyAttributes ?? [])].sort().join(',');
  return (a?.ProjectionType ?? 'ALL') === b.ProjectionType && attributes(a) === attributes(b);
}

type Item = Record<string, AttributeValue>;

/**
 * What an item written before the table's current indexes existed lacks, per table: runs' and
 * files' constant `record_type` (by_requested, by_ingested), exceptions' sharded index keys.
 */
const BACKFILLS = new Map<TableDef, (item: Item) => Item>([
  [TABLES.runs, (item) => ({ record_type: { S: RUN_RECORD_TYPE }, ...item })],
  [TABLES.files, (item) => ({ record_type: { S: FILE_RECORD_TYPE }, ...item })],
  [TABLES.exceptions, withExceptionIndexKeys],
]);

/**
 * An exception item with the index keys its attributes give it, and the stamp of its triage
 * (exceptions-index-keys.ts, as every writer).
 */
function withExceptionIndexKeys(item: Item): Item {
  const strings = (map: Item) =>
    Object.fromEntries(
      Object.entries(map).flatMap(([name, value]) => (value.S === undefined ? [] : [[name, value.S]])),
    );
  const triage = item.triage?.M;
  const stamp = triage
    ? triageStamp({
        ...strings(triage),
        ...(triage.policy_citations?.L ? { policy_citations: triage.policy_citations.L } : {}),
        ...(triage.degraded?.BOOL === undefined ? {} : { degraded: triage.degraded.BOOL }),
      })
    : {};
  // The stamp first: by_uncited_sharded's key comes from it.
  const keys = exceptionIndexKeys({ ...strings(item), ...stamp });
  return {
    ...item,
    ...Object.fromEntries(Object.entries({ ...keys, ...stamp }).map(([name, value]) => [name, { S: value }])),
  };
}

/**
 * A table kept in .tally/ from before an index was added to resources.ts is rebuilt with it (and
 * without indexes resources.ts no longer has, such as the exceptions' unsharded ones), so an
 * upgrade needs no reset. dynalite cannot add an index to an existing table (UpdateTable
 * ignores GSI creation), so the items are copied out, the table recreated and the items put
 * back. Local state only: a Scan is fine here (the API never scans).
 *
 * The copy goes to a file a page at a time (at 100k exceptions, ~0.5 GB of items would not sit
 * well in memory) and is made complete (fsync, then an atomic rename) before the table is
 * deleted: killed before the rename, the table is untouched and the partial copy is dropped at the
 * next start; killed after it, the next start recreates the table from the copy (restoreFromCopy).
 */
async function rebuildWithMissingIndexes(
  dynamo: DynamoDBClient,
  name: string,
  def: TableDef,
  create: () => Promise<unknown>,
  options: TableOptions,
): Promise<void> {
  const table = (await dynamo.send(new DescribeTableCommand({ TableName: name }))).Table;
  // An index whose projection changed is recreated too (DynamoDB cannot change a projection in place).
  const existing = new Map((table?.GlobalSecondaryIndexes ?? []).map((i) => [i.IndexName, i.Projection]));
  const changed = Object.entries(def.indexes)
    .filter(([name, i]) => !existing.has(name) || !sameProjection(existing.get(name), projectionOf(i)))
    .map(([name]) => name);
  if (changed.length === 0) return;
  const say = options.onProgress ?? (() => {});
  say(`Rebuilding table ${name} with its new indexes (${changed.join(', ')}): copying its items out ...`);
  const dir = options.rebuildDir ?? (await mkdtemp(join(tmpdir(), 'tally-rebuild-')));
  await mkdir(dir, { recursive: true });
  const files = rebuildFiles(dir, name, def);
  const out = await open(files.partial, 'w');
  let copied = 0;
  try {
    let cursor: Record<string, AttributeValue> | undefined;
    do {
      const page = await dynamo.send(new ScanCommand({ TableName: name, ExclusiveStartKey: cursor }));
      const lines = (page.Items ?? []).map((item) => `${JSON.stringify(encodeItem(item))}\n`).join('');
      if (lines) await out.write(lines);
      copied += page.Items?.length ?? 0;
      if (passedStep(copied, page.Items?.length ?? 0)) say(`  copied ${copied.toLocaleString('en-US')}`);
      cursor = page.LastEvaluatedKey;
    } while (cursor);
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(files.partial, files.complete);
  // The rename on disk too (as the front door's outbox does), before the table is deleted.
  await fsyncPath(dir, 'r');
  await restoreFromCopy(dynamo, name, files, create, options);
  if (options.rebuildDir === undefined) await rm(dir, { recursive: true, force: true });
}

/** Whether the last `added` items took `count` past a multiple of 10,000: a progress line is due. */
function passedStep(count: number, added: number): boolean {
  return count % 10_000 < added;
}

interface RebuildFiles {
  /** The items being copied out: not yet the whole table. */
  readonly partial: string;
  /** Every item of the table, one JSON line each: present only while the table is recreated. */
  readonly complete: string;
  readonly backfill: (item: Item) => Item;
}

function rebuildFiles(dir: string, name: string, def: TableDef): RebuildFiles {
  const complete = join(dir, `rebuild-${name}.jsonl`);
  return { partial: `${complete}.partial`, complete, backfill: BACKFILLS.get(def) ?? ((item: Item) => item) };
}

/** The table recreated from a complete copy (deleted first if there is one), then the copy removed. */
async function restoreFromCopy(
  dynamo: DynamoDBClient,
  name: string,
  files: RebuildFiles,
  create: () => Promise<unknown>,
  options: TableOptions,
): Promise<void> {
  const say = options.onProgress ?? (() => {});
  await dynamo.send(new DeleteTableCommand({ TableName: name })).catch((error: Error) => {
    if (error.name !== 'ResourceNotFoundException') throw error;
  });
  // dynalite answers DeleteTable while it still removes the table's items: creating it again at
  // once was refused (ResourceInUseException) whenever the removal outlasted a round trip.
  await waitUntilTableNotExists(tableWait(dynamo), { TableName: name });
  await create();
  let restored = 0;
  let batch: Item[] = [];
  const flush = async () => {
    // Items written before an index existed lack its keys; give them theirs.
    let requests = batch.map((item) => ({ PutRequest: { Item: files.backfill(item) } }));
    while (requests.length > 0) {
      const out = await dynamo.send(new BatchWriteItemCommand({ RequestItems: { [name]: requests } }));
      requests = (out.UnprocessedItems?.[name] ?? []) as typeof requests;
    }
    restored += batch.length;
    if (passedStep(restored, batch.length)) say(`  put back ${restored.toLocaleString('en-US')}`);
    batch = [];
  };
  const lines = createInterface({ input: createReadStream(files.complete), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    batch.push(decodeItem(JSON.parse(line) as EncodedItem));
    if (batch.length === 25) await flush();
  }
  if (batch.length > 0) await flush();
  await rm(files.complete);
  // The folder too, once nothing else waits in it.
  await rmdir(dirname(files.complete)).catch(() => {});
  say(`Rebuilt table ${name}: ${restored.toLocaleString('en-US')} items.`);
}

/** An attribute value as JSON can hold it: binary values (B, BS) as base64. */
type EncodedItem = Record<string, unknown>;

function encodeItem(item: Item): EncodedItem {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, encodeValue(v)]));
}

function encodeValue(value: AttributeValue): unknown {
  if (value.B !== undefined) return { B64: Buffer.from(value.B).toString('base64') };
  if (value.BS !== undefined) return { BS64: value.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (value.M !== undefined) return { M: encodeItem(value.M) };
  if (value.L !== undefined) return { L: value.L.map(encodeValue) };
  return value;
}

function decodeItem(item: EncodedItem): Item {
  return Object.fromEntries(Object.entries(item).map(([k, v]) => [k, decodeValue(v as Record<string, unknown>)]));
}

function decodeValue(value: Record<string, unknown>): AttributeValue {
  if (typeof value.B64 === 'string') return { B: new Uint8Array(Buffer.from(value.B64, 'base64')) };
  if (Array.isArray(value.BS64)) return { BS: value.BS64.map((b: string) => new Uint8Array(Buffer.from(b, 'base64'))) };
  if (value.M !== undefined) return { M: decodeItem(value.M as EncodedItem) };
  if (Array.isArray(value.L)) return { L: value.L.map((v) => decodeValue(v as Record<string, unknown>)) };
  return value as unknown as AttributeValue;
}

/**
 * Creates, idempotently, the bucket, queues (each with its DLQ and redrive policy) and tables
 * that infra/ declares — from the same definitions in functions/shared/resources.ts.
 */
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException, type DynamoDBClient, type KeySchemaElement } from '@aws-sdk/client-dynamodb';
import {
  DLQ_RETENTION_SECONDS, QUEUE_NAMES, QUEUE_RETENTION_SECONDS, QUEUES, TABLES,
  type KeyDef, type QueueName, type ResourceNames, type TableDef,
} from '../../functions/shared/resources.ts';

export interface QueueUrls {
  readonly main: string;
  readonly dlq: string;
  readonly mainArn: string;
  readonly dlqArn: string;
}

export interface ProvisionOptions {
  /** Locally a failed message comes back after this, not after 6x the Lambda timeout. */
  readonly visibilityTimeoutSeconds: number;
}

export async function provision(
  names: ResourceNames, clients: { s3: S3Client; sqs: SQSClient; dynamo: DynamoDBClient }, options: ProvisionOptions,
): Promise<Record<QueueName, QueueUrls>> {
  await clients.s3.send(new CreateBucketCommand({ Bucket: names.bucket })).catch((error: Error) => {
    if (error.name !== 'BucketAlreadyOwnedByYou' && error.name !== 'BucketAlreadyExists') throw error;
  });
  const queues = {} as Record<QueueName, QueueUrls>;
  for (const name of QUEUE_NAMES) queues[name] = await createQueueWithDlq(clients.sqs, names.queues[name], QUEUES[name].maxReceiveCount, options);
  await createTables(clients.dynamo, names);
  return queues;
}

export async function createTables(dynamo: DynamoDBClient, names: ResourceNames): Promise<void> {
  for (const [table, def] of Object.entries(TABLES) as [keyof typeof TABLES, TableDef][]) {
    await createTable(dynamo, names.tables[table], def);
  }
}

async function createQueueWithDlq(sqs: SQSClient, names: { main: string; dlq: string }, maxReceiveCount: number, options: ProvisionOptions): Promise<QueueUrls> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: names.dlq, Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) } }));
  const dlqArn = await queueArn(sqs, dlq.QueueUrl as string);
  const main = await sqs.send(new CreateQueueCommand({ QueueName: names.main }));
  // Set (not create) attributes so a restart with other settings converges instead of failing.
  await sqs.send(new SetQueueAttributesCommand({
    QueueUrl: main.QueueUrl,
    Attributes: {
      VisibilityTimeout: String(options.visibilityTimeoutSeconds),
      MessageRetentionPeriod: String(QUEUE_RETENTION_SECONDS),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
    },
  }));
  return { main: main.QueueUrl as string, dlq: dlq.QueueUrl as string, mainArn: await queueArn(sqs, main.QueueUrl as string), dlqArn };
}

async function queueArn(sqs: SQSClient, url: string): Promise<string> {
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  return out.Attributes?.QueueArn as string;
}

function keySchema(pk: KeyDef, sk?: KeyDef): KeySchemaElement[] {
  return [{ AttributeName: pk.name, KeyType: 'HASH' }, ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : [])];
}

async function createTable(dynamo: DynamoDBClient, name: string, def: TableDef): Promise<void> {
  const attributes = new Map<string, KeyDef>();
  for (const k of [def.partitionKey, def.sortKey, ...Object.values(def.indexes).flatMap((i) => [i.partitionKey, i.sortKey])]) {
    if (k) attributes.set(k.name, k);
  }
  const indexes = Object.entries(def.indexes);
  try {
    await dynamo.send(new CreateTableCommand({
      TableName: name,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [...attributes.values()].map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
      KeySchema: keySchema(def.partitionKey, def.sortKey),
      ...(indexes.length === 0 ? {} : {
        GlobalSecondaryIndexes: indexes.map(([indexName, i]) => ({ IndexName: indexName, KeySchema: keySchema(i.partitionKey, i.sortKey), Projection: { ProjectionType: 'ALL' } })),
      }),
    }));
  } catch (error) {
    if (!(error instanceof ResourceInUseException) && (error as Error).name !== 'ResourceInUseException') throw error;
  }
  // dynalite has no TTL; the attribute is still written, and infra/ enables TTL on AWS.
  await dynamo.send(new DescribeTableCommand({ TableName: name }));
}

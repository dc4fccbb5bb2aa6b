/**
 * A real DynamoDB API (dynalite, in memory, on 127.0.0.1) for handler tests: conditional writes,
 * batch calls and GSIs behave as they do on AWS, which a hand-written mock would only imitate.
 */
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import dynalite from 'dynalite';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { createTables } from '../../scripts/local/provision.ts';
import { DynamoQueryStore } from '../../functions/query-api/dynamo-store.ts';
import { makeDynaliteWritesAtomic } from '../../scripts/local/dynalite-atomic.ts';
import { makeDynaliteRefuseUnprojected } from '../../scripts/local/dynalite-projections.ts';
import { ENV, resourceNames, type ResourceNames } from '../../functions/shared/resources.ts';

export interface TestDynamo {
  readonly names: ResourceNames;
  readonly doc: DynamoDBDocumentClient;
  stop(): Promise<void>;
}

let prefixCounter = 0;

export async function startTestDynamo(): Promise<TestDynamo> {
  // As the local stack runs it: every handler test exercises the atomic-write patch too.
  makeDynaliteWritesAtomic();
  // As on AWS: a GSI read cannot ask for what the index does not project.
  makeDynaliteRefuseUnprojected();
  const server: Server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const names = resourceNames(`test${++prefixCounter}`);
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    [ENV.vectorDir]: mkdtempSync(join(tmpdir(), 'tally-test-vectors-')),
    [ENV.exceptionsTable]: names.tables.exceptions,
    [ENV.filesTable]: names.tables.files,
    [ENV.runsTable]: names.tables.runs,
    [ENV.patternsTable]: names.tables.patterns,
    [ENV.idempotencyTable]: names.tables.idempotency,
    [ENV.reconQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tally-recon',
    [ENV.triageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tally-triage',
    [ENV.storeQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tally-store',
    // Named for the store's configuration; no handler test holds a run through the real topic.
    [ENV.businessEventsTopicArn]: 'arn:aws:sns:us-east-1:000000000000:tally-business-events',
  });
  const client = new DynamoDBClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  await createTables(client, names);
  return {
    names,
    doc: DynamoDBDocumentClient.from(client),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The query API's store over the test tables (every handler test of the API builds the same one). */
export function queryStoreOf(db: TestDynamo): DynamoQueryStore {
  return new DynamoQueryStore(db.doc, {
    exceptions: db.names.tables.exceptions,
    runs: db.names.tables.runs,
    files: db.names.tables.files,
    patterns: db.names.tables.patterns,
  });
}

/** One read of whole exception items through the query store: whose, and the attributes asked for. */
export interface WholeRead {
  readonly ids: string[];
  readonly attributes: readonly string[] | undefined;
}

/**
 * The query store with every read of whole exception items recorded (`wholeExceptions`, and
 * `queryExceptions`, which reads its page whole): a route that should count or pick from index
 * entries can be held to it.
 */
export function recordingWholeReads(db: TestDynamo): { store: DynamoQueryStore; reads: WholeRead[] } {
  const store = queryStoreOf(db);
  const reads: WholeRead[] = [];
  const recording = Object.assign(Object.create(store) as DynamoQueryStore, {
    queryExceptions: async (query: Parameters<DynamoQueryStore['queryExceptions']>[0]) => {
      const page = await store.queryExceptions(query);
      reads.push({ ids: page.items.map((item) => String(item.exception_id)), attributes: undefined });
      return page;
    },
    wholeExceptions: (entries: Parameters<DynamoQueryStore['wholeExceptions']>[0], attributes?: readonly string[]) => {
      reads.push({ ids: entries.map((entry) => String(entry.exception_id)), attributes });
      return store.wholeExceptions(entries, attributes);
    },
  });
  return { store: recording, reads };
}

/** Writes exception items as recon stores them: each with its index keys, 25 to a BatchWriteItem. */
export async function putExceptions(db: TestDynamo, items: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    await db.doc.send(
      new BatchWriteCommand({
        RequestItems: {
          [db.names.tables.exceptions]: items
            .slice(i, i + 25)
            .map((item) => ({ PutRequest: { Item: { ...item, ...exceptionIndexKeys(item) } } })),
        },
      }),
    );
  }
}

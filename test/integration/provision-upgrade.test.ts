/** Local state kept across an upgrade: a table from before an index existed gets the index, and its items the keys. */
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import dynalite from 'dynalite';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  waitUntilTableExists,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { createTables } from '../../scripts/local/provision.ts';
import { indexProjection, resourceNames, TABLES } from '../../functions/shared/resources.ts';
import { planQuery } from '../../functions/query-api/listing.ts';
import { DynamoExceptionQueries, DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import {
  DynamoRunExceptionListing,
  DynamoUncitedListing,
} from '../../functions/shared/tables/run-exceptions-dynamo.ts';

/** A fresh in-memory dynalite on 127.0.0.1 for one test, closed afterwards. */
async function withDynalite(run: (dynamo: DynamoDBClient) => Promise<void>): Promise<void> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await run(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      }),
    );
  } finally {
    server.close();
  }
}

/** The entries of an index keyed by the constant record_type (runs' by_requested, files' by_ingested). */
function byRecordType(dynamo: DynamoDBClient, table: string, index: string, recordType: string) {
  return dynamo.send(
    new QueryCommand({
      TableName: table,
      IndexName: index,
      KeyConditionExpression: 'record_type = :r',
      ExpressionAttributeValues: { ':r': { S: recordType } },
    }),
  );
}

/** The files table as provisioned before GET /files: keys only, no index. */
/** dynalite answers CreateTable before the table takes writes (CREATING): waited for, as on AWS. */
async function tableActive(dynamo: DynamoDBClient, table: string): Promise<void> {
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 30, minDelay: 0.02, maxDelay: 0.5 }, { TableName: table });
}

async function createLegacyFilesTable(dynamo: DynamoDBClient, table: string): Promise<void> {
  await dynamo.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'dataset_date', AttributeType: 'S' },
        { AttributeName: 'side', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'dataset_date', KeyType: 'HASH' },
        { AttributeName: 'side', KeyType: 'RANGE' },
      ],
    }),
  );
  await tableActive(dynamo, table);
}

describe('local provisioning over an older .tally/', () => {
  it('rebuilds the runs table with by_requested, keeping its runs and listing them there', async () => {
    await withDynalite(async (dynamo) => {
      const names = resourceNames('upgrade');
      // The runs table as provisioned before the dashboard: by_dataset_date only.
      await dynamo.send(
        new CreateTableCommand({
          TableName: names.tables.runs,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: 'run_id', AttributeType: 'S' },
            { AttributeName: 'dataset_date', AttributeType: 'S' },
            { AttributeName: 'requested_at', AttributeType: 'S' },
          ],
          KeySchema: [{ AttributeName: 'run_id', KeyType: 'HASH' }],
          GlobalSecondaryIndexes: [
            {
              IndexName: 'by_dataset_date',
              KeySchema: [
                { AttributeName: 'dataset_date', KeyType: 'HASH' },
                { AttributeName: 'requested_at', KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'ALL' },
            },
          ],
        }),
      );
      await tableActive(dynamo, names.tables.runs);
      await dynamo.send(
        new PutItemCommand({
          TableName: names.tables.runs,
          Item: {
            run_id: { S: 'run-old' },
            dataset_date: { S: 'trades#2025-12-10' },
            requested_at: { S: '2025-12-10T08:00:00Z' },
          },
        }),
      );

      await createTables(dynamo, names);
      await createTables(dynamo, names); // and again: nothing more to do

      const table = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.runs }));
      expect(table.Table?.GlobalSecondaryIndexes?.map((g) => g.IndexName).sort()).toEqual([
        'by_dataset_date',
        'by_requested',
      ]);
      const listed = await byRecordType(dynamo, names.tables.runs, 'by_requested', 'RUN');
      expect(listed.Items?.map((i) => i.run_id?.S)).toEqual(['run-old']);
    });
  });

  it('rebuilds the files table with its listing indexes, keeping its records and listing them by ingest time', async () => {
    await withDynalite(async (dynamo) => {
      const names = resourceNames('upgrade-files');
      await createLegacyFilesTable(dynamo, names.tables.files);
      await dynamo.send(
        new PutItemCommand({
          TableName: names.tables.files,
          Item: {
            dataset_date: { S: 'trades#2025-12-10' },
            side: { S: 'source' },
            dataset: { S: 'trades' },
            business_date: { S: '2025-12-10' },
            status: { S: 'REJECTED' },
            ingested_at: { S: '2025-12-10T08:00:00Z' },
          },
        }),
      );

      await createTables(dynamo, names);
      await createTables(dynamo, names);

      const table = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.files }));
      expect(table.Table?.GlobalSecondaryIndexes?.map((g) => g.IndexName).sort()).toEqual([
        'by_business_date',
        'by_dataset',
        'by_ingested',
      ]);
      const listed = await byRecordType(dynamo, names.tables.files, 'by_ingested', 'FILE');
      expect(listed.Items?.map((i) => i.dataset_date?.S)).toEqual(['trades#2025-12-10']);
    });
  });

  it('rebuilds the exceptions table with its sharded indexes, giving old items their keys', async () => {
    await withDynalite(async (dynamo) => {
      const names = resourceNames('upgrade-exceptions');
      // The exceptions table as provisioned before sharding: one partition per status, run, ...
      const old = ['status', 'exception_type', 'run_id', 'dataset_date', 'severity', 'record_type'];
      await dynamo.send(
        new CreateTableCommand({
          TableName: names.tables.exceptions,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: ['exception_id', 'created_at', ...old].map((a) => ({
            AttributeName: a,
            AttributeType: 'S',
          })),
          KeySchema: [{ AttributeName: 'exception_id', KeyType: 'HASH' }],
          GlobalSecondaryIndexes: old.map((a) => ({
            IndexName: `by_${a}`,
            KeySchema: [
              { AttributeName: a, KeyType: 'HASH' },
              { AttributeName: 'created_at', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          })),
        }),
      );
      await tableActive(dynamo, names.tables.exceptions);
      const item = {
        exception_id: '0123456789abcdef0123456789abcdef',
        run_id: 'run-old',
        dataset: 'trades',
        business_date: '2025-12-10',
        dataset_date: 'trades#2025-12-10',
        exception_type: 'AMOUNT_MISMATCH',
        status: 'ACKNOWLEDGED',
        severity: 'HIGH',
        record_type: 'EXCEPTION',
        created_at: '2025-12-10T08:00:00.000Z',
      };
      await dynamo.send(
        new PutItemCommand({
          TableName: names.tables.exceptions,
          Item: {
            ...Object.fromEntries(Object.entries(item).map(([k, v]) => [k, { S: v }])),
            version: { N: '3' },
          },
        }),
      );

      await createTables(dynamo, names);
      await createTables(dynamo, names);

      const table = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.exceptions }));
      expect(table.Table?.GlobalSecondaryIndexes?.map((g) => g.IndexName).sort()).toEqual(
        Object.keys(TABLES.exceptions.indexes).sort(),
      );
      const doc = DynamoDBDocumentClient.from(dynamo);
      const queries = new DynamoExceptionQueries(doc, names.tables.exceptions);
      for (const filters of [{}, { status: 'ACKNOWLEDGED' }, { severity: 'HIGH' }, { run_id: 'run-old' }] as const) {
        const page = await queries.queryExceptions({ ...planQuery(filters), limit: 10 });
        expect(
          page.items.map((i) => i.exception_id),
          JSON.stringify(filters),
        ).toEqual([item.exception_id]);
      }
      expect(
        await new DynamoExceptionStore(doc, names.tables.exceptions).listStatesForDate('trades', '2025-12-10'),
      ).toEqual([expect.objectContaining({ exception_id: item.exception_id, status: 'ACKNOWLEDGED', version: 3 })]);
    });
  });

  it('recreates the exceptions indexes that projected whole items, stamping triaged items so triage does not redo them', async () => {
    await withDynalite(async (dynamo) => {
      const names = resourceNames('upgrade-projection');
      // The sharded indexes as provisioned before they projected only what listings filter on
      // (and before the deadline sweep's by due date, which the upgrade adds too).
      const indexes = Object.entries(TABLES.exceptions.indexes).filter(([, i]) => i.sortKey.name === 'gsi_sort');
      await dynamo.send(
        new CreateTableCommand({
          TableName: names.tables.exceptions,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: ['exception_id', 'gsi_sort', ...indexes.map(([, i]) => i.partitionKey.name)].map(
            (a) => ({ AttributeName: a, AttributeType: 'S' }),
          ),
          KeySchema: [{ AttributeName: 'exception_id', KeyType: 'HASH' }],
          GlobalSecondaryIndexes: indexes.map(([name, i]) => ({
            IndexName: name,
            KeySchema: [
              { AttributeName: i.partitionKey.name, KeyType: 'HASH' },
              { AttributeName: 'gsi_sort', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          })),
        }),
      );
      await tableActive(dynamo, names.tables.exceptions);
      const doc = DynamoDBDocumentClient.from(dynamo);
      const base = {
        run_id: 'run-old',
        dataset: 'trades',
        business_date: '2025-12-10',
        exception_type: 'AMOUNT_MISMATCH',
        status: 'OPEN',
        created_at: '2025-12-10T08:00:00.000Z',
        record_type: 'EXCEPTION',
        dataset_date: 'trades#2025-12-10',
        version: 1,
      };
      const triaged = { ...base, exception_id: 'a'.repeat(32), content_hash: 'h1' };
      const untriaged = { ...base, exception_id: 'b'.repeat(32), content_hash: 'h2' };
      // Triaged before the corpus held anything to cite.
      const uncited = { ...base, exception_id: 'c'.repeat(32), content_hash: 'h3' };
      // Triaged by the rules because the models failed.
      const degraded = { ...base, exception_id: 'd'.repeat(32), content_hash: 'h4' };
      await doc.send(
        new PutCommand({
          TableName: names.tables.exceptions,
          Item: {
            ...degraded,
            ...exceptionIndexKeys(degraded),
            triage: {
              severity: 'MEDIUM',
              content_hash: 'h4',
              prompt_version: 'p1',
              summary: 's',
              degraded: true,
              policy_citations: [{ document: 'd.md', section: 's', passage_id: 'p', passage: 'text' }],
            },
          },
        }),
      );
      await doc.send(
        new PutCommand({
          TableName: names.tables.exceptions,
          Item: {
            ...triaged,
            ...exceptionIndexKeys({ ...triaged, severity: 'HIGH' }),
            severity: 'HIGH',
            triage: { severity: 'HIGH', content_hash: 'h1', prompt_version: 'p1', summary: 's' },
          },
        }),
      );
      await doc.send(
        new PutCommand({
          TableName: names.tables.exceptions,
          Item: { ...untriaged, ...exceptionIndexKeys(untriaged) },
        }),
      );
      await doc.send(
        new PutCommand({
          TableName: names.tables.exceptions,
          Item: {
            ...uncited,
            ...exceptionIndexKeys(uncited),
            triage: {
              severity: 'MEDIUM',
              content_hash: 'h3',
              prompt_version: 'p1',
              summary: 's',
              policy_citations: [],
            },
          },
        }),
      );

      await createTables(dynamo, names);

      const table = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.exceptions }));
      for (const gsi of table.Table?.GlobalSecondaryIndexes ?? [])
        expect(gsi.Projection?.ProjectionType, gsi.IndexName).toBe(
          indexProjection(TABLES.exceptions.indexes[gsi.IndexName as keyof typeof TABLES.exceptions.indexes]).type,
        );
      // (Whole items only in the owner queues, whose keys these items lack, and the uncited triages.)
      expect(
        table.Table?.GlobalSecondaryIndexes?.filter((g) => g.Projection?.ProjectionType === 'ALL')
          .map((g) => g.IndexName)
          .sort(),
      ).toEqual(['by_assignee_sharded', 'by_team_sharded', 'by_uncited_sharded']);
      // The uncited triage is stamped into by_uncited_sharded: the next policy document asks it again.
      const asked = await new DynamoUncitedListing(doc, names.tables.exceptions).uncited({ limit: 10 });
      expect(asked.items.map((i) => i.exception_id)).toEqual([uncited.exception_id]);
      // The degraded one, into the other partition: a model answering again asks it.
      const recovered = await new DynamoUncitedListing(doc, names.tables.exceptions).uncited({
        limit: 10,
        degraded: true,
      });
      expect(recovered.items.map((i) => i.exception_id)).toEqual([degraded.exception_id]);
      const listing = new DynamoRunExceptionListing(doc, names.tables.exceptions);
      const needing = async (prompt: string) =>
        (await listing.needingTriage('run-old', { limit: 10, currentPrompts: [prompt] })).items
          .map((i) => i.exception_id)
          .sort();
      expect(await needing('p1')).toEqual([untriaged.exception_id]);
      // A prompt no longer current: the triaged ones need triage again too.
      expect(await needing('p2')).toEqual([
        triaged.exception_id,
        untriaged.exception_id,
        uncited.exception_id,
        degraded.exception_id,
      ]);
      const page = await new DynamoExceptionQueries(doc, names.tables.exceptions).queryExceptions({
        ...planQuery({ severity: 'HIGH' }),
        limit: 10,
      });
      // Whole items, though the index does not carry the triage.
      expect(page.items).toEqual([
        expect.objectContaining({ exception_id: triaged.exception_id, triage: expect.anything() }),
      ]);
    });
  });

  describe('a rebuild cut short', () => {
    /** The files table as provisioned before GET /files (no index), holding `n` records of every kind of value. */
    async function legacyFiles(
      dynamo: DynamoDBClient,
      table: string,
      n: number,
    ): Promise<Record<string, AttributeValue>[]> {
      await createLegacyFilesTable(dynamo, table);
      const items = Array.from({ length: n }, (_, i) => ({
        dataset_date: { S: `trades#2025-12-${String(1 + (i % 28)).padStart(2, '0')}-${i}` },
        side: { S: 'source' },
        ingested_at: { S: `2025-12-10T08:00:${String(i % 60).padStart(2, '0')}Z` },
        rows: { N: String(i) },
        // Binary values, nested maps and lists come back as they went out.
        digest: { B: new Uint8Array([i % 256, 0, 255, 7]) },
        detail: {
          M: { lines: { L: [{ N: '2' }, { S: 'x' }, { BOOL: true }, { NULL: true }] }, tags: { SS: ['a', 'b'] } },
        },
      }));
      for (let i = 0; i < items.length; i += 25)
        await dynamo.send(
          new BatchWriteItemCommand({
            RequestItems: { [table]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
          }),
        );
      return items;
    }

    /** The client, but the `failOn`-th command of a kind throws, as a start killed at that moment stops. */
    function failing(dynamo: DynamoDBClient, kind: typeof ScanCommand | typeof BatchWriteItemCommand, failOn: number) {
      let seen = 0;
      return new Proxy(dynamo, {
        get(target, property, receiver) {
          if (property !== 'send') return Reflect.get(target, property, receiver) as unknown;
          return async (command: unknown) => {
            if (command instanceof kind && ++seen === failOn) throw new Error('killed');
            return target.send(command as Parameters<DynamoDBClient['send']>[0]);
          };
        },
      });
    }

    /** A dynalite and a data directory for one test, both gone afterwards. */
    async function withDataDir(run: (dynamo: DynamoDBClient, dir: string) => Promise<void>): Promise<void> {
      const dir = mkdtempSync(join(tmpdir(), 'tally-rebuild-test-'));
      try {
        await withDynalite((dynamo) => run(dynamo, dir));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    const byKey = (a: Record<string, AttributeValue>, b: Record<string, AttributeValue>) =>
      String(a.dataset_date?.S).localeCompare(String(b.dataset_date?.S));

    async function everyItem(dynamo: DynamoDBClient, table: string) {
      const out = await dynamo.send(new ScanCommand({ TableName: table }));
      const items = out.Items ?? [];
      return items
        .map((item) => {
          const { record_type: _, ...rest } = item;
          return rest;
        })
        .sort(byKey);
    }

    it('while putting the items back: the next start finishes it from the copy in the data directory', async () => {
      await withDataDir(async (dynamo, dir) => {
        const names = resourceNames('upgrade-cut-restore');
        const items = await legacyFiles(dynamo, names.tables.files, 120);

        // Dies on the third batch put back: the table is recreated and holds 50 of the 120.
        await expect(
          createTables(failing(dynamo, BatchWriteItemCommand, 3), names, { rebuildDir: dir }),
        ).rejects.toThrow('killed');
        expect((await everyItem(dynamo, names.tables.files)).length).toBe(50);
        expect(readdirSync(dir)).toEqual([`rebuild-${names.tables.files}.jsonl`]);

        const lines: string[] = [];
        await createTables(dynamo, names, { rebuildDir: dir, onProgress: (line) => lines.push(line) });

        expect(await everyItem(dynamo, names.tables.files)).toEqual([...items].sort(byKey));
        const got = await dynamo.send(
          new GetItemCommand({
            TableName: names.tables.files,
            Key: { dataset_date: { S: String(items[5]?.dataset_date?.S) }, side: { S: 'source' } },
          }),
        );
        expect(got.Item?.digest?.B).toEqual(new Uint8Array([5, 0, 255, 7]));
        // ... with its new indexes, and the copy gone.
        const listed = await byRecordType(dynamo, names.tables.files, 'by_ingested', 'FILE');
        expect(listed.Count).toBe(120);
        expect(existsSync(dir)).toBe(false);
        expect(lines.at(-1)).toBe(`Rebuilt table ${names.tables.files}: 120 items.`);
      });
    });

    it('while copying the items out: the table is untouched, and the next start rebuilds it', async () => {
      await withDataDir(async (dynamo, dir) => {
        const names = resourceNames('upgrade-cut-copy');
        const items = await legacyFiles(dynamo, names.tables.files, 30);

        // Scan pages hold at most 1 MB: here one page; the failure is on reading it.
        await expect(createTables(failing(dynamo, ScanCommand, 1), names, { rebuildDir: dir })).rejects.toThrow(
          'killed',
        );
        expect(existsSync(join(dir, `rebuild-${names.tables.files}.jsonl`))).toBe(false);
        const before = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.files }));
        expect(before.Table?.GlobalSecondaryIndexes).toBeUndefined();
        expect((await everyItem(dynamo, names.tables.files)).length).toBe(30);

        await createTables(dynamo, names, { rebuildDir: dir });

        const after = await dynamo.send(new DescribeTableCommand({ TableName: names.tables.files }));
        expect(after.Table?.GlobalSecondaryIndexes?.length).toBe(Object.keys(TABLES.files.indexes).length);
        expect(await everyItem(dynamo, names.tables.files)).toEqual([...items].sort(byKey));
        expect(existsSync(dir)).toBe(false);
      });
    });
  });
});

/** The AWS backfill of the exceptions' sharded GSI keys (scripts/tools/backfill-exception-keys.ts), on dynalite. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { planQuery } from '../../functions/query-api/listing.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { TRIAGE_STAMP } from '../../functions/shared/resources.ts';
import { DynamoExceptionQueries, DynamoTriageStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import {
  DynamoRunExceptionListing,
  DynamoUncitedListing,
} from '../../functions/shared/tables/run-exceptions-dynamo.ts';
import type { Triage } from '../../functions/shared/types.ts';
import { exceptionIndexKeys, EXCEPTION_INDEX_ATTRIBUTES } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { backfillExceptionKeys } from '../../scripts/tools/backfill-exception-keys.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

let dynamo: TestDynamo;
beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

const base = (id: string, extra: Record<string, unknown> = {}) => ({
  exception_id: id,
  run_id: 'run-1',
  dataset: 'trades',
  business_date: '2025-12-10',
  dataset_date: 'trades#2025-12-10',
  record_type: 'EXCEPTION',
  exception_type: 'AMOUNT_MISMATCH',
  status: 'OPEN',
  created_at: '2025-12-10T08:00:00.000Z',
  version: 1,
  history: [{ at: '2025-12-10T08:00:00.000Z', by: 'system:recon', action: 'CREATED' }],
  ...extra,
});

/** One item of each kind a table from before sharding, or changed by the old version since, holds. */
async function seed(table: string) {
  const current = base('e-current', { severity: 'LOW' });
  const items = [
    // Written before sharding (and assigned before the owner queues): no index keys at all.
    base('e-legacy', { assignee: 'ana', team: 'ops' }),
    // Keyed, then acknowledged and triaged by the old version: stale status key, no severity key.
    {
      ...base('e-stale'),
      ...exceptionIndexKeys(base('e-stale')),
      status: 'ACKNOWLEDGED',
      severity: 'HIGH',
    },
    // A severity key left behind with no severity.
    { ...base('e-orphan'), ...exceptionIndexKeys(base('e-orphan', { severity: 'LOW' })) },
    // From an old version that wrote neither record_type nor dataset_date.
    (({ record_type: _r, dataset_date: _d, ...rest }) => rest)(base('e-bare')),
    { ...current, ...exceptionIndexKeys(current) },
  ];
  for (const item of items) await dynamo.doc.send(new PutCommand({ TableName: table, Item: item }));
}

async function scan(table: string, doc: DynamoDBDocumentClient = dynamo.doc) {
  const out = await doc.send(new ScanCommand({ TableName: table }));
  return (out.Items ?? []).sort((a, b) => String(a.exception_id).localeCompare(String(b.exception_id)));
}

describe('backfilling the sharded index keys', () => {
  it('keys every item, writes nothing with --dry-run, and nothing the second time', async () => {
    const table = dynamo.names.tables.exceptions;
    await seed(table);
    const before = await scan(table);

    const dry = await backfillExceptionKeys(dynamo.doc, table, { dryRun: true, segments: 2 });
    expect(dry).toEqual({ scanned: 5, updated: 4, upToDate: 1, contended: 0 });
    expect(await scan(table)).toEqual(before);

    const progress: number[] = [];
    const first = await backfillExceptionKeys(dynamo.doc, table, {
      segments: 3,
      progressEvery: 2,
      onProgress: (p) => progress.push(p.scanned),
    });
    expect(first).toEqual({ scanned: 5, updated: 4, upToDate: 1, contended: 0 });
    expect(progress.at(-1)).toBe(5);

    const after = await scan(table);
    for (const item of after) {
      const keys = exceptionIndexKeys({ record_type: 'EXCEPTION', dataset_date: 'trades#2025-12-10', ...item });
      for (const attribute of EXCEPTION_INDEX_ATTRIBUTES) expect(item[attribute], attribute).toBe(keys[attribute]);
      // Nothing but keys changed.
      const old = before.find((b) => b.exception_id === item.exception_id) as Record<string, unknown>;
      for (const [attribute, value] of Object.entries(old))
        if (!EXCEPTION_INDEX_ATTRIBUTES.includes(attribute)) expect(item[attribute], attribute).toEqual(value);
    }
    expect(after.find((i) => i.exception_id === 'e-orphan')).not.toHaveProperty('gsi_severity');
    expect(after.find((i) => i.exception_id === 'e-bare')).toMatchObject({
      record_type: 'EXCEPTION',
      dataset_date: 'trades#2025-12-10',
    });

    // Every listing now finds them.
    const queries = new DynamoExceptionQueries(dynamo.doc, table);
    const listed = async (filters: Record<string, string>) =>
      (await queries.queryExceptions({ ...planQuery(filters), limit: 50 })).items.map((i) => i.exception_id).sort();
    expect(await listed({})).toEqual(['e-bare', 'e-current', 'e-legacy', 'e-orphan', 'e-stale']);
    expect(await listed({ status: 'ACKNOWLEDGED' })).toEqual(['e-stale']);
    expect(await listed({ severity: 'HIGH' })).toEqual(['e-stale']);
    expect(await listed({ dataset: 'trades', business_date: '2025-12-10' })).toHaveLength(5);
    expect(await listed({ assignee: 'ana' })).toEqual(['e-legacy']);
    expect(await listed({ team: 'ops', status: 'OPEN' })).toEqual(['e-legacy']);

    const second = await backfillExceptionKeys(dynamo.doc, table);
    expect(second).toEqual({ scanned: 5, updated: 0, upToDate: 5, contended: 0 });
    expect(await scan(table)).toEqual(after);
  });

  it('re-reads an item changed under it instead of writing keys for the old value', async () => {
    const own = await startTestDynamo();
    try {
      const table = own.names.tables.exceptions;
      await own.doc.send(new PutCommand({ TableName: table, Item: base('e-raced') }));
      let raced = false;
      // An analyst on the old version resolves it between the backfill's scan and its write.
      const racing = {
        send: async (command: unknown) => {
          if (command instanceof UpdateCommand && !raced) {
            raced = true;
            await own.doc.send(
              new UpdateCommand({
                TableName: table,
                Key: { exception_id: 'e-raced' },
                UpdateExpression: 'SET #s = :s',
                ExpressionAttributeNames: { '#s': 'status' },
                ExpressionAttributeValues: { ':s': 'RESOLVED' },
              }),
            );
          }
          return own.doc.send(command as UpdateCommand);
        },
      } as unknown as DynamoDBDocumentClient;

      const report = await backfillExceptionKeys(racing, table);

      expect(raced).toBe(true);
      expect(report).toEqual({ scanned: 1, updated: 1, upToDate: 0, contended: 0 });
      const [item] = await scan(table, own.doc);
      expect(item?.gsi_status).toBe(exceptionIndexKeys(item as Record<string, unknown>).gsi_status);
      expect(String(item?.gsi_status)).toMatch(/^RESOLVED#\d\d$/);
    } finally {
      await own.stop();
    }
  });

  it("stamps each triaged item with its triage's hash and prompt, so dispatch does not send it to a model again", async () => {
    const own = await startTestDynamo();
    try {
      const table = own.names.tables.exceptions;
      const triaged = base('e-triaged', { content_hash: 'h1', severity: 'LOW' });
      const racedItem = base('e-raced-triage', { content_hash: 'h2', severity: 'LOW' });
      const fresh = base('e-untriaged', { content_hash: 'h3' });
      // Triaged by the version before the stamp: the triage map only.
      for (const [item, hash] of [
        [triaged, 'h1'],
        [racedItem, 'old'],
      ] as const)
        await own.doc.send(
          new PutCommand({
            TableName: table,
            Item: { ...item, ...exceptionIndexKeys(item), triage: { content_hash: hash, prompt_version: 'p1' } },
          }),
        );
      await own.doc.send(new PutCommand({ TableName: table, Item: { ...fresh, ...exceptionIndexKeys(fresh) } }));
      let raced = false;
      // The new version triages one again (with its stamp) between the backfill's scan and its write.
      const racing = {
        send: async (command: unknown) => {
          if (command instanceof UpdateCommand && command.input.Key?.exception_id === 'e-raced-triage' && !raced) {
            raced = true;
            const triage = { content_hash: 'h2', prompt_version: 'p2' } as unknown as Triage;
            await new DynamoTriageStore(own.doc, table).saveTriage('e-raced-triage', triage, 'h2');
          }
          return own.doc.send(command as UpdateCommand);
        },
      } as unknown as DynamoDBDocumentClient;

      const report = await backfillExceptionKeys(racing, table, { segments: 1 });

      expect(raced).toBe(true);
      expect(report).toMatchObject({ scanned: 3, contended: 0 });
      const items = await scan(table, own.doc);
      // Cited (its triage names none here: from before citations were recorded) or not triaged:
      // out of by_uncited_sharded.
      for (const item of items) expect(item).not.toHaveProperty('gsi_uncited');
      expect(items.find((i) => i.exception_id === 'e-triaged')).toMatchObject({
        [TRIAGE_STAMP.contentHash]: 'h1',
        [TRIAGE_STAMP.promptVersion]: 'p1',
      });
      expect(items.find((i) => i.exception_id === 'e-raced-triage')).toMatchObject({
        [TRIAGE_STAMP.contentHash]: 'h2',
        [TRIAGE_STAMP.promptVersion]: 'p2',
      });
      expect(items.find((i) => i.exception_id === 'e-untriaged')).not.toHaveProperty(TRIAGE_STAMP.contentHash);
      const listing = new DynamoRunExceptionListing(own.doc, table);
      const needing = await listing.needingTriage('run-1', { limit: 10, currentPrompts: ['p1', 'p2'] });
      expect(needing.items.map((i) => i.exception_id)).toEqual(['e-untriaged']);
      expect(await backfillExceptionKeys(own.doc, table)).toEqual({
        scanned: 3,
        updated: 0,
        upToDate: 3,
        contended: 0,
      });
    } finally {
      await own.stop();
    }
  });

  it('stamps a triage citing no policy passage into by_uncited_sharded, and takes the stamp off once one cites', async () => {
    const own = await startTestDynamo();
    try {
      const table = own.names.tables.exceptions;
      const item = base('e-uncited', { content_hash: 'h1', severity: 'LOW' });
      const uncitedTriage = { content_hash: 'h1', prompt_version: 'p1', policy_citations: [] };
      await own.doc.send(
        new PutCommand({ TableName: table, Item: { ...item, ...exceptionIndexKeys(item), triage: uncitedTriage } }),
      );
      const listing = new DynamoUncitedListing(own.doc, table);
      const uncited = async () => (await listing.uncited({ limit: 10 })).items.map((i) => i.exception_id);
      expect(await uncited()).toEqual([]);

      expect(await backfillExceptionKeys(own.doc, table)).toMatchObject({ updated: 1 });

      expect(await uncited()).toEqual(['e-uncited']);
      const [stamped] = await scan(table, own.doc);
      expect(stamped).toMatchObject({
        [TRIAGE_STAMP.uncited]: 'UNCITED',
        gsi_uncited: expect.stringMatching(/^UNCITED#\d\d$/),
      });
      // Triaged again, citing a passage: triage's own write takes it out of the index.
      const cited = {
        ...uncitedTriage,
        policy_citations: [{ document: 'd.md', section: 's', passage_id: 'p', passage: 'text' }],
      } as unknown as Triage;
      expect(await new DynamoTriageStore(own.doc, table).saveTriage('e-uncited', cited, 'h1')).toBe(true);
      expect(await uncited()).toEqual([]);
      const [after] = await scan(table, own.doc);
      expect(after).not.toHaveProperty(TRIAGE_STAMP.uncited);
      expect(after).not.toHaveProperty('gsi_uncited');
      expect(await backfillExceptionKeys(own.doc, table)).toMatchObject({ updated: 0 });
    } finally {
      await own.stop();
    }
  });

  it('takes a closed exception out of by_uncited_sharded, keeping its stamp for a reopening', async () => {
    const own = await startTestDynamo();
    try {
      // Prepare: resolved by a version that kept every uncited exception in the index.
      const table = own.names.tables.exceptions;
      const item = base('e-closed', { content_hash: 'h1', severity: 'LOW', status: 'RESOLVED' });
      const triage = { content_hash: 'h1', prompt_version: 'p1', policy_citations: [] };
      const keyed = { ...exceptionIndexKeys({ ...item, status: 'OPEN', [TRIAGE_STAMP.uncited]: 'UNCITED' }) };
      await own.doc.send(
        new PutCommand({
          TableName: table,
          Item: { ...item, ...keyed, triage, [TRIAGE_STAMP.uncited]: 'UNCITED', [TRIAGE_STAMP.contentHash]: 'h1' },
        }),
      );
      expect((await scan(table, own.doc))[0]).toHaveProperty('gsi_uncited');

      // Act
      const report = await backfillExceptionKeys(own.doc, table);

      // Assess
      expect(report).toMatchObject({ updated: 1 });
      const [after] = await scan(table, own.doc);
      expect(after).not.toHaveProperty('gsi_uncited');
      expect(after).toMatchObject({
        [TRIAGE_STAMP.uncited]: 'UNCITED',
        gsi_status: expect.stringMatching(/^RESOLVED#/),
      });
      expect(await backfillExceptionKeys(own.doc, table)).toMatchObject({ updated: 0 });
    } finally {
      await own.stop();
    }
  });

  it('stamps a triage failing models left to the rules into the degraded partition, not one a spent budget gave', async () => {
    const own = await startTestDynamo();
    try {
      const table = own.names.tables.exceptions;
      const citation = { document: 'd.md', section: 's', passage_id: 'p', passage: 'text' };
      const degraded = { content_hash: 'h1', prompt_version: 'p1', policy_citations: [citation], degraded: true };
      for (const [id, triage] of [
        ['e-degraded', degraded],
        ['e-budget', { ...degraded, degraded_reason: 'budget' }],
      ] as const) {
        const item = base(id, { content_hash: 'h1', severity: 'LOW' });
        await own.doc.send(
          new PutCommand({ TableName: table, Item: { ...item, ...exceptionIndexKeys(item), triage } }),
        );
      }
      const listing = new DynamoUncitedListing(own.doc, table);

      expect(await backfillExceptionKeys(own.doc, table)).toMatchObject({ updated: 2 });

      expect((await listing.uncited({ limit: 10, degraded: true })).items.map((i) => i.exception_id)).toEqual([
        'e-degraded',
      ]);
      expect((await listing.uncited({ limit: 10 })).items).toEqual([]);
      const stamped = await scan(table, own.doc);
      expect(stamped.find((i) => i.exception_id === 'e-degraded')).toMatchObject({
        [TRIAGE_STAMP.uncited]: 'DEGRADED',
        gsi_uncited: expect.stringMatching(/^DEGRADED#\d\d$/),
      });
    } finally {
      await own.stop();
    }
  });

  it('runs from the command line with --dry-run, reporting what it would write', async () => {
    const own = await startTestDynamo();
    try {
      await own.doc.send(new PutCommand({ TableName: own.names.tables.exceptions, Item: base('e-cli') }));

      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          join(REPO_ROOT, 'scripts/tools/backfill-exception-keys.ts'),
          '--table',
          own.names.tables.exceptions,
          '--region',
          'us-east-1',
          '--endpoint',
          String(process.env.AWS_ENDPOINT_URL_DYNAMODB),
          '--dry-run',
        ],
        { env: process.env },
      );

      expect(JSON.parse(stdout)).toEqual({
        table: own.names.tables.exceptions,
        dry_run: true,
        scanned: 1,
        updated: 1,
        upToDate: 0,
        contended: 0,
      });
      expect((await scan(own.names.tables.exceptions, own.doc))[0]).not.toHaveProperty('gsi_status');
    } finally {
      await own.stop();
    }
  });
});

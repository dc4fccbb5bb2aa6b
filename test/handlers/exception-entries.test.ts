/**
 * The exceptions table's index entries on dynalite: a read that asks for some attributes gets
 * those and the keys (which place an entry and resume a read), with the filters still applied to
 * everything the index carries; a read that asks for none gets all the index carries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExceptions } from '../../functions/query-api/listing.ts';
import { API_EXCEPTION_ATTRIBUTES, toApiException } from '../../functions/query-api/records.ts';
import { queryIndexPage } from '../../functions/shared/tables/index-query-dynamo.ts';
import {
  putExceptions,
  queryStoreOf,
  recordingWholeReads,
  startTestDynamo,
  type TestDynamo,
} from '../support/dynamo.ts';

let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const items = Array.from({ length: 6 }, (_, i) => ({
    exception_id: i.toString(16).padStart(32, '0'),
    run_id: 'run-1',
    dataset: i % 2 === 0 ? 'trades' : 'payments',
    business_date: '2025-12-10',
    exception_type: 'AMOUNT_MISMATCH',
    severity: 'HIGH',
    status: 'OPEN',
    due_at: `2025-12-1${i}T00:00:00.000Z`,
    source: { trade_id: `T${i}`, amount: '10.00' },
    target: { trade_id: `T${i}`, amount: '10.50' },
    triage: { summary: 'not in any index' },
    embedding: 'sparse:AAQAAAAAAA==',
    embedding_model: 'hashing-bow-1024',
    record_type: 'EXCEPTION',
    created_at: new Date(Date.UTC(2025, 11, 10, 8) + i).toISOString(),
    version: 1,
  }));
  await putExceptions(dynamo, items);
}, 120_000);
afterAll(async () => {
  await dynamo.stop();
});

const query = {
  index: 'by_created_sharded',
  partition: { attribute: 'record_type', value: 'EXCEPTION' },
  filters: [{ attribute: 'dataset', value: 'trades' }],
  limit: 50,
} as const;

describe('exception index entries', () => {
  it('carry only the keys and the attributes asked for, filtered on what the index carries', async () => {
    const page = await queryStoreOf(dynamo).queryExceptionEntries({ ...query, attributes: ['due_at'] });

    expect(page.items).toHaveLength(3);
    for (const entry of page.items) {
      expect(Object.keys(entry).sort()).toEqual(['due_at', 'exception_id', 'gsi_created', 'gsi_sort']);
    }
  });

  it('are never asked for what the index does not project (DynamoDB refuses it; so does the local one)', async () => {
    const table = dynamo.names.tables.exceptions;
    const shard = { ...query, partition: { attribute: 'gsi_created', value: 'EXCEPTION#00' }, filters: [] };
    await expect(queryIndexPage(dynamo.doc, table, { ...shard, attributes: ['triage'] })).rejects.toThrow(
      'Global secondary index by_created_sharded does not project [triage]',
    );
    // by_severity_sharded's partition fixes severity, so its entries do not carry it: not asked of
    // DynamoDB, filled in from the query.
    const page = await queryStoreOf(dynamo).queryExceptionEntries({
      index: 'by_severity_sharded',
      partition: { attribute: 'severity', value: 'HIGH' },
      filters: [],
      limit: 50,
      attributes: ['severity', 'exception_type'],
    });
    expect(page.items).toHaveLength(6);
    expect(Object.keys(page.items[0] ?? {}).sort()).toEqual([
      'exception_id',
      'exception_type',
      'gsi_severity',
      'gsi_sort',
      'severity',
    ]);
    expect(page.items.every((entry) => entry.severity === 'HIGH')).toBe(true);
  });

  it('carry what the index projects when no attributes are asked for, and whole items are read by key', async () => {
    const store = queryStoreOf(dynamo);
    const page = await store.queryExceptionEntries(query);

    expect(page.items).toHaveLength(3);
    expect(page.items[0]).toMatchObject({ dataset: 'trades', source: { trade_id: expect.any(String) } });
    expect(page.items[0]).not.toHaveProperty('triage');
    const whole = await store.wholeExceptions(page.items);
    expect(whole.map((w) => w.exception_id)).toEqual(page.items.map((e) => e.exception_id));
    expect(whole[0]).toMatchObject({ triage: { summary: 'not in any index' } });
  });

  it('are read whole as a listing shows them: the same answer, without the stored embedding or bookkeeping', async () => {
    const store = queryStoreOf(dynamo);
    const page = await store.queryExceptionEntries(query);
    const whole = await store.wholeExceptions(page.items);
    const shown = await store.wholeExceptions(page.items, API_EXCEPTION_ATTRIBUTES);

    expect(whole[0]).toHaveProperty('embedding');
    for (const item of shown) {
      expect(Object.keys(item).every((a) => API_EXCEPTION_ATTRIBUTES.includes(a))).toBe(true);
      expect(item).not.toHaveProperty('embedding');
      expect(item).not.toHaveProperty('record_type');
    }
    const now = Date.parse('2025-12-12T00:00:00.000Z');
    expect(shown.map((item) => toApiException(item, now))).toEqual(whole.map((item) => toApiException(item, now)));
    // The listing asks for that projection.
    const recorded = recordingWholeReads(dynamo);
    const listed = await listExceptions(
      { filters: { dataset: 'trades' }, limit: 50 },
      { store: recorded.store, paginationSecret: 'entries-test', now: () => now },
    );
    expect(recorded.reads.map((read) => read.attributes)).toEqual([API_EXCEPTION_ATTRIBUTES]);
    expect(listed.items).toEqual(whole.map((item) => toApiException(item, now)));
  });
});

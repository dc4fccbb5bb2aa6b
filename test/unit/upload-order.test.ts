/** Which of two uploads of one side is the later: sequencers within one bucket only (issue 15). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLaterUpload } from '../../functions/shared/keys.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import type { FileRecord } from '../../functions/shared/tables/files.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

const primary = 'tally-data-us-east-1';
const secondary = 'tally-data-us-west-2';
const key = 'incoming/trades/2025-12-10/source.csv';
const jsonlKey = 'incoming/trades/2025-12-10/source.jsonl';

describe('isLaterUpload', () => {
  it('orders uploads to one bucket by sequencer, whatever their times', () => {
    const earlier = { bucket: primary, key, sequencer: '0A', uploaded_at: '2025-12-10T09:00:00.000Z' };
    const later = { bucket: primary, key, sequencer: '0B', uploaded_at: '2025-12-10T08:00:00.000Z' };

    expect(isLaterUpload(later, earlier)).toBe(true);
    expect(isLaterUpload(earlier, later)).toBe(false);
  });

  it('never compares sequencers across buckets: the event time decides', () => {
    const inPrimary = { bucket: primary, key, sequencer: 'FFFFFFFF', uploaded_at: '2025-12-10T08:00:00.000Z' };
    const inSecondary = { bucket: secondary, key, sequencer: '01', uploaded_at: '2025-12-10T09:00:00.000Z' };

    expect(isLaterUpload(inSecondary, inPrimary)).toBe(true);
    expect(isLaterUpload(inPrimary, inSecondary)).toBe(false);
    expect(isLaterUpload({ bucket: secondary, key, sequencer: '01' }, inPrimary)).toBe(true);
  });

  it('never compares sequencers of two keys of one side (source.csv, then source.jsonl): the event time decides', () => {
    const csv = { bucket: primary, key, sequencer: 'FFFFFFFF', uploaded_at: '2025-12-10T08:00:00.000Z' };
    const jsonl = { bucket: primary, key: jsonlKey, sequencer: '01', uploaded_at: '2025-12-10T09:00:00.000Z' };

    expect(isLaterUpload(jsonl, csv)).toBe(true);
    expect(isLaterUpload(csv, jsonl)).toBe(false);
  });
});

describe('files table: the current upload across the two regions buckets', () => {
  let dynamo: TestDynamo;
  beforeAll(async () => {
    dynamo = await startTestDynamo();
  });
  afterAll(async () => {
    await dynamo.stop();
  });

  const file = (bucket: string, sequencer: string, uploadedAt: string, etag: string, objectKey = key): FileRecord => ({
    bucket,
    key: objectKey,
    etag,
    dataset: 'trades',
    business_date: '2025-12-10',
    side: 'source',
    sequencer,
    size: 10,
    rows: 1,
    status: 'ACCEPTED',
    uploaded_at: uploadedAt,
    ingested_at: uploadedAt,
    generation: 1,
  });

  it('a later upload in the secondary wins over a greater sequencer of the primary, and not the reverse', async () => {
    const store = new DynamoFileStore(dynamo.doc, dynamo.names.tables.files);

    expect(await store.putIfNewer(file(primary, 'FFFFFFFFFFFF', '2025-12-10T08:00:00.000Z', 'p1'))).toBe(true);
    expect(await store.putIfNewer(file(secondary, '0000000001', '2025-12-10T09:00:00.000Z', 's1'))).toBe(true);
    // An older primary event delivered late (after failback) does not replace it.
    expect(await store.putIfNewer(file(primary, 'FFFFFFFFFFFF', '2025-12-10T08:00:00.000Z', 'p1'))).toBe(false);
    // Within the secondary's bucket, the sequencer still decides.
    expect(await store.putIfNewer(file(secondary, '0000000000', '2025-12-10T10:00:00.000Z', 's0'))).toBe(false);
    expect((await store.get('trades', '2025-12-10', 'source'))?.etag).toBe('s1');
  });

  it('a later upload of the side under another key wins by time whatever its sequencer; an earlier one is stale', async () => {
    const store = new DynamoFileStore(dynamo.doc, dynamo.names.tables.files);
    const date = (f: FileRecord): FileRecord => ({ ...f, business_date: '2025-12-11' });

    expect(await store.putIfNewer(date(file(primary, 'FFFFFFFFFFFF', '2025-12-10T08:00:00.000Z', 'c1')))).toBe(true);
    expect(await store.putIfNewer(date(file(primary, '0000000001', '2025-12-10T09:00:00.000Z', 'j1', jsonlKey)))).toBe(
      true,
    );
    // The csv's event again (a redelivery, or a sweep's): earlier, so stale, greater sequencer or not.
    expect(await store.putIfNewer(date(file(primary, 'FFFFFFFFFFFF', '2025-12-10T08:00:00.000Z', 'c1')))).toBe(false);
    // Within one key, the sequencer still decides.
    expect(await store.putIfNewer(date(file(primary, '0000000000', '2025-12-10T10:00:00.000Z', 'j0', jsonlKey)))).toBe(
      false,
    );
    expect((await store.get('trades', '2025-12-11', 'source'))?.etag).toBe('j1');
  });
});

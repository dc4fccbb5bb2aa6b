/** Which of two uploads of one side is the later: sequencers within one bucket only (issue 15). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLaterUpload } from '../../functions/shared/keys.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import type { FileRecord } from '../../functions/shared/tables/files.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

const primary = 'tally-data-us-east-1';
const secondary = 'tally-data-us-west-2';

describe('isLaterUpload', () => {
  it('orders uploads to one bucket by sequencer, whatever their times', () => {
    const earlier = { bucket: primary, sequencer: '0A', uploaded_at: '2025-12-10T09:00:00.000Z' };
    const later = { bucket: primary, sequencer: '0B', uploaded_at: '2025-12-10T08:00:00.000Z' };

    expect(isLaterUpload(later, earlier)).toBe(true);
    expect(isLaterUpload(earlier, later)).toBe(false);
  });

  it('never compares sequencers across buckets: the event time decides', () => {
    const inPrimary = { bucket: primary, sequencer: 'FFFFFFFF', uploaded_at: '2025-12-10T08:00:00.000Z' };
    const inSecondary = { bucket: secondary, sequencer: '01', uploaded_at: '2025-12-10T09:00:00.000Z' };

    expect(isLaterUpload(inSecondary, inPrimary)).toBe(true);
    expect(isLaterUpload(inPrimary, inSecondary)).toBe(false);
    expect(isLaterUpload({ bucket: secondary, sequencer: '01' }, inPrimary)).toBe(true);
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

  const file = (bucket: string, sequencer: string, uploadedAt: string, etag: string): FileRecord => ({
    bucket,
    key: 'incoming/trades/2025-12-10/source.csv',
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
});

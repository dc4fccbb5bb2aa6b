import { describe, expect, it, vi } from 'vitest';
import { nextSequencerAfter, sweepIncoming, type StoredObject, type SweepDeps } from '../../functions/sweep/sweep.ts';
import type { FileRecord } from '../../functions/shared/tables/files.ts';
import type { ObjectCreatedMessage } from '../../functions/shared/object-created.ts';
import { compareSequencers } from '../../functions/shared/keys.ts';

const NOW = Date.parse('2025-12-10T12:00:00Z');
const MINUTE = 60_000;
const old = new Date(NOW - 10 * MINUTE);

function record(side: 'source' | 'target', etag: string, sequencer = '0193A1B2C3D40001'): FileRecord {
  return {
    bucket: 'tally-data',
    key: `incoming/trades/2025-12-10/${side}.csv`,
    etag,
    dataset: 'trades',
    business_date: '2025-12-10',
    side,
    sequencer,
    size: 10,
    rows: 1,
    status: 'ACCEPTED',
    ingested_at: old.toISOString(),
    generation: 1,
  };
}

function deps(objects: StoredObject[], records: FileRecord[] = []) {
  const sent: ObjectCreatedMessage[][] = [];
  const d: SweepDeps = {
    listObjects: async function* (prefix) {
      for (const o of objects) if (o.key.startsWith(prefix)) yield o;
    },
    files: {
      get: async (dataset, date, side) =>
        records.find((r) => r.dataset === dataset && r.business_date === date && r.side === side),
    },
    ingestQueue: { send: vi.fn(async (m: ObjectCreatedMessage[]) => void sent.push(m)) },
    bucket: 'tally-data',
    region: 'us-east-1',
    now: () => NOW,
    minAgeMs: 5 * MINUTE,
  };
  return { d, sent };
}

describe('sweepIncoming', () => {
  it('re-sends the event of an old upload that has no file record, as S3 would have sent it', async () => {
    const { d, sent } = deps([
      { key: 'incoming/trades/2025-12-10/source.csv', etag: '"abc"', size: 42, lastModified: old },
    ]);

    const result = await sweepIncoming(d);

    expect(result).toMatchObject({
      scanned: 1,
      resent: [{ key: 'incoming/trades/2025-12-10/source.csv', etag: 'abc' }],
    });
    expect(sent).toHaveLength(1);
    expect(sent[0]?.[0]).toMatchObject({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: {
        bucket: { name: 'tally-data' },
        object: { key: 'incoming/trades/2025-12-10/source.csv', etag: 'abc', size: 42 },
      },
    });
  });

  it('leaves alone uploads whose ETag is recorded, recent uploads, and keys that are not extracts', async () => {
    const { d, sent } = deps(
      [
        { key: 'incoming/trades/2025-12-10/source.csv', etag: '"abc"', size: 42, lastModified: old },
        { key: 'incoming/trades/2025-12-10/target.csv', etag: '"new"', size: 42, lastModified: new Date(NOW - MINUTE) },
        { key: 'incoming/readme.txt', etag: '"x"', size: 1, lastModified: old },
      ],
      [record('source', 'abc')],
    );

    const result = await sweepIncoming(d);

    expect(result).toEqual({ scanned: 3, resent: [], tooRecent: 1, notExtracts: 1, superseded: 0 });
    expect(sent).toEqual([]);
  });

  it('re-sends a newer upload than the one recorded with a sequencer just after the recorded one', async () => {
    const { d, sent } = deps(
      [{ key: 'incoming/trades/2025-12-10/target.csv', etag: 'v2', size: 42, lastModified: old }],
      [record('target', 'v1', '0193A1B2C3D4FFFF')],
    );

    await sweepIncoming(d);

    const sequencer = sent[0]?.[0]?.detail.object.sequencer as string;
    expect(sequencer).toBe('0193A1B2C3D50000');
    expect(compareSequencers(sequencer, '0193A1B2C3D4FFFF')).toBe(1);
  });

  it('leaves alone an earlier upload of the side under another key that a later upload replaced', async () => {
    // source.csv accepted, then source.jsonl uploaded (and rejected): both stay in the bucket.
    const csvWritten = new Date(NOW - 30 * MINUTE);
    const jsonl = {
      ...record('source', 'j1'),
      key: 'incoming/trades/2025-12-10/source.jsonl',
      status: 'REJECTED' as const,
      uploaded_at: new Date(NOW - 20 * MINUTE).toISOString(),
    };
    const { d, sent } = deps(
      [
        { key: 'incoming/trades/2025-12-10/source.csv', etag: '"c1"', size: 42, lastModified: csvWritten },
        { key: 'incoming/trades/2025-12-10/source.jsonl', etag: '"j1"', size: 42, lastModified: old },
      ],
      [jsonl],
    );

    const result = await sweepIncoming(d);

    expect(result).toMatchObject({ scanned: 2, resent: [], superseded: 1 });
    expect(sent).toEqual([]);
  });

  it('re-sends a later upload under another key than the recorded one, ordered by its time, not by sequencer', async () => {
    const csv = {
      ...record('source', 'c1', 'FFFFFFFFFFFFFFFF'),
      uploaded_at: new Date(NOW - 30 * MINUTE).toISOString(),
    };
    const { d, sent } = deps(
      [{ key: 'incoming/trades/2025-12-10/source.csv.gz', etag: '"g1"', size: 42, lastModified: old }],
      [csv],
    );

    const result = await sweepIncoming(d);

    expect(result).toMatchObject({ resent: [{ key: 'incoming/trades/2025-12-10/source.csv.gz', etag: 'g1' }] });
    expect(sent[0]?.[0]).toMatchObject({
      time: old.toISOString(),
      detail: { object: { sequencer: old.getTime().toString(16).toUpperCase().padStart(12, '0') + '0000' } },
    });
  });

  it('re-sends a newer version of the recorded key even when the record looks later by time (its upload ended after this one began)', async () => {
    const began = new Date(NOW - 10 * MINUTE);
    const recorded = { ...record('source', 'v1'), uploaded_at: new Date(NOW - 9 * MINUTE).toISOString() };
    const { d } = deps(
      [{ key: 'incoming/trades/2025-12-10/source.csv', etag: '"v2"', size: 42, lastModified: began }],
      [recorded],
    );

    const result = await sweepIncoming(d);

    expect(result).toMatchObject({
      resent: [{ key: 'incoming/trades/2025-12-10/source.csv', etag: 'v2' }],
      superseded: 0,
    });
  });

  it('counts sequencers up in hexadecimal, keeping their width', () => {
    expect(nextSequencerAfter('00FF')).toBe('0100');
    expect(nextSequencerAfter('0055AED6DCD90281E5')).toBe('0055AED6DCD90281E6');
  });
});

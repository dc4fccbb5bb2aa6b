import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  compareSequencers,
  DATASET_PATTERN,
  datasetDateKey,
  EXCEPTION_ID_PATTERN,
  exceptionId,
  idempotencyKey,
  datasetPolicyKey,
  parseDatasetPolicyKey,
  parsePolicyInForceKey,
  policyInForceKey,
  INCOMING_KEY_LAYOUT,
  incomingKey,
  isCalendarDate,
  parseIncomingKey,
  sequencerSortKey,
} from '../../functions/shared/keys.ts';
import { FORMATS } from '../../functions/shared/policy.ts';

const datasetName = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const format = fc.constantFrom(...FORMATS);
const calendarDate = fc
  .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2999-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));
const side = fc.constantFrom('source' as const, 'target' as const);
const hex = (max: number) => fc.stringMatching(new RegExp(`^[0-9A-Fa-f]{1,${max}}$`));

describe('dataset names and dates', () => {
  it.each(['trades', 'T-1_b', 'a'.repeat(64)])('accepts the dataset name %s', (name) => {
    expect(DATASET_PATTERN.test(name)).toBe(true);
  });

  it.each(['', 'a'.repeat(65), 'a/b', 'a b', '..', 'trädes'])('rejects the dataset name "%s"', (name) => {
    expect(DATASET_PATTERN.test(name)).toBe(false);
  });

  it.each(['2025-12-10', '2024-02-29', '2000-02-29'])('accepts the calendar date %s', (date) => {
    expect(isCalendarDate(date)).toBe(true);
  });

  it.each(['2025-02-30', '2025-13-45', '2023-02-29', '1900-02-29', '2025-00-10', '2025-1-10', '10/12/2025', ''])(
    'rejects %s, which is not a calendar date',
    (date) => {
      expect(isCalendarDate(date)).toBe(false);
    },
  );
});

describe('partition values and ids', () => {
  it('joins dataset and date with #', () => {
    expect(datasetDateKey('trades', '2025-12-10')).toBe('trades#2025-12-10');
  });

  it('keys an ingest on bucket, key and ETag', () => {
    expect(idempotencyKey({ bucket: 'b', key: 'incoming/t/2025-12-10/source.csv', etag: 'e1' })).toBe(
      's3://b/incoming/t/2025-12-10/source.csv#e1',
    );
  });

  it('gives an exception the same id for the same inputs and a different one for any other', () => {
    const id = exceptionId('trades', '2025-12-10', 'AMOUNT_MISMATCH', 'T1');

    expect(id).toMatch(EXCEPTION_ID_PATTERN);
    expect(exceptionId('trades', '2025-12-10', 'AMOUNT_MISMATCH', 'T1')).toBe(id);
    expect(exceptionId('trades', '2025-12-11', 'AMOUNT_MISMATCH', 'T1')).not.toBe(id);
    expect(exceptionId('trades', '2025-12-10', 'MISSING_IN_TARGET', 'T1')).not.toBe(id);
    expect(exceptionId('trades', '2025-12-10', 'AMOUNT_MISMATCH', 'T2')).not.toBe(id);
    // The separator keeps fields from running into each other.
    expect(exceptionId('trade', 's2025-12-10', 'AMOUNT_MISMATCH', 'T1')).not.toBe(id);
  });

  it('accepts only 32 lower-case hex digits as an exception id', () => {
    expect(EXCEPTION_ID_PATTERN.test('0123456789abcdef0123456789abcdef')).toBe(true);
    expect(EXCEPTION_ID_PATTERN.test('0123456789ABCDEF0123456789ABCDEF')).toBe(false);
    expect(EXCEPTION_ID_PATTERN.test('0123456789abcdef0123456789abcde')).toBe(false);
    expect(EXCEPTION_ID_PATTERN.test('0123456789abcdef0123456789abcdef0')).toBe(false);
  });
});

describe('incoming object keys', () => {
  it('builds incoming/{dataset}/{date}/{side}.csv', () => {
    expect(incomingKey({ dataset: 'trades', businessDate: '2025-12-10', side: 'target' })).toBe(
      'incoming/trades/2025-12-10/target.csv',
    );
    expect(INCOMING_KEY_LAYOUT).toBe('incoming/{dataset}/{YYYY-MM-DD}/{source|target}.{csv|jsonl|parquet}[.gz]');
  });

  it('builds a key per format, gzip as a .gz suffix', () => {
    const base = { dataset: 'payments', businessDate: '2025-12-10', side: 'target' } as const;
    expect(incomingKey({ ...base, format: 'jsonl' })).toBe('incoming/payments/2025-12-10/target.jsonl');
    expect(incomingKey({ ...base, format: 'parquet', gzip: true })).toBe(
      'incoming/payments/2025-12-10/target.parquet.gz',
    );
    expect(parseIncomingKey('incoming/payments/2025-12-10/source.csv.gz')).toEqual({
      ok: true,
      key: { dataset: 'payments', businessDate: '2025-12-10', side: 'source', format: 'csv', gzip: true },
    });
  });

  it('parses every key it builds back into the same parts', () => {
    fc.assert(
      fc.property(datasetName, calendarDate, side, format, fc.boolean(), (dataset, businessDate, s, f, gzip) => {
        const key = { dataset, businessDate, side: s, format: f, gzip };

        expect(parseIncomingKey(incomingKey(key))).toEqual({ ok: true, key });
      }),
    );
  });

  it.each([
    ['another prefix', 'processed/trades/2025-12-10/source.csv'],
    ['no prefix', 'trades/2025-12-10/source.csv'],
    ['a side that is neither', 'incoming/trades/2025-12-10/middle.csv'],
    ['another extension', 'incoming/trades/2025-12-10/source.txt'],
    ['gzip alone', 'incoming/trades/2025-12-10/source.gz'],
    ['gzip before the format', 'incoming/trades/2025-12-10/source.gz.csv'],
    ['a doubled extension', 'incoming/trades/2025-12-10/source.csv.csv'],
    ['an extra segment', 'incoming/trades/x/2025-12-10/source.csv'],
    ['a missing segment', 'incoming/2025-12-10/source.csv'],
    ['a dataset with a dot', 'incoming/tr.des/2025-12-10/source.csv'],
    ['an empty dataset', 'incoming//2025-12-10/source.csv'],
    ['a date in another format', 'incoming/trades/10-12-2025/source.csv'],
    ['a trailing newline', 'incoming/trades/2025-12-10/source.csv\n'],
  ])('rejects a key with %s as not an extract key', (_what, key) => {
    expect(parseIncomingKey(key)).toEqual({ ok: false, reason: 'is not an extract key' });
  });

  it.each(['2025-02-30', '2025-13-45'])('rejects a key whose date %s is not a calendar date', (date) => {
    expect(parseIncomingKey(`incoming/trades/${date}/source.csv`)).toEqual({
      ok: false,
      reason: `has "${date}", which is not a calendar date`,
    });
  });
});

describe('dataset policy keys', () => {
  it('parses the keys it builds, and nothing else', () => {
    fc.assert(
      fc.property(datasetName, (dataset) => {
        expect(parseDatasetPolicyKey(datasetPolicyKey(dataset))).toBe(dataset);
        expect(parsePolicyInForceKey(policyInForceKey(dataset))).toBe(dataset);
      }),
    );
    expect(datasetPolicyKey('payments')).toBe('policies/datasets/payments.md');
    expect(policyInForceKey('payments')).toBe('policies-in-force/payments.md');
    expect(parseDatasetPolicyKey('policies/payments.md')).toBeUndefined();
    expect(parseDatasetPolicyKey('policies/datasets/a.b.md')).toBeUndefined();
    expect(parseDatasetPolicyKey('policies/datasets/x/y.md')).toBeUndefined();
    expect(parsePolicyInForceKey('policies/datasets/payments.md')).toBeUndefined();
  });
});

describe('S3 sequencers', () => {
  it('orders sequencers of different lengths as hex numbers', () => {
    expect(compareSequencers('F', '10')).toBe(-1);
    expect(compareSequencers('10', 'F')).toBe(1);
    expect(compareSequencers('00FF', 'ff')).toBe(0);
    expect(compareSequencers('0062E99A88DC407460', '0062E99A88DC407461')).toBe(-1);
    expect(compareSequencers('62E99A88DC4074600', '0062E99A88DC407461')).toBe(1);
  });

  it('agrees with numeric order, whatever the lengths and case', () => {
    fc.assert(
      fc.property(hex(32), hex(32), (a, b) => {
        const x = BigInt(`0x${a}`);
        const y = BigInt(`0x${b}`);

        expect(compareSequencers(a, b)).toBe(x < y ? -1 : x > y ? 1 : 0);
      }),
    );
  });

  it('sorts as strings the way compareSequencers orders', () => {
    fc.assert(
      fc.property(hex(32), hex(32), (a, b) => {
        const [x, y] = [sequencerSortKey(a), sequencerSortKey(b)];

        expect(x.length).toBe(32);
        expect(x < y ? -1 : x > y ? 1 : 0).toBe(compareSequencers(a, b));
      }),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { describeMessage } from '../../scripts/cli/dlq-messages.ts';

const objectCreated = {
  'detail-type': 'Object Created',
  source: 'aws.s3',
  time: '2025-12-20T08:00:00Z',
  detail: {
    bucket: { name: 'tally-data' },
    object: { key: 'incoming/trades/2025-12-20/source.csv', size: 10, etag: 'abc', sequencer: '01' },
  },
};

describe('describeMessage reads a dead-lettered body through its queue schema', () => {
  it('names the object of an ingest event', () => {
    expect(describeMessage('ingest', JSON.stringify(objectCreated))).toBe(
      's3://tally-data/incoming/trades/2025-12-20/source.csv (etag abc)',
    );
  });

  it('names the run of a recon request and the exception of a triage request', () => {
    const ref = { bucket: 'b', key: 'k', etag: 'e' };
    const recon = { run_id: 'run-1', dataset: 'trades', business_date: '2025-12-20', source: ref, target: ref };
    const triage = { exception_id: 'a'.repeat(32), run_id: 'run-1', content_hash: 'h' };

    expect(describeMessage('recon', JSON.stringify(recon))).toBe('recon run run-1 (trades 2025-12-20)');
    expect(describeMessage('triage', JSON.stringify(triage))).toBe(`exception ${'a'.repeat(32)} (run run-1)`);
  });

  it('says when a body is not JSON, or not the shape its queue carries', () => {
    expect(describeMessage('ingest', 'plain text')).toBe('(not JSON) plain text');
    expect(describeMessage('recon', JSON.stringify({ exception_id: 'x' }))).toBe(
      '(not a valid recon message) {"exception_id":"x"}',
    );
    expect(describeMessage('triage', JSON.stringify(objectCreated))).toMatch(/^\(not a valid triage message\) /);
  });
});

import { describe, expect, it } from 'vitest';
import { toApiException, toApiRun } from '../../functions/query-api/records.ts';
import { EXCEPTION_INDEX_ATTRIBUTES, exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';

const stored = {
  exception_id: 'a'.repeat(32),
  run_id: 'run-1',
  dataset: 'trades',
  business_date: '2025-12-10',
  exception_type: 'AMOUNT_MISMATCH',
  key: { trade_id: 'T1' },
  source: { trade_id: 'T1', amount: '100.00' },
  target: { trade_id: 'T1', amount: '101.00' },
  diffs: [{ field: 'amount', source: '100.00', target: '101.00', delta: '1.00' }],
  lines: { source: [2], target: [2] },
  policy_severity: 'MEDIUM',
  severity: 'HIGH',
  status: 'RESOLVED',
  resolved_by_system: true,
  assignee: 'ana',
  created_at: '2025-12-10T08:00:00.000Z',
  updated_at: '2025-12-11T08:00:00.000Z',
  version: 3,
  history: [{ at: '2025-12-10T08:00:00.000Z', by: 'system:recon', action: 'CREATED', to: 'OPEN' }],
  triage: { severity: 'HIGH', summary: 's' },
  // Bookkeeping and index keys:
  record_type: 'EXCEPTION',
  dataset_date: 'trades#2025-12-10',
  content_hash: 'h',
  last_changed_run_id: 'run-1',
  last_seen_at: '2025-12-11T08:00:00.000Z',
};

describe('the API form of a stored exception', () => {
  it('keeps every field of the exception record the dashboard and CLI read', () => {
    const api = toApiException(stored);

    expect(Object.keys(api).sort()).toEqual(
      [
        'exception_id',
        'run_id',
        'dataset',
        'business_date',
        'exception_type',
        'key',
        'source',
        'target',
        'diffs',
        'lines',
        'policy_severity',
        'severity',
        'status',
        'resolved_by_system',
        'assignee',
        'created_at',
        'updated_at',
        'version',
        'history',
        'triage',
        // Computed (functions/shared/deadlines.ts).
        'age_hours',
        'overdue',
      ].sort(),
    );
    expect(api.version).toBe(3);
    expect(api.triage).toEqual(stored.triage);
  });

  it('shows the deadlines, with the age from the first sighting and whether it is overdue now', () => {
    const open = {
      ...stored,
      status: 'IN_PROGRESS',
      first_seen_at: '2025-12-09T08:00:00.000Z',
      due_at: '2025-12-10T00:00:00.000Z',
      overdue_notified_at: '2025-12-10T00:05:00.000Z',
    };
    const api = toApiException(open, Date.parse('2025-12-10T20:00:00.000Z'));
    expect(api).toMatchObject({ first_seen_at: open.first_seen_at, due_at: open.due_at, age_hours: 36, overdue: true });
    expect(api).not.toHaveProperty('overdue_notified_at');
    expect(toApiException(open, Date.parse('2025-12-09T20:00:00.000Z'))).toMatchObject({
      age_hours: 12,
      overdue: false,
    });
    // Stored before ageing: aged from created_at; resolved: never overdue.
    expect(toApiException(stored, Date.parse('2025-12-10T10:00:00.000Z'))).toMatchObject({
      age_hours: 2,
      overdue: false,
    });
  });

  it('leaves out index keys and bookkeeping, last_seen_at included', () => {
    const api = toApiException(stored);

    for (const internal of ['record_type', 'dataset_date', 'content_hash', 'last_changed_run_id', 'last_seen_at'])
      expect(api).not.toHaveProperty(internal);
    // Every GSI key the item carries, the owner queues' included.
    const keyed = { ...stored, team: 'ops', ...exceptionIndexKeys({ ...stored, team: 'ops' }) };
    expect(Object.keys(keyed)).toEqual(expect.arrayContaining(['gsi_assignee', 'gsi_team', 'gsi_severity']));
    for (const key of EXCEPTION_INDEX_ATTRIBUTES) expect(toApiException(keyed)).not.toHaveProperty(key);
  });

  it('leaves out an attribute it does not know (an allow-list, not a deny-list)', () => {
    expect(toApiException({ ...stored, written_by_a_later_version: 'x' })).not.toHaveProperty(
      'written_by_a_later_version',
    );
  });
});

describe('the API form of a stored run', () => {
  it('keeps the run and leaves out its lease and index keys', () => {
    const api = toApiRun({
      run_id: 'r',
      dataset: 'trades',
      business_date: '2025-12-10',
      status: 'COMPLETED',
      requested_at: 't',
      requested_by: 'ingest-key',
      summary: { matched: 1 },
      lease_until: 0,
      dataset_date: 'trades#2025-12-10',
      record_type: 'RUN',
      unknown_attribute: 1,
    });

    expect(api).toEqual({
      run_id: 'r',
      dataset: 'trades',
      business_date: '2025-12-10',
      status: 'COMPLETED',
      requested_at: 't',
      requested_by: 'ingest-key',
      summary: { matched: 1 },
    });
  });
});

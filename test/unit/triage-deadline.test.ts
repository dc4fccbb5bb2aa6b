import { describe, expect, it } from 'vitest';
import { parseReconPolicy } from '../../functions/shared/policy.ts';
import type { BusinessEvent } from '../../functions/shared/notifications.ts';
import type { ExceptionRecord, Triage } from '../../functions/shared/types.ts';
import { announceCritical, deadlineAfterTriage } from '../../functions/triage/deadline.ts';

const policy = parseReconPolicy(
  `\`\`\`json tally-policy\n${JSON.stringify({
    policy_version: 't',
    key: [{ field: 'id' }],
    fields: [],
    resolution_targets: { CRITICAL: '4h', HIGH: '1bd' },
  })}\n\`\`\`\n`,
);

const exception = {
  exception_id: 'e'.repeat(32),
  run_id: 'run-1',
  dataset: 'trades',
  business_date: '2026-12-03',
  exception_type: 'AMOUNT_MISMATCH',
  status: 'OPEN',
  policy_severity: 'HIGH',
  severity: 'HIGH',
  created_at: '2026-12-04T10:00:00.000Z',
  first_seen_at: '2026-12-04T10:00:00.000Z',
  due_at: '2026-12-08T00:00:00.000Z',
} as ExceptionRecord;

describe('the due date after triage', () => {
  it('follows a raised severity from the first sighting', () => {
    expect(deadlineAfterTriage(exception, 'CRITICAL', policy)).toEqual({ due_at: '2026-12-04T14:00:00.000Z' });
  });

  it('is left as it is when the severity gives the same one, none, or the exception is PENDING', () => {
    expect(deadlineAfterTriage(exception, 'HIGH', policy)).toEqual({});
    expect(deadlineAfterTriage(exception, 'LOW', policy)).toEqual({});
    expect(deadlineAfterTriage({ ...exception, status: 'PENDING' }, 'CRITICAL', policy)).toEqual({});
    expect(deadlineAfterTriage(exception, 'CRITICAL', undefined)).toEqual({});
  });

  it('starts a promoted late arrival at the end of its window', () => {
    const promoted = { ...exception, pending_until: '2026-12-05T00:00:00.000Z' };
    expect(deadlineAfterTriage(promoted, 'CRITICAL', policy)).toEqual({ due_at: '2026-12-05T04:00:00.000Z' });
  });
});

describe('the CRITICAL announcement', () => {
  const sent: BusinessEvent[] = [];
  const deps = {
    notifier: { publish: async (e: BusinessEvent) => void sent.push(e) },
    now: () => Date.parse('2026-12-04T11:00:00Z'),
  };

  it('goes out when triage first rates the exception CRITICAL, once', async () => {
    sent.length = 0;
    await announceCritical(exception, 'CRITICAL', deps);
    await announceCritical({ ...exception, triage: { severity: 'CRITICAL' } as Triage }, 'CRITICAL', deps);
    await announceCritical(exception, 'HIGH', deps);
    expect(sent).toEqual([
      expect.objectContaining({
        kind: 'critical',
        exception_id: exception.exception_id,
        dataset: 'trades',
        severity: 'CRITICAL',
        at: '2026-12-04T11:00:00.000Z',
        text: expect.stringContaining('New CRITICAL AMOUNT_MISMATCH exception'),
      }),
    ]);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ageHours,
  dueAt,
  dueAtFor,
  endOfBusinessDay,
  isOverdue,
  lateArrivalUntil,
  parseResolutionTarget,
} from '../../functions/shared/deadlines.ts';
import { parseReconPolicy, PolicyError } from '../../functions/shared/policy.ts';

// 2026-12-04 is a Friday; 2026-12-05/06 the weekend.
const FRIDAY_10 = '2026-12-04T10:00:00.000Z';

function documentWith(settings: Record<string, unknown>): string {
  const json = JSON.stringify({
    policy_version: 't.1',
    key: [{ field: 'id' }],
    fields: [{ field: 'amount', type: 'decimal' }, { field: 'trade_date' }],
    ...settings,
  });
  return `# P\n\n\`\`\`json tally-policy\n${json}\n\`\`\`\n`;
}

describe('resolution targets', () => {
  it('reads hours and business days, and nothing else', () => {
    expect(parseResolutionTarget('4h')).toEqual({ amount: 4, unit: 'h' });
    expect(parseResolutionTarget('1bd')).toEqual({ amount: 1, unit: 'bd' });
    expect(parseResolutionTarget('1d')).toBeUndefined();
    expect(parseResolutionTarget('-1h')).toBeUndefined();
    expect(parseResolutionTarget('1.5h')).toBeUndefined();
  });

  it('counts hours from the first sighting, weekends included', () => {
    expect(dueAt(FRIDAY_10, { amount: 4, unit: 'h' })).toBe('2026-12-04T14:00:00.000Z');
    expect(dueAt(FRIDAY_10, { amount: 24, unit: 'h' })).toBe('2026-12-05T10:00:00.000Z');
  });

  it('ends business days at midnight UTC and skips the weekend', () => {
    // Same business day: the end of Friday.
    expect(dueAt(FRIDAY_10, { amount: 0, unit: 'bd' })).toBe('2026-12-05T00:00:00.000Z');
    // One business day after a Friday is Monday.
    expect(dueAt(FRIDAY_10, { amount: 1, unit: 'bd' })).toBe('2026-12-08T00:00:00.000Z');
    expect(dueAt(FRIDAY_10, { amount: 5, unit: 'bd' })).toBe('2026-12-12T00:00:00.000Z');
    // Found on a Saturday: Monday is day 0.
    expect(dueAt('2026-12-05T09:00:00.000Z', { amount: 0, unit: 'bd' })).toBe('2026-12-08T00:00:00.000Z');
    expect(new Date(endOfBusinessDay(Date.parse('2026-12-06T23:59:00Z'), 1)).toISOString()).toBe(
      '2026-12-09T00:00:00.000Z',
    );
  });

  it('gives a due date only to a severity the policy has a target for', () => {
    const targets = { HIGH: { amount: 2, unit: 'h' as const } };
    expect(dueAtFor(FRIDAY_10, 'HIGH', targets)).toBe('2026-12-04T12:00:00.000Z');
    expect(dueAtFor(FRIDAY_10, 'LOW', targets)).toBeUndefined();
    expect(dueAtFor(FRIDAY_10, undefined, targets)).toBeUndefined();
  });
});

describe('age and overdue', () => {
  const now = Date.parse('2026-12-04T13:30:00.000Z');

  it('ages from the first sighting in hours', () => {
    expect(ageHours(FRIDAY_10, now)).toBe(3.5);
    expect(ageHours('2026-12-05T00:00:00.000Z', now)).toBe(0);
  });

  it('is overdue only when still open and past its due date', () => {
    expect(isOverdue({ status: 'OPEN', due_at: '2026-12-04T13:30:00.000Z' }, now)).toBe(true);
    expect(isOverdue({ status: 'IN_PROGRESS', due_at: '2026-12-04T12:00:00.000Z' }, now)).toBe(true);
    expect(isOverdue({ status: 'OPEN', due_at: '2026-12-04T13:31:00.000Z' }, now)).toBe(false);
    expect(isOverdue({ status: 'RESOLVED', due_at: '2026-12-04T12:00:00.000Z' }, now)).toBe(false);
    expect(isOverdue({ status: 'PENDING', due_at: '2026-12-04T12:00:00.000Z' }, now)).toBe(false);
    expect(isOverdue({ status: 'OPEN' }, now)).toBe(false);
  });

  it('ends a late-arrival window after its business days', () => {
    expect(lateArrivalUntil('2026-12-04', 1)).toBe('2026-12-08T00:00:00.000Z');
    expect(lateArrivalUntil('2026-12-02', 0)).toBe('2026-12-03T00:00:00.000Z');
  });
});

describe('workflow settings in the policy', () => {
  it('defaults to per-date identity, no targets and no late-arrival window', () => {
    const policy = parseReconPolicy(documentWith({}));
    expect(policy.workflow).toEqual({ identity: 'per_date', resolutionTargets: {} });
  });

  it('reads identity, targets and the late-arrival window', () => {
    const policy = parseReconPolicy(
      documentWith({
        identity: 'across_dates',
        resolution_targets: { CRITICAL: '4h', HIGH: '1bd' },
        late_arrival: { days: 2, field: 'trade_date' },
      }),
    );
    expect(policy.workflow.identity).toBe('across_dates');
    expect(policy.workflow.resolutionTargets).toEqual({
      CRITICAL: { amount: 4, unit: 'h' },
      HIGH: { amount: 1, unit: 'bd' },
    });
    expect(policy.workflow.lateArrival?.days).toBe(2);
    expect(policy.workflow.lateArrival?.field?.source).toBe('trade_date');
  });

  it('names a bad target, identity or late-arrival field', () => {
    const error = (() => {
      try {
        parseReconPolicy(
          documentWith({
            identity: 'forever',
            resolution_targets: { HIGH: '1 day' },
            late_arrival: { days: 1, field: 'x' },
          }),
        );
      } catch (e) {
        return e as PolicyError;
      }
      throw new Error('expected a PolicyError');
    })();
    expect(error).toBeInstanceOf(PolicyError);
    expect(error.message).toMatch(/identity/);
    expect(error.message).toMatch(/resolution_targets\.HIGH: must be a whole number of hours/);
    const field = (() => {
      try {
        parseReconPolicy(documentWith({ late_arrival: { days: 1, field: 'x' } }));
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(field).toMatch(/late_arrival\.field: "x" must be a key field or a compared field/);
  });

  it('encodes the prose resolution targets in the shipped policies', () => {
    for (const file of ['policies/datasets/trades.md', 'policies/datasets/payments.md', 'policies/recon-policy.md']) {
      const policy = parseReconPolicy(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'));
      expect(policy.workflow.resolutionTargets).toEqual({
        CRITICAL: { amount: 0, unit: 'bd' },
        HIGH: { amount: 1, unit: 'bd' },
        MEDIUM: { amount: 3, unit: 'bd' },
        LOW: { amount: 5, unit: 'bd' },
      });
    }
  });
});

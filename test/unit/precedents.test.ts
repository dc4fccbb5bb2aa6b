import { describe, expect, it } from 'vitest';
import { closingEntry } from '../../functions/triage/precedents.ts';
import { validateAnswer } from '../../functions/triage/chain.ts';
import type { HistoryEntry } from '../../functions/shared/types.ts';

const h = (
  at: string,
  by: string,
  action: HistoryEntry['action'],
  extra: Partial<HistoryEntry> = {},
): HistoryEntry => ({
  at,
  by,
  action,
  ...extra,
});

describe('a precedent closing entry', () => {
  it("is the last person's move to a closed status, with its note or the person's note just before", () => {
    const history = [
      h('2025-12-01T00:00:00Z', 'system:recon', 'CREATED'),
      h('2025-12-01T01:00:00Z', 'ann', 'RESOLVED', { from: 'OPEN', to: 'RESOLVED', note: 'first try' }),
      h('2025-12-02T00:00:00Z', 'system:recon', 'REOPENED', { from: 'RESOLVED', to: 'OPEN' }),
      h('2025-12-02T01:00:00Z', 'bob', 'NOTE', { note: 'booking delay at the custodian' }),
      h('2025-12-02T02:00:00Z', 'bob', 'FALSE_POSITIVE', { from: 'OPEN', to: 'FALSE_POSITIVE' }),
    ];
    expect(closingEntry(history)).toEqual({ entry: history[4], note: 'booking delay at the custodian' });
  });

  it('is none when only the system closed it', () => {
    expect(
      closingEntry([h('2025-12-01T00:00:00Z', 'system:recon', 'RESOLVED', { from: 'OPEN', to: 'RESOLVED' })]),
    ).toBeUndefined();
  });
});

describe('precedent citations', () => {
  const passages = [
    { passage_id: 'p#1', document: 'd.md', section: 'S', text: 't', exception_type: '' as const, ref: 'P1' },
  ];
  const precedents = [
    { ref: 'R1', exception_id: 'exc_a', business_date: '2025-12-01', status: 'RESOLVED', key: {}, note: 'n' },
  ];
  const answer = (cited: string[]) => ({
    severity: 'LOW',
    summary: 's',
    recommended_actions: [],
    root_cause_hypotheses: [],
    policy_citations: ['P1'],
    precedent_citations: cited,
  });

  it('keeps retrieved precedents (by ref or id, once) and rejects the rest', () => {
    const valid = validateAnswer(answer(['R1', '[exc_a]', 'R2']), passages, precedents);
    expect(valid.ok && valid.precedentCitations).toEqual([
      { exception_id: 'exc_a', business_date: '2025-12-01', status: 'RESOLVED', note: 'n' },
    ]);
    expect(valid.ok && valid.rejected).toEqual(['R2']);
  });

  it('accepts an answer that cites none (precedent_citations is optional)', () => {
    const { precedent_citations: _, ...withoutPrecedents } = answer([]);
    const valid = validateAnswer(withoutPrecedents, passages, []);
    expect(valid.ok && valid.precedentCitations).toEqual([]);
  });
});

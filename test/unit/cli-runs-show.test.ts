/** `tally runs show RUN_ID`: what a run stored, and how many of those were cut to fit one item. */
import { describe, expect, it } from 'vitest';
import type { ApiRun } from '../../functions/shared/api-types.ts';
import { describeRun } from '../../scripts/cli/runs.ts';
import { completedSummary, runRecord } from '../support/runs.ts';

const run = (summary: ApiRun['summary']) =>
  ({
    ...runRecord({ run_id: 'run-1', dataset: 'trades', business_date: '2025-12-01' }),
    summary,
  }) as unknown as ApiRun;

describe('tally runs show', () => {
  it("prints the run's stored counts", () => {
    expect(describeRun(run(completedSummary({ AMOUNT_MISMATCH: 3 })))).toContain(
      'stored    3 new, 0 changed, 0 unchanged, 0 resolved\n',
    );
  });

  it('says how many exceptions were stored cut to fit one DynamoDB item', () => {
    expect(describeRun(run({ ...completedSummary({ DUPLICATE_IN_SOURCE: 2 }), cut_for_storage: 1 }))).toContain(
      'stored    2 new, 0 changed, 0 unchanged, 0 resolved; 1 cut to fit one DynamoDB item (each says what in _omitted)\n',
    );
  });

  it('prints no stored line for a run not completed', () => {
    expect(describeRun(run(undefined))).not.toContain('stored');
  });
});

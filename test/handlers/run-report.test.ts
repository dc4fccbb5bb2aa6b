/**
 * GET /runs/{id}/report's exceptions on dynalite: a sample of each type in the run's summary, the
 * newest of each, read from the run's index entries; only the sample is read whole.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callerFromClaims, localAdmin } from '../../functions/query-api/access.ts';
import { runReport } from '../../functions/query-api/run-report.ts';
import { sensitiveViewFor } from '../../functions/query-api/sensitive-view.ts';
import { createMasker, LOCAL_MASKING_SECRET } from '../../functions/shared/masking.ts';
import type { ReconPolicy } from '../../functions/shared/policy.ts';
import { datasetTriagePolicies } from '../../functions/triage/dataset-policy.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import type { ExceptionType } from '../../functions/shared/types.ts';
import {
  putExceptions,
  queryStoreOf,
  recordingWholeReads,
  startTestDynamo,
  type TestDynamo,
} from '../support/dynamo.ts';
import { completedSummary, runRecord } from '../support/runs.ts';

let dynamo: TestDynamo;
const RUN = 'run-report-1';
const AT = Date.UTC(2025, 11, 10, 8);

/** `count` exceptions of `type`, the first created at `from` ms past AT and each a ms later. */
function exceptionsOf(type: ExceptionType, count: number, from: number) {
  return Array.from({ length: count }, (_, i) => {
    const key = { trade_id: `${type}-${i}` };
    return {
      exception_id: exceptionId('trades', '2025-12-10', type, key.trade_id),
      run_id: RUN,
      dataset: 'trades',
      business_date: '2025-12-10',
      exception_type: type,
      key,
      source: { ...key, amount: '10.00' },
      target: type === 'MISSING_IN_TARGET' ? null : { ...key, amount: '10.50' },
      diffs: [],
      lines: { source: [i + 2], target: [] },
      policy_severity: 'HIGH',
      status: 'OPEN',
      triage: { summary: 'not shown in a report' },
      record_type: 'EXCEPTION',
      created_at: new Date(AT + from + i).toISOString(),
      version: 1,
    };
  });
}

beforeAll(async () => {
  dynamo = await startTestDynamo();
  await putExceptions(dynamo, [
    ...exceptionsOf('AMOUNT_MISMATCH', 30, 1000),
    ...exceptionsOf('MISSING_IN_TARGET', 3, 0),
    ...exceptionsOf('FIELD_MISMATCH', 8, 2000),
  ]);
  await new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs).request(
    runRecord({
      run_id: RUN,
      dataset: 'trades',
      business_date: '2025-12-10',
      requested_at: new Date(AT).toISOString(),
      summary: completedSummary({ AMOUNT_MISMATCH: 30, MISSING_IN_TARGET: 3, FIELD_MISMATCH: 8 }),
    }),
  );
}, 120_000);
afterAll(async () => {
  await dynamo.stop();
});

/** The run as the route reads it before the report. */
const reportedRun = async () => (await queryStoreOf(dynamo).getRun(RUN)) as RunRecord;

describe('a run report', () => {
  it('shows the newest of each type and reads only those whole', async () => {
    const { store, reads } = recordingWholeReads(dynamo);

    const report = await runReport(await reportedRun(), 'md', { store });

    expect(reads.flatMap((read) => read.ids)).toHaveLength(5 + 3 + 5);
    expect(report).toContain('## AMOUNT_MISMATCH: a sample of 5 of 30');
    expect(report).toContain('## MISSING_IN_TARGET: 3 of 3');
    expect(report).toContain('## FIELD_MISMATCH: a sample of 5 of 8');
    const shown = [...report.matchAll(/Key trade_id=([A-Z_]+-\d+)/g)].map((m) => m[1]);
    expect(shown).toEqual([
      ...[2, 1, 0].map((i) => `MISSING_IN_TARGET-${i}`),
      ...[29, 28, 27, 26, 25].map((i) => `AMOUNT_MISMATCH-${i}`),
      ...[7, 6, 5, 4, 3].map((i) => `FIELD_MISMATCH-${i}`),
    ]);
    expect(report).not.toContain('not shown in a report');
  });

  it("shows a viewer the dataset's sensitive values as their tokens, as the listing does", async () => {
    const policies = datasetTriagePolicies(
      { current: async () => ({ sensitiveFields: ['trade_id'] }) as unknown as ReconPolicy },
      'tally-data',
      LOCAL_MASKING_SECRET,
    );
    const viewer = callerFromClaims({ email: 'v@bank.example', 'cognito:groups': '[viewer]', 'tally:datasets': '*' });
    const store = queryStoreOf(dynamo);

    const report = await runReport(
      await reportedRun(),
      'md',
      { store },
      sensitiveViewFor(viewer, { datasetPolicies: policies }),
    );
    const asAnalyst = await runReport(
      await reportedRun(),
      'md',
      { store },
      sensitiveViewFor(localAdmin('me'), { datasetPolicies: policies }),
    );

    const token = createMasker(['trade_id'], LOCAL_MASKING_SECRET).token('AMOUNT_MISMATCH-29');
    expect(report).not.toContain('AMOUNT_MISMATCH-29');
    expect(report).toContain(`Key trade_id=${token}`);
    expect(asAnalyst).toContain('Key trade_id=AMOUNT_MISMATCH-29');
  });
});

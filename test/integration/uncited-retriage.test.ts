/**
 * A first deployment's race, on the local stack as `npm start` runs it: extracts reconciled and
 * triaged before the policy corpus was indexed are triaged with nothing to cite. Indexing the
 * corpus afterwards asks each of them again (functions/triage/uncited.ts) — no command typed — and
 * they come back citing the policies. The corpus is five documents indexed one after the other:
 * the sweeps wait until the push is in (TALLY_UNCITED_SETTLE_SECONDS), so each exception costs one
 * model call, not one per document.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICIES_DIR, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { policyDocuments } from '../../functions/shared/policy-corpus.ts';
import { ENV, TRIAGE_STAMP } from '../../functions/shared/resources.ts';
import { shardedValues } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { getItemsInOrder, queryAllShards } from '../../functions/shared/tables/index-query-dynamo.ts';
import { DynamoUncitedListing } from '../../functions/shared/tables/run-exceptions-dynamo.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';
import { startLocalStack, type LocalStack } from '../../scripts/local/stack.ts';
import { startRecordingModel } from '../support/recording-model.ts';

let dataDir: string;
let stack: LocalStack;
let model: Awaited<ReturnType<typeof startRecordingModel>>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tally-uncited-'));
  // The model cites only the last document indexed: an exception asked again before it was
  // indexed would stay uncited, and be asked again (another call) by the documents after.
  model = await startRecordingModel({ citesOnly: policyDocuments(POLICIES_DIR).at(-1) });
  // Less than the local default's 10 s; still far more than the five documents take to index.
  process.env[ENV.uncitedSettleSeconds] = '8';
  stack = await startLocalStack({
    dataDir,
    embedder: 'hashing',
    triageProviders: { chain: 'openai:recording-model,rules', openaiBaseUrl: model.url },
  });
});
afterAll(async () => {
  delete process.env[ENV.uncitedSettleSeconds];
  await stack?.stop();
  await model?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function tradesOf(date: string): Promise<(ExceptionRecord & Record<string, unknown>)[]> {
  const { items } = await queryAllShards(stack.dynamo, stack.names.tables.exceptions, 'by_dataset_date_sharded', {
    attribute: 'gsi_dataset_date',
    values: shardedValues(`trades#${date}`),
  });
  return (await getItemsInOrder(
    stack.dynamo,
    stack.names.tables.exceptions,
    ['exception_id'],
    items,
  )) as (ExceptionRecord & Record<string, unknown>)[];
}

describe('triages made before the policy corpus was indexed', () => {
  it('are triaged again, citing the policies, once the corpus is indexed', async () => {
    await stack.upload('incoming/trades/2025-12-10/source.csv', readFileSync(`${SAMPLE_DIR}source.csv`));
    await stack.upload('incoming/trades/2025-12-10/target.csv', readFileSync(`${SAMPLE_DIR}target.csv`));
    await stack.waitForIdle();
    const before = await tradesOf('2025-12-10');
    expect(before).toHaveLength(5);
    for (const e of before) {
      expect(e.triage?.policy_citations, e.exception_id).toEqual([]);
      expect(e[TRIAGE_STAMP.uncited]).toBe('UNCITED');
    }
    const uncited = new DynamoUncitedListing(stack.dynamo, stack.names.tables.exceptions);
    expect((await uncited.uncited({ limit: 100 })).items).toHaveLength(5);
    expect(stack.environments.triage[ENV.uncitedSettleSeconds]).toBe('8');
    const callsBefore = model.calls();
    expect(callsBefore).toBeGreaterThan(0);

    // The corpus arrives (as `npm start` loads it, or a deployment's policy objects): nothing else.
    const documents = await stack.loadPolicies();
    expect(documents.length).toBeGreaterThan(1);
    await stack.waitForIdle();

    const after = await tradesOf('2025-12-10');
    expect(after).toHaveLength(5);
    for (const e of after) {
      const was = before.find((b) => b.exception_id === e.exception_id);
      expect(e.triage?.policy_citations.length, e.exception_id).toBeGreaterThan(0);
      expect((e.triage?.triaged_at ?? '') > (was?.triage?.triaged_at ?? ''), e.exception_id).toBe(true);
      // Cited now: out of the uncited partition. (An exception whose prompt held nothing of the one
      // document the model cites got an unusable answer, and the rules': that is a degraded
      // triage, asked again when the model recovers.)
      expect([undefined, 'DEGRADED']).toContain(e[TRIAGE_STAMP.uncited]);
      if (e.triage?.provider !== 'rules') expect(e).not.toHaveProperty(TRIAGE_STAMP.uncited);
    }
    expect((await uncited.uncited({ limit: 100 })).items).toEqual([]);
    // As many model calls as the first triage made (the same patterns and singletons), once:
    // every document of the push was indexed before any exception was asked again.
    expect(model.calls() - callsBefore).toBe(callsBefore);
    const counts = await stack.counts();
    expect(counts.triaged).toBe(5);
    expect(counts.searchable).toBe(5);
    for (const queue of Object.values(counts.queues)) expect(queue).toMatchObject({ visible: 0, dlq: 0 });
  });
});

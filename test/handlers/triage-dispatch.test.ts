/**
 * Dispatch and pattern triage through the real triage handler: a real DynamoDB API (dynalite) for
 * the runs and exceptions, the local vector store with the real policies, an in-memory patterns
 * store (the contract's port) and a recording model provider that counts the calls. The triage
 * queue is an array the test drains through the handler, as Lambda's event source would.
 */
import type { BusinessEvent } from '../../functions/shared/notifications.ts';
import { NO_DATASET_POLICIES } from '../../functions/triage/dataset-policy.ts';
import { routeTableOf } from '../../functions/triage/routing.ts';
import { parsePriceTable } from '../../functions/triage/cost.ts';
import { DynamoUsageStore } from '../../functions/shared/tables/usage-dynamo.ts';
import { DynamoRunCosts } from '../../functions/shared/tables/runs-dynamo.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { EXCEPTION_RECORD_TYPE } from '../../functions/shared/exceptions.ts';
import type { TriageQueueMessage, UncitedRequest } from '../../functions/shared/messages.ts';
import { loadReconPolicyFile } from '../../functions/shared/recon-policy-file.ts';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import { exceptionEmbeddingText } from '../../functions/shared/search/exception-document.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import { storedEmbedding } from '../../functions/shared/search/stored-embedding.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';
import { DynamoTriageStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { exceptionIndexKeys, triageStamp } from '../../functions/shared/tables/exceptions-index-keys.ts';
import type { PatternRecord } from '../../functions/shared/tables/patterns.ts';
import {
  DynamoRunExceptionListing,
  DynamoUncitedListing,
} from '../../functions/shared/tables/run-exceptions-dynamo.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { RunRecord, RunTriageState } from '../../functions/shared/tables/runs.ts';
import type { ExceptionRecord, ExceptionStatus, Triage } from '../../functions/shared/types.ts';
import { createHandler, type TriageHandlerDeps } from '../../functions/triage/handler.ts';
import { PATTERN_PROMPT_VERSION } from '../../functions/triage/pattern-prompt.ts';
import { PROMPT_VERSION } from '../../functions/triage/prompt.ts';
import { askUncitedAgain } from '../../functions/triage/uncited.ts';
import { TRIAGE_STAMP } from '../../functions/shared/resources.ts';
import { RulesProvider } from '../../functions/triage/providers/rules.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';
import { MemoryPatternStore } from '../support/pattern-store.ts';
import { policyIndexAt } from '../support/policy-index.ts';
import { closedBreaker, RecordingProvider } from '../support/recording-provider.ts';

let dynamo: TestDynamo;
let policyIndex: LocalVectorIndex;
const embedder = new HashingEmbedder();
const vectorDir = mkdtempSync(join(tmpdir(), 'tally-dispatch-'));
const NOW = Date.parse('2026-01-05T10:00:00.000Z');

beforeAll(async () => {
  dynamo = await startTestDynamo();
  policyIndex = await policyIndexAt(join(vectorDir, 'policies.jsonl'), embedder);
});
afterAll(async () => {
  await dynamo.stop();
});

let runCounter = 0;

/** One run's world: its run record, its exceptions, its patterns, the queue and the handler. */
async function world(triage: RunTriageState | undefined = { state: 'PENDING', at: '2026-01-05T09:00:00.000Z' }) {
  const runId = `run-${++runCounter}`;
  const runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  await runs.request({
    run_id: runId,
    dataset: 'trades',
    business_date: '2025-12-10',
    status: 'COMPLETED',
    source: { bucket: 'b', key: 'incoming/trades/2025-12-10/source.csv', etag: 's' },
    target: { bucket: 'b', key: 'incoming/trades/2025-12-10/target.csv', etag: 't' },
    requested_at: '2026-01-05T08:00:00.000Z',
    requested_by: 'ingest',
    ...(triage ? { triage } : {}),
  } as RunRecord);
  const patterns = new MemoryPatternStore();
  const provider = new RecordingProvider();
  const queue: TriageQueueMessage[] = [];
  const exceptionsIndex = LocalVectorIndex.load(join(vectorDir, `exceptions-${runId}.jsonl`));
  const deps: TriageHandlerDeps = {
    store: new DynamoTriageStore(dynamo.doc, dynamo.names.tables.exceptions),
    policies: NO_DATASET_POLICIES,
    runs,
    patterns,
    listing: new DynamoRunExceptionListing(dynamo.doc, dynamo.names.tables.exceptions),
    uncited: new DynamoUncitedListing(dynamo.doc, dynamo.names.tables.exceptions),
    triageQueue: { send: async (m) => void queue.push(...m) },
    embedder,
    policyIndex,
    exceptionsIndex,
    routes: routeTableOf([provider, new RulesProvider(loadReconPolicyFile(join(POLICIES_DIR, 'recon-policy.md')))]),
    prices: parsePriceTable(undefined),
    usage: new DynamoUsageStore(dynamo.doc, dynamo.names.tables.usage),
    runCosts: new DynamoRunCosts(dynamo.doc, dynamo.names.tables.runs),
    breaker: closedBreaker,
    now: () => NOW,
    sleep: async () => undefined,
    maxThrottleRetries: 0,
    dispatchPage: 7,
    membersPerMessage: 4,
  };
  const handler = createHandler(() => deps);
  let n = 0;
  /** An exception of the run: in `pattern` (a pattern_id attribute, as the store writes it) or alone. */
  const put = async (
    options: {
      pattern?: string;
      triage?: Triage;
      hash?: string;
      runId?: string;
      dataset?: string;
      status?: ExceptionStatus;
    } = {},
  ) => {
    const i = ++n;
    const record = {
      exception_id: `${runId}-e${String(i).padStart(3, '0')}`,
      run_id: options.runId ?? runId,
      dataset: options.dataset ?? 'trades',
      business_date: '2025-12-10',
      exception_type: 'AMOUNT_MISMATCH' as const,
      key: { trade_id: `T${i}` },
      source: { trade_id: `T${i}`, currency: 'JPY', amount: `${i}.00` },
      target: { trade_id: `T${i}`, currency: 'JPY', amount: `${i * 100}.00` },
      diffs: [{ field: 'amount', source: `${i}.00`, target: `${i * 100}.00`, delta: `${i * 99}.00` }],
      lines: { source: [i + 1], target: [i + 1] },
      policy_severity: 'MEDIUM' as const,
      status: options.status ?? ('OPEN' as const),
      created_at: '2026-01-05T09:30:00.000Z',
      updated_at: '2026-01-05T09:30:00.000Z',
      version: 1,
      history: [],
      content_hash: options.hash ?? `h${i}`,
      last_changed_run_id: runId,
      record_type: EXCEPTION_RECORD_TYPE,
      dataset_date: `${options.dataset ?? 'trades'}#2025-12-10`,
      ...(options.pattern ? { pattern_id: options.pattern } : {}),
      // As saveTriage writes it: the triage and its stamp, which the listing's index carries.
      ...(options.triage ? { triage: options.triage, ...triageStamp(options.triage) } : {}),
    };
    await dynamo.doc.send(
      new PutCommand({ TableName: dynamo.names.tables.exceptions, Item: { ...record, ...exceptionIndexKeys(record) } }),
    );
    return record;
  };
  const pattern = (id: string, representatives: string[], size: number): PatternRecord => ({
    run_id: runId,
    pattern_id: id,
    dataset: 'trades',
    business_date: '2025-12-10',
    exception_type: 'AMOUNT_MISMATCH',
    signature: { type: 'AMOUNT_MISMATCH', fields: ['amount'], amount: { sign: '+', ratio: '100' } },
    description: 'AMOUNT_MISMATCH: amount target = source x100',
    size,
    segments: [{ field: 'currency', value: 'JPY', count: size, share: 1 }],
    stats: { delta_min: '99.00', delta_max: '2000.00', ratio: '100' },
    representatives,
  });
  /** Delivers every queued message through the handler, five at a time, until the queue is empty. */
  const drain = async () => {
    const handled: TriageQueueMessage[] = [];
    while (queue.length > 0) {
      const batch = queue.splice(0, 5);
      const response = await handler(sqsEvent(...batch.map((m) => sqsRecord(m))), lambdaContext);
      expect(response.batchItemFailures).toEqual([]);
      handled.push(...batch);
    }
    return handled;
  };
  const get = async (id: string) =>
    (await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.exceptions, Key: { exception_id: id } })))
      .Item as ExceptionRecord & { content_hash: string; pattern_id?: string };
  const run = async () => (await runs.get(runId)) as RunRecord;
  return { runId, runs, patterns, provider, queue, exceptionsIndex, deps, put, pattern, drain, get, run, handler };
}

describe('dispatch', () => {
  let w: Awaited<ReturnType<typeof world>>;
  beforeEach(async () => {
    w = await world();
  });

  it('queues one message per pattern and per singleton, page by page, and records the plan', async () => {
    const members = [];
    for (let i = 0; i < 12; i++) members.push(await w.put({ pattern: 'pat_jpy' }));
    const singles = [];
    for (let i = 0; i < 3; i++) singles.push(await w.put());
    // In a pattern too small to be saved: alone.
    singles.push(await w.put({ pattern: 'pat_small' }));
    await w.patterns.putAll([
      w.pattern(
        'pat_jpy',
        members.slice(0, 5).map((m) => m.exception_id),
        12,
      ),
    ]);
    w.queue.push({ kind: 'dispatch', run_id: w.runId });

    const handled = await w.drain();

    const kinds = (k: string) => handled.filter((m) => m.kind === k);
    // 16 exceptions, 7 a page: three dispatch messages.
    expect(kinds('dispatch')).toHaveLength(3);
    expect(kinds('pattern')).toEqual([{ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_jpy' }]);
    expect(
      handled
        .filter((m) => m.kind === 'exception' || m.kind === undefined)
        .map((m) => (m as { exception_id: string }).exception_id)
        .sort(),
    ).toEqual(singles.map((s) => s.exception_id).sort());
    expect(await w.run()).toMatchObject({
      triage: { state: 'DISPATCHED' },
      triage_plan: { patterns: 1, singletons: 4, members: 12 },
    });
    // Model calls = patterns + singletons.
    expect(w.provider.calls).toHaveLength(1 + 4);
  });

  it('queues a pattern with the first page listing one of its members: its model call need not wait for the last page', async () => {
    const members = [];
    for (let i = 0; i < 12; i++) members.push(await w.put({ pattern: 'pat_jpy' }));
    await w.patterns.putAll([w.pattern('pat_jpy', [members[0]!.exception_id], 12)]);

    await w.handler(sqsEvent(sqsRecord({ kind: 'dispatch', run_id: w.runId })), lambdaContext);

    // 12 members, 7 a page: the first page queued the pattern and the next page, nothing else.
    expect(w.queue.map((m) => m.kind)).toEqual(['pattern', 'dispatch']);
    const next = w.queue.splice(0).filter((m) => m.kind === 'dispatch');
    await w.handler(sqsEvent(sqsRecord(next[0]!)), lambdaContext);
    // The last page: its pattern is queued already.
    expect(w.queue).toEqual([]);
    expect(await w.run()).toMatchObject({ triage_plan: { patterns: 1, singletons: 0, members: 12 } });
  });

  it('lists only what needs triage: not what is triaged for its content by a current prompt', async () => {
    const current = (hash: string, version: string) =>
      ({ content_hash: hash, prompt_version: version, severity: 'LOW' }) as unknown as Triage;
    await w.put({ hash: 'a', triage: current('a', PROMPT_VERSION) });
    await w.put({ hash: 'b', triage: current('b', PATTERN_PROMPT_VERSION) });
    const stale = await w.put({ hash: 'c', triage: current('old', PROMPT_VERSION) });
    const oldPrompt = await w.put({ hash: 'd', triage: current('d', 'an-older-prompt') });
    const fresh = await w.put();
    // Another run's exception: not this run's to dispatch.
    await w.put({ runId: 'run-other' });

    await w.handler(sqsEvent(sqsRecord({ kind: 'dispatch', run_id: w.runId })), lambdaContext);

    expect(w.queue.map((m) => (m as { exception_id: string }).exception_id).sort()).toEqual(
      [stale, oldPrompt, fresh].map((e) => e.exception_id).sort(),
    );
    expect(await w.run()).toMatchObject({ triage_plan: { patterns: 0, singletons: 3, members: 0 } });
  });

  it('is idempotent: the same dispatch again re-queues, triages nothing twice and plans the same', async () => {
    const members = [];
    for (let i = 0; i < 5; i++) members.push(await w.put({ pattern: 'pat_a' }));
    await w.put();
    await w.patterns.putAll([w.pattern('pat_a', [members[0]!.exception_id], 5)]);
    w.queue.push({ kind: 'dispatch', run_id: w.runId });
    await w.drain();
    const first = await w.run();
    const calls = w.provider.calls.length;

    // A redelivered dispatch (and the release of a run already dispatched): nothing left to triage.
    w.queue.push({ kind: 'dispatch', run_id: w.runId });
    await w.drain();

    expect(w.provider.calls).toHaveLength(calls);
    // The first pass's plan stands.
    expect(await w.run()).toMatchObject({ triage: first.triage, triage_plan: first.triage_plan });
    expect(first.triage_plan).toEqual({ patterns: 1, singletons: 1, members: 5 });
    // A redelivered pattern message finds the pattern triaged: no second call either.
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_a' });
    await w.drain();
    expect(w.provider.calls).toHaveLength(calls);
  });

  it('dispatches nothing for a run that is held or abandoned', async () => {
    for (const triage of [
      { state: 'HELD', reason: 'r', at: '2026-01-05T09:00:00.000Z' },
      { state: 'ABANDONED', at: '2026-01-05T09:00:00.000Z', by: 'analyst' },
    ] as RunTriageState[]) {
      const held = await world(triage);
      await held.put();
      held.queue.push({ kind: 'dispatch', run_id: held.runId });

      await held.drain();

      expect(held.provider.calls).toEqual([]);
      expect((await held.run()).triage?.state).toBe(triage.state);
      expect(await held.run()).not.toHaveProperty('triage_plan');
    }
  });

  it('dispatches a released run, and accepts the old message body (no kind) as an exception', async () => {
    const released = await world({ state: 'RELEASED', at: '2026-01-05T09:00:00.000Z', by: 'analyst@acme.example' });
    const e = await released.put();
    released.queue.push({ kind: 'dispatch', run_id: released.runId });
    await released.drain();

    expect(await released.run()).toMatchObject({ triage: { state: 'DISPATCHED', by: 'analyst@acme.example' } });
    expect((await released.get(e.exception_id)).triage).toMatchObject({ provider: 'recording' });

    const old = await released.put();
    await released.handler(
      sqsEvent(sqsRecord({ exception_id: old.exception_id, run_id: released.runId, content_hash: old.content_hash })),
      lambdaContext,
    );
    expect((await released.get(old.exception_id)).triage).toMatchObject({ provider: 'recording' });
  });
});

describe('pattern triage', () => {
  let w: Awaited<ReturnType<typeof world>>;
  beforeEach(async () => {
    w = await world();
  });

  it('calls the model once with the statistics, segments and representatives, then members inherit it', async () => {
    const members = [];
    for (let i = 0; i < 10; i++) members.push(await w.put({ pattern: 'pat_jpy' }));
    const reps = members.slice(0, 5).map((m) => m.exception_id);
    await w.patterns.putAll([w.pattern('pat_jpy', reps, 10)]);
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_jpy' });

    const handled = await w.drain();

    expect(w.provider.calls).toHaveLength(1);
    const prompt = w.provider.calls[0]!;
    expect(prompt.user).toContain('<pattern>');
    expect(prompt.user).toContain('"share": 1');
    expect(prompt.user).toContain('"ratio": "100"');
    expect(prompt.user).toContain('"members": 10');
    for (const m of members.slice(0, 5)) expect(prompt.user).toContain(`"trade_id": "${m.key.trade_id}"`);
    expect(prompt.user).not.toContain(`"trade_id": "${members[5]!.key.trade_id}"`);
    expect(prompt.passages.length).toBeGreaterThan(0);

    const saved = (await w.patterns.get(w.runId, 'pat_jpy'))?.triage;
    expect(saved).toMatchObject({
      severity: 'HIGH',
      prompt_version: PATTERN_PROMPT_VERSION,
      pattern_id: 'pat_jpy',
      provider: 'recording',
    });
    expect(saved?.policy_citations.length).toBeGreaterThan(0);
    // 10 members, 4 a message: three member pages.
    expect(handled.filter((m) => m.kind === 'pattern-members')).toHaveLength(3);
    for (const m of members) {
      const stored = await w.get(m.exception_id);
      expect(stored.triage).toMatchObject({
        pattern_id: 'pat_jpy',
        inherited: true,
        content_hash: m.content_hash,
        summary: saved?.summary,
        prompt_version: PATTERN_PROMPT_VERSION,
      });
      expect(stored.severity).toBe('HIGH');
      // The vector it is indexed under, on the item with its triage (one write a member).
      const [own] = await embedder.embed([exceptionEmbeddingText(stored)]);
      expect(storedEmbedding(stored as unknown as Record<string, unknown>)).toEqual({
        vector: Array.from(new Float32Array(own as number[])),
        model: embedder.id,
      });
    }
    // Searchable: each member indexed with the pattern's triage.
    expect(await w.exceptionsIndex.count()).toBe(10);
    const [vector] = await embedder.embed([saved?.summary as string]);
    const hits = await w.exceptionsIndex.search(vector as number[], 10);
    expect(new Set(hits.map((h) => h.id))).toEqual(new Set(members.map((m) => m.exception_id)));
  });

  it('announces a CRITICAL pattern once on the business events topic, not once per member', async () => {
    const announced: BusinessEvent[] = [];
    Object.assign(w.deps, { notifier: { publish: async (e: BusinessEvent) => void announced.push(e) } });
    w.provider.patternSeverity = 'CRITICAL';
    const members = [];
    for (let i = 0; i < 6; i++) members.push(await w.put({ pattern: 'pat_crit' }));
    await w.patterns.putAll([
      w.pattern(
        'pat_crit',
        members.slice(0, 5).map((m) => m.exception_id),
        6,
      ),
    ]);
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_crit' });

    await w.drain();
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_crit' });
    await w.drain();

    expect(announced).toHaveLength(1);
    expect(announced[0]).toMatchObject({ kind: 'critical', severity: 'CRITICAL', run_id: w.runId });
    expect(announced[0]?.text).toContain('6 ');
    expect(announced[0]?.text).toContain('pat_crit');
    for (const m of members) expect((await w.get(m.exception_id)).severity).toBe('CRITICAL');
  });

  it('leaves a member whose content changed after it was listed to its own triage', async () => {
    const members = [];
    for (let i = 0; i < 3; i++) members.push(await w.put({ pattern: 'pat_b' }));
    await w.patterns.putAll([w.pattern('pat_b', [members[0]!.exception_id], 3)]);
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_b' });
    await w.drain();
    // A second pattern: its member changes between the listing and its write.
    const changed = await w.put({ pattern: 'pat_c' });
    const other = await w.put({ pattern: 'pat_c' });
    await w.patterns.putAll([w.pattern('pat_c', [other.exception_id], 2)]);
    const listing = w.deps.listing;
    const racing = {
      ...w.deps,
      listing: {
        patternMembersNeedingTriage: async (...args: Parameters<typeof listing.patternMembersNeedingTriage>) => {
          const page = await listing.patternMembersNeedingTriage(...args);
          await dynamo.doc.send(
            new UpdateCommand({
              TableName: dynamo.names.tables.exceptions,
              Key: { exception_id: changed.exception_id },
              UpdateExpression: 'SET content_hash = :h',
              ExpressionAttributeValues: { ':h': 'changed-since' },
            }),
          );
          return page;
        },
        needingTriage: listing.needingTriage.bind(listing),
      },
    };
    const handler = createHandler(() => racing);
    await handler(sqsEvent(sqsRecord({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_c' })), lambdaContext);
    const members2 = w.queue.splice(0);

    const response = await handler(sqsEvent(...members2.map((m) => sqsRecord(m))), lambdaContext);

    expect(response.batchItemFailures).toEqual([]);
    expect((await w.get(changed.exception_id)).triage).toBeUndefined();
    expect((await w.get(other.exception_id)).triage).toMatchObject({ pattern_id: 'pat_c', inherited: true });
  });

  it('sends a message for an unknown pattern to the DLQ as permanently bad', async () => {
    const dead: string[] = [];
    const handler = createHandler(() => ({ ...w.deps, deadLetter: { send: async (m) => void dead.push(m.code) } }));

    const response = await handler(
      sqsEvent(sqsRecord({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_gone' })),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([]);
    expect(dead).toEqual(['UNKNOWN_PATTERN']);
  });
});

describe('uncited triages asked again when the corpus gains a document', () => {
  let w: Awaited<ReturnType<typeof world>>;
  beforeEach(async () => {
    w = await world();
  });

  /** A triage made while the corpus held nothing to cite (before NOW, the request's time). */
  const uncited = (hash: string, prompt: string, extra: Partial<Triage> = {}) =>
    ({
      content_hash: hash,
      prompt_version: prompt,
      severity: 'MEDIUM',
      summary: 'triaged before the policies were indexed',
      policy_citations: [],
      provider: 'rules',
      model: 'rules',
      triaged_at: '2026-01-05T09:40:00.000Z',
      ...extra,
    }) as unknown as Triage;
  const REQUESTED_AT = '2026-01-05T09:59:00.000Z';
  const inIndex = async () => (await w.deps.uncited.uncited({ limit: 100 })).items.map((e) => e.exception_id).sort();

  it('triages again each open uncited exception once, a pattern in one call for all its members', async () => {
    const members = [];
    for (let i = 0; i < 6; i++) {
      const hash = `m${i}`;
      members.push(
        await w.put({
          pattern: 'pat_jpy',
          hash,
          triage: uncited(hash, PATTERN_PROMPT_VERSION, { pattern_id: 'pat_jpy', inherited: true }),
        }),
      );
    }
    await w.patterns.putAll([w.pattern('pat_jpy', [members[0]!.exception_id], 6)]);
    await w.patterns.saveTriage(w.runId, 'pat_jpy', uncited('pat_jpy', PATTERN_PROMPT_VERSION));
    const single = await w.put({ hash: 's1', triage: uncited('s1', PROMPT_VERSION) });
    const cited = await w.put({
      hash: 's2',
      triage: uncited('s2', PROMPT_VERSION, {
        policy_citations: [{ document: 'd', section: 's', passage_id: 'p', passage: 'text' }],
      }),
    });
    const resolved = await w.put({ hash: 's3', status: 'RESOLVED', triage: uncited('s3', PROMPT_VERSION) });
    const pending = await w.put({ hash: 's4', status: 'PENDING', triage: uncited('s4', PROMPT_VERSION) });
    // by_uncited_sharded holds the uncited ones, whatever their status; the listing, the open ones.
    expect(await inIndex()).toEqual([...members, single].map((e) => e.exception_id).sort());
    w.queue.push({ kind: 'uncited', requested_at: REQUESTED_AT, document: 'runbook.md' });

    const handled = await w.drain();

    // One call for the pattern, one for the singleton.
    expect(w.provider.calls).toHaveLength(2);
    expect(handled.filter((m) => m.kind === 'pattern')).toEqual([
      { kind: 'pattern', run_id: w.runId, pattern_id: 'pat_jpy', requested_at: REQUESTED_AT },
    ]);
    const saved = (await w.patterns.get(w.runId, 'pat_jpy'))?.triage;
    expect(saved?.policy_citations.length).toBeGreaterThan(0);
    for (const e of [...members, single]) {
      const stored = await w.get(e.exception_id);
      expect(stored.triage?.policy_citations.length, e.exception_id).toBeGreaterThan(0);
      expect((stored.triage?.triaged_at ?? '') >= REQUESTED_AT).toBe(true);
      // Out of the index: cited now.
      expect(stored).not.toHaveProperty(TRIAGE_STAMP.uncited);
      expect(stored).not.toHaveProperty('gsi_uncited');
    }
    for (const e of members) expect((await w.get(e.exception_id)).triage).toMatchObject({ summary: saved?.summary });
    // What was cited, closed or waiting for its window is left as it was.
    for (const e of [cited, resolved, pending])
      expect((await w.get(e.exception_id)).triage?.triaged_at).toBe('2026-01-05T09:40:00.000Z');
    expect(await inIndex()).toEqual([]);

    // Redelivered: everything answers the request; no second call.
    w.queue.push({ kind: 'uncited', requested_at: REQUESTED_AT, document: 'runbook.md' });
    w.queue.push({ kind: 'pattern', run_id: w.runId, pattern_id: 'pat_jpy', requested_at: REQUESTED_AT });
    await w.drain();
    expect(w.provider.calls).toHaveLength(2);
  });

  it("reads the index a page at a time, and a dataset's policy asks only that dataset's", async () => {
    const trades = [];
    for (let i = 0; i < 5; i++) trades.push(await w.put({ hash: `t${i}`, triage: uncited(`t${i}`, PROMPT_VERSION) }));
    const payments = await w.put({ hash: 'p0', dataset: 'payments', triage: uncited('p0', PROMPT_VERSION) });
    Object.assign(w.deps, { uncitedPage: 2 });
    w.queue.push({ kind: 'uncited', requested_at: REQUESTED_AT, document: 'datasets/trades.md', dataset: 'trades' });

    const handled = await w.drain();

    expect(handled.filter((m) => m.kind === 'uncited').length).toBeGreaterThanOrEqual(3);
    expect(
      handled
        .filter((m) => m.kind === 'exception')
        .map((m) => (m as { exception_id: string }).exception_id)
        .sort(),
    ).toEqual(trades.map((e) => e.exception_id).sort());
    expect(w.provider.calls).toHaveLength(5);
    expect(await inIndex()).toEqual([payments.exception_id]);
    // A triage that still cites nothing (no passage retrieved for it: a model citing none of
    // those it was given is refused, and the rules cite them): kept in the index for the next document.
    Object.assign(w.deps, { policyIndex: LocalVectorIndex.load(join(vectorDir, `empty-${w.runId}.jsonl`)) });
    w.queue.push({ kind: 'uncited', requested_at: '2026-01-05T09:59:30.000Z', document: 'other.md' });
    await w.drain();
    expect(await inIndex()).toEqual([payments.exception_id]);
    expect((await w.get(payments.exception_id)).triage?.triaged_at).toBe(new Date(NOW).toISOString());
  });

  describe('waits until the documents pushed with it are indexed', () => {
    /** The triage queue as SQS sees it: each send, with its delay. */
    const sends = () => {
      const sent: { messages: TriageQueueMessage[]; delaySeconds: number | undefined }[] = [];
      Object.assign(w.deps, {
        uncitedSettleMs: 120_000,
        triageQueue: {
          send: async (messages: TriageQueueMessage[], options?: { delaySeconds?: number }) =>
            void sent.push({ messages, delaySeconds: options?.delaySeconds }),
        },
      });
      return sent;
    };

    it('puts a young request back on the queue, delayed to its settling time, and asks nothing yet', async () => {
      // (Each test its own dataset: earlier tests leave uncited exceptions in the shared table.)
      const single = await w.put({ hash: 'y1', dataset: 'settle1', triage: uncited('y1', PROMPT_VERSION) });
      const sent = sends();
      // NOW is 60 s after REQUESTED_AT: 60 s of the 120 are left.
      const request = {
        kind: 'uncited',
        requested_at: REQUESTED_AT,
        document: 'datasets/settle1.md',
        dataset: 'settle1',
      } as const;

      expect(await askUncitedAgain(request, w.deps)).toEqual({ outcome: 'SETTLING', delay_seconds: 60 });

      expect(sent).toEqual([{ messages: [request], delaySeconds: 60 }]);
      expect(w.provider.calls).toHaveLength(0);
      expect((await w.get(single.exception_id)).triage?.triaged_at).toBe('2026-01-05T09:40:00.000Z');
    });

    it('asks once settled, and never delays a continuation page', async () => {
      const a = await w.put({ hash: 'z1', dataset: 'settle2', triage: uncited('z1', PROMPT_VERSION) });
      const b = await w.put({ hash: 'z2', dataset: 'settle2', triage: uncited('z2', PROMPT_VERSION) });
      const sent = sends();
      Object.assign(w.deps, { uncitedPage: 1 });
      const settled = new Date(NOW - 120_000).toISOString();

      const first = await askUncitedAgain(
        { kind: 'uncited', requested_at: settled, document: 'datasets/settle2.md', dataset: 'settle2' },
        w.deps,
      );
      expect(first).toMatchObject({ outcome: 'ASKED_AGAIN', exceptions: 1, more: true });
      const next = sent.flatMap((s) => s.messages).find((m) => m.kind === 'uncited');
      expect(next).toMatchObject({ kind: 'uncited', requested_at: settled, cursor: expect.any(String) });
      expect(sent.every((s) => s.delaySeconds === undefined)).toBe(true);

      // A continuation of a young request is read at once: its first page already waited.
      const young = { ...(next as UncitedRequest), requested_at: REQUESTED_AT };
      expect(await askUncitedAgain(young, w.deps)).toMatchObject({ outcome: 'ASKED_AGAIN', exceptions: 1 });
      expect(
        sent
          .flatMap((s) => s.messages)
          .filter((m) => m.kind === 'exception')
          .map((m) => (m as { exception_id: string }).exception_id)
          .sort(),
      ).toEqual([a.exception_id, b.exception_id].sort());
    });

    it('with nothing uncited, neither waits nor sends', async () => {
      await w.put({ hash: 'c1', dataset: 'settle3' });
      const sent = sends();

      expect(
        await askUncitedAgain(
          { kind: 'uncited', requested_at: REQUESTED_AT, document: 'datasets/settle3.md', dataset: 'settle3' },
          w.deps,
        ),
      ).toEqual({ outcome: 'ASKED_AGAIN', exceptions: 0, patterns: 0, more: false });
      expect(sent).toEqual([]);
    });
  });
});

/**
 * The exceptions table's sharded GSIs through the real write paths (recon's putNew and update,
 * triage's saveTriage, the API's PATCH) and the real listing (GET /exceptions on dynalite): every
 * listing pages exactly as one unsharded index sorted by created_at, then exception_id, would —
 * with whole runs sharing one created_at, and statuses changing between pages.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { isOpen, LATE_ARRIVAL_STATUS, OPEN_STATUSES } from '../../functions/shared/exception-lifecycle.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { DynamoExceptionStore, DynamoTriageStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import type { ExceptionBookkeeping } from '../../functions/shared/tables/exceptions.ts';
import { exceptionShard, indexKeyChanges } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { DynamoUncitedListing } from '../../functions/shared/tables/run-exceptions-dynamo.ts';
import { TRIAGE_STAMP, UNCITED_TRIAGE } from '../../functions/shared/resources.ts';
import { updateWithRetry } from '../../functions/store/exception-writes.ts';
import { compareKeys, type StoredItem } from '../../functions/shared/tables/index-query.ts';
import type { ExceptionRecord, ExceptionType, Severity, Triage } from '../../functions/shared/types.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

let dynamo: TestDynamo;
let store: DynamoExceptionStore;
let triage: DynamoTriageStore;

const RUNS = [
  // Two runs stamped with the same created_at: ties across runs as well as within one.
  { runId: 'run-a', dataset: 'trades', date: '2025-12-10', at: '2025-12-10T08:00:00.000Z', n: 90 },
  { runId: 'run-b', dataset: 'payments', date: '2025-12-10', at: '2025-12-10T08:00:00.000Z', n: 60 },
  { runId: 'run-c', dataset: 'trades', date: '2025-12-11', at: '2025-12-11T08:00:00.000Z', n: 70 },
];
const TYPES: ExceptionType[] = ['AMOUNT_MISMATCH', 'MISSING_IN_TARGET', 'MISSING_IN_SOURCE'];

function record(run: (typeof RUNS)[number], i: number): ExceptionRecord & ExceptionBookkeeping {
  const type = TYPES[i % TYPES.length] as ExceptionType;
  const key = { trade_id: `${run.runId}-${i}` };
  return {
    exception_id: exceptionId(run.dataset, run.date, type, JSON.stringify(key)),
    run_id: run.runId,
    dataset: run.dataset,
    business_date: run.date,
    exception_type: type,
    key,
    source: key,
    target: null,
    diffs: [],
    lines: { source: [i + 2], target: [] },
    policy_severity: 'MEDIUM',
    status: 'OPEN',
    created_at: run.at,
    updated_at: run.at,
    version: 1,
    history: [],
    content_hash: `h-${run.runId}-${i}`,
    last_changed_run_id: run.runId,
    // Owners, due dates, patterns and other rows on some: what the listing's other filters read.
    // (Owners on odd and even items alike, so every other filter meets each owner index.)
    ...(i % 4 === 1
      ? { assignee: 'ana1', team: 'ops' }
      : i % 4 === 2 || i % 8 === 0
        ? { assignee: 'ben', team: 'risk' }
        : i % 8 === 3
          ? { assignee: 'cy' }
          : {}),
    ...(i % 2 === 0 ? { due_at: `2025-12-1${i % 6}T00:00:00.000Z` } : {}),
    ...(i % 5 === 0 ? { pattern_id: `pat_${run.runId === 'run-b' ? 'b' : 'a'}${'0'.repeat(15)}` } : {}),
    ...(i % 2 === 0 ? { target: { trade_id: key.trade_id, account_id: `ACCT${i % 4}` } } : {}),
  };
}

function triageOf(severity: Severity, contentHash: string): Triage {
  return {
    severity,
    summary: 's',
    recommended_actions: [],
    root_cause_hypotheses: [],
    policy_citations: [],
    rejected_citations: [],
    provider: 'rules',
    model: 'rules-v1',
    triaged_at: '2025-12-12T00:00:00.000Z',
    degraded: false,
    prompt_version: 'p',
    policy_version: 'v',
    content_hash: contentHash,
    attempts: [],
  };
}

function call(method: string, path: string, query: Record<string, string> = {}, body?: unknown) {
  const deps = {
    store: queryStoreOf(dynamo),
    paginationSecret: 'sharded-test-secret',
    corsOrigins: ['*'],
    localIdentity: 'analyst',
    now: () => Date.parse('2025-12-12T09:00:00.000Z'),
    healthChecks: [],
    exceptionsIndex: { updateFields: async () => undefined },
  } as unknown as QueryApiDeps;
  const event = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: { 'content-type': 'application/json' },
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
      requestId: 'req',
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
  return createHandler(() => deps)(event, lambdaContext).then((r) => {
    const res = r as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  });
}

async function baseTable(): Promise<StoredItem[]> {
  const items: StoredItem[] = [];
  let cursor: Record<string, unknown> | undefined;
  do {
    const out = await dynamo.doc.send(
      new ScanCommand({ TableName: dynamo.names.tables.exceptions, ExclusiveStartKey: cursor }),
    );
    items.push(...(out.Items ?? []));
    cursor = out.LastEvaluatedKey;
  } while (cursor);
  return items;
}

type Filters = Record<string, string>;

/** One unsharded index over the base table: matching items, newest first, ties by exception_id descending. */
function reference(items: StoredItem[], filters: Filters, after?: StoredItem): string[] {
  const sortOf = (i: StoredItem) => `${String(i.created_at)}#${String(i.exception_id)}`;
  return items
    .filter((i) => Object.entries(filters).every(([k, v]) => i[k] === v))
    .filter((i) => after === undefined || compareKeys(sortOf(i), sortOf(after)) < 0)
    .sort((a, b) => compareKeys(sortOf(b), sortOf(a)))
    .map((i) => String(i.exception_id));
}

async function listAll(filters: Filters, limit: number) {
  const pages: { exception_id: string }[][] = [];
  let token: string | undefined;
  do {
    const res = await call('GET', '/exceptions', {
      ...filters,
      limit: String(limit),
      ...(token ? { next_token: token } : {}),
    });
    expect(res.status).toBe(200);
    pages.push(res.body.items);
    token = res.body.next_token ?? undefined;
  } while (token);
  return pages.map((p) => p.map((i) => i.exception_id));
}

beforeAll(async () => {
  dynamo = await startTestDynamo();
  store = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
  triage = new DynamoTriageStore(dynamo.doc, dynamo.names.tables.exceptions);
  const records = RUNS.flatMap((run) => Array.from({ length: run.n }, (_, i) => record(run, i)));
  await store.putNew(records);
  // Triage sets a severity on a third of them; an analyst acknowledges every fifth; recon resolves
  // every seventh of run-a (no longer found); a re-run (run-d) finds every sixth of run-c again.
  for (const [i, r] of records.entries()) {
    if (i % 3 === 0)
      await triage.saveTriage(r.exception_id, triageOf(i % 2 ? 'HIGH' : 'LOW', r.content_hash), r.content_hash);
    if (i % 5 === 0) {
      const res = await call('PATCH', `/exceptions/${r.exception_id}`, {}, { status: 'ACKNOWLEDGED', version: 1 });
      expect(res.status).toBe(200);
    }
  }
  for (const r of records) {
    const state = (await store.getStates([r.exception_id])).get(r.exception_id);
    if (!state) throw new Error('missing');
    const n = Number(String(r.key.trade_id).split('-').at(-1));
    if (r.run_id === 'run-a' && n % 7 === 0)
      expect(
        await store.update({
          exceptionId: r.exception_id,
          expectedVersion: state.version,
          bumpVersion: true,
          set: { status: 'RESOLVED', resolved_by_system: true },
          history: [],
        }),
      ).toBe(true);
    if (r.run_id === 'run-c' && n % 6 === 0)
      expect(
        await store.update({
          exceptionId: r.exception_id,
          expectedVersion: state.version,
          bumpVersion: false,
          set: { run_id: 'run-d' },
          history: [],
        }),
      ).toBe(true);
  }
}, 120_000);

afterAll(async () => {
  await dynamo.stop();
});

describe('index keys follow every write', () => {
  it('gives each exception one shard, the same in every index it is in', async () => {
    for (const item of await baseTable()) {
      const suffix = `#${String(exceptionShard(String(item.exception_id))).padStart(2, '0')}`;
      expect(item.gsi_status).toBe(`${String(item.status)}${suffix}`);
      expect(item.gsi_type).toBe(`${String(item.exception_type)}${suffix}`);
      expect(item.gsi_run).toBe(`${String(item.run_id)}${suffix}`);
      expect(item.gsi_dataset_date).toBe(`${String(item.dataset_date)}${suffix}`);
      expect(item.gsi_created).toBe(`EXCEPTION${suffix}`);
      expect(item.gsi_severity).toBe(item.severity === undefined ? undefined : `${String(item.severity)}${suffix}`);
      expect(item.gsi_sort).toBe(`${String(item.created_at)}#${String(item.exception_id)}`);
      // by_uncited_sharded: only while open (recon resolved some of the uncited ones).
      const uncited = item[TRIAGE_STAMP.uncited];
      expect(item.gsi_uncited).toBe(
        uncited !== undefined && isOpen(String(item.status)) ? `${String(uncited)}${suffix}` : undefined,
      );
    }
    const stamped = (await baseTable()).filter((i) => i[TRIAGE_STAMP.uncited] !== undefined);
    expect(stamped.filter((i) => i.status === 'RESOLVED').length).toBeGreaterThan(1);
    expect(stamped.filter((i) => i.status === 'ACKNOWLEDGED').length).toBeGreaterThan(0);
  });

  it('takes a closed exception out of by_uncited_sharded, and puts a reopened one back', async () => {
    // Prepare: two resolved exceptions whose triage cites nothing (their stamps kept, their keys gone).
    const [byAnalyst, byRecon] = (await baseTable()).filter(
      (i) => i.status === 'RESOLVED' && i[TRIAGE_STAMP.uncited] !== undefined,
    ) as [StoredItem, StoredItem];
    const keyOf = async (item: StoredItem) =>
      (
        await dynamo.doc.send(
          new GetCommand({ TableName: dynamo.names.tables.exceptions, Key: { exception_id: item.exception_id } }),
        )
      ).Item?.gsi_uncited;
    const expectedKey = (item: StoredItem) =>
      `${UNCITED_TRIAGE}#${String(exceptionShard(String(item.exception_id))).padStart(2, '0')}`;
    expect(await keyOf(byAnalyst)).toBeUndefined();
    // A triage saved while it is closed (a retriage) does not put it back.
    const hash = String(byAnalyst.content_hash);
    expect(
      await triage.saveTriage(String(byAnalyst.exception_id), triageOf('LOW', hash), hash, {}, undefined, 'RESOLVED'),
    ).toBe(true);
    expect(await keyOf(byAnalyst)).toBeUndefined();

    // Act: an analyst reopens one (the API's PATCH); recon reopens the other from the state it
    // lists by index, which does not carry the stamp.
    const res = await call(
      'PATCH',
      `/exceptions/${String(byAnalyst.exception_id)}`,
      {},
      { status: 'OPEN', version: Number(byAnalyst.version) },
    );
    expect(res.status).toBe(200);
    const state = (await store.listStatesForDate(String(byRecon.dataset), String(byRecon.business_date))).find(
      (s) => s.exception_id === byRecon.exception_id,
    );
    if (!state) throw new Error('not listed');
    expect(state).not.toHaveProperty(TRIAGE_STAMP.uncited);
    expect(
      await updateWithRetry(store, state, (s) => ({
        exceptionId: s.exception_id,
        expectedVersion: s.version,
        bumpVersion: true,
        set: { status: 'OPEN', resolved_by_system: false },
        history: [],
      })),
    ).toBe(true);

    // Assess: both back in the index, where the uncited sweep lists them.
    expect(await keyOf(byAnalyst)).toBe(expectedKey(byAnalyst));
    expect(await keyOf(byRecon)).toBe(expectedKey(byRecon));
    const listed: string[] = [];
    const listing = new DynamoUncitedListing(dynamo.doc, dynamo.names.tables.exceptions);
    let cursor: string | undefined;
    do {
      const page = await listing.uncited({ limit: 100, ...(cursor ? { cursor } : {}) });
      listed.push(...page.items.map((i) => i.exception_id));
      cursor = page.cursor;
    } while (cursor);
    expect(listed).toEqual(expect.arrayContaining([byAnalyst.exception_id, byRecon.exception_id]));
    // Reopening without what the item held is refused, never left out of the index for good.
    expect(() => indexKeyChanges('e', { status: 'OPEN' }, [], { status: 'RESOLVED' })).toThrow(/as read/);
  });

  it('uses every shard for one run', async () => {
    const shards = new Set(
      (await baseTable()).filter((i) => i.run_id === 'run-a').map((i) => String(i.gsi_run).slice(-2)),
    );
    expect(shards.size).toBe(16);
  });

  it('moves an exception between partitions when its status, run or severity changes', async () => {
    const items = await baseTable();
    const moved = items.find((i) => i.status === 'ACKNOWLEDGED') as StoredItem;
    const rerun = items.find((i) => i.run_id === 'run-d') as StoredItem;
    const resolved = items.find((i) => i.status === 'RESOLVED') as StoredItem;

    const open = await listAll({ status: 'OPEN' }, 200);
    const acknowledged = await listAll({ status: 'ACKNOWLEDGED' }, 200);
    const runC = await listAll({ run_id: 'run-c' }, 200);
    const runD = await listAll({ run_id: 'run-d' }, 200);
    const resolvedList = await listAll({ status: 'RESOLVED' }, 200);

    expect(open.flat()).not.toContain(moved.exception_id);
    expect(acknowledged.flat()).toContain(moved.exception_id);
    expect(runC.flat()).not.toContain(rerun.exception_id);
    expect(runD.flat()).toContain(rerun.exception_id);
    expect(resolvedList.flat()).toContain(resolved.exception_id);
  });

  it('keeps an update that sets no indexed attribute from touching the index keys', async () => {
    const [item] = await baseTable();
    const id = String((item as StoredItem).exception_id);
    const state = (await store.getStates([id])).get(id);
    await store.update({
      exceptionId: id,
      expectedVersion: state?.version as number,
      bumpVersion: false,
      set: { last_seen_at: '2025-12-12T00:00:00.000Z' },
      history: [],
    });

    const after = (
      await dynamo.doc.send(new GetCommand({ TableName: dynamo.names.tables.exceptions, Key: { exception_id: id } }))
    ).Item;
    expect(after?.gsi_status).toBe((item as StoredItem).gsi_status);
    expect(after?.gsi_run).toBe((item as StoredItem).gsi_run);
  });
});

describe('GET /exceptions over the sharded indexes', () => {
  const FILTERS: Filters[] = [
    {},
    { status: 'OPEN' },
    { status: 'ACKNOWLEDGED', exception_type: 'AMOUNT_MISMATCH' },
    { exception_type: 'MISSING_IN_TARGET' },
    { run_id: 'run-a' },
    { run_id: 'run-d', status: 'OPEN' },
    { dataset: 'trades', business_date: '2025-12-10' },
    { dataset: 'trades' },
    { severity: 'HIGH' },
    { severity: 'LOW', status: 'ACKNOWLEDGED', dataset: 'payments' },
  ];

  it.each(FILTERS)(
    'lists %j page by page exactly as one unsharded index would',
    async (filters) => {
      const expected = reference(await baseTable(), filters);
      expect(expected.length).toBeGreaterThan(0);

      // Pages of one item only where they are few: each page is 16 queries on dynalite.
      for (const limit of expected.length <= 40 ? [1, 7, 50] : [7, 50]) {
        const pages = await listAll(filters, limit);

        expect(pages.flat()).toEqual(expected);
        const full = Array.from({ length: Math.ceil(expected.length / limit) }, (_, i) =>
          Math.min(limit, expected.length - i * limit),
        );
        expect(pages.map((p) => p.length)).toEqual(full);
      }
    },
    120_000,
  );

  it('pages on from its position when statuses change between pages, as an unsharded index would', async () => {
    const filters = { status: 'OPEN' };
    const limit = 9;
    let token: string | undefined;
    let last: StoredItem | undefined;
    let pagesRead = 0;
    do {
      const state = await baseTable();
      const expectedPage = reference(state, filters, last).slice(0, limit);
      const res = await call('GET', '/exceptions', {
        ...filters,
        limit: String(limit),
        ...(token ? { next_token: token } : {}),
      });
      const page = (res.body.items as { exception_id: string }[]).map((i) => i.exception_id);
      expect(page).toEqual(expectedPage);
      pagesRead++;
      token = res.body.next_token ?? undefined;
      last = state.find((i) => i.exception_id === page.at(-1));

      // Between pages an analyst acknowledges one exception already listed and two not yet listed:
      // those two must not appear on a later page.
      const ahead = reference(await baseTable(), filters, last).slice(2, 4);
      for (const id of [page[0], ...ahead]) {
        if (id === undefined) continue;
        const current = state.find((i) => i.exception_id === id) as StoredItem;
        const patched = await call(
          'PATCH',
          `/exceptions/${id}`,
          {},
          { status: 'ACKNOWLEDGED', version: Number(current.version) },
        );
        expect(patched.status).toBe(200);
      }
    } while (token);
    expect(pagesRead).toBeGreaterThan(3);
  });
});

describe('every listing filter on every index (the indexes project what the filters read)', () => {
  const NOW = Date.parse('2025-12-12T09:00:00.000Z');
  const hasField = (i: StoredItem, field: string, value: string) =>
    [i.key, i.source, i.target].some((row) => (row as Filters | null)?.[field] === value);
  /** What listing.ts's filters mean, over the base table's whole items. */
  const OTHER_FILTERS: [Filters, (i: StoredItem) => boolean][] = [
    [{ status: 'ACKNOWLEDGED' }, (i) => i.status === 'ACKNOWLEDGED'],
    [{ exception_type: 'AMOUNT_MISMATCH' }, (i) => i.exception_type === 'AMOUNT_MISMATCH'],
    [{ severity: 'HIGH' }, (i) => i.severity === 'HIGH'],
    [{ dataset: 'trades' }, (i) => i.dataset === 'trades'],
    // (business_date alone is refused: it goes with dataset, which picks by_dataset_date_sharded.)
    [{ run_id: 'run-a' }, (i) => i.run_id === 'run-a'],
    [{ pattern_id: `pat_a${'0'.repeat(15)}` }, (i) => i.pattern_id === `pat_a${'0'.repeat(15)}`],
    [{ assignee: 'ana1' }, (i) => i.assignee === 'ana1'],
    [{ team: 'ops' }, (i) => i.team === 'ops'],
    [{ date_from: '2025-12-11' }, (i) => String(i.business_date) >= '2025-12-11'],
    [{ date_to: '2025-12-10' }, (i) => String(i.business_date) <= '2025-12-10'],
    [
      { overdue: 'true' },
      (i) =>
        typeof i.due_at === 'string' &&
        Date.parse(i.due_at) <= NOW &&
        OPEN_STATUSES.some((s) => s === i.status && s !== LATE_ARRIVAL_STATUS),
    ],
    // A field of the key, and of the target row only.
    [{ field: 'trade_id', value: 'run-a-0' }, (i) => hasField(i, 'trade_id', 'run-a-0')],
    [{ field: 'account_id', value: 'ACCT2' }, (i) => hasField(i, 'account_id', 'ACCT2')],
  ];
  /** A filter that makes listing.ts choose each index, with the values of a given item. */
  const INDEX_CHOOSERS: [string, (i: StoredItem) => Filters | undefined][] = [
    ['by_created_sharded', () => ({})],
    ['by_status_sharded', (i) => ({ status: String(i.status) })],
    ['by_type_sharded', (i) => ({ exception_type: String(i.exception_type) })],
    ['by_severity_sharded', (i) => (i.severity === undefined ? undefined : { severity: String(i.severity) })],
    ['by_run_sharded', (i) => ({ run_id: String(i.run_id) })],
    ['by_dataset_date_sharded', (i) => ({ dataset: String(i.dataset), business_date: String(i.business_date) })],
    ['by_pattern_sharded', (i) => (i.pattern_id === undefined ? undefined : { pattern_id: String(i.pattern_id) })],
    ['by_assignee_sharded', (i) => (i.assignee === undefined ? undefined : { assignee: String(i.assignee) })],
    ['by_team_sharded', (i) => (i.team === undefined ? undefined : { team: String(i.team) })],
  ];
  const cases = OTHER_FILTERS.flatMap(([filter, matches]) =>
    INDEX_CHOOSERS.map(([index, choose]) => ({ filter, matches, index, choose })),
  );

  it.each(cases)(
    '$index with $filter lists every matching item',
    async ({ filter, matches, choose }) => {
      const items = await baseTable();
      // The index's partition taken from an item the filter matches, so the answer is never empty.
      const chooser = items.filter(matches).flatMap((i) => {
        const c = choose(i);
        return c === undefined ? [] : [c];
      })[0];
      if (chooser === undefined) throw new Error('the fixture has no item this filter matches in this index');
      const filters = { ...chooser, ...filter };
      const expected = items
        .filter((i) => Object.entries(chooser).every(([k, v]) => i[k] === v) && matches(i))
        .map((i) => String(i.exception_id))
        .sort();
      expect(expected.length).toBeGreaterThan(0);

      const listed = (await listAll(filters, 100)).flat();

      expect([...listed].sort()).toEqual(expected);
    },
    60_000,
  );
});

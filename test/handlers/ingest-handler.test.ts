import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { createHandler, defaultDeps } from '../../functions/ingest-worker/handler.ts';
import { startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { mockS3Objects } from '../support/s3-objects.ts';
import { mockSqsSends } from '../support/sqs-sends.ts';
import { lambdaContext, objectCreated, sqsEvent, sqsRecord } from '../support/events.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { createEmbedder, createVectorIndex } from '../../functions/shared/search/factory.ts';

const SOURCE = readFileSync(`${SAMPLE_DIR}source.csv`, 'utf8');
const TARGET = readFileSync(`${SAMPLE_DIR}target.csv`, 'utf8');

let dynamo: TestDynamo;
let dateCounter = 0;

beforeAll(async () => {
  dynamo = await startTestDynamo();
});
afterAll(async () => {
  await dynamo.stop();
});

/** A fresh business date per test keeps tests independent on the shared tables. */
function nextKeys() {
  const date = `2025-01-${String(++dateCounter).padStart(2, '0')}`;
  return { source: `incoming/trades/${date}/source.csv`, target: `incoming/trades/${date}/target.csv`, date };
}

function setup() {
  const objects = mockS3Objects();
  const sqs = mockSqsSends();
  const handler = createHandler(defaultDeps);
  const invoke = (...records: ReturnType<typeof sqsRecord>[]) => handler(sqsEvent(...records), lambdaContext);
  /** A Lambda container handles one invocation at a time: concurrency means separate instances. */
  const invokeInNewContainer = (...records: ReturnType<typeof sqsRecord>[]) =>
    createHandler(defaultDeps)(sqsEvent(...records), lambdaContext);
  const reconRequests = () => sqs.bodiesTo('-recon');
  const triageRequests = () => sqs.bodiesTo('-triage');
  return { objects, invoke, invokeInNewContainer, reconRequests, triageRequests };
}

describe('ingest worker handler', () => {
  let env: ReturnType<typeof setup>;
  beforeEach(() => {
    env = setup();
  });

  it('asks for one recon run once both sides of a dataset and date are accepted', async () => {
    const keys = nextKeys();
    const sourceEtag = env.objects.put(keys.source, SOURCE);
    const targetEtag = env.objects.put(keys.target, TARGET);

    const first = await env.invoke(sqsRecord(objectCreated(keys.source, sourceEtag)));
    expect(env.reconRequests()).toHaveLength(0);
    const second = await env.invoke(sqsRecord(objectCreated(keys.target, targetEtag)));

    expect(first.batchItemFailures).toEqual([]);
    expect(second.batchItemFailures).toEqual([]);
    const [request] = env.reconRequests();
    expect(env.reconRequests()).toHaveLength(1);
    expect(request).toMatchObject({
      dataset: 'trades',
      business_date: keys.date,
      source: { key: keys.source, etag: sourceEtag },
      target: { key: keys.target, etag: targetEtag },
    });
    const file = await dynamo.doc.send(
      new GetCommand({
        TableName: dynamo.names.tables.files,
        Key: { dataset_date: `trades#${keys.date}`, side: 'source' },
      }),
    );
    expect(file.Item).toMatchObject({ status: 'ACCEPTED', rows: 20, etag: sourceEtag, side: 'source' });
  });

  it('ingests an event delivered five times in sequence exactly once, whatever the messageId', async () => {
    const keys = nextKeys();
    const sourceEtag = env.objects.put(keys.source, SOURCE);
    const targetEtag = env.objects.put(keys.target, TARGET);
    await env.invoke(sqsRecord(objectCreated(keys.source, sourceEtag)));
    const event = objectCreated(keys.target, targetEtag);

    for (let i = 0; i < 5; i++) {
      const response = await env.invoke(sqsRecord(event));
      expect(response.batchItemFailures).toEqual([]);
    }

    expect(env.objects.reads.filter((k) => k === keys.target)).toHaveLength(1);
    expect(env.reconRequests()).toHaveLength(1);
  });

  it('ingests an event delivered five times concurrently exactly once; the losers retry into duplicates', async () => {
    const keys = nextKeys();
    const sourceEtag = env.objects.put(keys.source, SOURCE);
    const targetEtag = env.objects.put(keys.target, TARGET);
    await env.invoke(sqsRecord(objectCreated(keys.source, sourceEtag)));
    const event = objectCreated(keys.target, targetEtag);

    const responses = await Promise.all(Array.from({ length: 5 }, () => env.invokeInNewContainer(sqsRecord(event))));
    const failed = responses.flatMap((r) => r.batchItemFailures);
    // Deliveries that found the ingest in progress fail transiently and come back later.
    const retried = await Promise.all(failed.map(() => env.invoke(sqsRecord(event))));

    expect(failed.length).toBeLessThan(5);
    expect(retried.flatMap((r) => r.batchItemFailures)).toEqual([]);
    expect(env.objects.reads.filter((k) => k === keys.target)).toHaveLength(1);
    expect(env.reconRequests()).toHaveLength(1);
  });

  it('treats a message redriven from the DLQ (new messageId) after success as a duplicate', async () => {
    const keys = nextKeys();
    const etag = env.objects.put(keys.source, SOURCE);
    const event = objectCreated(keys.source, etag);
    await env.invoke(sqsRecord(event, 'original-id'));

    const response = await env.invoke(sqsRecord(event, 'redriven-id'));

    expect(response.batchItemFailures).toEqual([]);
    expect(env.objects.reads.filter((k) => k === keys.source)).toHaveLength(1);
  });

  it('treats a new upload of the same key with different content as a new ingest and a new run', async () => {
    const keys = nextKeys();
    await env.invoke(sqsRecord(objectCreated(keys.source, env.objects.put(keys.source, SOURCE))));
    await env.invoke(sqsRecord(objectCreated(keys.target, env.objects.put(keys.target, TARGET))));

    const corrected = TARGET.replace('T0005,ACCT1004,2025-12-03,475.00', 'T0005,ACCT1004,2025-12-03,450.00');
    const newEtag = env.objects.put(keys.target, corrected);
    await env.invoke(sqsRecord(objectCreated(keys.target, newEtag)));

    const requests = env.reconRequests();
    expect(requests).toHaveLength(2);
    expect(requests[1].target.etag).toBe(newEtag);
    expect(requests[1].run_id).not.toBe(requests[0].run_id);
  });

  it('ingests five copies of one event in the same batch once', async () => {
    const keys = nextKeys();
    const event = objectCreated(keys.source, env.objects.put(keys.source, SOURCE));

    const response = await env.invoke(...Array.from({ length: 5 }, () => sqsRecord(event)));
    await Promise.all(response.batchItemFailures.map(() => env.invoke(sqsRecord(event))));

    expect(env.objects.reads.filter((k) => k === keys.source)).toHaveLength(1);
  });

  it('splits a policy document into passages, indexes them, skips an unchanged re-upload and replaces a changed one', async () => {
    const index = createVectorIndex('policies');
    const doc =
      '# Runbook\n\n## Amount mismatch (AMOUNT_MISMATCH)\n\n### What to check\n\n- Compare fees.\n\n### Likely causes\n\n- Fees.\n';
    const key = `policies/runbook-${++dateCounter}.md`;
    const first = env.objects.put(key, doc);

    await env.invoke(sqsRecord(objectCreated(key, first)));
    const afterFirst = await index.count({ source_key: key });
    await env.invoke(sqsRecord(objectCreated(key, first)));
    const readsAfterSame = env.objects.reads.filter((k) => k === key).length;
    const changed = env.objects.put(key, `${doc}\n### Owner and escalation\n\nTrade Support.\n`);
    await env.invoke(sqsRecord(objectCreated(key, changed)));

    expect(afterFirst).toBe(2);
    expect(readsAfterSame).toBe(1);
    expect(await index.count({ source_key: key })).toBe(3);
    const [vector] = await createEmbedder().embed(['what to check amount mismatch']);
    const [hit] = await index.search(vector as number[], 1, { source_key: key });
    expect(hit?.fields).toMatchObject({
      document: key.slice('policies/'.length),
      section: 'Runbook › Amount mismatch (AMOUNT_MISMATCH) › What to check',
      exception_types: 'AMOUNT_MISMATCH',
      etag: changed,
    });
    expect(env.reconRequests()).toHaveLength(0);
    // Each version indexed asks the exceptions triaged without a citation to be triaged again
    // (functions/triage/uncited.ts); the unchanged re-upload asks nothing.
    expect(env.triageRequests()).toEqual([
      { kind: 'uncited', requested_at: expect.any(String), document: key.slice('policies/'.length) },
      { kind: 'uncited', requested_at: expect.any(String), document: key.slice('policies/'.length) },
    ]);
  });

  it('fails only the poison message in a batch and lets the others through', async () => {
    const keys = nextKeys();
    const etag = env.objects.put(keys.source, SOURCE);

    const response = await env.invoke(
      sqsRecord(objectCreated(keys.source, etag), 'good'),
      sqsRecord('{not json', 'poison'),
      sqsRecord({ hello: 'world' }, 'wrong-shape'),
    );

    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['poison', 'wrong-shape']);
    expect(env.objects.reads).toContain(keys.source);
  });

  it.each([
    ['outside incoming/', 'uploads/trades/2025-12-10/source.csv'],
    ['an unknown side', 'incoming/trades/2025-12-10/middle.csv'],
    ['a date that is not a calendar date', 'incoming/trades/2025-02-30/source.csv'],
    ['a dataset with a slash or dot', 'incoming/../trades/2025-12-10/source.csv'],
  ])('rejects a key %s without touching the file', async (_why, key) => {
    const response = await env.invoke(sqsRecord(objectCreated(key, 'abc'), 'bad-key'));

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'bad-key' }]);
    expect(env.objects.reads).toEqual([]);
  });

  it.each([
    [
      'a semicolon-delimited file',
      'trade_id;account_id;trade_date;amount\nT1;A;2025-12-01;1.00\n',
      'MISSING_COLUMNS',
      /semicolon/,
    ],
    [
      'a file missing the amount column',
      'trade_id,account_id,trade_date\nT1,A,2025-12-01\n',
      'MISSING_COLUMNS',
      /amount/,
    ],
    ['an empty file', '', 'FILE_EMPTY', /empty/],
    ['a UTF-16 file', Buffer.from('\ufefftrade_id,account_id,trade_date,amount\n', 'utf16le'), 'ENCODING', /UTF-16/],
    [
      'a file with an unclosed quote',
      'trade_id,account_id,trade_date,amount\nT1,"A,2025-12-01,1.00\n',
      'CSV_UNCLOSED_QUOTE',
      /never closed/,
    ],
  ])('records %s as rejected with its error and asks for no run', async (_why, content, code, message) => {
    const keys = nextKeys();
    await env.invoke(sqsRecord(objectCreated(keys.source, env.objects.put(keys.source, SOURCE))));
    const body = typeof content === 'string' ? content : Buffer.concat([Buffer.from([0xff, 0xfe]), content]);
    const etag = env.objects.put(keys.target, body);

    const response = await env.invoke(sqsRecord(objectCreated(keys.target, etag)));

    expect(response.batchItemFailures).toEqual([]);
    expect(env.reconRequests()).toHaveLength(0);
    const file = await dynamo.doc.send(
      new GetCommand({
        TableName: dynamo.names.tables.files,
        Key: { dataset_date: `trades#${keys.date}`, side: 'target' },
      }),
    );
    expect(file.Item).toMatchObject({ status: 'REJECTED', error: { code } });
    expect(file.Item?.error.message).toMatch(message);
    expect(file.Item?.error.line).toBeGreaterThanOrEqual(1);
  });
});

describe('ingest worker: what the files table says about each upload', () => {
  let env: ReturnType<typeof setup>;
  beforeEach(() => {
    env = setup();
  });
  const fileOf = async (date: string, side: 'source' | 'target') =>
    (
      await dynamo.doc.send(
        new GetCommand({ TableName: dynamo.names.tables.files, Key: { dataset_date: `trades#${date}`, side } }),
      )
    ).Item;
  const HEADER_ONLY = 'trade_id,account_id,trade_date,amount\n';

  it('records when the object was uploaded (the S3 event time) beside when it was ingested', async () => {
    const keys = nextKeys();
    const event = { ...objectCreated(keys.source, env.objects.put(keys.source, SOURCE)), time: '2025-12-10T07:59:58Z' };

    await env.invoke(sqsRecord(event));

    expect(await fileOf(keys.date, 'source')).toMatchObject({
      status: 'ACCEPTED',
      uploaded_at: '2025-12-10T07:59:58.000Z',
      ingested_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });
  });

  it('rejects a header-only file as EMPTY_FILE and asks for no run', async () => {
    const keys = nextKeys();
    await env.invoke(sqsRecord(objectCreated(keys.source, env.objects.put(keys.source, SOURCE))));

    const response = await env.invoke(sqsRecord(objectCreated(keys.target, env.objects.put(keys.target, HEADER_ONLY))));

    expect(response.batchItemFailures).toEqual([]);
    expect(env.reconRequests()).toHaveLength(0);
    expect(await fileOf(keys.date, 'target')).toMatchObject({
      status: 'REJECTED',
      rows: 0,
      error: { code: 'EMPTY_FILE', message: expect.stringMatching(/header but no data rows/) },
    });
  });

  it('accepts a header-only side and reconciles it when the policy allows empty sides', async () => {
    const keys = nextKeys();
    const text = readFileSync(`${REPO_ROOT}policies/datasets/trades.md`, 'utf8').replace(
      '"policy_version"',
      '"allow_empty_sides": true,\n  "policy_version"',
    );
    await env.invoke(
      sqsRecord(objectCreated('policies/datasets/trades.md', env.objects.put('policies/datasets/trades.md', text))),
    );
    const invoke = (record: ReturnType<typeof sqsRecord>) => env.invoke(record);
    await invoke(sqsRecord(objectCreated(keys.source, env.objects.put(keys.source, SOURCE))));

    await invoke(sqsRecord(objectCreated(keys.target, env.objects.put(keys.target, HEADER_ONLY))));

    expect(await fileOf(keys.date, 'target')).toMatchObject({ status: 'ACCEPTED', rows: 0 });
    expect(env.reconRequests()).toHaveLength(1);
  });

  it("puts a dataset's policy upload in force once it validates, and checks that dataset's extracts against it", async () => {
    const keys = nextKeys();
    const fx = (k: string) => k.replace('incoming/trades/', 'incoming/fx/');
    const policy = readFileSync(`${REPO_ROOT}policies/datasets/trades.md`, 'utf8').replace(
      '"dataset": "trades"',
      '"dataset": "fx"',
    );
    const before = await env.invoke(
      sqsRecord(objectCreated(fx(keys.source), env.objects.put(fx(keys.source), SOURCE))),
    );

    const pushed = await env.invoke(
      sqsRecord(objectCreated('policies/datasets/fx.md', env.objects.put('policies/datasets/fx.md', policy))),
    );
    await env.invoke(sqsRecord(objectCreated(fx(keys.source), env.objects.put(fx(keys.source), `${SOURCE}\n`))));

    expect(before.batchItemFailures).toEqual([]);
    expect(pushed.batchItemFailures).toEqual([]);
    expect(env.objects.text('policies-in-force/fx.md')).toBe(policy);
    // A dataset's policy: only that dataset's uncited triages are asked again (retrieval leaves
    // other datasets' policies out of their prompts).
    expect(env.triageRequests()).toEqual([
      { kind: 'uncited', requested_at: expect.any(String), document: 'datasets/fx.md', dataset: 'fx' },
    ]);
    expect(await createVectorIndex('policies').count({ source_key: 'policies/datasets/fx.md' })).toBeGreaterThan(0);
    const file = await dynamo.doc.send(
      new GetCommand({
        TableName: dynamo.names.tables.files,
        Key: { dataset_date: `fx#${keys.date}`, side: 'source' },
      }),
    );
    expect(file.Item).toMatchObject({ status: 'ACCEPTED', rows: 20 });
  });

  it('refuses an extract of a dataset with no policy, naming the file to upload', async () => {
    const keys = nextKeys();
    const key = keys.source.replace('incoming/trades/', 'incoming/nopolicy/');

    await env.invoke(sqsRecord(objectCreated(key, env.objects.put(key, SOURCE))));

    const file = await dynamo.doc.send(
      new GetCommand({
        TableName: dynamo.names.tables.files,
        Key: { dataset_date: `nopolicy#${keys.date}`, side: 'source' },
      }),
    );
    expect(file.Item).toMatchObject({
      status: 'REJECTED',
      error: { code: 'NO_POLICY', message: expect.stringContaining('upload policies/datasets/nopolicy.md first') },
    });
  });

  it('refuses a policy that does not validate, naming every problem, and keeps the version in force', async () => {
    const good = readFileSync(`${REPO_ROOT}policies/datasets/trades.md`, 'utf8');
    await env.invoke(
      sqsRecord(objectCreated('policies/datasets/trades.md', env.objects.put('policies/datasets/trades.md', good))),
    );
    const bad = good
      .replace('"dataset": "trades"', '"dataset": "other"')
      .replace('"default_severity": "MEDIUM"', '"default_severity": "SEVERE"');

    const failures: unknown[] = [];
    const recording = createHandler(() => ({
      ...defaultDeps(),
      failures: { record: async (_arn: string, _body: string, error: unknown) => void failures.push(error) },
    }));

    const response = await recording(
      sqsEvent(
        sqsRecord(
          objectCreated('policies/datasets/trades.md', env.objects.put('policies/datasets/trades.md', bad)),
          'bad-policy',
        ),
      ),
      lambdaContext,
    );

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'bad-policy' }]);
    expect(failures).toEqual([
      expect.objectContaining({
        code: 'POLICY_INVALID',
        message: expect.stringMatching(/default_severity: .*; dataset: is "other", expected "trades"/),
      }),
    ]);
    expect(env.objects.text('policies-in-force/trades.md')).toBe(good);
  });

  it('accepts a gzip-compressed upload (recon reads it alike)', async () => {
    const keys = nextKeys();
    const etag = env.objects.put(keys.source, gzipSync(SOURCE));

    await env.invoke(sqsRecord(objectCreated(keys.source, etag)));

    expect(await fileOf(keys.date, 'source')).toMatchObject({ status: 'ACCEPTED', rows: 20 });
  });

  it("rejects an extract whose format is not the one the dataset's policy reads", async () => {
    const keys = nextKeys();
    const key = keys.source.replace('.csv', '.jsonl');

    await env.invoke(sqsRecord(objectCreated(key, env.objects.put(key, '{"trade_id":"T1"}\n'))));

    expect(await fileOf(keys.date, 'source')).toMatchObject({
      status: 'REJECTED',
      error: { code: 'FORMAT_MISMATCH', message: expect.stringContaining('reads the source as csv') },
    });
  });

  it("a rejected replacement is the side's current file; the run of the previous upload stays", async () => {
    const keys = nextKeys();
    await env.invoke(sqsRecord(objectCreated(keys.source, env.objects.put(keys.source, SOURCE))));
    await env.invoke(sqsRecord(objectCreated(keys.target, env.objects.put(keys.target, TARGET))));
    const [request] = env.reconRequests();

    await env.invoke(sqsRecord(objectCreated(keys.target, env.objects.put(keys.target, TARGET.replaceAll(',', ';')))));

    expect(env.reconRequests()).toHaveLength(1);
    expect(await fileOf(keys.date, 'target')).toMatchObject({
      status: 'REJECTED',
      error: { code: 'MISSING_COLUMNS', message: expect.stringMatching(/semicolon/), line: 1 },
    });
    const run = await dynamo.doc.send(
      new GetCommand({ TableName: dynamo.names.tables.runs, Key: { run_id: (request as { run_id: string }).run_id } }),
    );
    expect(run.Item).toMatchObject({ status: 'REQUESTED', target: { key: keys.target } });
  });
});

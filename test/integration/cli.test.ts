import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { createHandler } from '../../functions/query-api/handler.ts';
import { S3UploadSigner } from '../../functions/query-api/s3.ts';
import type { QueryApiDeps } from '../../functions/query-api/ports.ts';
import { exceptionId } from '../../functions/shared/keys.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import type { VectorIndex } from '../../functions/shared/search/ports.ts';
import { startApiServer, type ApiServer } from '../../scripts/local/api-server.ts';
import { exceptionsCommand } from '../../scripts/cli/exceptions.ts';
import { filesCommand } from '../../scripts/cli/files.ts';
import { DynamoFileStore } from '../../functions/shared/tables/files-dynamo.ts';
import { searchCommand } from '../../scripts/cli/search.ts';
import { uploadCommand } from '../../scripts/cli/upload.ts';
import { policyCommand } from '../../scripts/cli/policy.ts';
import { patternsCommand } from '../../scripts/cli/patterns.ts';
import { DynamoPatternStore } from '../../functions/shared/tables/patterns-dynamo.ts';
import { DynamoExceptionStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import { writeFindings } from '../../functions/store/exception-writes.ts';
import type { CliIo } from '../../scripts/cli/api-client.ts';
import { UsageError } from '../../scripts/cli/usage.ts';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';

interface RecordedPut {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

let dynamo: TestDynamo;
let api: ApiServer;
let storage: Server;
let storageUrl: string;
const puts: RecordedPut[] = [];
const search = vi.fn<VectorIndex['search']>(async () => []);
const ids: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'tally-cli-'));

beforeAll(async () => {
  dynamo = await startTestDynamo();
  for (let i = 1; i <= 3; i++) {
    const key = { trade_id: `T000${i}` };
    const id = exceptionId('trades', '2025-12-10', 'MISSING_IN_TARGET', JSON.stringify(key));
    ids.push(id);
    const at = `2025-12-10T08:00:0${i}.000Z`;
    const item = {
      exception_id: id,
      run_id: 'run-1',
      dataset: 'trades',
      business_date: '2025-12-10',
      exception_type: 'MISSING_IN_TARGET',
      key,
      source: { ...key, amount: '10.00' },
      target: null,
      diffs: [],
      lines: { source: [i + 1], target: [] },
      policy_severity: 'HIGH',
      status: 'OPEN',
      created_at: at,
      updated_at: at,
      version: 1,
      history: [{ at, by: 'system:recon', action: 'CREATED', to: 'OPEN', run_id: 'run-1' }],
      content_hash: 'h',
      last_changed_run_id: 'run-1',
      record_type: 'EXCEPTION',
      dataset_date: 'trades#2025-12-10',
      last_seen_at: at,
    };
    await dynamo.doc.send(
      new PutCommand({ TableName: dynamo.names.tables.exceptions, Item: { ...item, ...exceptionIndexKeys(item) } }),
    );
  }

  const files = new DynamoFileStore(dynamo.doc, dynamo.names.tables.files);
  for (const [side, n, outcome] of [
    ['source', 1, { status: 'ACCEPTED' }],
    [
      'target',
      2,
      {
        status: 'REJECTED',
        error: {
          code: 'MISSING_COLUMNS',
          message:
            'missing required column(s) amount (the header looks semicolon-delimited; ' +
            `this side's policy reads comma-delimited files: set its "delimiter" to ";", or export the file comma-delimited)`,
          line: 1,
        },
      },
    ],
  ] as const) {
    await files.putIfNewer({
      bucket: 'tally-data',
      key: `incoming/trades/2025-12-10/${side}.csv`,
      etag: `e${n}`,
      dataset: 'trades',
      business_date: '2025-12-10',
      side,
      sequencer: `000${n}`,
      size: 10,
      rows: outcome.status === 'ACCEPTED' ? 20 : 0,
      ...outcome,
      uploaded_at: `2025-12-10T07:00:0${n}.000Z`,
      ingested_at: `2025-12-10T07:00:0${n + 1}.000Z`,
      generation: 1,
    });
  }

  // Stands in for S3: records each PUT the CLI sends to the pre-signed URL.
  storage = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      puts.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { etag: '"abc123"' });
      res.end();
    });
  });
  storage.listen(0, '127.0.0.1');
  await once(storage, 'listening');
  storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;

  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint: storageUrl,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const deps: QueryApiDeps = {
    store: queryStoreOf(dynamo),
    uploads: new S3UploadSigner(s3, 'tally-data'),
    healthChecks: [],
    embedder: { id: 'fake', dimensions: 2, embed: async (texts) => texts.map(() => [1, 0]) },
    exceptionsIndex: {
      ensure: vi.fn(),
      replace: vi.fn(),
      replaceMany: vi.fn(),
      updateFields: vi.fn(async () => undefined),
      deleteWhere: vi.fn(),
      count: vi.fn(),
      search,
    },
    queues: { depths: async () => [] },
    paginationSecret: 'cli-test-secret',
    corsOrigins: ['*'],
    localIdentity: 'local-analyst',
    // Stands in for the triage queue and its consumer: the exception is triaged again a moment later.
    retriage: {
      triageQueue: {
        send: async (requests) => {
          for (const r of requests) setTimeout(() => void retriaged(r.exception_id, r.requested_at as string), 50);
        },
      },
    },
    now: Date.now,
  };
  api = await startApiServer({ handler: createHandler(() => deps), host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await api?.stop();
  await new Promise<void>((resolve) => storage?.close(() => resolve()));
  await dynamo?.stop();
});

/** What triage writes for a request made at `requestedAt` (a second later). */
async function retriaged(exceptionId: string, requestedAt: string) {
  await dynamo.doc.send(
    new UpdateCommand({
      TableName: dynamo.names.tables.exceptions,
      Key: { exception_id: exceptionId },
      UpdateExpression: 'SET triage = :t',
      ExpressionAttributeValues: {
        ':t': {
          severity: 'HIGH',
          summary: 'Trade missing from the target: booked after the cut-off',
          recommended_actions: ['Ask the desk to rebook'],
          root_cause_hypotheses: [],
          policy_citations: [{ document: 'recon-policy.md', section: 'Missing trades', passage_id: 'p1', text: 't' }],
          provider: 'rules',
          model: 'rules',
          degraded: false,
          triaged_at: new Date(Date.parse(requestedAt) + 1000).toISOString(),
        },
      },
    }),
  );
}

function capture(options: { tty?: boolean } = {}) {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t), isTTY: options.tty ?? false, columns: 100 },
    env: { TALLY_API_URL: api.url },
  };
  return { io, out: () => out, err: () => err };
}

describe('tally exceptions', () => {
  it('lists as JSON for scripts', async () => {
    const c = capture();

    const code = await exceptionsCommand(['list', '--json', '--dataset', 'trades', '--date', '2025-12-10'], c.io);

    expect(code).toBe(0);
    const body = JSON.parse(c.out());
    expect(body.count).toBe(3);
    expect(body.items.map((i: { exception_id: string }) => i.exception_id)).toEqual([...ids].reverse());
  });

  it('says when --sort due ordered only the newest matches (the API sorts at most DUE_SORT_CAP)', async () => {
    const real = (await (await fetch(`${api.url}/exceptions?limit=1`)).json()) as { items: unknown[] };
    const asked: string[] = [];
    const capped = createServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ items: real.items, count: 1, next_token: null, truncated: true }));
    });
    capped.listen(0, '127.0.0.1');
    await once(capped, 'listening');
    const url = `http://127.0.0.1:${(capped.address() as AddressInfo).port}`;
    try {
      const c = capture();
      const json = capture();

      expect(await exceptionsCommand(['list', '--sort', 'due', '--dataset', 'trades', '--api', url], c.io)).toBe(0);
      await exceptionsCommand(['list', '--sort', 'due', '--json', '--api', url], json.io);

      expect(asked[0]).toContain('sort=due');
      expect(c.out()).toContain('trade_id=T000');
      expect(c.err()).toContain('sorted by due date over the newest 1,000 matches only, not all of them');
      expect(JSON.parse(json.out())).toMatchObject({ count: 1, truncated: true });
      // The real API's answer here sorts every match: no such line.
      const exact = capture();
      await exceptionsCommand(['list', '--sort', 'due', '--json'], exact.io);
      expect(JSON.parse(exact.out())).toMatchObject({ count: 3, truncated: false });
      expect(exact.err()).toBe('');
    } finally {
      capped.close();
    }
  });

  it('takes a listed option in any case and sends it as the API spells it (--sort due was refused)', async () => {
    const due = capture();
    const open = capture();

    expect(await exceptionsCommand(['list', '--sort', 'due', '--json'], due.io)).toBe(0);
    expect(await exceptionsCommand(['list', '--status', 'open', '--sort', 'DUE', '--json'], open.io)).toBe(0);

    expect(JSON.parse(due.out()).count).toBe(3);
    expect(JSON.parse(open.out()).count).toBe(3);
    await expect(exceptionsCommand(['list', '--sort', 'oldest'], capture().io)).rejects.toThrow(
      '--sort must be one of created, due, got "oldest"',
    );
  });

  it('lists by an account on either row and a business-date range', async () => {
    const c = capture();

    const code = await exceptionsCommand(
      ['list', '--json', '--field', 'trade_id', '--value', 'T0002', '--from', '2025-12-10', '--to', '2025-12-10'],
      c.io,
    );
    const outside = capture();
    await exceptionsCommand(
      ['list', '--json', '--field', 'trade_id', '--value', 'T0002', '--from', '2025-12-11'],
      outside.io,
    );

    expect(code).toBe(0);
    expect(JSON.parse(c.out()).items.map((i: { exception_id: string }) => i.exception_id)).toEqual([ids[1]]);
    expect(JSON.parse(outside.out()).items).toEqual([]);
    await expect(exceptionsCommand(['list', '--value', 'T0002'], capture().io)).rejects.toThrow(
      /--field and --value go together/,
    );
  });

  it('lists as a readable table, following every page with --all', async () => {
    const c = capture();

    const code = await exceptionsCommand(['list', '--limit', '1', '--all', '--api', api.url], c.io);

    expect(code).toBe(0);
    const lines = c.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TYPE\s+STATUS\s+SEVERITY\s+DATASET\s+DATE\s+KEY/);
    expect(lines).toHaveLength(4);
    expect(c.out()).toContain('trade_id=T0003');
    expect(c.err()).toContain('3 exception(s)');
  });

  it('acknowledges: reads the version, then changes it, recording the note and assignee', async () => {
    const c = capture();
    const id = ids[0] as string;

    const code = await exceptionsCommand(['ack', id, '--note', 'checking with the desk', '--assignee', 'ana'], c.io);

    expect(code).toBe(0);
    expect(c.out()).toBe(`${id}: OPEN -> ACKNOWLEDGED (version 2)\n`);
    const shown = capture();
    await exceptionsCommand(['get', id, '--json'], shown.io);
    const record = JSON.parse(shown.out());
    expect(record).toMatchObject({ status: 'ACKNOWLEDGED', assignee: 'ana', version: 2 });
    expect(record.history.at(-2)).toMatchObject({
      by: 'local-analyst',
      action: 'ACKNOWLEDGED',
      note: 'checking with the desk',
    });
    expect(record.history.at(-1)).toMatchObject({ by: 'local-analyst', action: 'ASSIGNED', to: 'ana' });

    const resolved = capture();
    expect(await exceptionsCommand(['resolve', id], resolved.io)).toBe(0);
    expect(resolved.out()).toContain('ACKNOWLEDGED -> RESOLVED');
  });

  it('explains a transition the workflow does not allow', async () => {
    const c = capture();

    const code = await exceptionsCommand(['resolve', ids[1] as string], c.io);

    expect(code).toBe(1);
    expect(c.err()).toContain(
      'OPEN can only move to ACKNOWLEDGED or IN_PROGRESS or FALSE_POSITIVE (HTTP 400 INVALID_TRANSITION)',
    );
  });

  it('shows one exception readably, and says so when it does not exist', async () => {
    const c = capture();
    const missing = capture();

    expect(await exceptionsCommand(['get', ids[2] as string], c.io)).toBe(0);
    expect(await exceptionsCommand(['get', 'f'.repeat(32)], missing.io)).toBe(1);

    expect(c.out()).toContain('MISSING_IN_TARGET  OPEN  (version 1)');
    expect(c.out()).toContain('system:recon  CREATED');
    expect(missing.err()).toContain('no exception with id ffff');
  });

  it('rejects bad usage before calling the API', async () => {
    await expect(exceptionsCommand([], capture().io)).rejects.toThrow(UsageError);
    await expect(exceptionsCommand(['list', '--status', 'CLOSED'], capture().io)).rejects.toThrow(
      /--status must be one of PENDING, OPEN/,
    );
    await expect(exceptionsCommand(['ack'], capture().io)).rejects.toThrow(/exactly one exception id/);
    await expect(exceptionsCommand(['list', '--date', '2025-12-10'], capture().io)).rejects.toThrow(
      /--date needs --dataset/,
    );
    await expect(exceptionsCommand(['list', '--api', 'ftp://x'], capture().io)).rejects.toThrow(
      /--api must be an http/,
    );
  });

  it('prints help', async () => {
    const c = capture();

    expect(await exceptionsCommand(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Usage: tally exceptions');
  });
});

describe('tally exceptions retriage', () => {
  it('asks for a new triage, and with --wait shows the exception once it is written', async () => {
    const asked = capture();
    const waited = capture();
    const unknown = capture();

    const askedCode = await exceptionsCommand(['retriage', ids[0] as string], asked.io);
    const waitedCode = await exceptionsCommand(['retriage', ids[1] as string, '--wait'], waited.io);
    const unknownCode = await exceptionsCommand(['retriage', '0'.repeat(32)], unknown.io);

    expect(askedCode).toBe(0);
    expect(asked.out()).toContain(`${ids[0]}: triage asked again`);
    expect(waitedCode).toBe(0);
    expect(waited.out()).toContain('HIGH: Trade missing from the target: booked after the cut-off');
    expect(waited.out()).toContain('cites      recon-policy.md § Missing trades');
    // When the triage shown was written: after the request.
    expect(waited.out()).toMatch(/by rules\/rules at \d{4}-\d{2}-\d{2}T/);
    expect(unknownCode).toBe(1);
    expect(unknown.err()).toContain('NOT_FOUND');
    await expect(exceptionsCommand(['retriage'], capture().io)).rejects.toThrow(/an exception id, or list filters/);
  });

  it('asks for every exception the list filters match, or only the degraded or uncited; --dry-run lists them', async () => {
    const day = ['--dataset', 'trades', '--date', '2025-12-10'];
    const uncited = capture();
    const dry = capture();
    const all = capture();

    const uncitedCode = await exceptionsCommand(['retriage', ...day, '--only', 'uncited'], uncited.io);
    const dryCode = await exceptionsCommand(['retriage', ...day, '--dry-run'], dry.io);
    const allCode = await exceptionsCommand(['retriage', ...day], all.io);

    expect(uncitedCode).toBe(0);
    expect(uncited.out()).toBe('');
    expect(uncited.err()).toContain('Nothing to triage again: 0 of 3 matching exception(s) (uncited)');
    expect(dryCode).toBe(0);
    for (const id of ids) expect(dry.out()).toContain(id);
    expect(dry.err()).toContain('3 of 3 matching exception(s) would be triaged again');
    expect(allCode).toBe(0);
    expect(all.out().match(/ asked/g)).toHaveLength(3);
    expect(all.err()).toContain('3 of 3 matching exception(s): 3 asked');
    await expect(exceptionsCommand(['retriage', '--run', 'run-1', '--wait'], capture().io)).rejects.toThrow(
      /--wait goes with one exception id/,
    );
    await expect(exceptionsCommand(['retriage', ...day, '--only', 'some'], capture().io)).rejects.toThrow(
      /--only must be one of degraded, uncited, all/,
    );
  });

  it('wants --yes before asking for more than 100 (each is a model call), and asks nothing without it', async () => {
    const real = (await (await fetch(`${api.url}/exceptions?limit=1`)).json()) as { items: { exception_id: string }[] };
    const many = Array.from({ length: 101 }, (_, i) => ({ ...real.items[0], exception_id: `${i}`.padStart(32, '0') }));
    const posts: string[] = [];
    const busy = createServer((req, res) => {
      if (req.method === 'POST') posts.push(req.url ?? '');
      res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          req.method === 'POST'
            ? { exception_id: 'x', requested_at: '2026-01-01T00:00:00.000Z' }
            : { items: many, count: many.length, next_token: null },
        ),
      );
    });
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const url = `http://127.0.0.1:${(busy.address() as AddressInfo).port}`;
    try {
      await expect(exceptionsCommand(['retriage', '--dataset', 'trades', '--api', url], capture().io)).rejects.toThrow(
        /101 of 101 matching exception\(s\): each is a model call .* add --yes/,
      );
      expect(posts).toEqual([]);
      const yes = capture();
      expect(await exceptionsCommand(['retriage', '--dataset', 'trades', '--yes', '--api', url], yes.io)).toBe(0);
      expect(posts).toHaveLength(101);
      expect(yes.err()).toContain('asked 100 of 101');
    } finally {
      busy.close();
    }
  });
});

describe('tally exceptions: owners, bulk work, maker-checker and matching', () => {
  /** Three missing rows recon stored for dataset cliwork: two are one trade under a mistyped key. */
  async function seedMissing(): Promise<[string, string, string]> {
    const store = new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions);
    const row = (trade_id: string) => ({ trade_id, account_id: 'ACC7', trade_date: '2025-12-10', amount: '10.00' });
    const findings = [
      ['MISSING_IN_TARGET', 'T900'],
      ['MISSING_IN_SOURCE', 'T9OO'],
      ['MISSING_IN_TARGET', 'T901'],
    ] as const;
    await writeFindings(
      { runId: 'run-cliwork', dataset: 'cliwork', businessDate: '2025-12-10', now: new Date().toISOString() },
      findings.map(([type, key]) => ({
        type,
        key: { trade_id: key },
        keyText: key,
        source: type === 'MISSING_IN_TARGET' ? row(key) : null,
        target: type === 'MISSING_IN_SOURCE' ? row(key) : null,
        diffs: [],
        lines: { source: [], target: [] },
        severity: 'HIGH' as const,
      })),
      { exceptions: store },
    );
    return findings.map(([type, key]) => exceptionId('cliwork', '2025-12-10', type, key)) as [string, string, string];
  }

  it('starts work, lists mine, changes in bulk, suggests and asks for a match the maker cannot approve', async () => {
    const [source, target, other] = await seedMissing();

    const started = capture();
    expect(await exceptionsCommand(['start', other, '--assignee', 'local-analyst', '--team', 'ops'], started.io)).toBe(
      0,
    );
    const mine = capture();
    expect(await exceptionsCommand(['list', '--assignee', 'me', '--team', 'ops', '--json'], mine.io)).toBe(0);
    const bulk = capture();
    const bulkCode = await exceptionsCommand(
      ['bulk', '--ids', `${source},${other}`, '--status', 'RESOLVED', '--note', 'seen'],
      bulk.io,
    );
    const byFilter = capture();
    expect(
      await exceptionsCommand(
        ['bulk', '--filter', 'dataset=cliwork', '--filter', 'team=ops', '--team', 'fx'],
        byFilter.io,
      ),
    ).toBe(0);
    const suggested = capture();
    expect(await exceptionsCommand(['suggestions', source], suggested.io)).toBe(0);
    const matched = capture();
    expect(await exceptionsCommand(['match', source, target, '--reason', 'KEY_TYPO'], matched.io)).toBe(0);
    const self = capture();
    const selfCode = await exceptionsCommand(['approve', target], self.io);

    expect(started.out()).toContain('OPEN -> IN_PROGRESS');
    expect(JSON.parse(mine.out()).items.map((i: { exception_id: string }) => i.exception_id)).toEqual([other]);
    expect(bulkCode).toBe(1);
    expect(bulk.out()).toMatch(new RegExp(`${source}\\s+invalid_transition\\s+1\\s+OPEN can only move to`));
    expect(bulk.out()).toMatch(new RegExp(`${other}\\s+updated\\s+3`));
    expect(bulk.err()).toContain('2 exception(s): 1 updated, 1 invalid_transition');
    expect(byFilter.err()).toContain('1 exception(s): 1 updated');
    expect(suggested.out()).toContain(target);
    expect(suggested.out()).toContain('keys T900 and T9OO are 2 edit(s) apart');
    expect(suggested.err()).toMatch(/candidate\(s\) scored; accept one: tally exceptions match /);
    expect(matched.out()).toContain('both wait for an approver who is not you');
    expect(selfCode).toBe(1);
    expect(self.err()).toContain('SAME_PERSON');
    // Not a question of roles: the API's message says what to do, with no roles hint after it.
    expect(self.err()).not.toContain('roles or dataset entitlements');
    await expect(exceptionsCommand(['bulk', '--status', 'ACKNOWLEDGED'], capture().io)).rejects.toThrow(
      /exactly one of --ids/,
    );
    await expect(exceptionsCommand(['match', source, target], capture().io)).rejects.toThrow(/needs --reason/);
  });
});

describe('tally patterns', () => {
  const PATTERN = 'pat_0123456789abcdef';
  const members = ['J1', 'J2'].map((trade) => exceptionId('fx', '2025-12-10', 'AMOUNT_MISMATCH', trade));

  beforeAll(async () => {
    const at = '2025-12-10T09:00:00.000Z';
    await new DynamoExceptionStore(dynamo.doc, dynamo.names.tables.exceptions).putNew(
      ['J1', 'J2'].map((trade, i) => ({
        exception_id: members[i] as string,
        run_id: 'run-fx',
        dataset: 'fx',
        business_date: '2025-12-10',
        exception_type: 'AMOUNT_MISMATCH' as const,
        key: { trade_id: trade },
        source: { trade_id: trade, currency: 'JPY', amount: '10' },
        target: { trade_id: trade, currency: 'JPY', amount: '1000' },
        diffs: [{ field: 'amount', source: '10', target: '1000', delta: '990' }],
        lines: { source: [i + 2], target: [i + 2] },
        policy_severity: 'MEDIUM' as const,
        status: 'OPEN' as const,
        created_at: at,
        updated_at: at,
        version: 1,
        history: [],
        pattern_id: PATTERN,
        content_hash: 'h',
        last_changed_run_id: 'run-fx',
      })),
    );
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.runs,
        Item: {
          run_id: 'run-fx',
          dataset: 'fx',
          business_date: '2025-12-10',
          status: 'COMPLETED',
          patterns: { patterns: 1, members: 2, singletons: 4 },
        },
      }),
    );
    await new DynamoPatternStore(dynamo.doc, dynamo.names.tables.patterns).putAll([
      {
        run_id: 'run-fx',
        pattern_id: PATTERN,
        dataset: 'fx',
        business_date: '2025-12-10',
        exception_type: 'AMOUNT_MISMATCH',
        signature: {
          type: 'AMOUNT_MISMATCH',
          fields: ['amount'],
          shapes: { amount: { kind: 'number', ratio: '100' } },
        },
        description: 'AMOUNT_MISMATCH: amount target = source × 100',
        size: 2,
        segments: [{ field: 'currency', value: 'JPY', count: 2, share: 1 }],
        stats: { 'amount.ratio': '100' },
        representatives: members,
      },
    ]);
  });

  it('lists a run’s patterns as a table, with the model calls they make', async () => {
    const c = capture();

    const code = await patternsCommand(['run-fx'], c.io);

    expect(code).toBe(0);
    const [header, row] = c.out().trimEnd().split('\n');
    expect(header).toMatch(/^PATTERN\s+SIZE\s+DESCRIPTION\s+SEGMENTS\s+BY STATUS\s+TRIAGE$/);
    expect(row).toContain(PATTERN);
    expect(row).toContain('AMOUNT_MISMATCH: amount target = source × 100');
    expect(row).toContain('currency=JPY 100%');
    expect(row).toContain('OPEN 2');
    expect(c.err()).toBe('1 pattern(s) with 2 member(s), 4 singleton(s): 5 triage call(s)\n');
  });

  it('prints JSON, and lists a pattern’s members with exceptions list --pattern', async () => {
    const c = capture();
    expect(await patternsCommand(['run-fx', '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out()).items[0]).toMatchObject({ pattern_id: PATTERN, members_by_status: { OPEN: 2 } });

    const e = capture();
    expect(await exceptionsCommand(['list', '--pattern', PATTERN, '--json'], e.io)).toBe(0);
    expect(
      JSON.parse(e.out())
        .items.map((i: { exception_id: string }) => i.exception_id)
        .sort(),
    ).toEqual([...members].sort());
  });

  it('acknowledges a whole pattern, and says what it skipped the second time', async () => {
    const c = capture();
    expect(await patternsCommand(['ack', 'run-fx', PATTERN, '--note', 'unit slip'], c.io)).toBe(0);
    expect(c.out()).toBe(`${PATTERN}: 2 moved to ACKNOWLEDGED, 0 conflict(s), 0 skipped\n`);

    const again = capture();
    expect(await patternsCommand(['ack', 'run-fx', PATTERN], again.io)).toBe(0);
    expect(again.out()).toContain('SKIPPED');
    expect(again.out()).toContain('it is already ACKNOWLEDGED');
    expect(again.out()).toContain(`${PATTERN}: 0 moved to ACKNOWLEDGED, 0 conflict(s), 2 skipped`);
  });

  it('rejects bad usage before calling the API, and passes a 404 on', async () => {
    await expect(patternsCommand([], capture().io)).rejects.toThrow(UsageError);
    await expect(patternsCommand(['ack', 'run-fx'], capture().io)).rejects.toThrow(
      'ack takes a run id and a pattern id',
    );
    await expect(patternsCommand(['run-fx', '--note', 'x'], capture().io)).rejects.toThrow(
      '--note goes with an action',
    );
    const c = capture();
    expect(await patternsCommand(['run-none'], c.io)).toBe(1);
    expect(c.err()).toContain('HTTP 404');
  });
});

describe('tally files', () => {
  it('lists files newest first with the reason a file was rejected', async () => {
    const c = capture();

    const code = await filesCommand(['--dataset', 'trades', '--date', '2025-12-10'], c.io);

    expect(code).toBe(0);
    const lines = c.out().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DATASET\s+DATE\s+SIDE\s+STATUS\s+ROWS\s+UPLOADED\s+INGESTED\s+REASON$/);
    expect(lines[1]).toMatch(
      /^trades\s+2025-12-10\s+target\s+REJECTED\s+-\s+2025-12-10T07:00:02.000Z\s+2025-12-10T07:00:03.000Z\s+MISSING_COLUMNS at line 1: missing required column\(s\) amount \(the header looks semicolon-delimited; this side's policy reads comma-delimited files: set its "delimiter" to ";", or export the file comma-delimited\)$/,
    );
    expect(lines[2]).toMatch(/^trades\s+2025-12-10\s+source\s+ACCEPTED\s+20\s/);
    expect(c.err()).toContain('2 file(s)');
  });

  it('filters by status and prints JSON for scripts', async () => {
    const c = capture();

    const code = await filesCommand(['--status', 'rejected', '--json'], c.io);

    expect(code).toBe(0);
    const body = JSON.parse(c.out());
    expect(body).toMatchObject({ count: 1, next_token: null });
    expect(body.items[0]).toMatchObject({ side: 'target', status: 'REJECTED', error: { code: 'MISSING_COLUMNS' } });
  });

  it("rejects bad usage before calling the API, and passes the API's refusals on", async () => {
    const bad = capture();

    await expect(filesCommand(['--status', 'FAILED'], capture().io)).rejects.toThrow(
      /--status must be one of ACCEPTED, REJECTED/,
    );
    await expect(filesCommand(['--limit', '0'], capture().io)).rejects.toThrow(/--limit must be an integer from 1/);
    await expect(filesCommand(['extra'], capture().io)).rejects.toThrow(/takes no arguments/);
    expect(await filesCommand(['--date', '2025-13-45'], bad.io)).toBe(1);
    expect(bad.err()).toMatch(/business_date: must be a calendar date/);
  });

  it('prints help', async () => {
    const c = capture();

    expect(await filesCommand(['--help'], c.io)).toBe(0);
    expect(c.out()).toContain('Usage: tally files');
    expect(c.out()).toContain('--status S              ACCEPTED, REJECTED');
  });
});

describe('tally search', () => {
  it('prints the nearest exceptions and passes the filters through', async () => {
    search.mockResolvedValueOnce([
      {
        id: ids[0] as string,
        score: 0.91,
        text: 't',
        fields: {
          exception_id: ids[0] as string,
          exception_type: 'MISSING_IN_TARGET',
          status: 'OPEN',
          severity: 'HIGH',
          key: '{"trade_id":"T0001"}',
          summary: 'Trade missing from the target system',
        },
      },
    ]);
    const c = capture();

    const code = await searchCommand(['missing', 'trade', '--status', 'open', '-k', '5'], c.io);

    expect(code).toBe(0);
    expect(search).toHaveBeenLastCalledWith([1, 0], 5, { status: 'OPEN' }, { text: 'missing trade' });
    expect(c.out()).toMatch(/^SCORE\s+ID/);
    expect(c.out()).toContain('0.910');
    expect(c.out()).toContain('Trade missing from the target system');
  });

  it('passes a field value, a business-date range and a pattern through', async () => {
    const c = capture();

    const code = await searchCommand(
      [
        'paid twice',
        '--field',
        'account_id',
        '--value',
        'ACCT2042',
        '--from',
        '2025-12-01',
        '--to',
        '2025-12-31',
        '--pattern',
        'pat-7',
      ],
      c.io,
    );

    expect(code).toBe(0);
    expect(search).toHaveBeenLastCalledWith(
      [1, 0],
      10,
      { pattern_id: 'pat-7', values: 'account_id=ACCT2042' },
      { text: 'paid twice', ranges: { business_date: { from: '2025-12-01', to: '2025-12-31' } } },
    );
  });

  it('needs --field and --value together', async () => {
    await expect(searchCommand(['x', '--field', 'account_id'], capture().io)).rejects.toThrow(
      /--field and --value go together/,
    );
  });

  it('needs a query', async () => {
    await expect(searchCommand([], capture().io)).rejects.toThrow(/say what to look for/);
  });
});

describe('tally policy push', () => {
  const TRADES = readFileSync(join(REPO_ROOT, 'policies/datasets/trades.md'), 'utf8');

  it("checks the policy, then uploads it to the dataset's policy key as text/markdown", async () => {
    const file = join(dir, 'trades.md');
    writeFileSync(file, TRADES);
    const c = capture();
    puts.length = 0;

    const code = await policyCommand(['push', file, '--json'], c.io);

    expect(code).toBe(0);
    expect(JSON.parse(c.out())).toEqual({ key: 'policies/datasets/trades.md', dataset: 'trades', etag: 'abc123' });
    const put = puts[0] as RecordedPut;
    expect(new URL(put.url, storageUrl).pathname).toBe('/tally-data/policies/datasets/trades.md');
    expect(put.headers['content-type']).toBe('text/markdown');
    expect(put.body.toString()).toBe(TRADES);
  });

  it('uploads nothing when the policy does not validate, and prints every problem', async () => {
    const file = join(dir, 'payments.md');
    writeFileSync(file, TRADES.replace('"default_severity": "MEDIUM"', '"default_severity": "SEVERE"'));
    const c = capture();
    puts.length = 0;

    const code = await policyCommand(['push', file], c.io);

    expect(code).toBe(1);
    expect(puts).toHaveLength(0);
    expect(c.err()).toContain('does not validate; nothing uploaded');
    expect(c.err()).toMatch(
      /\n {2}- default_severity: .*\n {2}- dataset: is "trades", expected "payments" \(the file's name\)\n/,
    );
    await expect(policyCommand(['pull', file], capture().io)).rejects.toThrow(/expected "push"/);
  });
});

describe('tally upload', () => {
  it('uploads the file to the pre-signed URL with the signed headers', async () => {
    const file = join(dir, 'source.csv');
    const content = 'trade_id,account_id,trade_date,amount\nT1,A1,2025-12-10,1.00\n';
    writeFileSync(file, content);
    const c = capture();
    puts.length = 0;

    const code = await uploadCommand(
      [file, '--dataset', 'trades', '--date', '2025-12-10', '--side', 'source', '--json'],
      c.io,
    );

    expect(code).toBe(0);
    expect(JSON.parse(c.out())).toEqual({
      key: 'incoming/trades/2025-12-10/source.csv',
      bytes: content.length,
      etag: 'abc123',
    });
    expect(puts).toHaveLength(1);
    const put = puts[0] as RecordedPut;
    const url = new URL(put.url, storageUrl);
    expect(put.method).toBe('PUT');
    expect(url.pathname).toBe('/tally-data/incoming/trades/2025-12-10/source.csv');
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;content-type;host');
    expect(put.headers['content-type']).toBe('text/csv');
    expect(put.headers['content-length']).toBe(String(content.length));
    expect(put.body.toString()).toBe(content);
  });

  it('shows a progress bar on a terminal for a large file', async () => {
    const file = join(dir, 'target.csv');
    writeFileSync(file, `trade_id,amount\n${'T1,1.00\n'.repeat(300_000)}`);
    const c = capture({ tty: true });
    puts.length = 0;

    const code = await uploadCommand([file, '--dataset', 'trades', '--date', '2025-12-10', '--side', 'target'], c.io);

    expect(code).toBe(0);
    expect(c.err()).toContain('100%');
    expect(puts[0]?.body.length).toBe(2_400_016);
    expect(c.out()).toContain('to incoming/trades/2025-12-10/target.csv');
  });

  it("passes the API's refusal on, and refuses bad usage itself", async () => {
    const file = join(dir, 'x.csv');
    writeFileSync(file, 'a\n1\n');
    const c = capture();

    const code = await uploadCommand([file, '--dataset', '../x', '--date', '2025-02-30', '--side', 'source'], c.io);

    expect(code).toBe(1);
    expect(c.err()).toContain('dataset: must be 1-64 letters');
    expect(c.err()).toContain('business_date: must be a calendar date');
    await expect(uploadCommand([file, '--dataset', 'd', '--date', '2025-01-01'], capture().io)).rejects.toThrow(
      /--side is required/,
    );
    await expect(
      uploadCommand([file, '--dataset', 'd', '--date', '2025-01-01', '--side', 'left'], capture().io),
    ).rejects.toThrow(/--side must be source or target/);
    const missing = capture();
    expect(
      await uploadCommand(
        [join(dir, 'nope.csv'), '--dataset', 'd', '--date', '2025-01-01', '--side', 'source'],
        missing.io,
      ),
    ).toBe(2);
    expect(missing.err()).toContain('cannot read');
  });
});

describe('the tally binary', () => {
  const run = promisify(execFile);
  const tally = join(REPO_ROOT, 'scripts/cli/tally.ts');

  it('says to start the local stack when the API is not reachable', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await run(process.execPath, [tally, 'exceptions', 'list', '--api', `http://127.0.0.1:${port}`]).catch(
      (e: { code: number; stderr: string }) => e,
    );

    expect(error).toMatchObject({ code: 1 });
    expect((error as { stderr: string }).stderr).toContain('is `npm start` running?');
  });

  it("exits 2 on bad usage with the error, the command's synopsis and where its help is", async () => {
    const error = await run(process.execPath, [tally, 'search', '--api', api.url]).catch(
      (e: { code: number; stderr: string }) => e,
    );

    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain('Usage: tally search');
    expect((error as { stderr: string }).stderr).toContain('See `npx tally search --help` for every option.');
    expect((error as { stderr: string }).stderr).not.toContain('Options:');
  });

  it('`tally recon` of a header-only file reconciles it but warns that ingest would reject it (EMPTY_FILE)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-recon-empty-'));
    const source = join(REPO_ROOT, 'scripts/local/sample/source.csv');
    const target = join(dir, 'target.csv');
    writeFileSync(target, 'trade_id,account_id,trade_date,amount\n');

    const result = await run(process.execPath, [tally, 'recon', '--source', source, '--target', target]).catch(
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

    expect(result).toMatchObject({ code: 1 });
    expect(result.stderr).toContain(
      `tally recon: warning: ingest would reject ${target}: EMPTY_FILE: file has a header but no data rows; expected at least one row (a policy that expects empty days sets "allow_empty_sides": true)`,
    );
    expect(result.stderr).not.toContain(`ingest would reject ${source}`);
  });

  it('`tally recon` of a JSON Lines side with no key field warns that ingest would reject it (MISSING_COLUMNS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-recon-jsonl-'));
    const sample = join(REPO_ROOT, 'scripts/local/sample/payments');
    const target = join(dir, 'target.jsonl');
    // The file's own name for the key (a writer's, not the policy's).
    writeFileSync(target, readFileSync(join(sample, 'target.jsonl'), 'utf8').replaceAll('"payment_id"', '"ref"'));
    const policy = join(REPO_ROOT, 'policies/datasets/payments.md');
    const args = ['recon', '--policy', policy, '--source', join(sample, 'source.csv'), '--date', '2025-12-01'];

    const bad = await run(process.execPath, [tally, ...args, '--target', target]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    const good = await run(process.execPath, [tally, ...args, '--target', join(sample, 'target.jsonl')]).catch(
      (e: { code: number; stderr: string }) => e,
    );

    expect(bad.stderr).toMatch(
      new RegExp(
        `tally recon: warning: ingest would reject ${target.replaceAll('/', '\\/')}: MISSING_COLUMNS: no object on the first \\d+ lines has key field\\(s\\) payment_id`,
      ),
    );
    expect(good.stderr).not.toContain('ingest would reject');
  });

  it('`tally recon --date` takes only calendar dates: 2025-13-45 exits 2 before reading anything', async () => {
    const sample = join(REPO_ROOT, 'scripts/local/sample');
    const files = ['--source', join(sample, 'source.csv'), '--target', join(sample, 'target.csv')];

    const error = await run(process.execPath, [tally, 'recon', ...files, '--date', '2025-13-45']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    // The sample has breaks and the trades policy no thresholds: the run FAILs (exit 1), output intact.
    const ok = await run(process.execPath, [tally, 'recon', ...files, '--date', '2024-02-29']).catch(
      (e: { code: number; stdout: string }) => e,
    );

    expect(ok).toMatchObject({ code: 1 });
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain(
      '--date must be a calendar date YYYY-MM-DD, got "2025-13-45"',
    );
    expect(ok.stdout.trim().split('\n').length).toBeGreaterThan(0);
    expect(JSON.parse(ok.stdout.trim().split('\n')[0] as string).business_date).toBe('2024-02-29');
  });

  it('lists through the API as JSON', async () => {
    const { stdout } = await run(process.execPath, [tally, 'exceptions', 'list', '--json', '--run', 'run-1'], {
      env: { ...process.env, TALLY_API_URL: api.url },
    });

    expect(JSON.parse(stdout).count).toBe(3);
  });
});

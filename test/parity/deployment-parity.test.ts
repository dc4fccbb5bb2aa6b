/**
 * The deployed configuration, run here. Synthesises the stacks from the example configuration,
 * then runs every aws_lambda_function of both regional stacks from its BUILT bundle, in a process
 * of its own with exactly the synthesised environment (references resolved as `terraform apply`
 * would, endpoints pointed at the emulators), from a read-only task root. A real input goes
 * through each: Object Created events (policies and uploads) through ingest-worker, the recon
 * requests it sends through recon, the findings chunks recon writes and queues through store, the
 * triage requests store sends through triage, and
 * health/uploads/list/get/PATCH/search/runs/queues/files/counts/usage through query-api, the
 * PATCHed exception's change on the table's stream through stream-index; then one poison message per
 * consumer. Each region's flow runs with that region active and the other fenced (the region roles
 * are SSM parameters this test answers). Every AWS call is recorded by the signing function and checked against the role's
 * policy (and the collection's data access policy); every granted action must have been called.
 *
 * What this cannot catch: AWS behaviour the emulators do not have (IAM conditions other than
 * kms:ViaService, KMS itself — key use is implied from the calls that need it — service quotas,
 * API Gateway's own authorizer), and calls on paths this flow does not take.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from 'cdktf';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoTriageStore } from '../../functions/shared/tables/exceptions-dynamo.ts';
import type { Triage } from '../../functions/shared/types.ts';
import type { UncitedRequest } from '../../functions/shared/messages.ts';
import { DEFAULT_UNCITED_SETTLE_SECONDS } from '../../functions/triage/config.ts';
import { exceptionIndexKeys } from '../../functions/shared/tables/exceptions-index-keys.ts';
import { SNSClient } from '@aws-sdk/client-sns';
import type {
  APIGatewayProxyEventV2,
  DynamoDBBatchResponse,
  DynamoDBStreamEvent,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';
import { buildTally, stackIds } from '../../infra/app.ts';
import { parseInfraConfig, type InfraConfig } from '../../infra/config.ts';
import { TABLE_KEY_ACTIONS, UNOBSERVED_GRANTS } from '../../infra/access.ts';
import {
  DEGRADED_TRIAGE,
  FUNCTION_NAMES,
  QUEUES,
  TRIAGE_STAMP,
  awsBucketName,
  regionRoleParameterName,
  resourceNames,
  searchCollectionName,
  type FunctionName,
  type QueueName,
} from '../../functions/shared/resources.ts';
import { DEAD_LETTER_ATTRIBUTES } from '../../functions/shared/adapters/sqs-queue.ts';
import { REPO_ROOT, SAMPLE_DIR } from '../../functions/shared/paths.ts';
import { buildFunctions } from '../../scripts/build.ts';
import { startEmulators, type Emulators } from '../../scripts/local/emulators.ts';
import { provision, provisionTopics, type QueueUrls, type TopicUrls } from '../../scripts/local/provision.ts';
import { startFakeOpenSearch } from '../support/fake-opensearch.ts';
import { objectCreated } from '../support/events.ts';
import { startAwsProxy, type Call } from './aws-proxy.ts';
import { ACCOUNT, TerraformState, type DeployedFunction, type Statement } from './terraform.ts';
import { startLambda, type RunningLambda } from './lambda.ts';
import type { Json } from '../infra/synth.ts';

const SOURCE = readFileSync(join(SAMPLE_DIR, 'source.csv'));
const TARGET = readFileSync(join(SAMPLE_DIR, 'target.csv'));
const CORRECTED_TARGET = Buffer.from(
  TARGET.toString().replace('T0005,ACCT1004,2025-12-03,475.00', 'T0005,ACCT1004,2025-12-03,450.00'),
);

/** Search permissions a function holds that this run cannot exercise, each with the reason. */
const UNOBSERVED_SEARCH: readonly { function: FunctionName; permission: string; reason: string }[] = [
  {
    function: 'stream-index',
    permission: 'aoss:CreateIndex',
    reason:
      'it creates the exceptions index in a region whose index does not exist yet (a fresh secondary receiving replicated changes before any triage ran there); here triage has created it first',
  },
];

type Region = 'primary' | 'secondary';
const REGIONS: readonly Region[] = ['primary', 'secondary'];
/** The two regions' flows share the global tables: each reconciles its own business date. */
const BUSINESS_DATE: Record<Region, string> = { primary: '2025-12-10', secondary: '2025-12-11' };
const SPARE_DATE: Record<Region, string> = { primary: '2025-12-30', secondary: '2025-12-31' };
/** A wrong target file: every amount off, so the runaway guard holds the run. */
const HELD_DATE: Record<Region, string> = { primary: '2025-12-20', secondary: '2025-12-21' };
const WRONG_TARGET = Buffer.from(
  TARGET.toString()
    .split('\n')
    .map((line, i) =>
      i === 0 || line === ''
        ? line
        : line.replace(/,(-?\d+)\.(\d+)$/, (_, units: string, cents: string) => `,${units}${cents}.00`),
    )
    .join('\n'),
);

let tmp: string;
let config: InfraConfig;
let emulators: Emulators;
let stopAll: (() => Promise<void>)[] = [];
let proxy: Awaited<ReturnType<typeof startAwsProxy>>;
let queues: Record<QueueName, QueueUrls>;
/** Each region's business events topic on the emulator, with its inbox queue. */
const topics: Partial<Record<Region, TopicUrls>> = {};
let stacks: { id: string; json: Json }[];
const deployed: Record<Region, DeployedFunction[]> = { primary: [], secondary: [] };
const lambdas: Record<Region, Partial<Record<FunctionName, RunningLambda>>> = { primary: {}, secondary: {} };
/** Whatever went wrong in a flow, per region: asserted by the first tests. */
const failures: Record<Region, string[]> = { primary: [], secondary: [] };
const harness = { accessKeyId: 'harness', secretAccessKey: 'harness' };

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'tally-parity-'));
  chmodSync(tmp, 0o755); // the functions run as an unprivileged user and must reach their task roots
  const distDir = join(tmp, 'dist');
  await buildFunctions(distDir);

  config = parseInfraConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'infra/tally.config.example.json'), 'utf8')));
  const app = new App({ outdir: join(tmp, 'out') });
  buildTally(app, config, { distDir, deployed: FUNCTION_NAMES, skipped: [] });
  app.synth();
  const ids = stackIds(config);
  stacks = REGIONS.map((role) => ({
    id: ids[role],
    json: JSON.parse(readFileSync(join(tmp, 'out', 'stacks', ids[role], 'cdk.tf.json'), 'utf8')) as Json,
  }));

  emulators = await startEmulators(join(tmp, 'data'));
  const direct = {
    s3: new S3Client({
      region: 'us-east-1',
      endpoint: emulators.fauxqsUrl,
      forcePathStyle: true,
      credentials: harness,
    }),
    sqs: new SQSClient({
      region: 'us-east-1',
      endpoint: emulators.fauxqsUrl,
      credentials: harness,
      useQueueUrlAsEndpoint: false,
    }),
    dynamo: new DynamoDBClient({ region: 'us-east-1', endpoint: emulators.dynamoUrl, credentials: harness }),
  };
  const names = { ...resourceNames(config.prefix), bucket: awsBucketName(config.prefix, config.regions.primary) };
  queues = await provision(names, direct, { visibilityTimeoutSeconds: 1 });
  await direct.s3.send(new CreateBucketCommand({ Bucket: awsBucketName(config.prefix, config.regions.secondary) }));
  // The emulator keys topics by ARN, region included: one per region, as each stack creates its own.
  for (const role of REGIONS) {
    const sns = new SNSClient({ region: config.regions[role], endpoint: emulators.fauxqsUrl, credentials: harness });
    topics[role] = (await provisionTopics(config.prefix, { sns, sqs: direct.sqs })).businessEvents;
    sns.destroy();
  }

  const search = { primary: await startFakeOpenSearch(), secondary: await startFakeOpenSearch() };
  proxy = await startAwsProxy(
    {
      fauxqs: emulators.fauxqsUrl,
      dynamodb: emulators.dynamoUrl,
      opensearch: { [config.regions.primary]: search.primary.url, [config.regions.secondary]: search.secondary.url },
    },
    { account: ACCOUNT, collection: searchCollectionName(config.prefix) },
  );
  stopAll = [proxy.stop, search.primary.stop, search.secondary.stop, emulators.stop];

  const state = new TerraformState(stacks, {
    queueUrls: Object.fromEntries(
      Object.values(queues).flatMap((q) =>
        [nameOf(q.main), nameOf(q.dlq)].map((n, i) => [n, i === 0 ? q.main : q.dlq]),
      ),
    ),
    collectionEndpoint: proxy.url,
    secret: randomBytes(32).toString('hex'),
  });
  for (const [i, role] of REGIONS.entries()) {
    deployed[role] = state.functions(stacks[i] as { id: string; json: Json }, config.prefix);
    for (const fn of deployed[role]) {
      const running = await startLambda({
        fn,
        bundleDir: join(distDir, fn.name),
        runtime: join(import.meta.dirname, 'lambda-runtime.mjs'),
        workDir: tmp,
        endpoint: proxy.url,
        http2Endpoint: proxy.http2Url,
      });
      lambdas[role][fn.name as FunctionName] = running;
      stopAll.unshift(running.stop);
    }
  }

  for (const role of REGIONS) {
    // One active region at a time (issue 15): an operator has promoted this one and fenced the other.
    for (const other of REGIONS)
      proxy.parameters.set(
        `${config.regions[other]} ${regionRoleParameterName(config.prefix)}`,
        other === role ? 'active' : 'fenced',
      );
    try {
      await runFlow(role, direct);
    } catch (error) {
      failures[role].push(String((error as Error).stack ?? error));
    }
  }
}, 120_000);

afterAll(async () => {
  // TALLY_PARITY_REPORT=<file>: the operations each function called, for review.
  if (process.env.TALLY_PARITY_REPORT) {
    const lines = REGIONS.flatMap((role) =>
      FUNCTION_NAMES.map((name) => {
        const ops = [
          ...new Set(
            callsOf(role, name).map(
              (c) =>
                `${c.service}:${c.operation} -> ${c.action} ${c.resource.replace(/^arn:aws:[a-z0-9-]+:[a-z0-9-]*:\d*:?/, '')}`,
            ),
          ),
        ].sort();
        return `## ${role} ${name}\n${ops.join('\n')}\n`;
      }),
    );
    writeFileSync(process.env.TALLY_PARITY_REPORT, lines.join('\n'));
  }
  for (const stop of stopAll) await stop().catch(() => undefined);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function nameOf(queueUrl: string): string {
  return queueUrl.split('/').pop() as string;
}

const lambda = (role: Region, name: FunctionName) => {
  const running = lambdas[role][name];
  if (!running) throw new Error(`${name} is not deployed in the ${role} stack`);
  return running;
};

/** Lambda's SQS event source, played with the consumer's own role (as AWS does). */
async function deliver(role: Region, queue: QueueName, expectFailures = false): Promise<number> {
  const fn = lambda(role, QUEUES[queue].consumer);
  const region = fn.fn.region;
  const sqs = new SQSClient({
    region,
    endpoint: proxy.url,
    credentials: { accessKeyId: fn.principal, secretAccessKey: 'parity' },
    useQueueUrlAsEndpoint: false,
  });
  let handled = 0;
  try {
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queues[queue].main,
          MaxNumberOfMessages: QUEUES[queue].batchSize,
          MessageSystemAttributeNames: ['All'],
          WaitTimeSeconds: 0,
        }),
      );
      const messages: Message[] = out.Messages ?? [];
      if (messages.length === 0) return handled;
      const event: SQSEvent = {
        Records: messages.map((m) => ({
          messageId: m.MessageId as string,
          receiptHandle: m.ReceiptHandle as string,
          body: m.Body ?? '',
          attributes: {
            ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
            SentTimestamp: m.Attributes?.SentTimestamp ?? '0',
            SenderId: 'AROAPARITY',
            ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? '0',
          },
          messageAttributes: {},
          md5OfBody: m.MD5OfBody ?? '',
          eventSource: 'aws:sqs',
          eventSourceARN: `arn:aws:sqs:${region}:${ACCOUNT}:${nameOf(queues[queue].main)}`,
          awsRegion: region,
        })),
      };
      const response = (await fn.invoke<SQSBatchResponse | null>(event)) ?? { batchItemFailures: [] };
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      if (failed.size > 0 && !expectFailures)
        throw new Error(
          `${fn.principal} failed ${failed.size} of ${messages.length} message(s); its log:\n${fn.output().slice(-4000)}`,
        );
      const done = messages.filter((m) => !failed.has(m.MessageId as string));
      if (done.length > 0)
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queues[queue].main,
            Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
          }),
        );
      handled += messages.length;
      if (expectFailures) return failed.size;
    }
  } finally {
    sqs.destroy();
  }
}

/**
 * Lambda's DynamoDB stream event source, played with the consumer's function: the change an
 * exception's item just went through, as the table's stream (in the secondary, its replica's)
 * carries it — the whole item as the new image.
 */
async function deliverStreamChange(role: Region, direct: { dynamo: DynamoDBClient }, exceptionId: string) {
  const table = resourceNames(config.prefix).tables.exceptions;
  const region = config.regions[role];
  const item = await direct.dynamo.send(
    new GetItemCommand({ TableName: table, Key: { exception_id: { S: exceptionId } }, ConsistentRead: true }),
  );
  if (!item.Item) throw new Error(`exception ${exceptionId} is not in ${table}`);
  const event = {
    Records: [
      {
        eventID: randomUUID(),
        eventName: 'MODIFY',
        eventVersion: '1.1',
        eventSource: 'aws:dynamodb',
        awsRegion: region,
        eventSourceARN: `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${table}/stream/2026-01-01T00:00:00.000`,
        dynamodb: {
          ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
          Keys: { exception_id: { S: exceptionId } },
          NewImage: item.Item,
          SequenceNumber: '100000000000000000001',
          SizeBytes: 1024,
          StreamViewType: 'NEW_AND_OLD_IMAGES',
        },
      },
    ],
  } as unknown as DynamoDBStreamEvent;
  const fn = lambda(role, 'stream-index');
  const response = (await fn.invoke<DynamoDBBatchResponse | null>(event)) ?? { batchItemFailures: [] };
  if (response.batchItemFailures.length > 0)
    throw new Error(`stream-index failed the change of ${exceptionId}; its log:\n${fn.output().slice(-4000)}`);
}

function httpEvent(method: string, path: string, options: { query?: string; body?: unknown } = {}) {
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: { 'content-type': 'application/json', origin: 'https://tally.acme.example' },
    ...(options.query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(options.query)) } : {}),
    requestContext: {
      accountId: ACCOUNT,
      apiId: 'parity',
      domainName: 'api.tally.acme.example',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.1', userAgent: 'parity' },
      requestId: randomUUID(),
      routeKey: `${method} ${path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
      // What the JWT authorizer adds on every route but /health.
      authorizer: {
        jwt: {
          claims: {
            sub: 'analyst-1',
            email: 'analyst@acme.example',
            'cognito:groups': '[admin]',
            'tally:datasets': '*',
          },
          scopes: null,
        },
      },
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    isBase64Encoded: false,
  } as unknown as APIGatewayProxyEventV2;
}

async function api<T = Json>(
  role: Region,
  method: string,
  path: string,
  options: { query?: string; body?: unknown } = {},
) {
  const fn = lambda(role, 'query-api');
  const result = await fn.invoke<{ statusCode: number; body?: string }>(httpEvent(method, path, options));
  if (result.statusCode >= 400)
    throw new Error(`${method} ${path} answered ${result.statusCode}: ${result.body}\n${fn.output().slice(-3000)}`);
  return JSON.parse(result.body ?? 'null') as T;
}

/** POST /uploads, then the analyst's PUT to the pre-signed URL; S3 then emits Object Created. */
async function uploadThroughApi(
  role: Region,
  direct: { sqs: SQSClient },
  side: 'source' | 'target',
  body: Buffer,
  options: { announce?: boolean; date?: string } = {},
) {
  const ticket = await api<{ url: string; key: string; headers: Record<string, string> }>(role, 'POST', '/uploads', {
    body: {
      dataset: 'trades',
      business_date: options.date ?? BUSINESS_DATE[role],
      side,
      content_type: 'text/csv',
      content_length: body.length,
    },
  });
  const put = await fetch(ticket.url, { method: 'PUT', headers: ticket.headers, body });
  if (!put.ok) throw new Error(`PUT to the pre-signed URL answered ${put.status}: ${await put.text()}`);
  const etag = (put.headers.get('etag') ?? '').replaceAll('"', '');
  if (options.announce ?? true) await objectCreatedToIngest(role, direct, ticket.key, etag);
  return { key: ticket.key, etag };
}

/** POST /policies, then the PUT to the pre-signed URL, as `tally policy push` does. */
async function pushPolicyThroughApi(role: Region, direct: { sqs: SQSClient }, dataset: string) {
  // Break patterns of two members: the sample's two missing trades make one, so recon saves it.
  const body = Buffer.from(
    readFileSync(join(REPO_ROOT, `policies/datasets/${dataset}.md`), 'utf8').replace(
      /"default_severity": "MEDIUM"\n}/,
      '"default_severity": "MEDIUM",\n  "triage": { "pattern_min_members": 2 }\n}',
    ),
  );
  const ticket = await api<{ url: string; key: string; headers: Record<string, string> }>(role, 'POST', '/policies', {
    body: { dataset, content_length: body.length },
  });
  const put = await fetch(ticket.url, { method: 'PUT', headers: ticket.headers, body });
  if (!put.ok) throw new Error(`PUT to the pre-signed URL answered ${put.status}: ${await put.text()}`);
  await objectCreatedToIngest(role, direct, ticket.key, (put.headers.get('etag') ?? '').replaceAll('"', ''));
}

/**
 * A triage citing nothing (as one made before the corpus was indexed, written as triage writes it,
 * stamp and all): the next policy document indexed asks for it again with nothing typed. The
 * ingest bundle queues the sweep on the triage queue; the triage bundle reads by_uncited_sharded
 * (the synthesised table's index, under its role) and triages the exception again.
 */
async function uncitedAskedAgain(
  role: Region,
  direct: { sqs: SQSClient; s3: S3Client; dynamo: DynamoDBClient },
  id: string,
) {
  const table = resourceNames(config.prefix).tables.exceptions;
  const doc = DynamoDBDocumentClient.from(direct.dynamo);
  const stored = (await doc.send(new GetCommand({ TableName: table, Key: { exception_id: id }, ConsistentRead: true })))
    .Item as { triage: Triage; content_hash: string };
  const before = '2026-01-01T00:00:00.000Z';
  const uncited = { ...stored.triage, policy_citations: [], triaged_at: before };
  expect(await new DynamoTriageStore(doc, table).saveTriage(id, uncited, stored.content_hash)).toBe(true);
  const key = `policies/parity-runbook-${role}.md`;
  const out = await direct.s3.send(
    new PutObjectCommand({
      Bucket: awsBucketName(config.prefix, config.regions[role]),
      Key: key,
      Body: '# Parity runbook\n\n## Amount mismatch (AMOUNT_MISMATCH)\n\nCompare the fees first.\n',
    }),
  );
  await objectCreatedToIngest(role, direct, key, (out.ETag ?? '').replaceAll('"', ''));
  expect(await deliver(role, 'ingest'), 'the policy document').toBe(1);
  // The sweep waits for the rest of a push (the deployed settling time, a minute): the triage
  // bundle puts it back on the queue, delayed.
  const [queued] =
    (
      await direct.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queues.triage.main, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
      )
    ).Messages ?? [];
  const sweep = JSON.parse(queued?.Body ?? '{}') as UncitedRequest;
  expect(sweep).toMatchObject({ kind: 'uncited', document: expect.any(String) });
  expect(await deliver(role, 'triage'), 'the sweep, put back').toBe(1);
  const waiting = await direct.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queues.triage.main,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  expect(waiting.Attributes).toMatchObject({
    ApproximateNumberOfMessages: '0',
    ApproximateNumberOfMessagesDelayed: '1',
  });
  // A minute on, as it comes back: the same request, its time that much further behind the clock.
  await direct.sqs.send(new PurgeQueueCommand({ QueueUrl: queues.triage.main }));
  const settled = new Date(Date.parse(sweep.requested_at) - 2 * DEFAULT_UNCITED_SETTLE_SECONDS * 1000).toISOString();
  await direct.sqs.send(
    new SendMessageCommand({
      QueueUrl: queues.triage.main,
      MessageBody: JSON.stringify({ ...sweep, requested_at: settled }),
    }),
  );
  // The sweep, then what it asked (the exception, or its pattern and the pattern's members).
  expect(await deliver(role, 'triage'), 'the sweep and what it asked').toBeGreaterThanOrEqual(2);
  const again = await api<{ triage?: { triaged_at: string; policy_citations: unknown[] } }>(
    role,
    'GET',
    `/exceptions/${id}`,
  );
  expect(again.triage?.policy_citations.length, 'cited again').toBeGreaterThan(0);
  expect((again.triage?.triaged_at ?? '') > before, 'triaged again').toBe(true);
}

/** Takes what a consumer failed off its queue (on AWS the redrive policy would, later). */
async function discard(queue: QueueName, direct: { sqs: SQSClient }) {
  const left = await direct.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queues[queue].main,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      WaitTimeSeconds: 2,
    }),
  );
  if ((left.Messages ?? []).length > 0)
    await direct.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queues[queue].main,
        Entries: (left.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
      }),
    );
}

/** What EventBridge does with S3's Object Created event: the ingest queue receives it. */
async function objectCreatedToIngest(role: Region, direct: { sqs: SQSClient }, key: string, etag: string) {
  const bucket = awsBucketName(config.prefix, config.regions[role]);
  const event = { ...objectCreated(key, etag, { bucket }), region: config.regions[role], account: ACCOUNT };
  await direct.sqs.send(new SendMessageCommand({ QueueUrl: queues.ingest.main, MessageBody: JSON.stringify(event) }));
}

/**
 * A region that is not active (issue 15): its ingest looks at the object (HeadObject, under its
 * deployed grant) to tell a replica, whose event it releases, from anything else, which it holds.
 * The emulator writes no replicas, so this upload is held: out of sight for the rest of the test.
 */
async function standbyIngestHolds(role: Region, direct: { s3: S3Client; sqs: SQSClient }) {
  const key = 'incoming/parity-standby/2025-01-01/source.csv';
  const bucket = awsBucketName(config.prefix, config.regions[role]);
  const out = await direct.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: SOURCE }));
  await objectCreatedToIngest(role, direct, key, (out.ETag ?? '').replaceAll('"', ''));
  expect(await deliver(role, 'ingest', true), 'messages the standby region held').toBe(1);
  // Gone again, or this region's sweep, later in its own flow, would rightly re-send it.
  await direct.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

async function runFlow(role: Region, direct: { s3: S3Client; sqs: SQSClient; dynamo: DynamoDBClient }) {
  const bucket = awsBucketName(config.prefix, config.regions[role]);
  // Before the other region's first call, while it reads itself fenced (the role is cached 5 s).
  if (role === REGIONS[0]) await standbyIngestHolds(REGIONS[1] as Region, direct);
  // The policy corpus: exactly the stack's aws_s3_object resources, written as apply writes them.
  const stack = stacks[REGIONS.indexOf(role)] as { id: string; json: Json };
  const corpus = Object.values((stack.json.resource?.aws_s3_object ?? {}) as Record<string, Json>);
  expect(corpus.length, 'policy documents in the stack').toBeGreaterThan(0);
  for (const object of corpus) {
    const key = object.key as string;
    const out = await direct.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: readFileSync(join(tmp, 'out', 'stacks', stack.id, object.source as string)),
      }),
    );
    await objectCreatedToIngest(role, direct, key, (out.ETag ?? '').replaceAll('"', ''));
  }
  await deliver(role, 'ingest');
  // `tally policy push`: POST /policies, the PUT, then ingest validates it and puts it in force.
  await pushPolicyThroughApi(role, direct, 'trades');
  await deliver(role, 'ingest');

  // One side at a time, so exactly one of them finds both sides in and requests the run.
  const source = await uploadThroughApi(role, direct, 'source', SOURCE);
  await deliver(role, 'ingest');
  await uploadThroughApi(role, direct, 'target', TARGET);
  await deliver(role, 'ingest');
  expect(await deliver(role, 'recon'), 'recon requests').toBe(1);
  expect(await deliver(role, 'store'), 'findings chunks').toBe(1);
  expect(await deliver(role, 'triage'), 'triage requests').toBeGreaterThan(0);

  await api(role, 'GET', '/health');
  const listed = await api<{ items: { exception_id: string; version: number }[] }>(role, 'GET', '/exceptions', {
    query: `dataset=trades&business_date=${BUSINESS_DATE[role]}`,
  });
  expect(listed.items.length).toBeGreaterThan(0);
  const first = listed.items[0] as { exception_id: string; version: number };
  const record = await api<{ version: number }>(role, 'GET', `/exceptions/${first.exception_id}`);
  await api(role, 'PATCH', `/exceptions/${first.exception_id}`, {
    // With an assignee: the assignment is announced on the business events topic.
    body: { version: record.version, status: 'ACKNOWLEDGED', assignee: 'parity-analyst' },
  });
  // Suggested matches score with the dataset's policy in force (read from policies-in-force/).
  const missing = listed.items.find((i) => (i as { exception_type?: string }).exception_type === 'MISSING_IN_TARGET');
  expect(missing, 'the sample has missing trades').toBeDefined();
  await api(role, 'GET', `/exceptions/${(missing as { exception_id: string }).exception_id}/suggestions`);
  // The same change, as the table's stream carries it to this region's consumer.
  await deliverStreamChange(role, direct, first.exception_id);
  await api(role, 'GET', '/search', { query: 'q=amount%20mismatch' });
  const runs = await api<{ items: { run_id: string }[] }>(role, 'GET', '/runs');
  await api(role, 'GET', `/runs/${(runs.items[0] as { run_id: string }).run_id}`);
  const runId = (runs.items[0] as { run_id: string }).run_id;
  const patterns = await api<{ items: { pattern_id: string }[] }>(role, 'GET', `/runs/${runId}/patterns`);
  expect(patterns.items.length, 'the sample run: its two missing trades are one saved pattern').toBe(1);
  await api(
    role,
    'POST',
    `/runs/${runId}/patterns/${(patterns.items[0] as { pattern_id: string }).pattern_id}/actions`,
    {
      body: { action: 'acknowledge' },
    },
  );
  const report = await lambda(role, 'query-api').invoke<{ statusCode: number; body?: string }>(
    httpEvent('GET', `/runs/${(runs.items[0] as { run_id: string }).run_id}/report`, { query: 'format=md' }),
  );
  expect(report.statusCode, report.body).toBe(200);
  expect(report.body).toMatch(/Outcome: /);
  await api(role, 'GET', '/queues');
  await api(role, 'GET', '/files');
  await api(role, 'GET', '/exception-counts', { query: 'status=OPEN' });
  // The policy documents, and the MCP server at POST /mcp from the bundle: a tool call runs the
  // router in-process as the caller.
  await api(role, 'GET', '/policies');
  await api(role, 'GET', '/policies/datasets/trades');
  const governance = await api<{ kind: string; text: string }>(role, 'GET', '/policies/recon-policy');
  expect(governance.kind).toBe('governance');
  expect(governance.text).toMatch(/^# /);
  const mcpEvent = httpEvent('POST', '/mcp', {
    body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_exceptions', arguments: { limit: 1 } } },
  });
  mcpEvent.headers.accept = 'application/json, text/event-stream';
  const mcp = await lambda(role, 'query-api').invoke<{ statusCode: number; body?: string }>(mcpEvent);
  expect(mcp.statusCode, mcp.body).toBe(200);
  expect(JSON.parse(mcp.body ?? '{}').result.structuredContent.items).toHaveLength(1);
  // The triages above called the model: their cost is on the day's usage and the run.
  const usage = await api<{ days: { calls: number }[] }>(role, 'GET', '/usage', { query: 'days=3' });
  expect(usage.days[0]?.calls, "today's model calls").toBeGreaterThan(0);
  // An analyst asks for an exception's triage again: the query API queues it, triage answers it.
  const asked = await api<{ requested_at: string }>(role, 'POST', `/exceptions/${first.exception_id}/triage`);
  expect(await deliver(role, 'triage'), 'the triage asked again').toBe(1);
  const retriaged = await api<{ triage?: { triaged_at: string } }>(role, 'GET', `/exceptions/${first.exception_id}`);
  expect((retriaged.triage?.triaged_at ?? '') >= asked.requested_at, 'triaged after the request').toBe(true);
  await uncitedAskedAgain(role, direct, first.exception_id);

  // A corrected target: a second run resolves an exception, and mirrors that into the index.
  await uploadThroughApi(role, direct, 'target', CORRECTED_TARGET);
  await deliver(role, 'ingest');
  expect(await deliver(role, 'recon'), 'recon requests').toBe(1);
  expect(await deliver(role, 'store'), 'findings chunks').toBe(1);
  await deliver(role, 'triage');

  // A wrong target file: the runaway guard holds the run — stored, nothing queued for triage, the
  // business events topic told once — until an analyst releases it through the API.
  await uploadThroughApi(role, direct, 'source', SOURCE, { date: HELD_DATE[role] });
  await deliver(role, 'ingest');
  await uploadThroughApi(role, direct, 'target', WRONG_TARGET, { date: HELD_DATE[role] });
  await deliver(role, 'ingest');
  expect(await deliver(role, 'recon'), 'recon requests').toBe(1);
  expect(await deliver(role, 'store'), 'findings chunks').toBe(1);
  expect(await deliver(role, 'triage'), 'triage of a held run').toBe(0);
  const heldRuns = await api<{ items: { run_id: string; triage?: { state: string } }[] }>(role, 'GET', '/runs', {
    query: `dataset=trades&business_date=${HELD_DATE[role]}`,
  });
  const heldRun = heldRuns.items[0] as { run_id: string; triage?: { state: string } };
  expect(heldRun.triage?.state).toBe('HELD');
  const inbox = topics[role] as TopicUrls;
  const told = await direct.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: inbox.inbox, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  // The topic also carries exception events (CRITICAL ratings): the held run is told once.
  expect(
    (told.Messages ?? [])
      .map((m) => JSON.parse(m.Body ?? '{}') as { kind?: string; run_id?: string })
      .filter((e) => e.kind === 'run_held')
      .map((e) => e.run_id),
  ).toEqual([heldRun.run_id]);
  await direct.sqs.send(
    new DeleteMessageBatchCommand({
      QueueUrl: inbox.inbox,
      Entries: (told.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
    }),
  );
  await api(role, 'POST', `/runs/${heldRun.run_id}/triage`, { body: { action: 'release' } });
  expect(await deliver(role, 'triage'), 'triage of the released run').toBeGreaterThan(1);

  // EventBridge delivers at least once: the same event again is a duplicate, nothing more.
  await objectCreatedToIngest(role, direct, source.key, source.etag);
  await deliver(role, 'ingest');
  // A throttled files table (beyond the SDK's retries) fails the record and releases its claim.
  const again = await uploadThroughApi(role, direct, 'source', SOURCE, { announce: false, date: SPARE_DATE[role] });
  proxy.faults.push({ operation: 'PutItem', table: resourceNames(config.prefix).tables.files, count: 10 });
  await objectCreatedToIngest(role, direct, again.key, again.etag);
  expect(await deliver(role, 'ingest', true), 'ingest with a throttled files table').toBe(1);
  proxy.faults.length = 0;
  await discard('ingest', direct);

  // That upload now has no file record: the sweep, run with its clock ten minutes on (past its
  // minimum age), finds it and re-sends its event, which ingest then takes in.
  const swept = await lambda(role, 'sweep').invoke<{ resent: { key: string }[] }>(
    { source: 'aws.events', 'detail-type': 'Scheduled Event' },
    { clockOffsetMs: 10 * 60_000 },
  );
  expect(swept.resent.map((r) => r.key)).toEqual([again.key]);
  expect(await deliver(role, 'ingest'), 'the event the sweep re-sent').toBe(1);

  // The deadline sweep, its clock five weeks on: a late arrival whose window ended is promoted and
  // its triage queued; the sample's exceptions are past their targets and announced overdue once;
  // a model's circuit breaker past its cool-down has a degraded triage asked again.
  const pending = await putException(role, direct.dynamo, {});
  await putException(role, direct.dynamo, { status: 'OPEN', [TRIAGE_STAMP.uncited]: DEGRADED_TRIAGE });
  await DynamoDBDocumentClient.from(direct.dynamo).send(
    new PutCommand({
      TableName: resourceNames(config.prefix).tables.circuit_breaker,
      Item: { provider: `bedrock:parity-${role}`, failures: 3, opened_until: Date.now() },
    }),
  );
  const deadlines = await lambda(role, 'deadlines').invoke<{
    promoted: string[];
    overdue: string[];
    probe?: { providers: string[]; probed: string[]; exception_id?: string };
  }>({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, { clockOffsetMs: 35 * 24 * 3600_000 });
  expect(deadlines.promoted, 'late arrivals promoted').toContain(pending);
  expect(deadlines.overdue.length, 'overdue exceptions announced').toBeGreaterThan(0);
  expect(deadlines.probe?.providers, 'breakers waiting for a trial').toContain(`bedrock:parity-${role}`);
  const probed = await DynamoDBDocumentClient.from(direct.dynamo).send(
    new GetCommand({
      TableName: resourceNames(config.prefix).tables.exceptions,
      Key: { exception_id: deadlines.probe?.exception_id ?? '(none asked)' },
    }),
  );
  expect(probed.Item?.[TRIAGE_STAMP.uncited], 'a degraded triage asked again').toBe(DEGRADED_TRIAGE);
  const breaker = await DynamoDBDocumentClient.from(direct.dynamo).send(
    new GetCommand({
      TableName: resourceNames(config.prefix).tables.circuit_breaker,
      Key: { provider: `bedrock:parity-${role}` },
    }),
  );
  expect(breaker.Item?.probes, 'the probe recorded on its breaker (the next one spaced)').toBe(1);
  await discard('triage', direct);
  // The overdue notices' copies in the topic's inbox (a queue both regions' topics share here).
  await drainInbox(role, direct);
  // The business events (held runs, CRITICAL ratings, overdue notices) reach the webhooks' consumer.
  expect(await deliver(role, 'notifications'), 'business events to webhooks').toBeGreaterThan(0);

  // A message no consumer can handle: each moves it to its DLQ at once, with why, and records it.
  for (const queue of ['ingest', 'recon', 'store', 'triage', 'notifications'] as const) {
    await direct.sqs.send(new SendMessageCommand({ QueueUrl: queues[queue].main, MessageBody: '{"not":"a request"}' }));
    expect(await deliver(role, queue, true), `${queue} poison message: handled, not retried`).toBe(0);
    const dead = await direct.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues[queue].dlq,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    expect(
      (dead.Messages ?? []).map((m) => [m.Body, m.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.code]?.StringValue]),
      `${queue} DLQ`,
    ).toEqual([['{"not":"a request"}', 'BAD_MESSAGE']]);
    await direct.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queues[queue].dlq,
        Entries: (dead.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
      }),
    );
    await discard(queue, direct);
  }
}

async function drainInbox(role: Region, direct: { sqs: SQSClient }): Promise<void> {
  const inbox = (topics[role] as TopicUrls).inbox;
  for (;;) {
    const out = await direct.sqs.send(new ReceiveMessageCommand({ QueueUrl: inbox, MaxNumberOfMessages: 10 }));
    if ((out.Messages ?? []).length === 0) return;
    await direct.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: inbox,
        Entries: (out.Messages ?? []).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle as string })),
      }),
    );
  }
}

/** A PENDING late arrival of the sample dataset whose window has ended, as the store writes one. */
/** A PENDING late arrival of `role`'s date, or with `fields` over it, stored as recon would (index keys included). */
async function putException(role: Region, dynamo: DynamoDBClient, fields: Record<string, unknown>): Promise<string> {
  const at = new Date().toISOString();
  const item = {
    exception_id: randomBytes(16).toString('hex'),
    run_id: `late-${role}`,
    dataset: 'trades',
    business_date: BUSINESS_DATE[role],
    dataset_date: `trades#${BUSINESS_DATE[role]}`,
    exception_type: 'MISSING_IN_TARGET',
    key: { trade_id: `LATE-${role}` },
    source: { trade_id: `LATE-${role}`, amount: '10.00' },
    target: null,
    diffs: [],
    lines: { source: [2], target: [] },
    policy_severity: 'HIGH',
    severity: 'HIGH',
    status: 'PENDING',
    record_type: 'EXCEPTION',
    created_at: at,
    updated_at: at,
    first_seen_at: at,
    last_seen_at: at,
    pending_until: at,
    content_hash: 'late',
    last_changed_run_id: `late-${role}`,
    version: 1,
    history: [{ at, by: 'system:recon', action: 'CREATED', to: 'PENDING' }],
  };
  const stored = { ...item, ...fields };
  await DynamoDBDocumentClient.from(dynamo).send(
    new PutCommand({
      TableName: resourceNames(config.prefix).tables.exceptions,
      Item: { ...stored, ...exceptionIndexKeys(stored) },
    }),
  );
  return item.exception_id;
}

// ---- what the calls say about the grants ---------------------------------------------------

function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

interface Use {
  readonly action: string;
  readonly resource: string;
  /** kms:ViaService of a key use made by a service for the caller. */
  readonly via?: string;
  readonly operation: string;
}

const callsOf = (role: Region, name: FunctionName): Call[] =>
  proxy.calls.filter((c) => c.principal === lambda(role, name).principal);

/**
 * The function's calls, plus the KMS use AWS makes with the caller's permissions for them:
 * DynamoDB with the table's key, S3 and SQS with the regional data key.
 */
function usesOf(role: Region, name: FunctionName): Use[] {
  const fn = lambda(role, name).fn;
  const region = fn.region;
  const dataKey = fn.dataKeyArn;
  const uses: Use[] = [];
  for (const call of callsOf(role, name)) {
    if (call.service === 'aoss' && !call.action.startsWith('aoss:APIAccessAll')) continue; // data access policy
    uses.push({ action: call.action, resource: call.resource, operation: call.operation });
    const via = (service: string) => `${service}.${region}.amazonaws.com`;
    const kms = (actions: readonly string[], key: string | undefined, service: string) => {
      for (const action of actions)
        uses.push({ action, resource: key ?? '(no key granted)', via: via(service), operation: call.operation });
    };
    if (call.service === 'dynamodb') {
      const table = /:table\/([^/]+)/.exec(call.resource)?.[1] as string;
      kms(call.writes ? TABLE_KEY_ACTIONS.write : TABLE_KEY_ACTIONS.read, fn.tableKeys[table], 'dynamodb');
    }
    if (call.action === 's3:GetObject') kms(['kms:Decrypt'], dataKey, 's3');
    if (call.action === 's3:PutObject') kms(['kms:GenerateDataKey'], dataKey, 's3');
    if (call.action === 'sqs:SendMessage') kms(['kms:GenerateDataKey', 'kms:Decrypt'], dataKey, 'sqs');
    if (call.action === 'sqs:ReceiveMessage') kms(['kms:Decrypt'], dataKey, 'sqs');
    if (call.action === 'sns:Publish') kms(['kms:GenerateDataKey', 'kms:Decrypt'], dataKey, 'sns');
  }
  return uses;
}

function grants(statement: Statement, use: Use): boolean {
  if (!statement.actions.some((a) => glob(a).test(use.action))) return false;
  if (!statement.resources.some((r) => glob(r).test(use.resource))) return false;
  const via = statement.conditions.find((c) => c.variable === 'kms:ViaService');
  return via ? use.via !== undefined && via.values.includes(use.via) : use.via === undefined;
}

const unobserved = (name: FunctionName, statement: Statement, action: string) =>
  UNOBSERVED_GRANTS.some(
    (g) =>
      g.actions.includes(action) &&
      (g.function === undefined || g.function === name) &&
      (g.statement === undefined || g.statement.test(statement.sid)) &&
      (g.table === undefined || statement.resources.some((r) => r.endsWith(`:table/${config.prefix}-${g.table}`))),
  );

describe.each(REGIONS)('the %s stack, run from its built bundles with its synthesised environment', (role) => {
  it('takes a real input through every function without a failure', () => {
    expect(failures[role], failures[role].join('\n')).toEqual([]);
    for (const name of FUNCTION_NAMES) expect(callsOf(role, name).length, name).toBeGreaterThan(0);
  });

  it.each(FUNCTION_NAMES)('%s: every AWS call it makes is granted to it on that resource', (name) => {
    const fn = lambda(role, name).fn;
    const ungranted = usesOf(role, name).filter((use) => !fn.statements.some((s) => grants(s, use)));
    const searchCalls = callsOf(role, name).filter((c) => c.service === 'aoss' && c.action !== 'aoss:APIAccessAll');
    const denied = searchCalls.filter(
      (c) => !fn.searchRules.some((r) => glob(r.resource).test(c.resource) && r.permissions.includes(c.action)),
    );

    expect(
      ungranted.map((u) => `${u.action} on ${u.resource}${u.via ? ` via ${u.via}` : ''} (${u.operation})`),
    ).toEqual([]);
    expect(denied.map((c) => `${c.action} on ${c.resource} (${c.operation})`)).toEqual([]);
  });

  it.each(FUNCTION_NAMES)('%s: holds no action it never called (but the listed exceptions)', (name) => {
    const fn = lambda(role, name).fn;
    const uses = usesOf(role, name);
    const unused = fn.statements.flatMap((s) =>
      s.actions
        .filter((action) => !unobserved(name, s, action))
        .filter((action) => !uses.some((u) => grants({ ...s, actions: [action] }, u)))
        .map((action) => `${s.sid}: ${action}`),
    );
    const searchCalls = callsOf(role, name).filter((c) => c.service === 'aoss');
    const unusedSearch = fn.searchRules.flatMap((r) =>
      r.permissions
        .filter((p) => !UNOBSERVED_SEARCH.some((u) => u.function === name && u.permission === p))
        .filter((p) => !searchCalls.some((c) => c.action === p && glob(r.resource).test(c.resource)))
        .map((p) => `${r.resource}: ${p}`),
    );

    expect(unused).toEqual([]);
    expect(unusedSearch).toEqual([]);
  });
});

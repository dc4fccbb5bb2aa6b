/**
 * GET /runs (recent runs, newest first, from GSIs only) and GET /queues (queue and DLQ depth,
 * age of the oldest message from CloudWatch on AWS) through the real handler.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createHandler } from '../../functions/query-api/handler.ts';
import { queryApiConfig } from '../../functions/query-api/config.ts';
import { planRunsQuery } from '../../functions/query-api/runs.ts';
import { SqsQueueMonitor, queueNameOf } from '../../functions/query-api/sqs-monitor.ts';
import type { QueryApiDeps, QueueMonitor } from '../../functions/query-api/ports.ts';
import { DynamoRunStore } from '../../functions/shared/tables/runs-dynamo.ts';
import type { RunRecord } from '../../functions/shared/tables/runs.ts';
import { ENV } from '../../functions/shared/resources.ts';
import { queryStoreOf, startTestDynamo, type TestDynamo } from '../support/dynamo.ts';
import { lambdaContext } from '../support/events.ts';

const NOW = Date.parse('2026-01-05T10:00:00.000Z');
let dynamo: TestDynamo;

beforeAll(async () => {
  dynamo = await startTestDynamo();
  const runs = new DynamoRunStore(dynamo.doc, dynamo.names.tables.runs);
  // Written the way ingest requests them: through the RunStore (which adds the index attributes).
  const run = (dataset: string, date: string, n: number, status: RunRecord['status'] = 'COMPLETED'): RunRecord => ({
    run_id: `run-${dataset}-${date}-${n}`,
    dataset,
    business_date: date,
    status,
    source: { bucket: 'b', key: `incoming/${dataset}/${date}/source.csv`, etag: `s${n}` },
    target: { bucket: 'b', key: `incoming/${dataset}/${date}/target.csv`, etag: `t${n}` },
    requested_at: `2026-01-0${n}T08:00:00.000Z`,
    requested_by: `ingest-${n}`,
    ...(status === 'COMPLETED'
      ? {
          summary: {
            rows: { source: 20, target: 19 },
            matched: 15,
            exceptions: { AMOUNT_MISMATCH: 2 },
            rejected: { source: 0, target: 0 },
            duration_ms: 3,
            new: 2,
            changed: 0,
            unchanged: 0,
            resolved: 0,
            triage_enqueued: 2,
          },
        }
      : {}),
  });
  await runs.request(run('trades', '2025-12-10', 1));
  await runs.request(run('payments', '2025-12-10', 2, 'FAILED'));
  await runs.request(run('trades', '2025-12-10', 3));
  await runs.request(run('trades', '2025-12-11', 4, 'RUNNING'));
});
afterAll(async () => {
  await dynamo.stop();
});

function httpEvent(method: string, path: string, query: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers: {},
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '0',
      apiId: 'api',
      domainName: 'x',
      domainPrefix: 'x',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 't' },
      requestId: 'req',
      routeKey: '$default',
      stage: '$default',
      time: '',
      timeEpoch: NOW,
    },
    isBase64Encoded: false,
  };
}

function setup(queues: QueueMonitor = { depths: async () => [] }) {
  const deps = {
    store: queryStoreOf(dynamo),
    queues,
    paginationSecret: 'test-secret',
    corsOrigins: ['*'],
    localIdentity: 'me',
    now: () => NOW,
    healthChecks: [],
  } as unknown as QueryApiDeps;
  const handler = createHandler(() => deps);
  return async (path: string, query: Record<string, string> = {}) => {
    const res = (await handler(httpEvent('GET', path, query), lambdaContext)) as APIGatewayProxyStructuredResultV2;
    return { status: res.statusCode, body: JSON.parse(res.body ?? 'null') };
  };
}

describe('GET /runs', () => {
  it("lists every dataset's runs newest first, with their summaries and without index attributes", async () => {
    const res = await setup()('/runs');

    expect(res.status).toBe(200);
    expect(res.body.items.map((r: RunRecord) => r.run_id)).toEqual([
      'run-trades-2025-12-11-4',
      'run-trades-2025-12-10-3',
      'run-payments-2025-12-10-2',
      'run-trades-2025-12-10-1',
    ]);
    expect(res.body.items[1]).toMatchObject({
      status: 'COMPLETED',
      summary: { rows: { source: 20, target: 19 }, matched: 15, exceptions: { AMOUNT_MISMATCH: 2 } },
    });
    expect(res.body.items[0]).not.toHaveProperty('record_type');
    expect(res.body.items[0]).not.toHaveProperty('dataset_date');
    expect(res.body.next_token).toBeNull();
  });

  it('narrows to one dataset-day (its own index), a dataset, or a status', async () => {
    const get = setup();

    const day = await get('/runs', { dataset: 'trades', business_date: '2025-12-10' });
    const dataset = await get('/runs', { dataset: 'payments' });
    const running = await get('/runs', { status: 'RUNNING' });

    expect(day.body.items.map((r: RunRecord) => r.run_id)).toEqual([
      'run-trades-2025-12-10-3',
      'run-trades-2025-12-10-1',
    ]);
    expect(dataset.body.items.map((r: RunRecord) => r.run_id)).toEqual(['run-payments-2025-12-10-2']);
    expect(running.body.items.map((r: RunRecord) => r.run_id)).toEqual(['run-trades-2025-12-11-4']);
  });

  it('pages with a signed next_token that only works for the same filters', async () => {
    const get = setup();

    const first = await get('/runs', { limit: '3' });
    const second = await get('/runs', { limit: '3', next_token: first.body.next_token });
    const mismatched = await get('/runs', { limit: '3', status: 'FAILED', next_token: first.body.next_token });

    expect(first.body.count).toBe(3);
    expect(second.body.items.map((r: RunRecord) => r.run_id)).toEqual(['run-trades-2025-12-10-1']);
    expect(second.body.next_token).toBeNull();
    expect(mismatched.status).toBe(400);
    expect(mismatched.body.error.code).toBe('NEXT_TOKEN_FILTER_MISMATCH');
  });

  it.each([
    [{ business_date: '2025-12-10' }, /business_date needs dataset/],
    [{ status: 'DONE' }, /status: must be one of REQUESTED/],
    [{ limit: '0' }, /limit: must be an integer from 1 to 100/],
    [{ dataset: 'a/b' }, /dataset/],
    [{ sort: 'asc' }, /unknown query parameter "sort"/],
  ])('rejects %j with a 400 saying what is allowed', async (query, message) => {
    const res = await setup()('/runs', query as Record<string, string>);

    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it('is served by a key query on a GSI, never a Scan', () => {
    expect(planRunsQuery({})).toEqual({
      index: 'by_requested',
      partition: { attribute: 'record_type', value: 'RUN' },
      filters: [],
    });
    expect(planRunsQuery({ dataset: 'trades', business_date: '2025-12-10', status: 'FAILED' })).toEqual({
      index: 'by_dataset_date',
      partition: { attribute: 'dataset_date', value: 'trades#2025-12-10' },
      filters: [{ attribute: 'status', value: 'FAILED' }],
    });
  });

  it('the ingest RunStore writes the by_requested partition on every run', async () => {
    const out = await dynamo.doc.send(
      new QueryCommand({
        TableName: dynamo.names.tables.runs,
        IndexName: 'by_requested',
        KeyConditionExpression: 'record_type = :r',
        ExpressionAttributeValues: { ':r': 'RUN' },
      }),
    );

    expect(out.Count).toBe(4);
  });
});

describe('GET /queues', () => {
  const sqs = mockClient(SQSClient);
  const cloudwatch = mockClient(CloudWatchClient);
  const QUEUES = {
    ingest: {
      main: 'https://sqs.eu-west-1.amazonaws.com/123456789012/acme-ingest',
      dlq: 'https://sqs.eu-west-1.amazonaws.com/123456789012/acme-ingest-dlq',
    },
    triage: {
      main: 'https://sqs.eu-west-1.amazonaws.com/123456789012/acme-triage',
      dlq: 'https://sqs.eu-west-1.amazonaws.com/123456789012/acme-triage-dlq',
    },
  };
  beforeEach(() => {
    sqs.reset();
    cloudwatch.reset();
    sqs.on(GetQueueAttributesCommand).callsFake((input: { QueueUrl: string }) => ({
      Attributes: input.QueueUrl.endsWith('ingest-dlq')
        ? {
            ApproximateNumberOfMessages: '2',
            ApproximateNumberOfMessagesNotVisible: '0',
            ApproximateNumberOfMessagesDelayed: '0',
          }
        : {
            ApproximateNumberOfMessages: '5',
            ApproximateNumberOfMessagesNotVisible: '1',
            ApproximateNumberOfMessagesDelayed: '0',
          },
    }));
  });

  it("reports each main queue and its DLQ, with the oldest message's age from CloudWatch, and the runbook", async () => {
    cloudwatch.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'q0', Values: [120, 60] },
        { Id: 'q1', Values: [3600] },
        { Id: 'q2', Values: [] },
      ],
    });
    const monitor = new SqsQueueMonitor(new SQSClient({ region: 'eu-west-1' }), QUEUES, {
      cloudwatch: new CloudWatchClient({ region: 'eu-west-1' }),
      now: () => NOW,
    });

    const res = await setup(monitor)('/queues');

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      queues: [
        {
          queue: 'ingest',
          main: { visible: 5, in_flight: 1, delayed: 0, oldest_age_seconds: 120 },
          dlq: { visible: 2, in_flight: 0, delayed: 0, oldest_age_seconds: 3600 },
        },
        {
          queue: 'triage',
          main: { visible: 5, in_flight: 1, delayed: 0, oldest_age_seconds: null },
          dlq: { visible: 5, in_flight: 1, delayed: 0, oldest_age_seconds: null },
        },
      ],
      runbook: 'docs/runbooks/dlq-depth.md',
    });
    const query = cloudwatch.commandCalls(GetMetricDataCommand)[0]?.args[0].input;
    expect(cloudwatch.commandCalls(GetMetricDataCommand)).toHaveLength(1);
    expect(query?.MetricDataQueries?.map((q) => q.MetricStat?.Metric?.Dimensions?.[0]?.Value)).toEqual([
      'acme-ingest',
      'acme-ingest-dlq',
      'acme-triage',
      'acme-triage-dlq',
    ]);
    expect(query?.MetricDataQueries?.[0]?.MetricStat).toMatchObject({
      Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage' },
      Stat: 'Maximum',
    });
  });

  it('without CloudWatch (local mode) reports depths and no age', async () => {
    const monitor = new SqsQueueMonitor(new SQSClient({ region: 'eu-west-1' }), QUEUES);

    const res = await setup(monitor)('/queues');

    expect(res.body.queues[0].main).toEqual({ visible: 5, in_flight: 1, delayed: 0, oldest_age_seconds: null });
    expect(cloudwatch.commandCalls(GetMetricDataCommand)).toHaveLength(0);
  });

  it('a failing SQS call is a 500 with a correlation id only', async () => {
    sqs
      .on(GetQueueAttributesCommand)
      .rejects(new Error('AccessDenied on arn:aws:sqs:eu-west-1:123456789012:acme-ingest'));
    const monitor = new SqsQueueMonitor(new SQSClient({ region: 'eu-west-1' }), QUEUES);

    const res = await setup(monitor)('/queues');

    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain('AccessDenied');
  });

  it('takes the queue name for CloudWatch from the URL', () => {
    expect(queueNameOf(QUEUES.ingest.dlq)).toBe('acme-ingest-dlq');
  });
});

describe('query-api configuration of the monitored queues', () => {
  const base = {
    [ENV.bucket]: 'b',
    [ENV.exceptionsTable]: 'e',
    [ENV.runsTable]: 'r',
    [ENV.filesTable]: 'f',
    [ENV.patternsTable]: 'p',
    [ENV.triageQueueUrl]: 'q',
    [ENV.usageTable]: 'u',
  };

  it('reads the queue map and the metric source', () => {
    const config = queryApiConfig({
      ...base,
      [ENV.monitoredQueues]: JSON.stringify({ ingest: { main: 'https://sqs/x', dlq: 'https://sqs/x-dlq' } }),
      [ENV.queueMetrics]: 'cloudwatch',
    });

    expect(config.monitoredQueues).toEqual({ ingest: { main: 'https://sqs/x', dlq: 'https://sqs/x-dlq' } });
    expect(config.queueMetrics).toBe('cloudwatch');
  });

  it('defaults to no queues and no metrics, and names a malformed map', () => {
    expect(queryApiConfig(base)).toMatchObject({ monitoredQueues: {}, queueMetrics: 'none' });
    expect(() => queryApiConfig({ ...base, [ENV.monitoredQueues]: '{"ingest":{"main":"x"}}' })).toThrow(
      /TALLY_MONITORED_QUEUES/,
    );
  });
});

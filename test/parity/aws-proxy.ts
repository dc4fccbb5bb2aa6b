/**
 * One endpoint for every AWS API the bundles call (AWS_ENDPOINT_URL, and the collection endpoint):
 * it reads the SigV4 credential scope of each request — the access key says which function signed
 * it, the scope which service — records the call as the IAM action and resource AWS would
 * authorise, and forwards it to the emulator for that service. Bedrock, CloudWatch and SSM have
 * no emulator: this answers them itself (a fixed embedding, a tool-use answer, no metric data,
 * the parameters the test sets — each region's role).
 */
import http from 'node:http';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface Call {
  /** The access key the request was signed with: the function (test/parity/lambda.ts names them). */
  readonly principal: string;
  /** The SigV4 signing name: s3, sqs, dynamodb, aoss, bedrock, monitoring. */
  readonly service: string;
  /** The API operation as called (GetItem, SendMessageBatch, PUT index ...). */
  readonly operation: string;
  /** The IAM (or, for aoss, data access policy) action that authorises it. */
  readonly action: string;
  /** What the action is authorised on: an ARN, or for aoss `index/<collection>/<index>`. */
  readonly resource: string;
  /** For DynamoDB calls: whether the call writes (DynamoDB then uses the table key to encrypt). */
  readonly writes?: boolean;
  readonly status: number;
}

export interface ProxyTargets {
  readonly fauxqs: string;
  readonly dynamodb: string;
  /** aoss: the fake collection each region's collection endpoint stands for, by signing region. */
  readonly opensearch: Readonly<Record<string, string>>;
}

export interface ArnContext {
  readonly account: string;
  /** The collection name, per region (its data access policy names indexes under it). */
  readonly collection: string;
}

const EMBEDDING_DIMENSIONS = 1024;

const DYNAMO_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);
const SQS_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** Throttles the next `count` matching DynamoDB calls, as a busy table would. */
export interface Fault {
  readonly operation: string;
  readonly table: string;
  count: number;
}

/** The account fauxqs puts in the ARNs of what it creates (topics). */
const EMULATOR_ACCOUNT = '000000000000';

export async function startAwsProxy(targets: ProxyTargets, ctx: ArnContext) {
  const calls: Call[] = [];
  const faults: Fault[] = [];
  /** SSM String parameters by `<region> <name>`: the region roles the test sets. */
  const parameters = new Map<string, string>();
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://proxy');
    const scope = credentialScope(req.headers.authorization, url);
    if (!scope) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'unsigned request: every AWS call must be signed' }));
      return;
    }
    const record = (partial: Omit<Call, 'principal' | 'service' | 'status'>, status: number) =>
      calls.push({ principal: scope.accessKey, service: scope.service, status, ...partial });
    try {
      switch (scope.service) {
        case 'dynamodb': {
          const operation = targetOperation(req.headers['x-amz-target']);
          const input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
          const fault = faults.find((f) => f.count > 0 && f.operation === operation && f.table === input.TableName);
          let status: number;
          if (fault) {
            fault.count--;
            status = 400;
            res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
            res.end(
              JSON.stringify({
                __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
                message: 'Rate of requests exceeds the allowed throughput.',
              }),
            );
          } else status = await forward(targets.dynamodb, req, body, res);
          for (const table of dynamoTables(operation, input))
            record(
              {
                operation,
                action: `dynamodb:${operation}`,
                resource:
                  `arn:aws:dynamodb:${scope.region}:${ctx.account}:table/${table}` +
                  (operation === 'Query' && input.IndexName ? `/index/${String(input.IndexName)}` : ''),
                writes: DYNAMO_WRITES.has(operation),
              },
              status,
            );
          return;
        }
        case 'sqs': {
          const operation = targetOperation(req.headers['x-amz-target']);
          const input = JSON.parse(body.toString() || '{}') as { QueueUrl?: string };
          const status = await forward(targets.fauxqs, req, body, res);
          const queue = (input.QueueUrl ?? '').split('/').pop();
          record(
            {
              operation,
              action: `sqs:${SQS_ACTIONS[operation] ?? operation}`,
              resource: `arn:aws:sqs:${scope.region}:${ctx.account}:${queue}`,
            },
            status,
          );
          return;
        }
        case 'sns': {
          // The query protocol: a form body. The emulator's topics live in its own account.
          const form = new URLSearchParams(body.toString());
          const operation = form.get('Action') ?? '';
          const topicArn = form.get('TopicArn') ?? '';
          if (topicArn) form.set('TopicArn', topicArn.replace(`:${ctx.account}:`, `:${EMULATOR_ACCOUNT}:`));
          const status = await forward(targets.fauxqs, req, Buffer.from(form.toString()), res);
          record({ operation, action: `sns:${operation}`, resource: topicArn }, status);
          return;
        }
        case 's3': {
          const [bucket, ...keyParts] = url.pathname.slice(1).split('/');
          const key = decodeURIComponent(keyParts.join('/'));
          const status = await forward(targets.fauxqs, req, body, res);
          const onObject = key !== '';
          const operation = s3Operation(req.method ?? 'GET', onObject, url, req.headers);
          record(
            {
              operation,
              action: S3_ACTIONS[operation] ?? `s3:${operation}`,
              resource: onObject ? `arn:aws:s3:::${bucket}/${key}` : `arn:aws:s3:::${bucket}`,
            },
            status,
          );
          return;
        }
        case 'aoss': {
          const upstream = targets.opensearch[scope.region];
          if (!upstream) throw new Error(`no collection for region ${scope.region}`);
          const status = await forward(upstream, req, body, res);
          const [index, api] = url.pathname.slice(1).split('/');
          const operation = `${req.method} ${api ? `/${api}` : 'index'}`;
          // IAM admits the request to the collection; the data access policy decides on the index.
          record(
            {
              operation,
              action: 'aoss:APIAccessAll',
              resource: `arn:aws:aoss:${scope.region}:${ctx.account}:collection/${ctx.collection}`,
            },
            status,
          );
          record(
            {
              operation,
              action: aossPermission(req.method ?? 'GET', api),
              resource: `index/${ctx.collection}/${index}`,
            },
            status,
          );
          return;
        }
        case 'bedrock': {
          const match = /^\/model\/([^/]+)\/(invoke|converse)$/.exec(url.pathname);
          if (!match) throw new Error(`unexpected Bedrock call ${req.method} ${url.pathname}`);
          const modelId = decodeURIComponent(match[1] as string);
          const operation = match[2] === 'invoke' ? 'InvokeModel' : 'Converse';
          record({ operation, action: 'bedrock:InvokeModel', resource: bedrockArn(modelId, scope.region, ctx) }, 200);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(operation === 'InvokeModel' ? embedding(body) : converse()));
          return;
        }
        case 'ssm': {
          const operation = targetOperation(req.headers['x-amz-target']);
          const input = JSON.parse(body.toString() || '{}') as { Name?: string };
          const name = input.Name ?? '';
          const value = parameters.get(`${scope.region} ${name}`);
          const resource = `arn:aws:ssm:${scope.region}:${ctx.account}:parameter/${name.replace(/^\//, '')}`;
          const status = operation === 'GetParameter' && value !== undefined ? 200 : 400;
          record({ operation, action: `ssm:${operation}`, resource }, status);
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
          res.end(
            JSON.stringify(
              status === 200
                ? { Parameter: { Name: name, Type: 'String', Value: value, Version: 1, ARN: resource } }
                : { __type: 'ParameterNotFound', message: `${operation} ${name}: not set by the test` },
            ),
          );
          return;
        }
        case 'monitoring': {
          const operation =
            targetOperation(req.headers['x-amz-target']) ||
            /\/operation\/(\w+)$/.exec(url.pathname)?.[1] ||
            new URLSearchParams(body.toString()).get('Action') ||
            'unknown';
          record({ operation, action: `cloudwatch:${operation}`, resource: '*' }, 200);
          answerEmptyCloudWatch(req, res, operation);
          return;
        }
        default:
          throw new Error(`no emulator for service ${scope.service}`);
      }
    } catch (error) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: (error as Error).message }));
    }
  };
  const server = http.createServer((req, res) => void handle(req, res));
  // Bedrock Runtime's client speaks HTTP/2 only: cleartext HTTP/2 on a port of its own.
  const server2 = http2.createServer(
    (req, res) => void handle(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse),
  );
  server.listen(0, '127.0.0.1');
  server2.listen(0, '127.0.0.1');
  await Promise.all([once(server, 'listening'), once(server2, 'listening')]);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    http2Url: `http://127.0.0.1:${(server2.address() as AddressInfo).port}`,
    calls,
    faults,
    parameters,
    stop: () =>
      Promise.all([
        new Promise<void>((resolve) => server.close(() => resolve())),
        new Promise<void>((resolve) => server2.close(() => resolve())),
      ]).then(() => undefined),
  };
}

function credentialScope(
  authorization: string | undefined,
  url: URL,
): { accessKey: string; region: string; service: string } | undefined {
  const credential =
    /Credential=([^,\s]+)/.exec(authorization ?? '')?.[1] ?? url.searchParams.get('X-Amz-Credential') ?? undefined;
  if (!credential) return undefined;
  const [accessKey, , region, service] = credential.split('/');
  if (!accessKey || !region || !service) return undefined;
  return { accessKey, region, service };
}

function targetOperation(target: string | string[] | undefined): string {
  return String(target ?? '').split('.')[1] ?? '';
}

function dynamoTables(operation: string, input: Record<string, unknown>): string[] {
  if (operation === 'BatchGetItem' || operation === 'BatchWriteItem')
    return Object.keys((input.RequestItems ?? {}) as object);
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems')
    return ((input.TransactItems ?? []) as Record<string, { TableName: string }>[]).map(
      (item) => (Object.values(item)[0] as { TableName: string }).TableName,
    );
  return [String(input.TableName)];
}

const S3_ACTIONS: Record<string, string> = {
  HeadObject: 's3:GetObject',
  HeadBucket: 's3:ListBucket',
  ListObjectsV2: 's3:ListBucket',
};

function s3Operation(method: string, onObject: boolean, url: URL, headers: http.IncomingHttpHeaders): string {
  if (!onObject) return method === 'HEAD' ? 'HeadBucket' : method === 'GET' ? 'ListObjectsV2' : `${method}Bucket`;
  if (method === 'GET') return 'GetObject';
  if (method === 'HEAD') return 'HeadObject';
  if (method === 'PUT') return headers['x-amz-copy-source'] ? 'CopyObject' : 'PutObject';
  if (method === 'DELETE') return 'DeleteObject';
  return `${method}Object${url.search}`;
}

/** OpenSearch Serverless data-plane permissions by REST call. */
function aossPermission(method: string, api: string | undefined): string {
  if (!api)
    return method === 'HEAD' || method === 'GET'
      ? 'aoss:DescribeIndex'
      : method === 'PUT'
        ? 'aoss:CreateIndex'
        : method === 'DELETE'
          ? 'aoss:DeleteIndex'
          : 'aoss:UpdateIndex';
  if (api === '_search' || api === '_count' || (api === '_doc' && method === 'GET')) return 'aoss:ReadDocument';
  if (api === '_doc' || api === '_bulk') return 'aoss:WriteDocument';
  if (api === '_mapping' || api === '_settings') return method === 'GET' ? 'aoss:DescribeIndex' : 'aoss:UpdateIndex';
  return `aoss:unknown(${method} ${api})`;
}

function bedrockArn(modelId: string, region: string, ctx: ArnContext): string {
  return /^(us|eu|apac|us-gov|global)\./.test(modelId)
    ? `arn:aws:bedrock:${region}:${ctx.account}:inference-profile/${modelId}`
    : `arn:aws:bedrock:${region}::foundation-model/${modelId}`;
}

/** A deterministic unit vector from the text, so similar texts are not all equal. */
function embedding(body: Buffer) {
  const { inputText = '', dimensions = EMBEDDING_DIMENSIONS } = JSON.parse(body.toString()) as {
    inputText?: string;
    dimensions?: number;
  };
  const vector = new Array<number>(dimensions).fill(0);
  for (const word of inputText.toLowerCase().split(/\W+/).filter(Boolean)) {
    let h = 0;
    for (const ch of word) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    vector[h % dimensions] = (vector[h % dimensions] as number) + 1;
  }
  const norm = Math.hypot(...vector) || 1;
  return { embedding: vector.map((v) => v / norm), inputTextTokenCount: inputText.length };
}

function converse() {
  return {
    output: {
      message: {
        role: 'assistant',
        content: [
          {
            toolUse: {
              toolUseId: 'tooluse-1',
              name: 'record_triage',
              input: {
                severity: 'MEDIUM',
                summary: 'The target booked a different amount than the source.',
                recommended_actions: ['Confirm the booked amount with the counterparty.'],
                root_cause_hypotheses: ['A late amendment was booked on one side only.'],
                policy_citations: ['P1'],
              },
            },
          },
        ],
      },
    },
    stopReason: 'tool_use',
    usage: { inputTokens: 100, outputTokens: 50, totalTokens: 150 },
    metrics: { latencyMs: 5 },
  };
}

/** No datapoints, in whichever protocol the client speaks (query, JSON or RPC v2 CBOR). */
function answerEmptyCloudWatch(req: http.IncomingMessage, res: http.ServerResponse, operation: string): void {
  if (req.headers['smithy-protocol'] === 'rpc-v2-cbor') {
    res.writeHead(200, { 'content-type': 'application/cbor', 'smithy-protocol': 'rpc-v2-cbor' });
    res.end(Buffer.from([0xa0])); // the empty map
  } else if (req.headers['x-amz-target']) {
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end('{}');
  } else {
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(
      `<${operation}Response xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><${operation}Result><MetricDataResults/></${operation}Result></${operation}Response>`,
    );
  }
}

function forward(upstream: string, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<number> {
  const target = new URL(req.url ?? '/', upstream);
  const { 'transfer-encoding': _chunked, ...headers } = req.headers;
  return new Promise((resolve, reject) => {
    const out = http.request(
      target,
      { method: req.method, headers: { ...headers, host: target.host, 'content-length': String(body.length) } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('end', () => resolve(answer.statusCode ?? 502));
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

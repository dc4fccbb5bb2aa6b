/**
 * SQS's query protocol on the local SQS endpoint. fauxqs speaks only the AWS JSON protocol
 * (`X-Amz-Target: AmazonSQS.*`), and sends form-encoded POSTs to its SNS router; Debian's `aws`
 * CLI v2 (2.9.x) and older SDKs speak the query protocol (`Action=ReceiveMessage&QueueUrl=...`,
 * XML answers). This hook sits on fauxqs's own HTTP server, so the endpoint, its port and the
 * queue URLs stay what they are: it takes the query requests, calls fauxqs with the JSON
 * equivalent over loopback, and answers in the XML AWS sends. Every other request (JSON, S3, SNS)
 * goes on to fauxqs unchanged, but for the JSON answers that carry queue URLs (below).
 *
 * Queue URLs: fauxqs keeps the URL a queue was created with (`http://sqs.{region}.localhost:{port}/…`)
 * and the stack starts it on a free port each time, so after a restart ListQueues, GetQueueUrl and
 * CreateQueue answered the first start's port. Their JSON answers now carry the port the endpoint
 * listens on; the host is kept, as fauxqs finds a queue of another region by the region in it
 * (the two-region drill's queues). Query answers carry the caller's origin (`atOrigin`).
 *
 * Hand-written because no library does the server side of this protocol. The element names,
 * flattened lists and error codes are those of the query model the CLI carries
 * (botocore/data/sqs/2012-11-05/service-2.json, `protocol: query`); the oracles are that CLI
 * itself and the JS SDK's own query protocol (test/integration/sqs-query-protocol.test.ts).
 *
 * SigV4: JSON requests to the local SQS endpoint are not verified (fauxqs does not), so neither
 * are query requests' signatures; the Authorization header is passed on for the region fauxqs
 * reads from it. But a query request must carry one: a form POST is a request any web page can
 * send cross-origin without a preflight, whereas the JSON protocol's X-Amz-Target header and an
 * Authorization header both need one, which fauxqs never grants.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';

const XML_NAMESPACE = 'http://queue.amazonaws.com/doc/2012-11-05/';
/** fauxqs's own request body limit; a larger query request would fail there anyway. */
const MAX_BODY_BYTES = 11 * 1024 * 1024;
/** Marks a form POST handed back to fauxqs (SNS, STS), so this hook lets it through. */
const PASSED_HEADER = 'x-tally-sqs-query-passed';

/** JSON-protocol actions whose answers carry queue URLs (`QueueUrl`, `QueueUrls`). */
const QUEUE_URL_TARGETS: ReadonlySet<string> = new Set(
  ['ListQueues', 'GetQueueUrl', 'CreateQueue', 'ListDeadLetterSourceQueues'].map((a) => `AmazonSQS.${a}`),
);

/** How a JSON member is written in a query request (botocore's query serializer, SQS model). */
type Field =
  | 'string'
  | 'integer'
  | { readonly list: string }
  | { readonly map: string; readonly key: 'Name' | 'Key'; readonly value: 'string' | 'attribute' }
  | { readonly entries: string; readonly fields: Fields };
type Fields = Readonly<Record<string, Field>>;

interface ActionSpec {
  readonly input: Fields;
  /** Members AWS answers MissingParameter for. */
  readonly required: readonly string[];
  /** The `<ActionResult>` content; absent for actions whose answer is only ResponseMetadata. */
  readonly output?: (out: JsonObject, origin: string | undefined) => string;
}

type JsonObject = Record<string, unknown>;

const messageAttributes = { map: 'MessageAttribute', key: 'Name', value: 'attribute' } as const;
const systemAttributes = { map: 'MessageSystemAttribute', key: 'Name', value: 'attribute' } as const;
const queueAttributes = { map: 'Attribute', key: 'Name', value: 'string' } as const;
const tags = { map: 'Tag', key: 'Key', value: 'string' } as const;

const sendFields: Fields = {
  MessageBody: 'string',
  DelaySeconds: 'integer',
  MessageAttributes: messageAttributes,
  MessageSystemAttributes: systemAttributes,
  MessageDeduplicationId: 'string',
  MessageGroupId: 'string',
};

/** The actions fauxqs implements (its SqsRouter registrations), each as the query model has it. */
const ACTIONS: Readonly<Record<string, ActionSpec>> = {
  ListQueues: {
    input: { QueueNamePrefix: 'string', NextToken: 'string', MaxResults: 'integer' },
    required: [],
    output: (out, origin) =>
      list(out.QueueUrls)
        .map((url) => el('QueueUrl', atOrigin(String(url), origin)))
        .join('') + el('NextToken', out.NextToken),
  },
  GetQueueUrl: {
    input: { QueueName: 'string', QueueOwnerAWSAccountId: 'string' },
    required: ['QueueName'],
    output: (out, origin) => el('QueueUrl', atOrigin(String(out.QueueUrl), origin)),
  },
  CreateQueue: {
    input: { QueueName: 'string', Attributes: queueAttributes, tags },
    required: ['QueueName'],
    output: (out, origin) => el('QueueUrl', atOrigin(String(out.QueueUrl), origin)),
  },
  DeleteQueue: { input: { QueueUrl: 'string' }, required: ['QueueUrl'] },
  PurgeQueue: { input: { QueueUrl: 'string' }, required: ['QueueUrl'] },
  GetQueueAttributes: {
    input: { QueueUrl: 'string', AttributeNames: { list: 'AttributeName' } },
    required: ['QueueUrl'],
    output: (out) => nameValues('Attribute', 'Name', out.Attributes),
  },
  SetQueueAttributes: { input: { QueueUrl: 'string', Attributes: queueAttributes }, required: ['QueueUrl'] },
  SendMessage: {
    input: { QueueUrl: 'string', ...sendFields },
    required: ['QueueUrl', 'MessageBody'],
    output: (out) => sentFields(out),
  },
  SendMessageBatch: {
    input: {
      QueueUrl: 'string',
      Entries: { entries: 'SendMessageBatchRequestEntry', fields: { Id: 'string', ...sendFields } },
    },
    required: ['QueueUrl'],
    output: (out) =>
      list(out.Successful)
        .map((e) =>
          el('SendMessageBatchResultEntry', el('Id', (e as JsonObject).Id) + sentFields(e as JsonObject), true),
        )
        .join('') + batchFailures(out.Failed),
  },
  ReceiveMessage: {
    input: {
      QueueUrl: 'string',
      AttributeNames: { list: 'AttributeName' },
      MessageSystemAttributeNames: { list: 'MessageSystemAttributeName' },
      MessageAttributeNames: { list: 'MessageAttributeName' },
      MaxNumberOfMessages: 'integer',
      VisibilityTimeout: 'integer',
      WaitTimeSeconds: 'integer',
      ReceiveRequestAttemptId: 'string',
    },
    required: ['QueueUrl'],
    output: (out) =>
      list(out.Messages)
        .map((m) => messageXml(m as JsonObject))
        .join(''),
  },
  DeleteMessage: { input: { QueueUrl: 'string', ReceiptHandle: 'string' }, required: ['QueueUrl', 'ReceiptHandle'] },
  DeleteMessageBatch: {
    input: {
      QueueUrl: 'string',
      Entries: { entries: 'DeleteMessageBatchRequestEntry', fields: { Id: 'string', ReceiptHandle: 'string' } },
    },
    required: ['QueueUrl'],
    output: (out) => batchIds('DeleteMessageBatchResultEntry', out),
  },
  ChangeMessageVisibility: {
    input: { QueueUrl: 'string', ReceiptHandle: 'string', VisibilityTimeout: 'integer' },
    required: ['QueueUrl', 'ReceiptHandle', 'VisibilityTimeout'],
  },
  ChangeMessageVisibilityBatch: {
    input: {
      QueueUrl: 'string',
      Entries: {
        entries: 'ChangeMessageVisibilityBatchRequestEntry',
        fields: { Id: 'string', ReceiptHandle: 'string', VisibilityTimeout: 'integer' },
      },
    },
    required: ['QueueUrl'],
    output: (out) => batchIds('ChangeMessageVisibilityBatchResultEntry', out),
  },
  ListQueueTags: {
    input: { QueueUrl: 'string' },
    required: ['QueueUrl'],
    output: (out) => nameValues('Tag', 'Key', out.Tags),
  },
  TagQueue: { input: { QueueUrl: 'string', Tags: tags }, required: ['QueueUrl'] },
  UntagQueue: { input: { QueueUrl: 'string', TagKeys: { list: 'TagKey' } }, required: ['QueueUrl'] },
};

/** SQS actions fauxqs lacks: answered here, so they do not fall through to its SNS router. */
const UNSUPPORTED = new Set([
  'AddPermission',
  'RemovePermission',
  'ListDeadLetterSourceQueues',
  'StartMessageMoveTask',
  'CancelMessageMoveTask',
  'ListMessageMoveTasks',
]);

/**
 * JSON error names whose query code differs (the model's `error.code`); any other code is the
 * same in both protocols (InvalidParameterValue, MissingParameter, ReceiptHandleIsInvalid...).
 */
const QUERY_ERROR_CODES: Readonly<Record<string, string>> = {
  BatchEntryIdsNotDistinct: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  BatchRequestTooLong: 'AWS.SimpleQueueService.BatchRequestTooLong',
  EmptyBatchRequest: 'AWS.SimpleQueueService.EmptyBatchRequest',
  InvalidBatchEntryId: 'AWS.SimpleQueueService.InvalidBatchEntryId',
  MessageNotInflight: 'AWS.SimpleQueueService.MessageNotInflight',
  PurgeQueueInProgress: 'AWS.SimpleQueueService.PurgeQueueInProgress',
  QueueDeletedRecently: 'AWS.SimpleQueueService.QueueDeletedRecently',
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
  QueueNameExists: 'QueueAlreadyExists',
  TooManyEntriesInBatchRequest: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  UnsupportedOperation: 'AWS.SimpleQueueService.UnsupportedOperation',
};

/** An error answered as SQS's `<ErrorResponse>`; `code` is already the query protocol's. */
export class SqsQueryError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'SqsQueryError';
    this.status = status;
    this.code = code;
  }
}

// ---- XML ----

/** Text content. `\r` as a reference: XML parsers turn a literal CR (and CRLF) into LF. */
export function xmlText(value: string): string {
  return value.replace(
    /[&<>"\r]/g,
    (c) => `&${{ '&': 'amp;', '<': 'lt;', '>': 'gt;', '"': 'quot;', '\r': '#xD;' }[c]}`,
  );
}

/** An element, or nothing for an absent value; `raw` content is already XML. */
function el(name: string, value: unknown, raw = false): string {
  if (value === undefined || value === null) return '';
  const text = raw ? String(value) : xmlText(String(value));
  return `<${name}>${text}</${name}>`;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** A flattened map: `<Attribute><Name>k</Name><Value>v</Value></Attribute>` per entry. */
function nameValues(element: string, key: 'Name' | 'Key', map: unknown): string {
  if (!map || typeof map !== 'object') return '';
  return Object.entries(map as JsonObject)
    .map(([k, v]) => el(element, el(key, k) + el('Value', v), true))
    .join('');
}

function sentFields(out: JsonObject): string {
  return (
    el('MessageId', out.MessageId) +
    el('MD5OfMessageBody', out.MD5OfMessageBody) +
    el('MD5OfMessageAttributes', out.MD5OfMessageAttributes) +
    el('MD5OfMessageSystemAttributes', out.MD5OfMessageSystemAttributes) +
    el('SequenceNumber', out.SequenceNumber)
  );
}

function batchFailures(failed: unknown): string {
  return list(failed)
    .map((f) => {
      const e = f as JsonObject;
      return el(
        'BatchResultErrorEntry',
        el('Id', e.Id) +
          el('SenderFault', e.SenderFault === false ? 'false' : 'true') +
          el('Code', e.Code) +
          el('Message', e.Message),
        true,
      );
    })
    .join('');
}

function batchIds(element: string, out: JsonObject): string {
  return (
    list(out.Successful)
      .map((e) => el(element, el('Id', (e as JsonObject).Id), true))
      .join('') + batchFailures(out.Failed)
  );
}

function attributeValueXml(value: JsonObject): string {
  return (
    el('StringValue', value.StringValue) +
    el('BinaryValue', value.BinaryValue) +
    list(value.StringListValues)
      .map((v) => el('StringListValue', v))
      .join('') +
    list(value.BinaryListValues)
      .map((v) => el('BinaryListValue', v))
      .join('') +
    el('DataType', value.DataType)
  );
}

function messageXml(m: JsonObject): string {
  const attributes = nameValues('Attribute', 'Name', m.Attributes);
  const custom = Object.entries((m.MessageAttributes ?? {}) as Record<string, JsonObject>)
    .map(([name, value]) =>
      el('MessageAttribute', el('Name', name) + el('Value', attributeValueXml(value), true), true),
    )
    .join('');
  return el(
    'Message',
    el('MessageId', m.MessageId) +
      el('ReceiptHandle', m.ReceiptHandle) +
      el('MD5OfBody', m.MD5OfBody) +
      el('Body', m.Body) +
      attributes +
      el('MD5OfMessageAttributes', m.MD5OfMessageAttributes) +
      custom,
    true,
  );
}

/** The whole answer: `<XResponse>`, its `<XResult>` when the action has one, the request id. */
export function responseXml(action: string, result: string | undefined, requestId: string): string {
  const body = result === undefined ? '' : `<${action}Result>${result}</${action}Result>`;
  return (
    `<?xml version="1.0"?>\n<${action}Response xmlns="${XML_NAMESPACE}">${body}` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
  );
}

export function errorXml(error: SqsQueryError, requestId: string): string {
  const type = error.status >= 500 ? 'Receiver' : 'Sender';
  return (
    `<?xml version="1.0"?>\n<ErrorResponse xmlns="${XML_NAMESPACE}"><Error><Type>${type}</Type>` +
    `<Code>${xmlText(error.code)}</Code><Message>${xmlText(error.message)}</Message><Detail/></Error>` +
    `<RequestId>${requestId}</RequestId></ErrorResponse>`
  );
}

/**
 * fauxqs keeps the URL a queue was created with, port included, and lookups ignore the host; the
 * URL at the origin the client called is the one that works after a restart on another port.
 */
/** `url` at `port`, its host (and the region in it) kept. */
function atPort(url: string, port: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.port === port) return url;
    parsed.port = port;
    return parsed.toString();
  } catch {
    return url;
  }
}

/** A JSON answer's queue URLs at `port` (what is not such an answer, as it was). */
function jsonQueueUrlsAtPort(body: string, port: string): string {
  let out: unknown;
  try {
    out = JSON.parse(body);
  } catch {
    return body;
  }
  if (typeof out !== 'object' || out === null) return body;
  const answer = out as { QueueUrl?: unknown; QueueUrls?: unknown };
  if (typeof answer.QueueUrl === 'string') answer.QueueUrl = atPort(answer.QueueUrl, port);
  if (Array.isArray(answer.QueueUrls))
    answer.QueueUrls = answer.QueueUrls.map((u: unknown) => (typeof u === 'string' ? atPort(u, port) : u));
  return JSON.stringify(answer);
}

function atOrigin(url: string, origin: string | undefined): string {
  if (origin === undefined) return url;
  try {
    return `${origin}${new URL(url).pathname}`;
  } catch {
    return url;
  }
}

// ---- request decoding ----

/** The N of every `prefix.N...` parameter, in order (query lists and maps count from 1). */
function indexes(params: ReadonlyMap<string, string>, prefix: string): number[] {
  const found = new Set<number>();
  for (const key of params.keys()) {
    if (!key.startsWith(prefix)) continue;
    const m = /^(\d+)(?:\.|$)/.exec(key.slice(prefix.length));
    if (m && Number(m[1]) >= 1) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}

function integer(name: string, value: string): number {
  if (!/^-?\d{1,10}$/.test(value))
    throw new SqsQueryError(
      400,
      'InvalidParameterValue',
      `Value ${value} for parameter ${name} is invalid. Reason: must be an integer.`,
    );
  return Number(value);
}

function attributeValue(params: ReadonlyMap<string, string>, prefix: string): JsonObject {
  const value: JsonObject = {};
  for (const member of ['DataType', 'StringValue', 'BinaryValue']) {
    const v = params.get(`${prefix}${member}`);
    if (v !== undefined) value[member] = v;
  }
  for (const [member, json] of [
    ['StringListValue', 'StringListValues'],
    ['BinaryListValue', 'BinaryListValues'],
  ] as const) {
    const ns = indexes(params, `${prefix}${member}.`);
    if (ns.length > 0) value[json] = ns.map((n) => params.get(`${prefix}${member}.${n}`) as string);
  }
  return value;
}

function decodeFields(params: ReadonlyMap<string, string>, prefix: string, fields: Fields): JsonObject {
  const out: JsonObject = {};
  for (const [name, field] of Object.entries(fields)) {
    if (field === 'string' || field === 'integer') {
      const v = params.get(`${prefix}${name}`);
      if (v !== undefined) out[name] = field === 'integer' ? integer(`${prefix}${name}`, v) : v;
    } else if ('list' in field) {
      const ns = indexes(params, `${prefix}${field.list}.`);
      if (ns.length > 0) out[name] = ns.map((n) => params.get(`${prefix}${field.list}.${n}`) ?? '');
    } else if ('map' in field) {
      const ns = indexes(params, `${prefix}${field.map}.`);
      if (ns.length === 0) continue;
      const map: JsonObject = {};
      for (const n of ns) {
        const entry = `${prefix}${field.map}.${n}.`;
        const key = params.get(`${entry}${field.key}`);
        if (key === undefined)
          throw new SqsQueryError(
            400,
            'MissingParameter',
            `The request must contain the parameter ${entry}${field.key}.`,
          );
        map[key] =
          field.value === 'string' ? (params.get(`${entry}Value`) ?? '') : attributeValue(params, `${entry}Value.`);
      }
      out[name] = map;
    } else {
      const ns = indexes(params, `${prefix}${field.entries}.`);
      if (ns.length > 0)
        out[name] = ns.map((n) => decodeFields(params, `${prefix}${field.entries}.${n}.`, field.fields));
    }
  }
  return out;
}

export interface QueryRequest {
  readonly action: string;
  /** The JSON protocol's request body for the action. */
  readonly input: JsonObject;
}

/**
 * A query request's parameters as the JSON protocol's input. `pathQueueUrl` is the queue URL a
 * request sent to the queue's own URL names by its path (older SDKs do that, omitting QueueUrl).
 */
export function decodeQueryRequest(params: ReadonlyMap<string, string>, pathQueueUrl?: string): QueryRequest {
  const action = params.get('Action');
  if (action === undefined || action === '')
    throw new SqsQueryError(400, 'MissingAction', 'The request must contain the parameter Action.');
  if (UNSUPPORTED.has(action))
    throw new SqsQueryError(
      400,
      QUERY_ERROR_CODES.UnsupportedOperation as string,
      `${action} is not supported by the local SQS emulator.`,
    );
  const spec = ACTIONS[action];
  if (!spec) throw new SqsQueryError(400, 'InvalidAction', `The action ${action} is not valid for this endpoint.`);
  const input = decodeFields(params, '', spec.input);
  if ('QueueUrl' in spec.input && input.QueueUrl === undefined && pathQueueUrl !== undefined)
    input.QueueUrl = pathQueueUrl;
  for (const name of spec.required)
    if (input[name] === undefined)
      throw new SqsQueryError(400, 'MissingParameter', `The request must contain the parameter ${name}.`);
  return { action, input };
}

/** The XML of a successful JSON answer. */
export function encodeQueryResponse(action: string, output: JsonObject, requestId: string, origin?: string): string {
  const spec = ACTIONS[action];
  return responseXml(action, spec?.output ? spec.output(output, origin) : undefined, requestId);
}

/** A JSON-protocol error answer as the query protocol's error. */
export function queryErrorFromJson(status: number, body: string): SqsQueryError {
  let parsed: JsonObject = {};
  try {
    parsed = JSON.parse(body) as JsonObject;
  } catch {
    // Not JSON: fauxqs failed before its SQS router; reported as AWS reports its own faults.
  }
  const type = typeof parsed.__type === 'string' ? parsed.__type : undefined;
  const message = typeof parsed.message === 'string' ? parsed.message : undefined;
  if (type === undefined || status >= 500)
    return new SqsQueryError(
      status >= 400 ? status : 500,
      status >= 500 ? 'InternalFailure' : 'InvalidRequest',
      status >= 500
        ? 'The request processing has failed because of an unknown error, exception or failure.'
        : (message ?? 'Invalid request'),
    );
  const name = type.slice(type.lastIndexOf('#') + 1);
  return new SqsQueryError(status, QUERY_ERROR_CODES[name] ?? name, message ?? name);
}

// ---- the hook ----

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** The service a SigV4 Authorization header's credential scope names (`.../region/sqs/aws4_request`). */
function signedService(authorization: string | undefined): string | undefined {
  return authorization ? /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization)?.[1] : undefined;
}

function isSqsAction(action: string | null | undefined, authorization: string | undefined): boolean {
  if (!action) return false;
  return action in ACTIONS || UNSUPPORTED.has(action) || signedService(authorization) === 'sqs';
}

function isForm(req: IncomingMessage): boolean {
  return String(req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded');
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new SqsQueryError(413, 'RequestEntityTooLarge', `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface SqsQueryProtocol {
  stop(): void;
}

/**
 * Puts the query protocol in front of the request listeners of `server` (fauxqs's), which must
 * answer the JSON protocol at `upstream` (its own `http://127.0.0.1:port`).
 */
export function acceptSqsQueryProtocol(server: http.Server, upstream: string): SqsQueryProtocol {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true });
  const original = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  const passOn: RequestListener = (req, res) => {
    for (const listener of original) listener.call(server, req, res);
  };

  const call = (
    method: string,
    path: string,
    headers: http.OutgoingHttpHeaders,
    body: Buffer,
    clientGone: AbortSignal,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const request = http.request(
        { host: target.hostname, port: target.port, method, path, headers, agent, signal: clientGone },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
        },
      );
      request.on('error', reject);
      request.end(body);
    });

  const translate = async (
    req: IncomingMessage,
    res: ServerResponse,
    params: Map<string, string>,
    gone: AbortSignal,
  ) => {
    const requestId = randomUUID();
    const host = req.headers.host;
    const origin = host ? `http://${host}` : undefined;
    const path = (req.url ?? '/').split('?')[0] as string;
    const reply = (status: number, xml: string) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(status, {
        'content-type': 'text/xml',
        'x-amzn-requestid': requestId,
        'content-length': Buffer.byteLength(xml),
      });
      res.end(xml);
    };
    try {
      if (!/^AWS4-HMAC-SHA256 Credential=/.test(req.headers.authorization ?? ''))
        throw new SqsQueryError(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
      const { action, input } = decodeQueryRequest(params, path !== '/' && origin ? `${origin}${path}` : undefined);
      const answer = await call(
        'POST',
        '/',
        {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': `AmazonSQS.${action}`,
          [PASSED_HEADER]: '1',
          ...(host ? { host } : {}),
          // fauxqs takes the region of CreateQueue and GetQueueUrl from the credential scope.
          ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        },
        Buffer.from(JSON.stringify(input)),
        gone,
      );
      const text = answer.body.toString('utf8');
      if (answer.status < 200 || answer.status >= 300) throw queryErrorFromJson(answer.status, text);
      reply(200, encodeQueryResponse(action, text === '' ? {} : (JSON.parse(text) as JsonObject), requestId, origin));
    } catch (error) {
      if (gone.aborted) return;
      const queryError =
        error instanceof SqsQueryError
          ? error
          : new SqsQueryError(
              500,
              'InternalFailure',
              'The request processing has failed because of an unknown error, exception or failure.',
            );
      reply(queryError.status, errorXml(queryError, requestId));
    }
  };

  /**
   * Back to fauxqs with the body already read (a form POST that is not SQS: SNS, STS), its answer
   * passed on as it is or, when it succeeded, as `rewrite` makes it.
   */
  const handBack = async (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    gone: AbortSignal,
    rewrite?: (answer: Buffer) => Buffer,
  ) => {
    const answer = await call(
      req.method ?? 'POST',
      req.url ?? '/',
      { ...req.headers, [PASSED_HEADER]: '1' },
      body,
      gone,
    );
    if (rewrite === undefined || answer.status < 200 || answer.status >= 300) {
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
      return;
    }
    const text = rewrite(answer.body);
    const headers = { ...answer.headers, 'content-length': String(text.length) };
    delete headers['transfer-encoding'];
    res.writeHead(answer.status, headers);
    res.end(text);
  };

  /** A JSON request whose answer carries queue URLs: fauxqs answers it, its URLs at this port. */
  const withUrlsHere = async (req: IncomingMessage, res: ServerResponse, gone: AbortSignal) =>
    handBack(req, res, await readBody(req), gone, (answer) =>
      Buffer.from(jsonQueueUrlsAtPort(answer.toString('utf8'), target.port)),
    );

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const authorization = req.headers.authorization;
    const viaGet =
      method === 'GET' && q >= 0 && isSqsAction(new URLSearchParams(rawUrl.slice(q + 1)).get('Action'), authorization);
    const viaPost = method === 'POST' && isForm(req) && req.headers[PASSED_HEADER] === undefined;
    const amzTarget = req.headers['x-amz-target'];
    const urlsAnswer =
      method === 'POST' &&
      typeof amzTarget === 'string' &&
      QUEUE_URL_TARGETS.has(amzTarget) &&
      req.headers[PASSED_HEADER] === undefined;
    if (!viaGet && !viaPost && !urlsAnswer) return passOn(req, res);

    const aborter = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    (async () => {
      if (urlsAnswer)
        return withUrlsHere(req, res, aborter.signal).catch((error: unknown) => {
          if (res.headersSent || res.destroyed) return;
          // As the JSON protocol reports a fault (fauxqs did not answer).
          const text = JSON.stringify({
            __type: 'com.amazonaws.sqs#InternalFailure',
            message: error instanceof SqsQueryError ? error.message : 'local SQS emulator unreachable',
          });
          res.writeHead(error instanceof SqsQueryError ? error.status : 502, {
            'content-type': 'application/x-amz-json-1.0',
            'content-length': Buffer.byteLength(text),
          });
          res.end(text);
        });
      const params = new Map(new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1)));
      if (viaPost) {
        const body = await readBody(req);
        const form = new URLSearchParams(body.toString('utf8'));
        if (!isSqsAction(form.get('Action') ?? params.get('Action'), authorization))
          return handBack(req, res, body, aborter.signal);
        for (const [k, v] of form) params.set(k, v);
      }
      return translate(req, res, params, aborter.signal);
    })().catch((error: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const queryError =
        error instanceof SqsQueryError
          ? error
          : new SqsQueryError(502, 'InternalFailure', 'local SQS emulator unreachable');
      const xml = errorXml(queryError, randomUUID());
      res.writeHead(queryError.status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    });
  });

  return {
    stop() {
      agent.destroy();
    },
  };
}

/**
 * The local DynamoDB without HTTP between threads: a function's thread hands each DynamoDB
 * request to dynalite's thread over a MessagePort, and dynalite answers it with the same request
 * listener its HTTP server runs (validation, signature-header checks, actions, error shapes).
 *
 * What stays as deployed: everything the SDK does before and after the transport — the client,
 * its middleware (serialising, endpoint rules, signing, retries), and parsing the answer. Only the
 * socket is left out: `NodeHttpHandler.handle` (the SDK's HTTP transport, one copy in this tree)
 * sends requests for the local DynamoDB endpoint over the port; every other request (S3, SQS, a
 * model server) goes over HTTP as before.
 *
 * Why: under `bench:pipeline` after a run completes, about half the stack's CPU is DynamoDB calls
 * end to end, and of that the HTTP client in the calling thread (~12% of triage's thread), the HTTP
 * server in dynalite's (~7%) and the sockets' system calls are pure transport; see
 * scripts/bench/RESULTS.md (session 29) for what this saves.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MessagePort } from 'node:worker_threads';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/** A DynamoDB request as it would have gone over HTTP. */
export interface PortRequest {
  readonly id: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  /** As the SDK serialised it: a string or bytes. */
  readonly body: string | Uint8Array;
}

/** dynalite's answer: status, headers and the JSON body it would have written. */
export interface PortResponse {
  readonly id: number;
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * dynalite's side: answers each request arriving on `port` with `listener` (its HTTP server's
 * request listener), through a request and a response that carry what it reads and writes.
 */
export function answerOverPort(port: MessagePort, listener: Listener): void {
  port.on('message', (request: PortRequest) => {
    const req = Object.assign(new EventEmitter(), {
      method: request.method,
      url: request.path,
      headers: request.headers,
    });
    const headers: Record<string, string> = {};
    const res = {
      statusCode: 200,
      setHeader(name: string, value: unknown) {
        headers[name.toLowerCase()] = String(value);
      },
      end(body?: string) {
        port.postMessage({
          id: request.id,
          statusCode: res.statusCode,
          headers,
          body: body ?? '',
        } satisfies PortResponse);
      },
    };
    listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    const body = request.body;
    if (body.length > 0)
      req.emit(
        'data',
        typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      );
    req.emit('end');
  });
}

interface SdkRequest {
  readonly method: string;
  readonly hostname: string;
  readonly port?: number;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: unknown;
}
type Handle = (request: SdkRequest, options?: { abortSignal?: AbortSignal }) => Promise<{ response: unknown }>;

/**
 * A function thread's side: requests the SDK addresses to `endpoint` (the thread's
 * AWS_ENDPOINT_URL_DYNAMODB) go to dynalite over `port`. Once per thread.
 */
export function sendDynamoOverPort(port: MessagePort, endpoint: string): void {
  const target = new URL(endpoint);
  const targetPort = Number(target.port);
  const pending = new Map<number, { resolve: (r: PortResponse) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closed: Error | undefined;
  port.on('message', (response: PortResponse) => {
    const waiter = pending.get(response.id);
    if (!waiter) return;
    pending.delete(response.id);
    waiter.resolve(response);
  });
  // dynalite's thread gone: fail what waits (the SDK retries, then throws), as a refused connection would.
  port.on('close', () => {
    closed = Object.assign(new Error(`the local DynamoDB at ${endpoint} is gone`), { code: 'ECONNREFUSED' });
    for (const waiter of pending.values()) waiter.reject(closed);
    pending.clear();
  });
  // Never the reason a thread stays alive, as an idle keep-alive socket is not.
  port.unref();

  const prototype = NodeHttpHandler.prototype as unknown as { handle: Handle };
  const overHttp = prototype.handle;
  if (typeof overHttp !== 'function') throw new Error('@smithy/node-http-handler: NodeHttpHandler.handle not found');
  prototype.handle = function handle(this: unknown, request, options) {
    if (request.hostname !== target.hostname || Number(request.port) !== targetPort)
      return overHttp.call(this, request, options);
    if (closed) return Promise.reject(closed);
    if (options?.abortSignal?.aborted)
      return Promise.reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    const body = request.body;
    if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array))
      return Promise.reject(
        new Error('local DynamoDB over a port: the SDK gave a request body that is neither text nor bytes'),
      );
    const id = nextId++;
    return new Promise<PortResponse>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      port.postMessage({
        id,
        method: request.method,
        path: request.path,
        // As a server reads them: names in lower case.
        headers: Object.fromEntries(
          Object.entries(request.headers).map(([name, value]) => [name.toLowerCase(), value]),
        ),
        body: body ?? '',
      } satisfies PortRequest);
    }).then((answer) => ({
      // HttpResponse's shape (the SDK tells a response by its statusCode and headers).
      response: { statusCode: answer.statusCode, reason: '', headers: answer.headers, body: Buffer.from(answer.body) },
    }));
  };
}

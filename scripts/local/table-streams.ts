/**
 * The local stack's DynamoDB Streams: every committed item write of the emulator (captured on its
 * write path, scripts/local/dynalite-atomic.ts) becomes a stream record with NEW_AND_OLD_IMAGES,
 * as a table with a stream delivers it on AWS, and goes to:
 * - the subscribers (the local "global tables" replication, scripts/local/regions.ts);
 * - for the exceptions table, the stream-index function, invoked the way Lambda's DynamoDB event
 *   source mapping does: in order, batches of up to STREAM_BATCH_SIZE, a reported failure
 *   retried from its sequence number on (what succeeded after it is replayed: idempotent).
 */
import { randomUUID } from 'node:crypto';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { FUNCTIONS } from '../../functions/shared/resources.ts';
import type { TableChange } from './dynalite-atomic.ts';

/** The event source mapping's batch size the regional stack sets (infra/, F2) and the local one uses. */
export const STREAM_BATCH_SIZE = 100;
/** Attempts of a failing batch before it is given up (AWS: maximumRetryAttempts, then the on-failure destination). */
const MAX_ATTEMPTS = 5;

export type StreamHandler = (event: DynamoDBStreamEvent, context: Context) => Promise<DynamoDBBatchResponse | void>;

/** What Lambda passes the stream consumer with each batch. */
function invocationContext(region: string): Context {
  const started = Date.now();
  const timeoutMs = FUNCTIONS['stream-index'].timeoutSeconds * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'local-stream-index',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:local-stream-index`,
    memoryLimitInMB: String(FUNCTIONS['stream-index'].memoryMb),
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/local-stream-index',
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface TableStreams {
  /** The emulator's hook: called for every committed write. */
  readonly capture: (change: TableChange) => void;
  /** Every record of every table, in commit order. */
  subscribe(listener: (record: DynamoDBRecord, change: TableChange) => void): void;
  /** Records not yet handed to the stream consumer, or being handled. */
  pending(): number;
  stop(): Promise<void>;
}

let sequence = 0;

/** A change as DynamoDB Streams shapes it. */
export function streamRecord(change: TableChange, region: string): DynamoDBRecord {
  const eventName = !change.oldImage ? 'INSERT' : !change.newImage ? 'REMOVE' : 'MODIFY';
  sequence++;
  return {
    eventID: `${change.at.toString(16)}-${sequence}`,
    eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: region,
    eventSourceARN: `arn:aws:dynamodb:${region}:000000000000:table/${change.table}/stream/local`,
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(change.at / 1000),
      Keys: change.keys as never,
      ...(change.newImage ? { NewImage: change.newImage as never } : {}),
      ...(change.oldImage ? { OldImage: change.oldImage as never } : {}),
      // Strictly increasing within this process, as within a shard on AWS.
      SequenceNumber: String(sequence).padStart(21, '0'),
      SizeBytes: JSON.stringify(change).length,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
}

export function startTableStreams(options: {
  readonly region: string;
  /** The table whose stream the consumer reads (the exceptions table). */
  readonly consumedTable: string;
  /** Bound once the functions are hosted; records captured before wait for it. */
  handler?: StreamHandler;
  readonly onError?: (error: Error) => void;
}): TableStreams & { setHandler(handler: StreamHandler): void } {
  const listeners: ((record: DynamoDBRecord, change: TableChange) => void)[] = [];
  let queue: DynamoDBRecord[] = [];
  let handler = options.handler;
  let running: Promise<void> | undefined;
  let stopped = false;
  let inFlight = 0;

  const drain = (): void => {
    if (running || stopped || !handler || queue.length === 0) return;
    running = (async () => {
      while (!stopped && queue.length > 0 && handler) {
        const batch = queue.slice(0, STREAM_BATCH_SIZE);
        queue = queue.slice(batch.length);
        inFlight = batch.length;
        let rest = batch;
        for (let attempt = 1; rest.length > 0; attempt++) {
          let failedFrom: number;
          try {
            const response = await handler({ Records: rest }, invocationContext(options.region));
            const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
            failedFrom = rest.findIndex((r) => failed.has(r.dynamodb?.SequenceNumber as string));
          } catch (error) {
            options.onError?.(error as Error);
            failedFrom = 0;
          }
          if (failedFrom < 0) break;
          rest = rest.slice(failedFrom);
          if (attempt >= MAX_ATTEMPTS) {
            options.onError?.(
              new Error(`stream-index: ${rest.length} stream records given up after ${attempt} attempts`),
            );
            break;
          }
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
        inFlight = 0;
      }
    })().finally(() => {
      running = undefined;
      drain();
    });
  };

  return {
    capture(change) {
      const record = streamRecord(change, options.region);
      for (const listener of listeners) listener(record, change);
      if (change.table === options.consumedTable) {
        queue.push(record);
        drain();
      }
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    setHandler(h) {
      handler = h;
      drain();
    },
    pending: () => queue.length + inFlight,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

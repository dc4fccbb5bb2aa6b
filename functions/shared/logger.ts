import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type { ConstructorOptions, LogItemExtraInput, LogItemMessage } from '@aws-lambda-powertools/logger/types';

/**
 * The keys one SQS record's handling appended (runId, patternId, fileKey...). Powertools keeps
 * appended keys per invocation, and a batch's records are handled concurrently: a pattern's
 * "pattern triage finished" line carried another record's pattern id (seen under
 * bench:pipeline, triage's batches of five). Inside withRecordKeys, appendKeys writes to the
 * record's own keys, and every line logged in that record's async context carries them.
 */
const recordKeys = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs one record's handling with keys of its own (sqs-batch.ts wraps every record in it). */
export function withRecordKeys<T>(handle: () => Promise<T>): Promise<T> {
  return recordKeys.run({}, handle);
}

class RecordScopedLogger extends Logger {
  override appendKeys(attributes: Parameters<Logger['appendKeys']>[0]): void {
    const keys = recordKeys.getStore();
    if (keys) Object.assign(keys, attributes);
    else super.appendKeys(attributes);
  }

  protected override createAndPopulateLogItem(
    logLevel: number,
    input: LogItemMessage,
    extraInput: LogItemExtraInput,
  ): ReturnType<Logger['createAndPopulateLogItem']> {
    const keys = recordKeys.getStore();
    // Before the line's own attributes, which win on a clash.
    const extra =
      keys && Object.keys(keys).length > 0 ? ([{ ...keys }, ...extraInput] as LogItemExtraInput) : extraInput;
    return super.createAndPopulateLogItem(logLevel, input, extra);
  }

  protected override createLogger(options?: ConstructorOptions): Logger {
    return new RecordScopedLogger(options);
  }
}

/** One structured logger per function; correlation ids are appended per record. */
export function createLogger(serviceName: string): Logger {
  return new RecordScopedLogger({ serviceName });
}

import { Logger } from '@aws-lambda-powertools/logger';

/** One structured logger per function; correlation ids are appended per record. */
export function createLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

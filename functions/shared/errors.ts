/**
 * Two kinds of failure: bad input is permanent — report it, don't retry it; a busy
 * or briefly unavailable dependency is transient — throw so the message is retried.
 */

/** Input that will never succeed however often it is retried. */
export class PermanentError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'PermanentError';
    this.code = code;
  }
}

/** Worth retrying later: another worker holds the lease, a dependency throttled. */
export class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientError';
  }
}

/**
 * Failures the API reports to its caller. Each carries a stable code and a message that says what
 * was wrong and how to fix it; anything else that escapes a route is an internal error and is
 * answered with a correlation id only.
 */
export type ErrorDetails = Readonly<Record<string, unknown>>;

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details: ErrorDetails;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    statusCode: number,
    code: string,
    message: string,
    details: ErrorDetails = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
    this.headers = headers;
  }
}

export class BadRequestError extends ApiError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(400, code, message, details);
    this.name = 'BadRequestError';
  }
}

export class UnauthorizedError extends ApiError {
  constructor(message: string) {
    super(401, 'UNAUTHENTICATED', message);
    this.name = 'UnauthorizedError';
  }
}

export class NotFoundError extends ApiError {
  constructor(message: string, details: ErrorDetails = {}) {
    super(404, 'NOT_FOUND', message, details);
    this.name = 'NotFoundError';
  }
}

export class MethodNotAllowedError extends ApiError {
  constructor(method: string, path: string, allowed: string[]) {
    super(
      405,
      'METHOD_NOT_ALLOWED',
      `${method} is not supported on ${path}; use ${allowed.join(' or ')}`,
      { allowed },
      { allow: allowed.join(', ') },
    );
    this.name = 'MethodNotAllowedError';
  }
}

export class ConflictError extends ApiError {
  /** `code`: VERSION_CONFLICT (what was read has changed since), or a state the request does not apply to. */
  constructor(message: string, details: ErrorDetails = {}, code = 'VERSION_CONFLICT') {
    super(409, code, message, details);
    this.name = 'ConflictError';
  }
}

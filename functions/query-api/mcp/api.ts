/**
 * The one way the MCP server's tools reach Tally: `request(method, path, { query, body })`, as the
 * contract fixes it. Over stdio it is the CLI's HTTP client with the caller's TALLY_API_TOKEN
 * (scripts/cli/mcp.ts); at POST /mcp it is the query API's own router called in-process with the
 * original request's requestContext (in-process.ts). Either way the API sees the caller, so its
 * checks and history apply to every tool call exactly as to the dashboard's.
 */

export interface TallyApiRequest {
  readonly query?: Record<string, string | undefined>;
  readonly body?: unknown;
  /** `text` for a body that is not JSON (a run report in Markdown). */
  readonly as?: 'json' | 'text';
}

export interface TallyApi {
  request<T>(method: 'GET' | 'POST' | 'PATCH', path: string, options?: TallyApiRequest): Promise<T>;
}

/** The API refused or failed a call: its HTTP status, stable code, message and details. */
export class TallyApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(status: number, code: string, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.name = 'TallyApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** A path segment from a caller's value: ids never change the path's shape. */
export const segment = (value: string) => encodeURIComponent(value);

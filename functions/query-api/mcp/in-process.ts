/**
 * The TallyApi of POST /mcp: each tool call goes through the query API's own router, in this
 * process, as a request carrying the original one's requestContext and headers — the caller's JWT
 * claims, so every check and history entry is the caller's, exactly as a direct call would be.
 */
import { ApiError } from '../errors.ts';
import type { HttpEvent, HttpResult } from '../http.ts';
import { TallyApiError, type TallyApi, type TallyApiRequest } from './api.ts';

export type Dispatch = (event: HttpEvent) => Promise<HttpResult>;

export function inProcessApi(original: HttpEvent, dispatch: Dispatch): TallyApi {
  return {
    async request<T>(method: 'GET' | 'POST' | 'PATCH', path: string, options: TallyApiRequest = {}): Promise<T> {
      const query = Object.fromEntries(
        Object.entries(options.query ?? {}).filter((entry): entry is [string, string] => entry[1] !== undefined),
      );
      const headers = { ...original.headers };
      delete headers['content-length'];
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      else delete headers['content-type'];
      const event: HttpEvent = {
        ...original,
        rawPath: path,
        rawQueryString: new URLSearchParams(query).toString(),
        headers,
        ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : { queryStringParameters: undefined }),
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        isBase64Encoded: false,
        requestContext: { ...original.requestContext, http: { ...original.requestContext.http, method, path } },
      };
      let result: HttpResult;
      try {
        result = await dispatch(event);
      } catch (error) {
        if (error instanceof ApiError)
          throw new TallyApiError(error.statusCode, error.code, error.message, error.details);
        throw error;
      }
      const status = result.statusCode ?? 200;
      const body = result.body ?? '';
      if (status >= 400) {
        const parsed = JSON.parse(body || '{}') as {
          error?: { code?: string; message?: string; details?: Record<string, unknown> };
        };
        throw new TallyApiError(
          status,
          parsed.error?.code ?? `HTTP_${status}`,
          parsed.error?.message ?? `the API answered ${status}`,
          parsed.error?.details ?? {},
        );
      }
      return (options.as === 'text' ? body : JSON.parse(body)) as T;
    },
  };
}

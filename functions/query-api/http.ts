/** HTTP plumbing for API Gateway HTTP API (payload v2) events: bodies, identity, errors. */
import type { Logger } from '@aws-lambda-powertools/logger';
import type middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import {
  callerFromClaims,
  DEFAULT_ACCESS,
  localAdmin,
  type AccessSettings,
  type Caller,
  type JwtClaims,
} from './access.ts';
import { ApiError, BadRequestError } from './errors.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** `application/json` or a `+json` type, parameters (charset) aside. */
const JSON_MEDIA_TYPE = /^application\/([a-z0-9.!#$%&'*^_`|~-]+\+)?json$/;

/**
 * The JSON body of a request, which must say it is JSON: a `text/plain` or form body is refused
 * with 415 (a page on another site can send those without a CORS preflight).
 */
export function parseJsonBody(event: HttpEvent): unknown {
  const contentType = headerOf(event, 'content-type');
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== undefined && mediaType !== '' && !JSON_MEDIA_TYPE.test(mediaType)) {
    throw new ApiError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      `this endpoint takes a JSON body (content-type: application/json), not ${mediaType}`,
      { content_type: mediaType, expected: 'application/json' },
    );
  }
  if (event.body === undefined || event.body === null || event.body === '') {
    throw new BadRequestError('MISSING_BODY', 'this endpoint needs a JSON body (content-type: application/json)');
  }
  if (mediaType === undefined || mediaType === '') {
    throw new ApiError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'this endpoint takes a JSON body: send it with content-type: application/json',
      { content_type: null, expected: 'application/json' },
    );
  }
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BadRequestError('INVALID_JSON', `the body is not valid JSON: ${(error as Error).message}`);
  }
}

/** A request header; API Gateway lower-cases header names in payload v2, tests may not. */
function headerOf(event: HttpEvent, name: string): string | undefined {
  const headers = event.headers ?? {};
  const found = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return found === undefined ? undefined : headers[found];
}

/** API Gateway passes query values as strings; a repeated parameter arrives comma-joined. */
export function queryParameters(event: HttpEvent): Record<string, string> {
  return { ...(event.queryStringParameters ?? {}) } as Record<string, string>;
}

/**
 * Who is calling (access.ts): identity (the `email` claim, else `sub`), roles and dataset
 * entitlements from the claims the JWT authorizer verified. Without an authorizer (local mode with
 * no sign-in) the caller is the local identity as an admin of every dataset; on AWS there is no
 * local identity, and a request without claims is refused.
 */
export function callerIdentity(
  event: HttpEvent,
  localIdentity: string | undefined,
  settings: AccessSettings = DEFAULT_ACCESS,
): Caller {
  const context = event.requestContext as { authorizer?: { jwt?: { claims?: JwtClaims } } };
  const claims = context.authorizer?.jwt?.claims;
  if (claims === undefined && localIdentity) return localAdmin(localIdentity);
  return callerFromClaims(claims ?? {}, settings);
}

export function correlationId(event: HttpEvent, context: Context | undefined): string {
  return event.requestContext?.requestId || context?.awsRequestId || 'unknown';
}

/**
 * 4xx: the ApiError's code, message and details. Anything else is a 500 whose body carries only
 * the correlation id; the error itself goes to the log under that id.
 */
export function errorResponses(logger: Logger): middy.MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      if (request.response !== undefined && request.response !== null) return;
      const error = request.error;
      const id = correlationId(request.event, request.context);
      if (error instanceof ApiError) {
        if (error.statusCode >= 500) logger.error('request failed', { correlationId: id, error });
        request.response = json(
          error.statusCode,
          { error: { code: error.code, message: error.message, details: error.details } },
          {
            ...error.headers,
            'x-correlation-id': id,
          },
        );
        return;
      }
      logger.error('unhandled error', { correlationId: id, error: error as Error });
      request.response = json(
        500,
        {
          error: {
            code: 'INTERNAL_ERROR',
            message: `internal error; quote correlation id ${id} when reporting it`,
            details: { correlation_id: id },
          },
        },
        { 'x-correlation-id': id },
      );
    },
  };
}

/**
 * Every route the query API serves, as data: the router binds a handler to each (routes.ts) and
 * infra/ creates one API Gateway route per entry (infra/constructs/http-api.ts). A route added
 * here is served locally and on AWS, or the type check fails until it has a handler.
 */

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface ApiRoute {
  readonly method: HttpMethod;
  /** Literal segments and `{name}` parameters, in API Gateway's syntax. */
  readonly path: string;
  /** Without the JWT authorizer. Only the health probe (Route 53 calls it without a token). */
  readonly public?: boolean;
}

const DECLARED = [
  { method: 'GET', path: '/health', public: true },
  { method: 'POST', path: '/uploads' },
  { method: 'POST', path: '/policies' },
  { method: 'GET', path: '/exceptions' },
  { method: 'GET', path: '/exception-counts' },
  { method: 'GET', path: '/exceptions/{id}' },
  { method: 'PATCH', path: '/exceptions/{id}' },
  { method: 'POST', path: '/exceptions/bulk' },
  { method: 'POST', path: '/exceptions/{id}/approval' },
  { method: 'POST', path: '/exceptions/{id}/match' },
  { method: 'GET', path: '/exceptions/{id}/suggestions' },
  { method: 'POST', path: '/exceptions/{id}/suggestions/{other_id}/decline' },
  { method: 'GET', path: '/search' },
  { method: 'GET', path: '/runs' },
  { method: 'GET', path: '/runs/{run_id}' },
  { method: 'GET', path: '/runs/{run_id}/report' },
  { method: 'GET', path: '/runs/{run_id}/patterns' },
  { method: 'POST', path: '/runs/{run_id}/patterns/{pattern_id}/actions' },
  { method: 'POST', path: '/runs/{run_id}/triage' },
  { method: 'GET', path: '/files' },
  { method: 'GET', path: '/queues' },
  { method: 'GET', path: '/usage' },
  { method: 'GET', path: '/policies' },
  { method: 'GET', path: '/policies/{name}' },
  { method: 'GET', path: '/policies/datasets/{dataset}' },
  { method: 'POST', path: '/mcp' },
] as const satisfies readonly ApiRoute[];

export const API_ROUTES: readonly ApiRoute[] = DECLARED;

/** `GET /exceptions/{id}`: API Gateway's route key, and the router's key for a handler. */
export type RouteKey = (typeof DECLARED)[number] extends infer R
  ? R extends { readonly method: infer M extends string; readonly path: infer P extends string }
    ? `${M} ${P}`
    : never
  : never;

export function routeKey(route: ApiRoute): string {
  return `${route.method} ${route.path}`;
}

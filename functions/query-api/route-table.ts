/**
 * Every route the query API serves, as data: the router binds a handler to each (routes.ts) and
 * infra/ creates one API Gateway route per entry (infra/constructs/http-api.ts). A route added
 * here is served locally and on AWS, or the type check fails until it has a handler.
 *
 * Each route names the roles that may call it (access.ts says what each role implies): the router
 * refuses anyone else with 403 before the handler runs, and when the deployment's role claim is
 * `scope`, API Gateway checks the same list as the route's authorization scopes.
 */
import type { Role } from './access.ts';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface ApiRoute {
  readonly method: HttpMethod;
  /** Literal segments and `{name}` parameters, in API Gateway's syntax. */
  readonly path: string;
  /** Without the JWT authorizer. Only the health probe (Route 53 calls it without a token). */
  readonly public?: boolean;
  /**
   * Any one of these roles (or one implying it) may call the route; empty: any signed-in caller.
   * A public route has no caller to check, so its list is empty.
   */
  readonly roles: readonly Role[];
}

const DECLARED = [
  { method: 'GET', path: '/health', public: true, roles: [] },
  { method: 'GET', path: '/me', roles: [] },
  { method: 'POST', path: '/uploads', roles: ['uploader'] },
  { method: 'POST', path: '/policies', roles: ['admin'] },
  { method: 'GET', path: '/exceptions', roles: ['viewer'] },
  { method: 'GET', path: '/exception-counts', roles: ['viewer'] },
  { method: 'GET', path: '/exceptions/{id}', roles: ['viewer'] },
  { method: 'PATCH', path: '/exceptions/{id}', roles: ['analyst'] },
  { method: 'POST', path: '/exceptions/bulk', roles: ['analyst'] },
  // Maker-checker: an approver who is not the maker decides (workflow.ts refuses SAME_PERSON);
  // the maker, an analyst, may withdraw their own request (a reject), so the route admits analysts
  // and decideApproval asks for the approver role for anything else.
  { method: 'POST', path: '/exceptions/{id}/approval', roles: ['analyst'] },
  { method: 'POST', path: '/exceptions/{id}/match', roles: ['analyst'] },
  // One exception's triage again (one model call, within the daily budget).
  { method: 'POST', path: '/exceptions/{id}/triage', roles: ['analyst'] },
  { method: 'GET', path: '/exceptions/{id}/suggestions', roles: ['viewer'] },
  { method: 'POST', path: '/exceptions/{id}/suggestions/{other_id}/decline', roles: ['analyst'] },
  { method: 'GET', path: '/search', roles: ['viewer'] },
  { method: 'GET', path: '/runs', roles: ['viewer'] },
  { method: 'GET', path: '/runs/{run_id}', roles: ['viewer'] },
  { method: 'GET', path: '/runs/{run_id}/report', roles: ['viewer'] },
  { method: 'GET', path: '/runs/{run_id}/patterns', roles: ['viewer'] },
  { method: 'POST', path: '/runs/{run_id}/patterns/{pattern_id}/actions', roles: ['analyst'] },
  // Releasing a held run spends the deployment's model budget.
  { method: 'POST', path: '/runs/{run_id}/triage', roles: ['admin'] },
  { method: 'GET', path: '/files', roles: ['viewer'] },
  { method: 'GET', path: '/queues', roles: ['viewer'] },
  { method: 'GET', path: '/usage', roles: ['viewer'] },
  { method: 'GET', path: '/policies', roles: ['viewer'] },
  { method: 'GET', path: '/policies/{name}', roles: ['viewer'] },
  { method: 'GET', path: '/policies/datasets/{dataset}', roles: ['viewer'] },
  // Each MCP tool call goes through the router as the caller, so it meets its own route's roles.
  { method: 'POST', path: '/mcp', roles: [] },
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

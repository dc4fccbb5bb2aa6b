/**
 * Route roles on API Gateway: with roles in the `scope` claim, each route's authorization scopes
 * are the roles that satisfy it (from the same route table the router enforces); with
 * `cognito:groups` API Gateway cannot check them and the routes carry no scopes. Either way the
 * function is told which claims to read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES, routeKey } from '../../functions/query-api/route-table.ts';
import { ENV } from '../../functions/shared/resources.ts';
import { FULL_CONFIG, resourcesOf, synth, type Json, type Synthesised } from './synth.ts';

let scoped: Synthesised;
let grouped: Synthesised;
beforeAll(() => {
  scoped = synth(
    { ...FULL_CONFIG, auth: { ...FULL_CONFIG.auth, roleClaim: 'scope', rolePrefix: 'tally/' } },
    ['query-api'],
    { webBuild: false },
  );
  grouped = synth(FULL_CONFIG, ['query-api'], { webBuild: false });
});
afterAll(() => {
  scoped?.cleanup();
  grouped?.cleanup();
});

const routesOf = (stack: Json) =>
  new Map(resourcesOf(stack, 'aws_apigatewayv2_route').map(([, r]) => [r.route_key as string, r]));

const queryApiEnv = (stack: Json) => {
  const fn = resourcesOf(stack, 'aws_lambda_function').find(([, f]) => String(f.function_name).endsWith('query-api'));
  return (fn?.[1].environment?.variables ?? {}) as Record<string, string>;
};

describe('route authorization scopes', () => {
  it('with roles as scopes, every route needing a role accepts exactly the roles that satisfy it', () => {
    for (const stack of [scoped.primary, scoped.secondary]) {
      const routes = routesOf(stack);
      expect(routes.get('GET /exceptions')?.authorization_scopes).toEqual([
        'tally/viewer',
        'tally/analyst',
        'tally/uploader',
        'tally/approver',
        'tally/admin',
      ]);
      expect(routes.get('PATCH /exceptions/{id}')?.authorization_scopes).toEqual([
        'tally/analyst',
        'tally/approver',
        'tally/admin',
      ]);
      expect(routes.get('POST /uploads')?.authorization_scopes).toEqual(['tally/uploader', 'tally/admin']);
      expect(routes.get('POST /policies')?.authorization_scopes).toEqual(['tally/admin']);
      // Any signed-in caller may ask who they are; the probe has no authorizer at all.
      expect(routes.get('GET /me')?.authorization_scopes).toBeUndefined();
      expect(routes.get('GET /health')?.authorization_scopes).toBeUndefined();
      for (const route of API_ROUTES.filter((r) => r.roles.length > 0))
        expect(routes.get(routeKey(route))?.authorization_scopes, routeKey(route)).toEqual(
          expect.arrayContaining(route.roles.map((r) => `tally/${r}`)),
        );
    }
    expect(queryApiEnv(scoped.primary)).toMatchObject({
      [ENV.roleClaim]: 'scope',
      [ENV.rolePrefix]: 'tally/',
      [ENV.datasetsClaim]: 'tally:datasets',
    });
  });

  it('with roles in cognito:groups, no route has scopes (the function checks them) and the function reads the groups', () => {
    for (const [key, route] of routesOf(grouped.primary)) expect(route.authorization_scopes, key).toBeUndefined();
    expect(queryApiEnv(grouped.primary)).toMatchObject({
      [ENV.roleClaim]: 'cognito:groups',
      [ENV.rolePrefix]: '',
      [ENV.datasetsClaim]: 'tally:datasets',
    });
  });
});

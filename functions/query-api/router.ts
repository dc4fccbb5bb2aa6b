/** A tiny router: method + path pattern (`/exceptions/{id}`) to a route, path parameters decoded. */
import { BadRequestError, MethodNotAllowedError, NotFoundError } from './errors.ts';

export interface RouteDef<H> {
  readonly method: string;
  /** Literal segments and `{name}` parameters, e.g. `/exceptions/{id}`. */
  readonly path: string;
  readonly handle: H;
}

interface Compiled<H> extends RouteDef<H> {
  readonly regex: RegExp;
  readonly params: string[];
}

export interface Match<H> {
  readonly route: RouteDef<H>;
  readonly params: Record<string, string>;
}

export function createRouter<H>(routes: readonly RouteDef<H>[]) {
  const compiled: Compiled<H>[] = routes.map((r) => {
    const params: string[] = [];
    const source = r.path
      .split('/')
      .map((segment) => {
        const param = /^\{(\w+)\}$/.exec(segment);
        if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(param[1] as string);
        return '([^/]+)';
      })
      .join('/');
    return { ...r, regex: new RegExp(`^${source}$`), params };
  });

  return {
    routes: compiled.map(({ method, path }) => `${method} ${path}`),
    match(method: string, rawPath: string): Match<H> {
      const path = rawPath.length > 1 ? rawPath.replace(/\/+$/, '') : rawPath;
      const hits = compiled.map((r) => ({ r, m: r.regex.exec(path) })).filter((h) => h.m !== null);
      if (hits.length === 0) {
        throw new NotFoundError(`no such endpoint: ${method} ${rawPath}`, {
          endpoints: compiled.map((r) => `${r.method} ${r.path}`),
        });
      }
      const hit = hits.find((h) => h.r.method === method);
      if (!hit) throw new MethodNotAllowedError(method, rawPath, [...new Set(hits.map((h) => h.r.method))]);
      const params: Record<string, string> = {};
      hit.r.params.forEach((name, i) => {
        const raw = hit.m?.[i + 1] as string;
        try {
          params[name] = decodeURIComponent(raw);
        } catch {
          throw new BadRequestError('INVALID_PATH', `path parameter ${name} is not valid URL encoding: ${raw}`);
        }
      });
      return { route: hit.r, params };
    },
  };
}

/**
 * Who may do what: the caller's roles and dataset entitlements, read from the JWT claims the
 * authorizer verified (API Gateway's on AWS, the local API server's with `npm start -- --auth`).
 *
 * Roles, each implying those after its arrow:
 * - viewer: read exceptions, counts, search, runs, reports, patterns, files, queues
 * - analyst → viewer: work exceptions (status, assignee, notes, pattern actions)
 * - uploader → viewer: upload extracts (POST /uploads)
 * - approver → analyst: decide what needs a second person (maker-checker)
 * - admin → every role and every dataset: dataset policies, releasing held runs, usage
 *
 * Which claim carries the roles is configuration (TALLY_ROLE_CLAIM: `cognito:groups` by default,
 * or `scope` for an issuer whose clients ask for scopes), with an optional prefix
 * (TALLY_ROLE_PREFIX, e.g. `tally/` for Cognito resource-server scopes `tally/analyst`). The
 * datasets come from TALLY_DATASETS_CLAIM (default `tally:datasets`): names separated by spaces
 * or commas, or `*` for all. A caller with no dataset claim is entitled to none (admins aside).
 */
import { ApiError, UnauthorizedError } from './errors.ts';

export const ROLES = ['viewer', 'analyst', 'uploader', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Each role with the roles it implies, itself included. */
const IMPLIES: Readonly<Record<Role, readonly Role[]>> = {
  viewer: ['viewer'],
  analyst: ['analyst', 'viewer'],
  uploader: ['uploader', 'viewer'],
  approver: ['approver', 'analyst', 'viewer'],
  admin: ROLES,
};

export interface Caller {
  /** Recorded in history: the `email` claim, else `sub`. */
  readonly id: string;
  /** Every role the caller holds, implied ones included. */
  readonly roles: ReadonlySet<Role>;
  readonly datasets: ReadonlySet<string> | 'all';
}

export interface AccessSettings {
  /** The claim holding the roles: `cognito:groups`, `scope`, or any claim the issuer adds. */
  readonly roleClaim: string;
  /** Stripped from each value of the role claim (`tally/` for `tally/analyst`); values without it are ignored. */
  readonly rolePrefix: string;
  /** The claim holding the dataset entitlements. */
  readonly datasetsClaim: string;
}

export const DEFAULT_ACCESS: AccessSettings = Object.freeze({
  roleClaim: 'cognito:groups',
  rolePrefix: '',
  datasetsClaim: 'tally:datasets',
});

/** Claims as API Gateway's JWT authorizer passes them (arrays flattened to `[a b]` strings). */
export type JwtClaims = Readonly<Record<string, unknown>>;

/** The roles that include `role`: a route needing `viewer` is open to all five. */
export function rolesGranting(role: Role): Role[] {
  return ROLES.filter((r) => IMPLIES[r].includes(role));
}

/** The roles that satisfy a route needing any of `needed`. */
export function rolesSatisfying(needed: readonly Role[]): Role[] {
  return ROLES.filter((r) => needed.some((n) => IMPLIES[r].includes(n)));
}

/**
 * A multi-valued claim's values. API Gateway's HTTP API hands array claims to the function as one
 * string, `[admin analyst]`; a `scope` claim is space-separated; a token may also carry a real array.
 */
export function claimValues(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => claimValues(v));
  if (typeof value !== 'string') return [];
  const text = value.trim().replace(/^\[(.*)\]$/s, '$1');
  return text.split(/[\s,]+/).filter((v) => v.length > 0);
}

export function callerFromClaims(claims: JwtClaims, settings: AccessSettings = DEFAULT_ACCESS): Caller {
  let id: string | undefined;
  for (const claim of ['email', 'sub']) {
    const value = claims[claim];
    if (typeof value === 'string' && value.length > 0) {
      id = value;
      break;
    }
  }
  if (id === undefined)
    throw new UnauthorizedError(
      'this request carries no caller identity (JWT email or sub claim); changes are recorded against who made them',
    );
  const roles = new Set<Role>();
  for (const value of claimValues(claims[settings.roleClaim])) {
    if (!value.startsWith(settings.rolePrefix)) continue;
    const name = value.slice(settings.rolePrefix.length);
    if ((ROLES as readonly string[]).includes(name)) for (const r of IMPLIES[name as Role]) roles.add(r);
  }
  const named = claimValues(claims[settings.datasetsClaim]);
  const datasets = roles.has('admin') || named.includes('*') ? 'all' : new Set(named);
  return { id, roles, datasets };
}

/** Local mode without sign-in: every request is this admin of every dataset. */
export function localAdmin(id: string): Caller {
  return { id, roles: new Set(ROLES), datasets: 'all' };
}

export class ForbiddenError extends ApiError {
  constructor(code: string, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(403, code, message, details);
    this.name = 'ForbiddenError';
  }
}

/** Refuses a caller holding none of `needed` (an empty list: any caller). */
export function requireRole(caller: Caller, needed: readonly Role[], what: string): void {
  if (needed.length === 0 || needed.some((r) => caller.roles.has(r))) return;
  throw new ForbiddenError(
    'FORBIDDEN',
    `${what} needs the ${needed.join(' or ')} role; ${caller.id} has ${[...caller.roles].join(', ') || 'no role'}`,
    { needed_roles: needed, caller_roles: [...caller.roles] },
  );
}

export function canSee(caller: Caller, dataset: string): boolean {
  return caller.datasets === 'all' || caller.datasets.has(dataset);
}

/** Refuses naming a dataset the caller is not entitled to (a filter, an upload). */
export function requireDataset(caller: Caller, dataset: string): void {
  if (canSee(caller, dataset)) return;
  throw new ForbiddenError('FORBIDDEN_DATASET', `${caller.id} is not entitled to dataset "${dataset}"`, {
    dataset,
    entitled_datasets: [...(caller.datasets as ReadonlySet<string>)].sort(),
  });
}

/**
 * What a listing may read for this caller: `all`, or the datasets it is restricted to (sorted).
 * A requested dataset outside the entitlement is refused with 403 (naming it is not a leak: the
 * caller typed it); one inside it narrows the listing as before.
 */
export function datasetScope(caller: Caller, requested: string | undefined): 'all' | readonly string[] {
  if (requested !== undefined) {
    requireDataset(caller, requested);
    return 'all';
  }
  return caller.datasets === 'all' ? 'all' : [...caller.datasets].sort();
}

/** GET /me: who the API thinks the caller is. */
export function describeCaller(caller: Caller) {
  return {
    id: caller.id,
    roles: ROLES.filter((r) => caller.roles.has(r)),
    datasets: caller.datasets === 'all' ? '*' : [...caller.datasets].sort(),
  };
}

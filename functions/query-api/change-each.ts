/**
 * One change applied to many exceptions, each on its own: a pattern action (patterns.ts) and a
 * bulk change (bulk.ts) both move each exception exactly as PATCH /exceptions/{id} would
 * (workflow.ts patchException: the lifecycle's rules and maker-checker, the exception's own history
 * entry, its version checked, the search copy's status mirrored) and report what happened to
 * each instead of failing the lot.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { StoredItem } from '../shared/tables/index-query.ts';
import { ApiError } from './errors.ts';
import type { QueryApiDeps } from './ports.ts';
import type { PatchBody } from './schemas.ts';
import { patchException, transitionRefusal } from './workflow.ts';

/** Exceptions changed at once: each is a conditional write and a search-index update. */
export const CHANGE_CONCURRENCY = 16;

export type ItemChange = Omit<PatchBody, 'version'>;

export type ItemOutcome =
  | { readonly kind: 'updated' | 'awaiting_approval'; readonly version: number }
  | { readonly kind: 'conflict'; readonly sent: number; readonly version: number }
  | {
      readonly kind: 'invalid_transition';
      readonly version: number;
      readonly from: string;
      readonly to: string;
      readonly allowed: readonly string[];
    };

/**
 * Applies `change` to `item` (already read) checked against `version`; a refusal the caller should
 * report per exception (a stale version, a move the lifecycle does not allow) is an outcome, any
 * other error is thrown.
 */
export async function changeOne(
  item: StoredItem,
  change: ItemChange,
  version: number,
  actor: string,
  deps: Pick<QueryApiDeps, 'store' | 'exceptionsIndex' | 'now'>,
  logger?: Logger,
): Promise<ItemOutcome> {
  const id = String(item.exception_id);
  try {
    const outcome = await patchException(id, { ...change, version }, actor, deps, logger, item);
    return {
      kind: outcome.awaitingApproval ? 'awaiting_approval' : 'updated',
      version: Number(outcome.record.version),
    };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.statusCode === 409)
      return { kind: 'conflict', sent: version, version: Number(error.details.current_version ?? item.version) };
    if (error.code === 'INVALID_TRANSITION') {
      const { from, to, allowed } = error.details as { from: string; to: string; allowed: string[] };
      return { kind: 'invalid_transition', version: Number(item.version), from, to, allowed };
    }
    throw error;
  }
}

/** Why the lifecycle refused exception `id`: "it is already X", or where X may move. */
export function refusalText(id: string, outcome: Extract<ItemOutcome, { kind: 'invalid_transition' }>): string {
  return transitionRefusal(id, outcome.from, outcome.to, outcome.allowed);
}

/** Runs `work` over `items`, CHANGE_CONCURRENCY at a time, until the deadline; returns how many it started. */
export async function forEachLimited<T>(
  items: readonly T[],
  work: (item: T) => Promise<void>,
  now: () => number,
  deadline: number,
): Promise<number> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && now() < deadline) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(CHANGE_CONCURRENCY, items.length) }, worker));
  return next;
}

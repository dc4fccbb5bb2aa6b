/**
 * Matching what the engine could not (the reason codes are in shared/manual-match.ts, the scorer in shared/match-scorer.ts):
 *
 * - `POST /exceptions/{id}/match` asks for a `MISSING_IN_TARGET` and a `MISSING_IN_SOURCE` of the
 *   same dataset to be one break. Maker-checker: both wait in AWAITING_APPROVAL, each with an
 *   `approval` naming the other (`requested_status: RESOLVED`); an approver's decision on either
 *   (workflow.ts decideApproval) resolves both with a `match` linking each to the other, or puts
 *   both back. The link stays on the items, and recon reads it: the same finding in a later run
 *   does not reopen a matched exception (shared/exception-lifecycle.ts reconReopens).
 * - `GET /exceptions/{id}/suggestions` scores the open opposite-side missing exceptions of the
 *   dataset; accepting one is a match request.
 * - `POST /exceptions/{id}/suggestions/{other_id}/decline` records the pair as declined on the
 *   exception (`declined_matches`): neither is suggested for the other again.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { isOpen } from '../shared/exception-lifecycle.ts';
import { isMatchable, MATCHABLE_TYPES } from '../shared/manual-match.ts';
import { rankMatches, type MatchCandidate, type MatchPolicy, type ScoredMatch } from '../shared/match-scorer.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { ApprovalRequest, HistoryEntry } from '../shared/types.ts';
import { BadRequestError, ConflictError } from './errors.ts';
import type { QueryApiDeps } from './ports.ts';
import { toApiException } from './records.ts';
import type { MatchBody } from './schemas.ts';
import { conflict, mirrorStatus, notFound, writeChange } from './workflow.ts';

type Deps = Pick<QueryApiDeps, 'store' | 'exceptionsIndex' | 'now'>;

/** Opposite-side exceptions the suggestions read at most (newest first): a bound on one request's work. */
export const SUGGESTION_CANDIDATES_MAX = 2000;
const CANDIDATE_BATCH = 500;

function notMatchable(id: string, why: string) {
  return new BadRequestError('NOT_MATCHABLE', `exception ${id} cannot be matched: ${why}`, { exception_id: id });
}

/** Statuses a match may be asked from: still being worked, and not already waiting for a decision. */
function matchableStatus(item: StoredItem): boolean {
  return isOpen(String(item.status)) && item.status !== 'AWAITING_APPROVAL';
}

function declined(item: StoredItem): readonly string[] {
  return Array.isArray(item.declined_matches) ? (item.declined_matches as string[]) : [];
}

/**
 * Whether two exceptions could be one break: a missing row on each side, of one dataset. A match
 * asks for that; so does a decline (declining a pair no suggestion could offer records nothing).
 */
function checkPair(item: StoredItem, other: StoredItem, onlyMissing: string): void {
  const id = String(item.exception_id);
  const otherId = String(other.exception_id);
  const type = String(item.exception_type);
  if (!isMatchable(type)) throw notMatchable(id, `it is ${type}; ${onlyMissing}`);
  if (other.exception_type !== MATCHABLE_TYPES[type])
    throw notMatchable(
      id,
      `it is ${type} and ${otherId} is ${String(other.exception_type)}; a match pairs MISSING_IN_TARGET with MISSING_IN_SOURCE`,
    );
  if (other.dataset !== item.dataset)
    throw notMatchable(id, `it is in ${String(item.dataset)} and ${otherId} in ${String(other.dataset)}`);
}

export async function requestMatch(
  id: string,
  body: MatchBody,
  actor: string,
  deps: Deps,
  logger?: Logger,
): Promise<{ record: Record<string, unknown>; other: Record<string, unknown> }> {
  if (body.other_id === id) throw notMatchable(id, 'an exception cannot be matched with itself');
  const [item, other] = await Promise.all([deps.store.getException(id), deps.store.getException(body.other_id)]);
  if (!item) throw notFound(id);
  if (!other) throw notFound(body.other_id);
  if (Number(item.version) !== body.version) throw conflict(id, body.version, Number(item.version));
  if (Number(other.version) !== body.other_version)
    throw conflict(body.other_id, body.other_version, Number(other.version));
  checkPair(item, other, 'only missing rows are matched by hand');
  for (const side of [item, other])
    if (!matchableStatus(side))
      throw notMatchable(
        String(side.exception_id),
        `it is ${String(side.status)}; a match is asked for exceptions still being worked and not waiting for approval`,
      );

  const now = new Date(deps.now()).toISOString();
  const requestFor = (self: StoredItem, partner: StoredItem) => {
    const approval: ApprovalRequest = {
      requested_status: 'RESOLVED',
      requested_by: actor,
      requested_at: now,
      previous_status: self.status as ApprovalRequest['previous_status'],
      match: { exception_id: String(partner.exception_id), reason_code: body.reason_code },
      ...(body.note ? { note: body.note } : {}),
    };
    const history: HistoryEntry[] = [
      {
        at: now,
        by: actor,
        action: 'APPROVAL_REQUESTED',
        from: String(self.status),
        to: 'RESOLVED',
        note: `match with ${String(partner.exception_id)} (${body.reason_code})${body.note ? `: ${body.note}` : ''}`,
      },
    ];
    return { set: { status: 'AWAITING_APPROVAL', approval, resolved_by_system: false }, remove: [], history, now };
  };

  const first = await writeChange(item, { ...requestFor(item, other), sentVersion: body.version }, deps);
  let second: StoredItem;
  try {
    second = await writeChange(other, { ...requestFor(other, item), sentVersion: body.other_version }, deps);
  } catch (error) {
    // The other side changed between the read and the write: withdraw this side's request too.
    await writeChange(
      first,
      {
        set: { status: item.status },
        remove: ['approval'],
        history: [
          {
            at: now,
            by: actor,
            action: 'REJECTED',
            from: 'AWAITING_APPROVAL',
            to: String(item.status),
            note: `match request withdrawn: ${body.other_id} changed meanwhile`,
          },
        ],
        now,
      },
      deps,
    ).catch((rollback: unknown) =>
      logger?.error('manual match: could not withdraw the first side', { exceptionId: id, error: rollback as Error }),
    );
    throw error;
  }
  await mirrorStatus(id, 'AWAITING_APPROVAL', deps, logger);
  await mirrorStatus(body.other_id, 'AWAITING_APPROVAL', deps, logger);
  return { record: toApiException(first), other: toApiException(second) };
}

export interface Suggestion extends ScoredMatch {
  readonly exception: Record<string, unknown>;
}

export async function suggestMatches(
  id: string,
  limit: number,
  deps: Pick<QueryApiDeps, 'store' | 'datasets'>,
): Promise<{ exception_id: string; items: Suggestion[]; candidates: number; complete: boolean }> {
  const item = await deps.store.getException(id);
  if (!item) throw notFound(id);
  const type = String(item.exception_type);
  if (!isMatchable(type)) throw notMatchable(id, `it is ${type}; suggestions are for missing rows`);
  const dataset = String(item.dataset);
  const policy: MatchPolicy | undefined = await deps.datasets?.policy?.(dataset);

  // Opposite-side missing exceptions of the dataset, any business date (a booking delay moves the date).
  const candidates: StoredItem[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await deps.store.queryExceptions({
      index: 'by_type_sharded',
      partition: { attribute: 'exception_type', value: MATCHABLE_TYPES[type] },
      filters: [{ attribute: 'dataset', value: dataset }],
      limit: CANDIDATE_BATCH,
      order: 'any',
      ...(startKey ? { startKey } : {}),
    });
    candidates.push(...page.items);
    startKey = page.lastKey;
  } while (startKey && candidates.length < SUGGESTION_CANDIDATES_MAX);

  const declinedHere = new Set(declined(item));
  const eligible = candidates.filter(
    (c) => matchableStatus(c) && !declinedHere.has(String(c.exception_id)) && !declined(c).includes(id),
  );
  const byId = new Map(eligible.map((c) => [String(c.exception_id), c]));
  const ranked = rankMatches(item as unknown as MatchCandidate, eligible as unknown as MatchCandidate[], policy, limit);
  return {
    exception_id: id,
    items: ranked.map((m) => ({ ...m, exception: toApiException(byId.get(m.exception_id) as StoredItem) })),
    candidates: eligible.length,
    complete: startKey === undefined,
  };
}

/** Remembers that `otherId` is not this exception's match: never suggested for it (or it for `otherId`) again. */
export async function declineSuggestion(
  id: string,
  otherId: string,
  actor: string,
  deps: Deps,
): Promise<{ exception_id: string; declined: string; version: number }> {
  if (otherId === id) throw notMatchable(id, 'an exception cannot decline itself as its match');
  for (let attempt = 0; attempt < 3; attempt++) {
    const [item, other] = await Promise.all([deps.store.getException(id), deps.store.getException(otherId)]);
    if (!item) throw notFound(id);
    if (!other) throw notFound(otherId);
    checkPair(item, other, 'suggestions, and so declines, are for missing rows');
    const already = declined(item);
    if (already.includes(otherId)) return { exception_id: id, declined: otherId, version: Number(item.version) };
    const now = new Date(deps.now()).toISOString();
    try {
      const updated = await writeChange(
        item,
        {
          set: { declined_matches: [...already, otherId] },
          remove: [],
          history: [{ at: now, by: actor, action: 'NOTE', note: `declined the suggested match with ${otherId}` }],
          now,
        },
        deps,
      );
      return { exception_id: id, declined: otherId, version: Number(updated.version) };
    } catch (error) {
      // Changed meanwhile (a note, a triage): the decline does not depend on what changed; read again.
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  throw new ConflictError(`exception ${id} kept changing; decline again`, { exception_id: id });
}

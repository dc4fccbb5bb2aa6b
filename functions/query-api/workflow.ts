/**
 * Reading one exception and working it: status transitions (the rules are in
 * shared/exception-lifecycle.ts), assignee, team and notes under optimistic concurrency, every
 * change appended to the history with who made it and when.
 *
 * Maker-checker: a move to a status that needs approval (NEEDS_APPROVAL: FALSE_POSITIVE) does not
 * happen at once. The exception waits in AWAITING_APPROVAL with an `approval` saying what was
 * asked, by whom and from where; `POST /exceptions/{id}/approval` (decideApproval) lets someone
 * other than the maker approve it (the requested move happens) or reject it (back to where it
 * was). A manual match (matching.ts) asks for approval the same way.
 */
import { notifyAssigned, type NotifiedException } from '../shared/notifications.ts';
import {
  ACTION_FOR,
  allowedTransitions,
  needsApproval,
  type ExceptionStatus,
  type HistoryAction,
} from '../shared/exception-lifecycle.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { ApprovalRequest, HistoryEntry, MatchLink } from '../shared/types.ts';
import type { Logger } from '@aws-lambda-powertools/logger';
import { requireRole, type Caller } from './access.ts';
import { ApiError, BadRequestError, ConflictError, NotFoundError } from './errors.ts';
import { toApiException } from './records.ts';
import type { ApprovalBody, PatchBody } from './schemas.ts';
import type { QueryApiDeps } from './ports.ts';

export async function getException(id: string, deps: Pick<QueryApiDeps, 'store'>): Promise<Record<string, unknown>> {
  const item = await deps.store.getException(id);
  if (!item) throw notFound(id);
  return toApiException(item);
}

export function notFound(id: string) {
  return new NotFoundError(`no exception with id ${id}`, { exception_id: id });
}

export function conflict(id: string, sent: number, current: number) {
  return new ConflictError(
    sent > current
      ? `exception ${id} is at version ${current}; you sent version ${sent}, which it has never had: send the version you last read (read it again if unsure)`
      : `exception ${id} has changed since you read it (you sent version ${sent}, it is now at version ${current}); read it again and retry`,
    { exception_id: id, sent_version: sent, current_version: current },
  );
}

type Deps = Pick<QueryApiDeps, 'store' | 'exceptionsIndex' | 'now' | 'notifier'> &
  Partial<Pick<QueryApiDeps, 'localIdentity'>>;

export interface PatchOutcome {
  readonly record: Record<string, unknown>;
  readonly statusChanged: boolean;
  /** The move needs a second person: the exception now waits in AWAITING_APPROVAL. */
  readonly awaitingApproval: boolean;
}

/**
 * Why exception `id` may not move from `from` to `to`: it is there already, where `from` can go,
 * or — from AWAITING_APPROVAL, which no ordinary change leaves — how it is decided.
 */
export function transitionRefusal(id: string, from: string, to: string, allowed: readonly string[]): string {
  if (from === to) return `it is already ${from}`;
  return allowed.length > 0
    ? `${from} can only move to ${allowed.join(' or ')}`
    : from === 'AWAITING_APPROVAL'
      ? `a change waiting for approval is decided, not changed: approve or reject it (POST /exceptions/${id}/approval; npx tally exceptions approve|reject ${id})`
      : `${from} moves to no other status`;
}

export async function patchException(
  id: string,
  body: PatchBody,
  actor: string,
  deps: Deps,
  logger?: Logger,
  /** The item as the caller already read it (a pattern action's member listing): not read again. */
  read?: StoredItem,
): Promise<PatchOutcome> {
  const item = read ?? (await deps.store.getException(id));
  if (!item) throw notFound(id);
  const currentVersion = Number(item.version);
  if (body.version !== currentVersion) throw conflict(id, body.version, currentVersion);

  const now = new Date(deps.now()).toISOString();
  const from = item.status as ExceptionStatus;
  const history: HistoryEntry[] = [];
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  let note = body.note;
  let newStatus: ExceptionStatus | undefined;
  let awaitingApproval = false;

  if (body.status !== undefined) {
    const allowed = allowedTransitions(from);
    if (!allowed.includes(body.status)) {
      const why = transitionRefusal(id, from, body.status, allowed);
      throw new BadRequestError(
        'INVALID_TRANSITION',
        `cannot change exception ${id} from ${from} to ${body.status}: ${why}`,
        {
          from,
          to: body.status,
          allowed,
        },
      );
    }
    // An analyst's decision: recon treats its own resolutions differently from people's.
    set.resolved_by_system = false;
    if (needsApproval(body.status)) {
      awaitingApproval = true;
      newStatus = 'AWAITING_APPROVAL';
      const approval: ApprovalRequest = {
        requested_status: body.status,
        requested_by: actor,
        requested_at: now,
        previous_status: from,
        ...(note ? { note } : {}),
      };
      set.approval = approval;
      history.push({
        at: now,
        by: actor,
        action: 'APPROVAL_REQUESTED',
        from,
        to: body.status,
        ...(note ? { note } : {}),
      });
    } else {
      newStatus = body.status;
      history.push({
        at: now,
        by: actor,
        action: ACTION_FOR[body.status],
        from,
        to: body.status,
        ...(note ? { note } : {}),
      });
      // Reopened by a person: an earlier match no longer explains it, so recon may reopen it again.
      if (body.status === 'OPEN' && item.match !== undefined) remove.push('match');
    }
    set.status = newStatus;
    note = undefined;
  }
  const previousAssignee = typeof item.assignee === 'string' ? item.assignee : null;
  if (body.assignee !== undefined && body.assignee !== previousAssignee) {
    if (body.assignee === null) remove.push('assignee');
    else set.assignee = body.assignee;
    history.push({
      at: now,
      by: actor,
      action: body.assignee === null ? 'UNASSIGNED' : 'ASSIGNED',
      ...(previousAssignee ? { from: previousAssignee } : {}),
      ...(body.assignee ? { to: body.assignee } : {}),
      ...(note ? { note } : {}),
    });
    note = undefined;
  }
  const previousTeam = typeof item.team === 'string' ? item.team : null;
  if (body.team !== undefined && body.team !== previousTeam) {
    if (body.team === null) remove.push('team');
    else set.team = body.team;
    // Reassigning keeps the history: the entry says which team had it before.
    history.push({
      at: now,
      by: actor,
      action: 'TEAM_ASSIGNED',
      ...(previousTeam ? { from: previousTeam } : {}),
      ...(body.team ? { to: body.team } : {}),
      ...(note ? { note } : {}),
    });
    note = undefined;
  }
  if (note) history.push({ at: now, by: actor, action: 'NOTE', note });
  // Assigning to whoever already has it: nothing to record, nothing to bump.
  if (history.length === 0) return { record: toApiException(item), statusChanged: false, awaitingApproval: false };

  const updated = await writeChange(item, { set, remove, history, now, sentVersion: body.version }, deps);
  if (newStatus !== undefined && newStatus !== from) await mirrorStatus(id, newStatus, deps, logger);
  // Announced on the business events topic (webhooks, escalation); stored first, so a failed notice
  // is logged and never fails the change (the caller would retry with a stale version).
  if (deps.notifier && body.assignee && body.assignee !== previousAssignee)
    await notifyAssigned(
      deps.notifier,
      updated as unknown as NotifiedException,
      body.assignee,
      actor,
      deps.now(),
    ).catch((error: unknown) =>
      logger?.warn('assignment notification failed', { exceptionId: id, error: error as Error }),
    );
  return {
    record: toApiException(updated),
    statusChanged: newStatus !== undefined && newStatus !== from,
    awaitingApproval,
  };
}

/** A change to one exception under its version; a lost race is a 409 with the version it is at now. */
export async function writeChange(
  item: StoredItem,
  change: {
    set: Record<string, unknown>;
    remove: string[];
    history: HistoryEntry[];
    now: string;
    /** The version the caller sent (for the 409's message). */
    sentVersion?: number;
  },
  deps: Pick<QueryApiDeps, 'store'>,
): Promise<StoredItem> {
  const id = String(item.exception_id);
  const currentVersion = Number(item.version);
  const updated = await deps.store.patchException({
    exceptionId: id,
    expectedVersion: currentVersion,
    set: { ...change.set, updated_at: change.now },
    remove: change.remove,
    history: change.history,
    before: item,
  });
  if (!updated) {
    // Lost a race with another writer (an analyst or recon) between our read and our write.
    const latest = await deps.store.getException(id);
    if (!latest) throw notFound(id);
    throw conflict(id, change.sentVersion ?? currentVersion, Number(latest.version));
  }
  return updated;
}

/** The search copy follows the status; DynamoDB is the record. */
export async function mirrorStatus(
  id: string,
  status: string,
  deps: Pick<QueryApiDeps, 'exceptionsIndex'>,
  logger?: Logger,
) {
  try {
    await deps.exceptionsIndex.updateFields(id, { status });
  } catch (error) {
    // The search copy catches up when triage next indexes this exception. Failing the request
    // here would make the caller retry with a version that is now stale.
    logger?.warn('search index status update failed', { exceptionId: id, error: error as Error });
  }
}

/** An approver tried to approve their own request. */
export class SamePersonError extends ApiError {
  constructor(id: string, maker: string, localIdentity?: string) {
    super(
      403,
      'SAME_PERSON',
      `exception ${id}: ${maker} asked for this change, so someone else must approve it (maker-checker); ${maker} may reject it, which withdraws the request` +
        (maker === localIdentity
          ? `. Locally without sign-in every request is ${maker}: start the stack with \`npm start -- --auth\` to sign in as a second person`
          : ''),
      { exception_id: id, requested_by: maker },
    );
    this.name = 'SamePersonError';
  }
}

function approvalOf(item: StoredItem): ApprovalRequest | undefined {
  return item.status === 'AWAITING_APPROVAL' && typeof item.approval === 'object' && item.approval !== null
    ? (item.approval as ApprovalRequest)
    : undefined;
}

/** The decision's change to one exception (one side of a manual match, or the only one). */
function decisionChange(
  item: StoredItem,
  approval: ApprovalRequest,
  decision: ApprovalBody['decision'],
  actor: string,
  now: string,
  note: string | undefined,
) {
  const to = decision === 'approve' ? approval.requested_status : approval.previous_status;
  const action: HistoryAction = decision === 'approve' ? 'APPROVED' : 'REJECTED';
  const history: HistoryEntry[] = [
    { at: now, by: actor, action, from: 'AWAITING_APPROVAL', to, ...(note ? { note } : {}) },
  ];
  const set: Record<string, unknown> = { status: to, resolved_by_system: false };
  if (decision === 'approve' && approval.match) {
    const link: MatchLink = {
      exception_id: approval.match.exception_id,
      reason_code: approval.match.reason_code,
      by: approval.requested_by,
      approved_by: actor,
      at: now,
    };
    set.match = link;
    history.push({
      at: now,
      by: actor,
      action: 'MATCHED',
      to: approval.match.exception_id,
      note: `matched with ${approval.match.exception_id} (${approval.match.reason_code}), asked by ${approval.requested_by}`,
    });
  }
  return { set, remove: ['approval'], history, now, to, item };
}

/**
 * A match is approved only whole: both sides wait for this very request. The request writes one
 * side, then the other (two conditional writes: the local emulator has no transactions), so a
 * crash between them, or a recon run that resolved the other side since, leaves one side asking alone;
 * approving it would resolve it as matched with an exception still open. Rejecting it is allowed
 * (that side goes back to where it was).
 */
async function otherSideWaiting(id: string, otherId: string, deps: Pick<QueryApiDeps, 'store'>): Promise<void> {
  const other = await deps.store.getException(otherId);
  const pending = other === undefined ? undefined : approvalOf(other);
  if (pending?.match?.exception_id === id) return;
  const where = other === undefined ? 'does not exist' : `is ${String(other.status)}`;
  throw new ApiError(
    409,
    'MATCH_INCOMPLETE',
    `exception ${id} asks to be matched with ${otherId}, which ${where} and is not waiting for this match: reject this request, then ask for the match again`,
    { exception_id: id, other_id: otherId, ...(other === undefined ? {} : { other_status: other.status }) },
  );
}

/** Reads the exception again until the change applies (the pair's other side; nobody else may move it meanwhile). */
async function applyToCurrent(
  id: string,
  build: (item: StoredItem) => Parameters<typeof writeChange>[1] | undefined,
  deps: Pick<QueryApiDeps, 'store'>,
): Promise<StoredItem | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const item = await deps.store.getException(id);
    if (!item) return undefined;
    const change = build(item);
    if (!change) return undefined;
    try {
      return await writeChange(item, change, deps);
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  throw new ConflictError(`exception ${id} kept changing while the decision was applied; try again`, {
    exception_id: id,
  });
}

/**
 * POST /exceptions/{id}/approval: approve (the requested move happens) or reject (back to the
 * status it was asked from) a change waiting for a second person. An approver decides; the one
 * who asked may only reject it (withdraw their request): approving it is 403 SAME_PERSON. A manual match waits on both exceptions: deciding either
 * decides both.
 */
export async function decideApproval(
  id: string,
  body: ApprovalBody,
  caller: Caller,
  deps: Deps,
  logger?: Logger,
): Promise<{ record: Record<string, unknown>; other?: Record<string, unknown> }> {
  const item = await deps.store.getException(id);
  if (!item) throw notFound(id);
  const currentVersion = Number(item.version);
  if (body.version !== currentVersion) throw conflict(id, body.version, currentVersion);
  const approval = approvalOf(item);
  if (!approval)
    throw new BadRequestError(
      'NOT_AWAITING_APPROVAL',
      `exception ${id} is ${String(item.status)}: nothing is waiting for approval`,
      { exception_id: id, status: item.status },
    );
  // Approving one's own request is what maker-checker forbids; rejecting it withdraws it, which
  // the maker may do as an analyst. Any other decision is an approver's.
  if (approval.requested_by === caller.id) {
    if (body.decision === 'approve') throw new SamePersonError(id, approval.requested_by, deps.localIdentity);
  } else requireRole(caller, ['approver'], `deciding a request someone else made (${id})`);
  if (body.decision === 'approve' && approval.match) await otherSideWaiting(id, approval.match.exception_id, deps);

  const now = new Date(deps.now()).toISOString();
  const change = decisionChange(item, approval, body.decision, caller.id, now, body.note);
  const updated = await writeChange(item, { ...change, sentVersion: body.version }, deps);
  await mirrorStatus(id, change.to, deps, logger);
  if (!approval.match) return { record: toApiException(updated) };

  const otherId = approval.match.exception_id;
  const other = await applyToCurrent(
    otherId,
    (current) => {
      const pending = approvalOf(current);
      // Only the other half of this very request: anything else was decided already.
      if (!pending?.match || pending.match.exception_id !== id) return undefined;
      return decisionChange(current, pending, body.decision, caller.id, now, body.note);
    },
    deps,
  );
  if (other) await mirrorStatus(otherId, String(other.status), deps, logger);
  else logger?.warn('manual match: the other side was not waiting for this decision', { exceptionId: id, otherId });
  return { record: toApiException(updated), ...(other ? { other: toApiException(other) } : {}) };
}

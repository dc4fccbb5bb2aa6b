/**
 * Reading one exception and working it: status transitions (the rules are in
 * shared/exception-lifecycle.ts), assignee and notes under optimistic concurrency, every change
 * appended to the history with who made it and when.
 */
import { notifyAssigned, type NotifiedException } from '../shared/notifications.ts';
import { ACTION_FOR, allowedTransitions, type ExceptionStatus } from '../shared/exception-lifecycle.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { HistoryEntry } from '../shared/types.ts';
import type { Logger } from '@aws-lambda-powertools/logger';
import { BadRequestError, ConflictError, NotFoundError } from './errors.ts';
import { toApiException } from './records.ts';
import type { PatchBody } from './schemas.ts';
import type { QueryApiDeps } from './ports.ts';

export async function getException(id: string, deps: Pick<QueryApiDeps, 'store'>): Promise<Record<string, unknown>> {
  const item = await deps.store.getException(id);
  if (!item) throw notFound(id);
  return toApiException(item);
}

function notFound(id: string) {
  return new NotFoundError(`no exception with id ${id}`, { exception_id: id });
}

function conflict(id: string, sent: number, current: number) {
  return new ConflictError(
    `exception ${id} has changed since you read it (you sent version ${sent}, it is now at version ${current}); read it again and retry`,
    { exception_id: id, sent_version: sent, current_version: current },
  );
}

export interface PatchOutcome {
  readonly record: Record<string, unknown>;
  readonly statusChanged: boolean;
}

export async function patchException(
  id: string,
  body: PatchBody,
  actor: string,
  deps: Pick<QueryApiDeps, 'store' | 'exceptionsIndex' | 'now' | 'notifier'>,
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

  const statusChanged = body.status !== undefined && body.status !== from;
  if (body.status !== undefined) {
    const allowed = allowedTransitions(from);
    if (!allowed.includes(body.status)) {
      const why = body.status === from ? `it is already ${from}` : `${from} can only move to ${allowed.join(' or ')}`;
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
    set.status = body.status;
    // An analyst's decision: recon treats its own resolutions differently from people's.
    set.resolved_by_system = false;
    history.push({
      at: now,
      by: actor,
      action: ACTION_FOR[body.status],
      from,
      to: body.status,
      ...(note ? { note } : {}),
    });
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
  if (note) history.push({ at: now, by: actor, action: 'NOTE', note });
  // Assigning to whoever already has it: nothing to record, nothing to bump.
  if (history.length === 0) return { record: toApiException(item), statusChanged: false };

  set.updated_at = now;
  const updated = await deps.store.patchException({
    exceptionId: id,
    expectedVersion: currentVersion,
    set,
    remove,
    history,
  });
  if (!updated) {
    // Lost a race with another writer (an analyst or recon) between our read and our write.
    const latest = await deps.store.getException(id);
    if (!latest) throw notFound(id);
    throw conflict(id, body.version, Number(latest.version));
  }
  if (statusChanged) {
    try {
      await deps.exceptionsIndex.updateFields(id, { status: body.status as string });
    } catch (error) {
      // DynamoDB is the record; the search copy catches up when triage next indexes this exception.
      // Failing the PATCH here would make the caller retry with a version that is now stale.
      logger?.warn('search index status update failed', { exceptionId: id, error: error as Error });
    }
  }
  if (deps.notifier && typeof set.assignee === 'string')
    await notifyAssigned(deps.notifier, updated as unknown as NotifiedException, set.assignee, actor, deps.now()).catch(
      // Stored: failing the PATCH now would have the caller retry with a stale version.
      (error: unknown) => logger?.warn('assignment notification failed', { exceptionId: id, error: error as Error }),
    );
  return { record: toApiException(updated), statusChanged };
}

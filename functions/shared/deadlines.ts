/**
 * Deadlines of an exception, the one home of their rules: how a policy's resolution target
 * ("4h", "1bd") reads, when an exception is due, how old it is, when it is overdue, and when a
 * late-arrival window ends. Recon (new exceptions), triage (a severity it changes), the sweep
 * (promotion, overdue notices), the query API's projection and filters, the CLI and the dashboard
 * all import it, so it stays free of Node and AWS imports.
 *
 * Business days are Monday to Friday in UTC. Holidays are not known here: a calendar per dataset
 * would be a policy setting of its own.
 */
import { isOpen, LATE_ARRIVAL_STATUS } from './exception-lifecycle.ts';

export const RESOLUTION_TARGET_PATTERN = /^(\d{1,4})(h|bd)$/;
export const RESOLUTION_TARGET_RULE =
  'a whole number of hours ("4h") or business days ("1bd"; "0bd" is the same business day)';

export interface ResolutionTarget {
  readonly amount: number;
  /** `h`: hours from the first sighting; `bd`: the end of the amount-th business day after it. */
  readonly unit: 'h' | 'bd';
}

/** "4h" or "1bd" as a target, or undefined when it is neither. */
export function parseResolutionTarget(text: string): ResolutionTarget | undefined {
  const m = RESOLUTION_TARGET_PATTERN.exec(text);
  if (!m) return undefined;
  return { amount: Number(m[1]), unit: m[2] as 'h' | 'bd' };
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function isWeekend(dayStartMs: number): boolean {
  const day = new Date(dayStartMs).getUTCDay();
  return day === 0 || day === 6;
}

/**
 * The end (next midnight UTC) of the `days`-th business day counted from the day of `fromMs`:
 * 0 is that day itself, or the next business day when it falls on a weekend.
 */
export function endOfBusinessDay(fromMs: number, days: number): number {
  let day = Math.floor(fromMs / DAY_MS) * DAY_MS;
  while (isWeekend(day)) day += DAY_MS;
  for (let left = days; left > 0;) {
    day += DAY_MS;
    if (!isWeekend(day)) left--;
  }
  return day + DAY_MS;
}

/** When an exception first seen at `firstSeenAt` is due under `target` (ISO). */
export function dueAt(firstSeenAt: string, target: ResolutionTarget): string {
  const start = Date.parse(firstSeenAt);
  const due = target.unit === 'h' ? start + target.amount * HOUR_MS : endOfBusinessDay(start, target.amount);
  return new Date(due).toISOString();
}

/** The due date a severity gives under a policy's targets, or undefined when the policy sets none for it. */
export function dueAtFor(
  firstSeenAt: string,
  severity: string | undefined,
  targets: Readonly<Partial<Record<string, ResolutionTarget>>>,
): string | undefined {
  const target = severity === undefined ? undefined : targets[severity];
  return target === undefined ? undefined : dueAt(firstSeenAt, target);
}

/**
 * Where an exception's resolution clock starts: its first sighting, or — a late arrival — the end
 * of its window (the row was allowed to be late until then).
 */
export function deadlineStart(e: {
  readonly pending_until?: string | undefined;
  readonly first_seen_at?: string | undefined;
  readonly created_at: string;
}): string {
  return e.pending_until ?? e.first_seen_at ?? e.created_at;
}

/** Hours since the first sighting, one decimal (never negative). */
export function ageHours(firstSeenAt: string, nowMs: number): number {
  const age = (nowMs - Date.parse(firstSeenAt)) / HOUR_MS;
  return Number.isFinite(age) ? Math.max(0, Math.round(age * 10) / 10) : 0;
}

/** Still being worked, past its due date. A PENDING late arrival has no deadline running yet. */
export function isOverdue(
  e: { readonly status: string; readonly due_at?: string | undefined },
  nowMs: number,
): boolean {
  return (
    e.due_at !== undefined && e.status !== LATE_ARRIVAL_STATUS && isOpen(e.status) && Date.parse(e.due_at) <= nowMs
  );
}

/**
 * The end of a late-arrival window of `days` business days from `anchorDate` (YYYY-MM-DD: the
 * row's date field, or the business date): a missing row may still arrive until then.
 */
export function lateArrivalUntil(anchorDate: string, days: number): string {
  return new Date(endOfBusinessDay(Date.parse(`${anchorDate}T00:00:00Z`), days)).toISOString();
}

/** How GET /exceptions orders: `created` (newest first, the default) or `due` (soonest due first). */
export const LIST_SORTS = ['created', 'due'] as const;
export type ListSort = (typeof LIST_SORTS)[number];

/**
 * Matches `sort=due` orders. The listing indexes are sorted by creation, so ordering by due date
 * reads the matches and sorts them: bounded, and the answer says when it was cut (`truncated`).
 * Narrow the listing (a dataset, a status) to stay under it. `overdue=true` with no filter but a
 * status is not bounded: it reads the due-date index (query-api/listing.ts listOverdueByDue).
 */
export const DUE_SORT_CAP = 1000;

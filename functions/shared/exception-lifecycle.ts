/**
 * An exception's lifecycle, the one home of its rules: the statuses, the moves an analyst may
 * make, which statuses count as open, when reconciliation reopens or resolves one, and what each
 * change is called in the history.
 *
 * Who moves an exception:
 * - recon (`functions/recon/run.ts`, as `system:recon`) creates it OPEN, reopens it when it is
 *   found again ({@link reconReopens}) and resolves it when a run no longer finds it
 *   ({@link reconResolves});
 * - an analyst, through `PATCH /exceptions/{id}` (`functions/query-api/workflow.ts`), the
 *   dashboard or `tally exceptions ack|resolve|false-positive|reopen`, makes the moves in
 *   {@link ANALYST_TRANSITIONS};
 * - a move in {@link NEEDS_APPROVAL}, and a manual match (query-api/matching.ts), waits in
 *   AWAITING_APPROVAL until an approver who is not the maker decides (query-api/workflow.ts
 *   decideApproval, `POST /exceptions/{id}/approval`, `tally exceptions approve|reject`);
 * - triage never changes a status.
 *
 * The dashboard and the CLI import this module too, so it stays free of Node and AWS imports.
 */

export const EXCEPTION_STATUSES = [
  'PENDING',
  'OPEN',
  'ACKNOWLEDGED',
  'IN_PROGRESS',
  'AWAITING_APPROVAL',
  'RESOLVED',
  'FALSE_POSITIVE',
] as const;
export type ExceptionStatus = (typeof EXCEPTION_STATUSES)[number];

/** The status recon gives a new exception and one it finds again. */
export const INITIAL_STATUS = 'OPEN' satisfies ExceptionStatus;

/**
 * A `MISSING_IN_TARGET` inside the dataset's late-arrival window is stored PENDING: not triaged,
 * not notified. The sweep promotes it to OPEN when the window has passed; a re-run that finds the
 * row resolves it, and one that reopens it inside the window makes it PENDING again.
 */
export const LATE_ARRIVAL_STATUS = 'PENDING' satisfies ExceptionStatus;

/**
 * The analyst workflow: from each status, the statuses a person may ask to move it to. A move to
 * a status in {@link NEEDS_APPROVAL} does not happen at once: the exception waits in
 * AWAITING_APPROVAL until an approver who is not the maker approves (or rejects) it, so nobody
 * moves an exception out of AWAITING_APPROVAL with an ordinary change.
 */
export const ANALYST_TRANSITIONS: Readonly<Record<ExceptionStatus, readonly ExceptionStatus[]>> = {
  PENDING: ['OPEN'],
  OPEN: ['ACKNOWLEDGED', 'IN_PROGRESS', 'FALSE_POSITIVE'],
  ACKNOWLEDGED: ['IN_PROGRESS', 'RESOLVED', 'FALSE_POSITIVE'],
  IN_PROGRESS: ['ACKNOWLEDGED', 'RESOLVED', 'FALSE_POSITIVE'],
  AWAITING_APPROVAL: [],
  RESOLVED: ['OPEN'],
  FALSE_POSITIVE: ['OPEN'],
};

/** Moves that need a second person (maker-checker): requested, then approved by an approver. */
export const NEEDS_APPROVAL: readonly ExceptionStatus[] = ['FALSE_POSITIVE'];

export function needsApproval(to: string): boolean {
  return NEEDS_APPROVAL.some((status) => status === to);
}

export function isExceptionStatus(value: unknown): value is ExceptionStatus {
  return (EXCEPTION_STATUSES as readonly unknown[]).includes(value);
}

/** Where an analyst may move an exception that is `from` (none for an unknown status). */
export function allowedTransitions(from: string): readonly ExceptionStatus[] {
  return isExceptionStatus(from) ? ANALYST_TRANSITIONS[from] : [];
}

export function canTransition(from: string, to: string): boolean {
  return allowedTransitions(from).some((status) => status === to);
}

/** The statuses an analyst can move to `to` from (the inverse of {@link ANALYST_TRANSITIONS}). */
export function transitionSources(to: ExceptionStatus): ExceptionStatus[] {
  return EXCEPTION_STATUSES.filter((from) => ANALYST_TRANSITIONS[from].includes(to));
}

/**
 * Still being worked: recon resolves these when a run no longer finds them (a PENDING late
 * arrival whose row has arrived, too).
 */
export const OPEN_STATUSES: readonly ExceptionStatus[] = [
  'PENDING',
  'OPEN',
  'ACKNOWLEDGED',
  'IN_PROGRESS',
  'AWAITING_APPROVAL',
];

export function isOpen(status: string): boolean {
  return OPEN_STATUSES.some((open) => open === status);
}

/**
 * Recon found an exception it had stored before: does it go back to OPEN? A resolved one was
 * wrong to resolve; a false positive is reopened only when what recon finds has changed (the same
 * finding again is what the analyst already dismissed). A manually matched one (resolved with a
 * `match`, the pair an approver accepted) is the same: the same finding again is the row the
 * match explained, so it stays resolved; different values reopen it.
 */
export function reconReopens(status: string, contentChanged: boolean, matched = false): boolean {
  if (status === 'RESOLVED') return !matched || contentChanged;
  return status === 'FALSE_POSITIVE' && contentChanged;
}

/**
 * Recon no longer finds an exception: it is resolved (by the system) if it was still open; a
 * change waiting for approval is withdrawn with it (functions/store/store.ts).
 */
export function reconResolves(status: string): boolean {
  return isOpen(status);
}

/** Every action written to an exception's history. */
export const HISTORY_ACTIONS = [
  // recon
  'CREATED',
  'UPDATED',
  'REOPENED',
  'RESOLVED',
  // analysts (RESOLVED and REOPENED as well)
  'ACKNOWLEDGED',
  'FALSE_POSITIVE',
  'IN_PROGRESS',
  'ASSIGNED',
  'UNASSIGNED',
  'TEAM_ASSIGNED',
  'NOTE',
  // maker-checker
  'APPROVAL_REQUESTED',
  'APPROVED',
  'REJECTED',
  // manual matching
  'MATCHED',
  // the late-arrival sweep (PENDING -> OPEN)
  'PROMOTED',
] as const;
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** History action for a move to each status, in recon's vocabulary (RESOLVED, REOPENED). */
export const ACTION_FOR: Readonly<Record<ExceptionStatus, HistoryAction>> = {
  PENDING: 'CREATED',
  OPEN: 'REOPENED',
  IN_PROGRESS: 'IN_PROGRESS',
  AWAITING_APPROVAL: 'APPROVAL_REQUESTED',
  ACKNOWLEDGED: 'ACKNOWLEDGED',
  RESOLVED: 'RESOLVED',
  FALSE_POSITIVE: 'FALSE_POSITIVE',
};

/** How people ask for a move to each status: the CLI subcommand and the dashboard's button. */
export const TRANSITION_VERBS: Readonly<Record<ExceptionStatus, { readonly command: string; readonly label: string }>> =
  {
    PENDING: { command: 'pending', label: 'Pending' },
    IN_PROGRESS: { command: 'start', label: 'Start work' },
    AWAITING_APPROVAL: { command: 'request-approval', label: 'Request approval' },
    ACKNOWLEDGED: { command: 'ack', label: 'Acknowledge' },
    RESOLVED: { command: 'resolve', label: 'Resolve' },
    FALSE_POSITIVE: { command: 'false-positive', label: 'Mark false positive' },
    OPEN: { command: 'reopen', label: 'Reopen' },
  };

/**
 * Actions on a whole break pattern (POST /runs/{id}/patterns/{pattern_id}/actions, `tally
 * patterns ack|resolve|false-positive`, the dashboard's pattern panel): each moves every member
 * to a status under the same rules as one exception's move.
 */
export const PATTERN_ACTIONS = {
  acknowledge: 'ACKNOWLEDGED',
  resolve: 'RESOLVED',
  false_positive: 'FALSE_POSITIVE',
} as const satisfies Record<string, ExceptionStatus>;
export type PatternAction = keyof typeof PATTERN_ACTIONS;
export const PATTERN_ACTION_NAMES = Object.keys(PATTERN_ACTIONS) as PatternAction[];

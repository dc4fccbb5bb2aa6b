/**
 * A finding as a stored exception: its id, the hash that tells a changed finding from one seen
 * again, and the record a first sighting creates.
 */
import { createHash } from 'node:crypto';
import { dueAtFor, lateArrivalUntil } from '../shared/deadlines.ts';
import { INITIAL_STATUS, LATE_ARRIVAL_STATUS } from '../shared/exception-lifecycle.ts';
import { exceptionIdFor, isCalendarDate } from '../shared/keys.ts';
import { DEFAULT_WORKFLOW, isoDate, type WorkflowSettings } from '../shared/policy.ts';
import type { ExceptionRecord } from '../shared/types.ts';
import type { Finding } from './findings.ts';

/** Hash of what the engine found, to tell a changed exception from one seen again unchanged. */
export function findingHash(finding: Finding): string {
  const { source, target, diffs, lines, reason, severity } = finding;
  return createHash('sha256')
    .update(JSON.stringify({ source, target, diffs, lines, reason, severity }))
    .digest('hex')
    .slice(0, 32);
}

export interface RunContext {
  readonly runId: string;
  readonly dataset: string;
  readonly businessDate: string;
  readonly now: string;
  /** The dataset policy's identity, deadlines and late-arrival window (none: per date, no deadlines). */
  readonly workflow?: WorkflowSettings;
}

/**
 * A finding as a brand-new exception record: OPEN with a due date from its policy severity, or —
 * a MISSING_IN_TARGET inside the policy's late-arrival window — PENDING until the window ends.
 */
export function toExceptionRecord(finding: Finding, ctx: RunContext): ExceptionRecord {
  const workflow = ctx.workflow ?? DEFAULT_WORKFLOW;
  const { status, pendingUntil, due } = sightingStatus(finding, ctx, workflow);
  return {
    exception_id: exceptionIdFor(workflow.identity, ctx.dataset, ctx.businessDate, finding.type, finding.keyText),
    run_id: ctx.runId,
    dataset: ctx.dataset,
    business_date: ctx.businessDate,
    exception_type: finding.type,
    key: finding.key,
    source: finding.source,
    target: finding.target,
    diffs: finding.diffs,
    lines: finding.lines,
    ...(finding.reason === undefined ? {} : { reason: finding.reason }),
    ...(finding.patternId === undefined ? {} : { pattern_id: finding.patternId }),
    policy_severity: finding.severity,
    // Listable by severity before triage refines it.
    severity: finding.severity,
    status,
    created_at: ctx.now,
    updated_at: ctx.now,
    first_seen_at: ctx.now,
    ...(due === undefined ? {} : { due_at: due }),
    ...(pendingUntil === undefined ? {} : { pending_until: pendingUntil }),
    version: 1,
    history: [{ at: ctx.now, by: 'system:recon', action: 'CREATED', to: status, run_id: ctx.runId }],
  };
}

/**
 * The status a finding seen now takes (a new one, or one recon reopens): PENDING until its
 * late-arrival window ends, with no deadline yet; else OPEN, due by its severity's target from now.
 */
export function sightingStatus(
  finding: Pick<Finding, 'type' | 'source' | 'severity'>,
  ctx: Pick<RunContext, 'businessDate' | 'now'>,
  workflow: WorkflowSettings,
): { status: typeof INITIAL_STATUS | typeof LATE_ARRIVAL_STATUS; pendingUntil?: string; due?: string } {
  const pendingUntil = pendingUntilOf(finding, ctx, workflow);
  if (pendingUntil !== undefined) return { status: LATE_ARRIVAL_STATUS, pendingUntil };
  const due = dueAtFor(ctx.now, finding.severity, workflow.resolutionTargets);
  return { status: INITIAL_STATUS, ...(due === undefined ? {} : { due }) };
}

/**
 * When a MISSING_IN_TARGET's late-arrival window ends, if it has not ended yet: `days` business
 * days from its source row's `field` date (read in the field's source format), or from the
 * business date when the policy names no field or the row's value is not a date.
 */
export function pendingUntilOf(
  finding: Pick<Finding, 'type' | 'source'>,
  ctx: Pick<RunContext, 'businessDate' | 'now'>,
  workflow: WorkflowSettings,
): string | undefined {
  const window = workflow.lateArrival;
  if (window === undefined || finding.type !== 'MISSING_IN_TARGET') return undefined;
  const until = lateArrivalUntil(rowDate(finding.source, window.field) ?? ctx.businessDate, window.days);
  return until > ctx.now ? until : undefined;
}

function rowDate(
  row: Finding['source'],
  spec: NonNullable<WorkflowSettings['lateArrival']>['field'],
): string | undefined {
  if (row === null || spec === undefined) return undefined;
  const text = (row[spec.source] ?? row[spec.field])?.trim();
  if (text === undefined || text === '') return undefined;
  if ('sourceFormat' in spec && spec.type === 'date') {
    const days = spec.sourceFormat.parse(text);
    return days === undefined ? undefined : isoDate(days);
  }
  return isCalendarDate(text) ? text : undefined;
}

/**
 * A finding as a stored exception: its id, the hash that tells a changed finding from one seen
 * again, and the record a first sighting creates.
 */
import { createHash } from 'node:crypto';
import { exceptionId } from '../shared/keys.ts';
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
}

/** A finding as a brand-new OPEN exception record. */
export function toExceptionRecord(finding: Finding, ctx: RunContext): ExceptionRecord {
  return {
    exception_id: exceptionId(ctx.dataset, ctx.businessDate, finding.type, finding.keyText),
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
    status: 'OPEN',
    created_at: ctx.now,
    updated_at: ctx.now,
    version: 1,
    history: [{ at: ctx.now, by: 'system:recon', action: 'CREATED', to: 'OPEN', run_id: ctx.runId }],
  };
}

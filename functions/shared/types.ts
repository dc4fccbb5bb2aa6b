/** Contracts every part of Tally shares: exception types, severities, records, triage, runs. */
import type { ExceptionStatus, HistoryAction } from './exception-lifecycle.ts';

// The lifecycle has its own module; re-exported because every record carries a status.
export { EXCEPTION_STATUSES, type ExceptionStatus } from './exception-lifecycle.ts';

export const EXCEPTION_TYPES = [
  'MISSING_IN_TARGET',
  'MISSING_IN_SOURCE',
  'AMOUNT_MISMATCH',
  'FIELD_MISMATCH',
  'DUPLICATE_IN_SOURCE',
  'DUPLICATE_IN_TARGET',
  'INVALID_RECORD',
] as const;
export type ExceptionType = (typeof EXCEPTION_TYPES)[number];

export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * The severity floor: a triage may raise the policy's severity, never lower it. The stored
 * `severity` (and the by_severity index) is the higher of the two.
 */
export function severityFloor(policySeverity: Severity, modelSeverity: Severity): Severity {
  return SEVERITIES.indexOf(modelSeverity) > SEVERITIES.indexOf(policySeverity) ? modelSeverity : policySeverity;
}

export const SIDES = ['source', 'target'] as const;
export type Side = (typeof SIDES)[number];

export type Row = Record<string, string>;

export interface Diff {
  readonly field: string;
  readonly source: string;
  readonly target: string;
  /** target minus source, for decimal fields. */
  readonly delta?: string;
}

export interface HistoryEntry {
  readonly at: string;
  readonly by: string;
  readonly action: HistoryAction;
  /** The status (or assignee) before and after the change. */
  readonly from?: string;
  readonly to?: string;
  readonly note?: string;
  readonly run_id?: string;
}

/** A requested move that needs an approver who is not the maker (shared/exception-lifecycle.ts NEEDS_APPROVAL). */
export interface ApprovalRequest {
  readonly requested_status: ExceptionStatus;
  readonly requested_by: string;
  readonly requested_at: string;
  /** Where a rejection puts it back. */
  readonly previous_status: ExceptionStatus;
  readonly note?: string;
  /** A manual match's request: the other exception and why they are one break (both wait for approval). */
  readonly match?: { readonly exception_id: string; readonly reason_code: string };
}

/** Both sides of an approved manual match carry one, naming the other. */
export interface MatchLink {
  readonly exception_id: string;
  readonly reason_code: string;
  /** Who asked for the match, and who approved it. */
  readonly by: string;
  readonly approved_by: string;
  readonly at: string;
}

/** The stored and API form of one exception. */
export interface ExceptionRecord {
  exception_id: string;
  run_id: string;
  dataset: string;
  business_date: string;
  exception_type: ExceptionType;
  key: Row;
  source: Row | null;
  target: Row | null;
  diffs: Diff[];
  /** Line numbers of the rows behind this exception, per side. */
  lines: { source: number[]; target: number[] };
  /** Why a row was rejected (INVALID_RECORD only). */
  reason?: string;
  /** Severity the recon policy's rules give; triage may refine it. */
  policy_severity: Severity;
  status: ExceptionStatus;
  created_at: string;
  updated_at: string;
  version: number;
  history: HistoryEntry[];
  /** Set by triage; its severity (never below policy_severity) is copied to the top-level `severity` for filtering. */
  triage?: Triage;
  severity?: Severity;
  assignee?: string;
  /** The team whose queue it is in (beside the assignee: a team owns it before a person picks it up). */
  team?: string;
  /** A move waiting for a second person (maker-checker): set while the status is AWAITING_APPROVAL. */
  approval?: ApprovalRequest;
  /** The opposite-side exception an approved manual match paired this one with (both resolved). */
  match?: MatchLink;
  /** Exception ids whose suggested match with this one an analyst declined: never suggested again. */
  declined_matches?: string[];
  /** The break pattern recon put it in (functions/shared/patterns/); indexed by by_pattern_sharded. */
  pattern_id?: string;
  /** When a run first found it (its age counts from here; across dates, the first date's run). */
  first_seen_at?: string;
  /** When it must be resolved by, from the policy's resolution target for its severity (functions/shared/deadlines.ts). */
  due_at?: string;
  /** A PENDING late arrival: when its window ends and the deadline sweep promotes it to OPEN. */
  pending_until?: string;
  /** When the deadline sweep announced it overdue (once). */
  overdue_notified_at?: string;
}

export interface PolicyCitation {
  /** Passage id: `${document}#${section-slug}`. */
  readonly passage_id: string;
  readonly document: string;
  readonly section: string;
  /** The passage text as retrieved, so an auditor sees what the model saw. */
  readonly passage: string;
}

/**
 * An earlier exception of the same dataset and type that an analyst resolved, as triage saw it
 * and the answer cited it (functions/triage/precedents.ts).
 */
export interface PrecedentCitation {
  readonly exception_id: string;
  readonly business_date: string;
  /** RESOLVED or FALSE_POSITIVE. */
  readonly status: string;
  /** What the analyst wrote when closing it. */
  readonly note?: string;
  readonly resolved_by?: string;
  readonly resolved_at?: string;
}

export interface Triage {
  readonly severity: Severity;
  readonly summary: string;
  readonly recommended_actions: string[];
  readonly root_cause_hypotheses: string[];
  readonly policy_citations: PolicyCitation[];
  /** Resolved precedents the answer relied on (only ones retrieved for it). */
  readonly precedent_citations?: PrecedentCitation[];
  /** Citations the model gave that named no retrieved passage: dropped, kept here for audit. */
  readonly rejected_citations: string[];
  readonly provider: string;
  readonly model: string;
  readonly triaged_at: string;
  /**
   * True when the answer came from the rules provider because the model providers failed, or
   * because the day's budget was spent (`degraded_reason`), or without policy passages.
   */
  readonly degraded: boolean;
  readonly prompt_version: string;
  readonly policy_version: string;
  readonly content_hash: string;
  readonly input_tokens?: number;
  readonly output_tokens?: number;
  readonly latency_ms?: number;
  /** Providers tried before the one that answered, with why they were skipped. */
  readonly attempts: { provider: string; model: string; outcome: string }[];
  /** The pattern whose triage this is (functions/triage/pattern-triage.ts); inherited by its members. */
  pattern_id?: string;
  /** True on a member that took its pattern's triage instead of a model call of its own. */
  inherited?: boolean;
  /** The routing rule that chose the provider chain, or "default" (functions/triage/routing.ts). */
  readonly route?: string;
  /** What the answering model call cost, in micro-dollars (absent for a rules answer). */
  readonly cost_micro_usd?: number;
  /** What the model said; `severity` is the higher of it and the policy's (the floor). */
  readonly model_severity?: Severity;
  /** Why the answer is degraded when models did not fail: "budget", the day's budget was spent. */
  readonly degraded_reason?: 'budget';
}

export interface RunSummary {
  rows: { source: number; target: number };
  matched: number;
  exceptions: Partial<Record<ExceptionType, number>>;
  rejected: { source: number; target: number };
  duration_ms: number;
  /** The verdict under the policy's thresholds (runs recorded before thresholds existed have none). */
  outcome?: 'PASS' | 'WARN' | 'FAIL';
  /** Which threshold conditions the run exceeded, with their limits and the run's figures. */
  thresholds_crossed?: { level: 'warn' | 'fail'; condition: string; limit: string; actual: string }[];
  /** Distinct keys on both sides, and those with an exception. */
  keys?: number;
  keys_with_exception?: number;
  /** Matched keys ÷ distinct keys, and keys with an exception ÷ distinct keys (6 decimals). */
  match_rate?: string;
  break_rate?: string;
  /** Per compared field: unequal values, those within tolerance, the largest difference. */
  fields?: Record<string, { unequal: number; within_tolerance: number; largest_difference?: string }>;
  /** Σ amount per side and |Σ source − Σ target|, when the policy asks for totals. */
  amount_totals?: { source: string; target: string; net_difference: string };
  /** Per group of the policy's control_totals: rows and sums per side, and differences. */
  control_totals?: {
    group: Record<string, string>;
    source: { rows: number; sums: Record<string, string> };
    target: { rows: number; sums: Record<string, string> };
    difference: { rows: number; sums: Record<string, string> };
  }[];
}

/** One result of GET /search: an exception's summary with its similarity score. */
export interface SearchItem {
  readonly exception_id: string;
  readonly exception_type: string | null;
  readonly key: unknown;
  readonly status: string | null;
  readonly severity: string | null;
  readonly dataset: string | null;
  readonly business_date: string | null;
  readonly run_id: string | null;
  readonly summary: string;
  readonly score: number;
}

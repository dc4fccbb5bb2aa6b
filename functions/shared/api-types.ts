/**
 * The query API's response bodies, one definition for the handlers that produce them and the
 * dashboard and CLI that read them. Types only: the dashboard's bundle imports this file.
 */
import type { PatternAction } from './exception-lifecycle.ts';
import type { FileRecord } from './tables/files.ts';
import type { PatternRecord } from './tables/patterns.ts';
import type { RunRecord } from './tables/runs.ts';
import type { UsageCounts, UsageDay } from './tables/usage.ts';
import type { ExceptionRecord, SearchItem } from './types.ts';

/** One page of a listing (GET /exceptions, GET /runs, GET /files), newest first. */
export interface Page<T> {
  readonly items: T[];
  readonly count: number;
  /** Pass back as `next_token` for the next page; null on the last. */
  readonly next_token: string | null;
  /**
   * GET /exceptions?sort=due only: more matched than the listing sorts (DUE_SORT_CAP), so the page
   * is the soonest due of the newest that many, not of every match.
   */
  readonly truncated?: boolean;
}

/** GET and PATCH /exceptions/{id}, and each item of GET /exceptions. */
/** An exception as the API shows it: the record, its age in hours and whether it is overdue now. */
export type ApiException = ExceptionRecord & { readonly age_hours?: number; readonly overdue?: boolean };

/**
 * Each item of GET /files: the current file of one side of a dataset-day, accepted or rejected
 * (with the reason). `uploaded_at` is null for records from before it was kept.
 */
export type ApiFile = Pick<
  FileRecord,
  'dataset' | 'business_date' | 'side' | 'key' | 'etag' | 'size' | 'rows' | 'status' | 'error' | 'ingested_at'
> & { readonly uploaded_at: string | null };

/** A side's latest upload as a run sees it: `in_run` is false when the run reconciled an earlier one. */
export type LatestUpload = Omit<ApiFile, 'dataset' | 'business_date' | 'side'> & { readonly in_run: boolean };

/**
 * GET /runs/{id} and each item of GET /runs: the run without the worker's lease, and the latest
 * upload of each side (null where a side has none), read from the files table when asked. A side
 * whose latest upload is not `in_run` means the run shown is behind it: with status REJECTED, the
 * newest file was refused (its `error` says why) and this run still reconciles the previous one.
 */
export type ApiRun = Omit<RunRecord, 'lease_until'> & {
  readonly latest_uploads: { readonly source: LatestUpload | null; readonly target: LatestUpload | null };
};

/**
 * GET /exception-counts: how many exceptions match GET /exceptions's filters, by type and by
 * severity (triage's, else the policy's). `complete` is false when counting stopped at the
 * request's time budget; the counts are then a lower bound.
 */
export interface ExceptionCounts {
  readonly total: number;
  readonly by_type: Readonly<Record<string, number>>;
  readonly by_severity: Readonly<Record<string, number>>;
  readonly complete: boolean;
}

/** GET /search: the nearest exceptions first. */
export interface SearchResponse {
  readonly items: SearchItem[];
}

/** POST /uploads: where and how to PUT the file. */
export interface UploadTicket {
  readonly url: string;
  readonly method: 'PUT';
  readonly key: string;
  /** Send exactly these with the PUT: they are part of the signature. */
  readonly headers: Readonly<Record<string, string>>;
  readonly expires_at: string;
}

/** One queue's depth as SQS reports it; the age comes from CloudWatch where there is one. */
export interface QueueDepth {
  readonly visible: number;
  readonly in_flight: number;
  readonly delayed: number;
  /** Seconds; null where no metric source is configured (local mode). */
  readonly oldest_age_seconds: number | null;
}

export interface QueueReport {
  readonly queue: string;
  readonly main: QueueDepth;
  readonly dlq: QueueDepth;
}

/** GET /queues: every main queue with its DLQ, and the runbook for a non-empty DLQ. */
export interface QueuesReport {
  readonly queues: QueueReport[];
  readonly runbook: string;
}

/**
 * Each item of GET /runs/{id}/patterns: a saved pattern (functions/shared/tables/patterns.ts) and
 * how many of its members in this run are in each status (read from the by_pattern_sharded
 * index). `members_complete` is false when counting stopped at the request's time budget.
 */
export type ApiPattern = PatternRecord & {
  readonly members_by_status: Readonly<Record<string, number>>;
  readonly members_complete: boolean;
};

/** GET /runs/{id}/patterns: largest pattern first, and what the run recorded of its patterns. */
export interface PatternsResponse {
  readonly run_id: string;
  readonly items: ApiPattern[];
  /** The run's patterns, members and singletons; null for a run from before patterns (or not yet STORING). */
  readonly summary: { readonly patterns: number; readonly members: number; readonly singletons: number } | null;
}

/** One member's result of a pattern action. */
export interface PatternMemberResult {
  readonly exception_id: string;
  /** APPLIED: moved, with its own history entry; CONFLICT: its version had changed; SKIPPED: see `reason`. */
  readonly outcome: 'APPLIED' | 'CONFLICT' | 'SKIPPED';
  /** The member's version after the action (APPLIED), or as it is now (CONFLICT, SKIPPED). */
  readonly version: number;
  readonly reason?: string;
}

/**
 * POST /runs/{id}/patterns/{pattern_id}/actions. `complete` is false when the request's time
 * budget ran out first: the same action again moves the rest (members already moved are SKIPPED).
 */
export interface PatternActionResponse {
  readonly run_id: string;
  readonly pattern_id: string;
  readonly action: PatternAction;
  readonly results: PatternMemberResult[];
  readonly counts: Readonly<Record<PatternMemberResult['outcome'], number>>;
  readonly complete: boolean;
}

/** One UTC day of GET /usage: what triage's model calls cost (micro-dollars) against the daily budget. */
export interface UsageReportDay extends UsageDay {
  /** The daily budget in micro-dollars; null when none is configured. */
  readonly budget_micro_usd: number | null;
  /** What is left of it (never below zero); null without a budget. */
  readonly remaining_micro_usd: number | null;
}

/** GET /usage?days=N: the last N UTC days, today first, and their total. */
export interface UsageReport {
  readonly days: UsageReportDay[];
  readonly total: UsageCounts;
  readonly budget_micro_usd: number | null;
}

/** POST /exceptions/bulk: what happened to each exception (not_attempted: the request ran out of time first). */
export type BulkOutcome =
  'updated' | 'conflict' | 'invalid_transition' | 'not_found' | 'awaiting_approval' | 'not_attempted';

export interface BulkItemResult {
  readonly id: string;
  readonly outcome: BulkOutcome;
  /** After the change (updated, awaiting_approval), or as it is now (conflict, invalid_transition). */
  readonly version?: number;
  readonly error?: string;
}

export interface BulkResponse {
  readonly results: BulkItemResult[];
  readonly counts: Readonly<Record<BulkOutcome, number>>;
  /** Exceptions the ids named or the filter matched (a filter's capped at 500). */
  readonly matched: number;
  /** A filter matched more than the cap: only the first (newest first) were changed. */
  readonly more_matched: boolean;
}

/** POST /exceptions/{id}/approval and POST /exceptions/{id}/match: the exception, and a manual match's other side. */
export interface ApprovalResponse {
  readonly record: ApiException;
  readonly other?: ApiException;
}

/** POST /exceptions/{id}/triage (202): the request queued, and when the triage it will replace was written. */
export interface RetriageAccepted {
  readonly exception_id: string;
  readonly requested_at: string;
  /** Absent: never triaged. */
  readonly triaged_at?: string;
}

/** GET /exceptions/{id}/suggestions: the best opposite-side candidates, each with its score and why. */
export interface MatchSuggestion {
  readonly exception_id: string;
  readonly score: number;
  readonly reasons: { readonly kind: string; readonly points: number; readonly text: string }[];
  readonly exception: ApiException;
}

export interface SuggestionsResponse {
  readonly exception_id: string;
  readonly items: MatchSuggestion[];
  /** Open opposite-side exceptions of the dataset that were scored. */
  readonly candidates: number;
  /** False when there were more candidates than one request reads (the newest were scored). */
  readonly complete: boolean;
}

/**
 * Stored items to their API form. Allow-lists: every attribute a table's item can hold is named
 * here, each marked shown or not, so a new attribute is a type error until someone decides — and
 * an attribute no type knows of (written by a later version, or by hand) never reaches a caller.
 */
import type { ApiFile } from '../shared/api-types.ts';
import { ageHours, isOverdue } from '../shared/deadlines.ts';
import type { StoredException } from '../shared/tables/exceptions.ts';
import type { FileRecord } from '../shared/tables/files.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { RunRecord } from '../shared/tables/runs.ts';

const EXCEPTION_ATTRIBUTES: Readonly<Record<keyof StoredException, boolean>> = {
  exception_id: true,
  run_id: true,
  dataset: true,
  business_date: true,
  exception_type: true,
  key: true,
  source: true,
  target: true,
  diffs: true,
  lines: true,
  reason: true,
  policy_severity: true,
  severity: true,
  status: true,
  resolved_by_system: true,
  assignee: true,
  // Owners and maker-checker: the team's queue, a move awaiting approval, an approved manual match.
  team: true,
  approval: true,
  match: true,
  // Suggested matches an analyst declined: the suggestions route reads them, a caller has no use for them.
  declined_matches: false,
  created_at: true,
  updated_at: true,
  // PATCH needs it.
  version: true,
  history: true,
  triage: true,
  // Its break pattern (GET /runs/{id}/patterns, GET /exceptions?pattern_id=).
  pattern_id: true,
  // Ageing and deadlines (functions/shared/deadlines.ts); age_hours and overdue are computed below.
  first_seen_at: true,
  due_at: true,
  pending_until: true,
  // The sweep's once-only bookkeeping of the overdue notice.
  overdue_notified_at: false,
  // Index keys and recon's change-detection bookkeeping mean nothing to a caller.
  record_type: false,
  dataset_date: false,
  content_hash: false,
  last_changed_run_id: false,
  last_seen_at: false,
  gsi_status: false,
  gsi_type: false,
  gsi_run: false,
  gsi_dataset_date: false,
  gsi_severity: false,
  gsi_created: false,
  gsi_pattern: false,
  gsi_assignee: false,
  gsi_team: false,
  gsi_sort: false,
};

/** The stored run plus the index keys DynamoRunStore adds. */
const RUN_ATTRIBUTES: Readonly<Record<keyof RunRecord | 'dataset_date' | 'record_type', boolean>> = {
  run_id: true,
  dataset: true,
  business_date: true,
  source: true,
  target: true,
  status: true,
  requested_at: true,
  requested_by: true,
  started_at: true,
  completed_at: true,
  summary: true,
  policy_version: true,
  policy_hash: true,
  error: true,
  // A STORING run's progress: "storing k of n chunks".
  chunks_total: true,
  chunks_stored: true,
  // Its break patterns in numbers: patterns, their members, singletons.
  patterns: true,
  // What the run's triage model calls cost so far.
  cost: true,
  // The store consumer's bookkeeping; the counts reach `summary` when the run completes.
  stored_chunks: false,
  stored_new: false,
  stored_changed: false,
  stored_unchanged: false,
  stored_triage: false,
  stored_cut: false,
  engine_summary: false,
  // The runaway guard's decision (HELD with its reason) and the dispatch's plan: model calls = patterns + singletons.
  triage: true,
  triage_plan: true,
  dispatch_queued_at: false,
  // recon's bookkeeping of a run on Athena (functions/recon/athena-run.ts).
  engine: false,
  athena_step: false,
  athena_query_id: false,
  lease_until: false,
  lease_owner: false,
  dataset_date: false,
  record_type: false,
};

/** The stored file plus the keys DynamoFileStore adds. */
const FILE_ATTRIBUTES: Readonly<Record<keyof FileRecord | 'dataset_date' | 'sequencer_key' | 'record_type', boolean>> =
  {
    dataset: true,
    business_date: true,
    side: true,
    key: true,
    etag: true,
    size: true,
    rows: true,
    status: true,
    error: true,
    uploaded_at: true,
    ingested_at: true,
    // The bucket is the deployment's own; ordering and run-id bookkeeping mean nothing to a caller.
    bucket: false,
    sequencer: false,
    generation: false,
    dataset_date: false,
    sequencer_key: false,
    record_type: false,
  };

function shownOf(attributes: Readonly<Record<string, boolean>>): ReadonlySet<string> {
  return new Set(Object.keys(attributes).filter((k) => attributes[k]));
}

const SHOWN_EXCEPTION_ATTRIBUTES = shownOf(EXCEPTION_ATTRIBUTES);
/**
 * What a listing reads of each item (a projection): all toApiException uses, not the stored
 * embedding (~3.3 KB of a ~7.5 KB triaged item) nor the index keys and bookkeeping it drops.
 */
export const API_EXCEPTION_ATTRIBUTES: readonly string[] = [...SHOWN_EXCEPTION_ATTRIBUTES];
const SHOWN_RUN_ATTRIBUTES = shownOf(RUN_ATTRIBUTES);
const SHOWN_FILE_ATTRIBUTES = shownOf(FILE_ATTRIBUTES);

function pick(item: StoredItem, shown: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => shown.has(k)));
}

/**
 * An exception as callers see it, with its age in hours (from first_seen_at; created_at for one
 * stored before ageing existed) and whether it is overdue at `nowMs`.
 */
export function toApiException(item: StoredItem, nowMs: number = Date.now()): Record<string, unknown> {
  const shown = pick(item, SHOWN_EXCEPTION_ATTRIBUTES);
  const since = typeof item.first_seen_at === 'string' ? item.first_seen_at : item.created_at;
  return {
    ...shown,
    ...(typeof since === 'string' ? { age_hours: ageHours(since, nowMs) } : {}),
    overdue: isOverdue(
      {
        status: String(item.status),
        ...(typeof item.due_at === 'string' ? { due_at: item.due_at } : {}),
      },
      nowMs,
    ),
  };
}

export function toApiRun(run: RunRecord | StoredItem): Record<string, unknown> {
  return pick(run as StoredItem, SHOWN_RUN_ATTRIBUTES);
}

export function toApiFile(file: FileRecord | StoredItem): ApiFile {
  const shown = pick(file as StoredItem, SHOWN_FILE_ATTRIBUTES);
  return { ...shown, uploaded_at: shown.uploaded_at ?? null } as ApiFile;
}

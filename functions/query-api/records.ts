/** Stored items to their API form: internal bookkeeping attributes stay inside. */
import type { RunRecord } from '../shared/ports.ts';
import type { StoredItem } from './ports.ts';

/**
 * Index keys (record_type, dataset_date) and recon's change-detection bookkeeping
 * (content_hash, last_changed_run_id) mean nothing to a caller. `version` stays: PATCH needs it.
 */
const INTERNAL_EXCEPTION_ATTRIBUTES = new Set(['record_type', 'dataset_date', 'content_hash', 'last_changed_run_id']);
const INTERNAL_RUN_ATTRIBUTES = new Set(['dataset_date', 'lease_until', 'record_type']);

export function toApiException(item: StoredItem): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([k]) => !INTERNAL_EXCEPTION_ATTRIBUTES.has(k)));
}

export function toApiRun(run: RunRecord | StoredItem): Record<string, unknown> {
  return Object.fromEntries(Object.entries(run).filter(([k]) => !INTERNAL_RUN_ATTRIBUTES.has(k)));
}

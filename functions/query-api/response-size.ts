/**
 * Listings of exceptions kept inside what a Lambda may answer. A synchronous Lambda response is
 * at most 6 MB, and the body travels as a JSON string inside it (each quote escaped); past that
 * API Gateway answers 502 with no reason. A stored exception may take up to ~256 KB
 * (store/fit-for-storage.ts), so a page of 200, or 20 match suggestions, could pass it.
 *
 * A page over RESPONSE_BUDGET_BYTES lists each exception's rows by the fields its key and its
 * diffs name (what a listing shows), the rest of each row counted in an `_omitted` field:
 * `GET /exceptions/{id}` has the whole exception.
 */
import { namedFields } from '../shared/exception-view.ts';
import type { Row } from '../shared/types.ts';

export const RESPONSE_BUDGET_BYTES = 4 * 1024 * 1024;
export const OMITTED = '_omitted';

/** Exceptions as the API answers them (sensitive-view.ts: records, maybe masked). */
type ApiException = Record<string, unknown>;

export function withinResponseBudget(items: ApiException[], budget = RESPONSE_BUDGET_BYTES): ApiException[] {
  if (Buffer.byteLength(JSON.stringify(items)) <= budget) return items;
  return items.map((item) => {
    const diffs = Array.isArray(item.diffs) ? (item.diffs as { field: unknown }[]) : [];
    const named = namedFields({ key: rowOf(item.key) ?? {}, diffs });
    const where = `GET /exceptions/${String(item.exception_id)} has them`;
    return {
      ...item,
      source: listedRow(rowOf(item.source), named, where),
      target: listedRow(rowOf(item.target), named, where),
    };
  });
}

const rowOf = (value: unknown): Row | null =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Row) : null;

function listedRow(row: Row | null, named: ReadonlySet<string>, where: string): Row | null {
  if (row === null) return null;
  const kept = Object.entries(row).filter(([field]) => named.has(field));
  const left = Object.keys(row).length - kept.length;
  if (left === 0) return row;
  return {
    ...Object.fromEntries(kept),
    [OMITTED]: `${left} field${left === 1 ? '' : 's'} not listed (the page was over the API's response size): ${where}`,
  };
}

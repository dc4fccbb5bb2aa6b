/**
 * Search over triaged exceptions: embed the question and ask the exceptions index for a hybrid
 * ranking (vector and lexical, fused: functions/shared/search/fusion.ts), so an exact trade id or
 * account ranks first and a paraphrase still finds its exception.
 */
import { fieldValue } from '../shared/search/exception-document.ts';
import type { FieldValue, VectorHit } from '../shared/search/ports.ts';
import { FILTER_NAMES, type SearchQuery } from './schemas.ts';
import type { QueryApiDeps } from './ports.ts';
import { createMasker, queryWithTokens } from '../shared/masking.ts';
import type { SearchItem } from '../shared/types.ts';
import type { DatasetScope } from './listing.ts';

export type { SearchItem };

const text = (value: FieldValue | undefined): string | null =>
  value === undefined || value === null ? null : String(value);

/** The index stores the key object as a JSON string (keyword fields are flat). */
function parseKey(value: FieldValue | undefined): unknown {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

function toItem(hit: VectorHit): SearchItem {
  const f = hit.fields;
  return {
    exception_id: text(f.exception_id) ?? hit.id,
    exception_type: text(f.exception_type),
    key: parseKey(f.key),
    status: text(f.status),
    severity: text(f.severity),
    dataset: text(f.dataset),
    business_date: text(f.business_date),
    run_id: text(f.run_id),
    summary: text(f.summary) ?? hit.text,
    score: hit.score,
  };
}

export async function searchExceptions(
  query: SearchQuery,
  deps: Pick<QueryApiDeps, 'embedder' | 'exceptionsIndex' | 'maskingSecret'>,
  datasets: DatasetScope = 'all',
): Promise<{ items: SearchItem[] }> {
  const filter: Record<string, string> = {};
  for (const name of FILTER_NAMES) {
    const value = query[name];
    if (value !== undefined) filter[name] = value;
  }
  if (query.pattern_id !== undefined) filter.pattern_id = query.pattern_id;
  const dates = { from: query.date_from, to: query.date_to };
  // A sensitive value is indexed as its token (shared/masking.ts): the query carries each word's
  // token too, and a field filter looks for the value and for its token.
  const q = queryWithTokens(query.q, deps.maskingSecret);
  const [vector] = await deps.embedder.embed([q]);
  if (!vector) throw new Error('embedder returned no vector for the query');
  const options = {
    text: q,
    ...(dates.from !== undefined || dates.to !== undefined ? { ranges: { business_date: dates } } : {}),
  };
  const byField =
    query.field !== undefined && query.value !== undefined
      ? [query.value, ...(deps.maskingSecret ? [tokenOf(query.value, deps.maskingSecret)] : [])].map((value) => ({
          ...filter,
          values: fieldValue(query.field as string, value),
        }))
      : [filter];
  // A caller restricted to datasets searches each of them (the index filters by one value): the
  // k best of each, merged below, are the k best of all of them.
  const filters =
    datasets === 'all' || filter.dataset !== undefined
      ? byField
      : byField.flatMap((f) => datasets.map((dataset) => ({ ...f, dataset })));
  const hits = (
    await Promise.all(
      filters.map((f) =>
        deps.exceptionsIndex.search(vector, query.k, Object.keys(f).length > 0 ? f : undefined, options),
      ),
    )
  ).flat();
  // Nearest first, whatever order the store answered in.
  return {
    items: hits
      .map(toItem)
      .sort((a, b) => b.score - a.score)
      .slice(0, query.k),
  };
}

/** The token a sensitive value is indexed as, under the deployment's masking key. */
function tokenOf(value: string, secret: string): string {
  return createMasker(['*'], secret).token(value);
}

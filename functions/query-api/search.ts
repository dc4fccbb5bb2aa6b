/** Semantic search over triaged exceptions: embed the question, ask the exceptions index. */
import type { FieldValue, VectorHit } from '../shared/search/ports.ts';
import { FILTER_NAMES, type SearchQuery } from './schemas.ts';
import type { QueryApiDeps } from './ports.ts';
import { queryWithTokens } from '../shared/masking.ts';
import type { SearchItem } from '../shared/types.ts';

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
): Promise<{ items: SearchItem[] }> {
  const filter: Record<string, string> = {};
  for (const name of FILTER_NAMES) {
    const value = query[name];
    if (value !== undefined) filter[name] = value;
  }
  // A sensitive value is indexed as its token: the query carries each word's token too.
  const [vector] = await deps.embedder.embed([queryWithTokens(query.q, deps.maskingSecret)]);
  if (!vector) throw new Error('embedder returned no vector for the query');
  const hits = await deps.exceptionsIndex.search(vector, query.k, Object.keys(filter).length > 0 ? filter : undefined);
  // Nearest first, whatever order the store answered in.
  return { items: hits.map(toItem).sort((a, b) => b.score - a.score) };
}

import type { Passage } from '../shared/policy-corpus.ts';
import type { Embedder, VectorHit, VectorIndex } from '../shared/search/ports.ts';
import { EXCEPTION_TYPES, type ExceptionRecord, type ExceptionType } from '../shared/types.ts';

/** What the retrieval query says about an exception: its kind, its differences, its reason. */
export function retrievalQuery(e: ExceptionRecord): string {
  return [
    e.exception_type.toLowerCase().replaceAll('_', ' '),
    e.exception_type,
    ...e.diffs.map((d) => `${d.field} differs`),
    e.reason ?? '',
    'what to check likely causes owner escalation',
  ]
    .filter(Boolean)
    .join(' ');
}

function toPassage(hit: VectorHit): Passage {
  const type = String(hit.fields.exception_types ?? '');
  return {
    passage_id: String(hit.fields.passage_id ?? hit.id),
    document: String(hit.fields.document ?? ''),
    section: String(hit.fields.section ?? ''),
    text: hit.text,
    exception_type: (EXCEPTION_TYPES as readonly string[]).includes(type) ? (type as ExceptionType) : '',
  };
}

/**
 * The passages a triage sees: those written for the exception's type first (a filtered search),
 * then the nearest of the rest.
 */
export async function retrievePassages(
  e: ExceptionRecord,
  embedder: Embedder,
  index: VectorIndex,
  k = 6,
): Promise<Passage[]> {
  return retrievePassagesFor(retrievalQuery(e), e.exception_type, embedder, index, k);
}

/** The same for any query text (a pattern's description) about exceptions of one type. */
export async function retrievePassagesFor(
  query: string,
  type: ExceptionType,
  embedder: Embedder,
  index: VectorIndex,
  k = 6,
): Promise<Passage[]> {
  const [vector] = await embedder.embed([query]);
  const [typed, general] = await Promise.all([
    index.search(vector as number[], 4, { exception_types: type }),
    index.search(vector as number[], k),
  ]);
  const seen = new Set<string>();
  const passages: Passage[] = [];
  for (const hit of [...typed, ...general]) {
    const p = toPassage(hit);
    if (seen.has(p.passage_id)) continue;
    seen.add(p.passage_id);
    passages.push(p);
  }
  return passages.slice(0, Math.max(k, typed.length));
}

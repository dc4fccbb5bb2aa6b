import type { Passage } from '../shared/policy-corpus.ts';
import type { Embedder, VectorHit, VectorIndex } from '../shared/search/ports.ts';
import { EXCEPTION_TYPES, type ExceptionRecord, type ExceptionType } from '../shared/types.ts';

/** Where a dataset's policy sits in the corpus: `datasets/{dataset}.md` (ingest's document name). */
const DATASET_POLICY_DOCUMENT_PREFIX = 'datasets/';

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
 * The passages a triage sees: the dataset's own policy sections for the exception's type first
 * (a search within that document; a section headed by two types, such as duplicates, counts for
 * both), then those written for its type, then the nearest of the rest. Other datasets' policies
 * are left out: a trades break is not governed by the payments policy.
 */
export async function retrievePassages(
  e: ExceptionRecord,
  embedder: Embedder,
  index: VectorIndex,
  k = 6,
): Promise<Passage[]> {
  return retrievePassagesFor(retrievalQuery(e), e.exception_type, e.dataset, embedder, index, k);
}

/** The same for any query text (a pattern's description) about exceptions of one type and dataset. */
export async function retrievePassagesFor(
  query: string,
  type: ExceptionType,
  dataset: string,
  embedder: Embedder,
  index: VectorIndex,
  k = 6,
): Promise<Passage[]> {
  const [vector] = await embedder.embed([query]);
  const ownDocument = `${DATASET_POLICY_DOCUMENT_PREFIX}${dataset}.md`;
  const [own, typed, general] = await Promise.all([
    index.search(vector as number[], 4, { document: ownDocument }),
    index.search(vector as number[], 4 + 2, { exception_types: type }),
    index.search(vector as number[], k + 4),
  ]);
  const foreign = (p: Passage) => p.document.startsWith(DATASET_POLICY_DOCUMENT_PREFIX) && p.document !== ownDocument;
  const ownForType = own.map(toPassage).filter((p) => p.exception_type === type || p.section.includes(type));
  const seen = new Set<string>();
  const passages: Passage[] = [];
  const typedPassages = typed.map(toPassage).filter((p) => !foreign(p));
  for (const p of [...ownForType, ...typedPassages, ...general.map(toPassage)]) {
    if (seen.has(p.passage_id) || foreign(p)) continue;
    seen.add(p.passage_id);
    passages.push(p);
  }
  return passages.slice(0, Math.max(k, ownForType.length + Math.min(typedPassages.length, 4)));
}

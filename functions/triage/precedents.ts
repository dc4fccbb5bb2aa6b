/**
 * Precedents: how the same kind of break was closed before. Up to three exceptions of the same
 * dataset and type that an analyst resolved or marked a false positive, nearest to the one at hand
 * in the exceptions index, each with the note the analyst wrote. Triage gives them to the model
 * beside the policy passages (as R1, R2, R3); a citation of one is checked like a passage
 * citation: only precedents retrieved for this exception can be cited.
 *
 * Closed by the system ("no longer found by reconciliation") is not a precedent: nobody decided
 * anything. Nor is the exception itself (a reopened exception's own earlier resolution is history,
 * shown beside it already).
 */
import { exceptionEmbeddingText } from '../shared/search/exception-document.ts';
import type { Embedder, VectorHit, VectorIndex } from '../shared/search/ports.ts';
import type { TriageStore } from '../shared/tables/exceptions.ts';
import type { ExceptionRecord, HistoryEntry, PrecedentCitation, Row } from '../shared/types.ts';

export const PRECEDENT_STATUSES = ['RESOLVED', 'FALSE_POSITIVE'] as const;
export const MAX_PRECEDENTS = 3;

export interface Precedent extends PrecedentCitation {
  /** R1, R2, …: what the model cites. */
  readonly ref: string;
  readonly key: Row;
  /** Its own triage's summary, when it had one. */
  readonly summary?: string;
}

export interface PrecedentDeps {
  readonly embedder: Embedder;
  readonly exceptionsIndex: Pick<VectorIndex, 'search'>;
  readonly store: Pick<TriageStore, 'get'>;
}

/** The analyst's closing entry: the last move to a closed status by a person, with its note (or their last note). */
export function closingEntry(history: readonly HistoryEntry[]): { entry: HistoryEntry; note?: string } | undefined {
  const byPerson = (h: HistoryEntry) => !h.by.startsWith('system:');
  const closed = [...history]
    .reverse()
    .find((h) => byPerson(h) && (PRECEDENT_STATUSES as readonly string[]).includes(h.to ?? h.action));
  if (!closed) return undefined;
  const note =
    closed.note ??
    [...history].reverse().find((h) => byPerson(h) && h.action === 'NOTE' && h.note && h.at <= closed.at)?.note;
  return { entry: closed, ...(note ? { note } : {}) };
}

export async function findPrecedents(
  exception: ExceptionRecord,
  deps: PrecedentDeps,
  options: { text?: string; k?: number } = {},
): Promise<Precedent[]> {
  const k = options.k ?? MAX_PRECEDENTS;
  const [vector] = await deps.embedder.embed([options.text ?? exceptionEmbeddingText(exception)]);
  // Over-fetch: some hits are the exception itself or were closed by the system.
  const searches = await Promise.all(
    PRECEDENT_STATUSES.map((status) =>
      deps.exceptionsIndex.search(vector as number[], k * 3, {
        dataset: exception.dataset,
        exception_type: exception.exception_type,
        status,
      }),
    ),
  );
  const hits = searches
    .flat()
    .filter((h: VectorHit) => h.id !== exception.exception_id)
    .sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  const found: Precedent[] = [];
  for (const hit of hits) {
    if (found.length >= k) break;
    const record = await deps.store.get(hit.id);
    // The index lags the table: re-check what it says.
    if (!record || !(PRECEDENT_STATUSES as readonly string[]).includes(record.status)) continue;
    const closing = closingEntry(record.history);
    if (!closing) continue;
    found.push({
      ref: `R${found.length + 1}`,
      exception_id: record.exception_id,
      business_date: record.business_date,
      status: record.status,
      key: record.key,
      resolved_by: closing.entry.by,
      resolved_at: closing.entry.at,
      ...(closing.note ? { note: closing.note } : {}),
      ...(record.triage?.summary ? { summary: record.triage.summary } : {}),
    });
  }
  return found;
}

/** What is stored on the triage for a cited precedent. */
export function precedentCitation(p: Precedent): PrecedentCitation {
  return {
    exception_id: p.exception_id,
    business_date: p.business_date,
    status: p.status,
    ...(p.note ? { note: p.note } : {}),
    ...(p.resolved_by ? { resolved_by: p.resolved_by } : {}),
    ...(p.resolved_at ? { resolved_at: p.resolved_at } : {}),
  };
}

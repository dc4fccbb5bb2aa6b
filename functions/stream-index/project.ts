/**
 * The exceptions index as a projection of the exceptions table: one table change (a stream
 * record's new image, or its removal) applied to the region's index. No model is called: the
 * vector triage indexed is on the item (search/stored-embedding.ts), and the document is built by
 * the same exceptionDocument triage uses, from the item masked for its dataset as triage masks it.
 * Used by the stream consumer and by `tally reindex`.
 */
import { exceptionDocument } from '../shared/search/exception-document.ts';
import type { VectorIndex } from '../shared/search/ports.ts';
import { storedEmbedding } from '../shared/search/stored-embedding.ts';
import type { ExceptionRecord } from '../shared/types.ts';
import type { TriagePolicies } from '../triage/dataset-policy.ts';

export interface ProjectionDeps {
  readonly index: VectorIndex;
  /** Each dataset's masker: the index holds sensitive values as tokens, as triage wrote them. */
  readonly policies: TriagePolicies;
  /** The embedder whose vectors this index holds: a vector of another model is never mixed in. */
  readonly embedderId: string;
}

export type TableChange =
  | { readonly kind: 'upsert'; readonly item: Readonly<Record<string, unknown>> }
  | { readonly kind: 'remove'; readonly exceptionId: string };

/**
 * - `indexed`: the document replaced with the item's stored vector;
 * - `fields`: no usable vector (not triaged yet, or another model's): the fields of a document
 *   already indexed follow the item (a status change), and nothing is added;
 * - `removed`: the item is gone, so is its document.
 */
export type ProjectionOutcome = 'indexed' | 'fields' | 'removed';

export function isExceptionItem(item: Readonly<Record<string, unknown>>): boolean {
  return typeof item.exception_id === 'string' && typeof item.dataset === 'string';
}

export async function projectChange(change: TableChange, deps: ProjectionDeps): Promise<ProjectionOutcome> {
  if (change.kind === 'remove') {
    await deps.index.deleteWhere('exception_id', change.exceptionId);
    return 'removed';
  }
  const exception = change.item as unknown as ExceptionRecord;
  const { masker } = await deps.policies.forDataset(exception.dataset);
  const masked = masker.exception(exception);
  const stored = storedEmbedding(change.item);
  if (stored && stored.model === deps.embedderId) {
    await deps.index.replace(exceptionDocument(masked, stored.vector));
    return 'indexed';
  }
  await deps.index.updateFields(exception.exception_id, exceptionDocument(masked, []).fields);
  return 'fields';
}

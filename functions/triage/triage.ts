/**
 * Triage core: one triage request in; the exception triaged with citations from the policies,
 * stored, embedded and indexed for search. Re-delivery of the same request for an unchanged
 * exception does not call a model again.
 */
import { answersRequest } from '../shared/retriage.ts';
import { TransientError } from '../shared/errors.ts';
import type { TriageRequest } from '../shared/messages.ts';
import { exceptionDocument, exceptionEmbeddingText } from '../shared/search/exception-document.ts';
import { IndexBatcher } from '../shared/search/index-batcher.ts';
import type { Embedder, VectorIndex } from '../shared/search/ports.ts';
import type { TriageStore } from '../shared/tables/exceptions.ts';
import type { ExceptionRecord } from '../shared/types.ts';
import { triageCall, triageRecord, type TriageCallDeps } from './call.ts';
import { buildUserPrompt, numberPassages, PROMPT_VERSION, SYSTEM_PROMPT } from './prompt.ts';
import type { TriagePolicies } from './dataset-policy.ts';
import { announceCritical, deadlineAfterTriage } from './deadline.ts';
import type { BusinessNotifier } from '../shared/notifications.ts';
import { findPrecedents } from './precedents.ts';
import { retrievePassages } from './retrieval.ts';

export interface TriageDeps extends TriageCallDeps {
  readonly store: TriageStore;
  /** The dataset's policy in force: its sensitive fields are masked in the prompt, the embedded text and the index. */
  readonly policies: TriagePolicies;
  readonly embedder: Embedder;
  readonly policyIndex: VectorIndex;
  readonly exceptionsIndex: VectorIndex;
  /** The business events topic: a new CRITICAL rating is announced there (functions/triage/deadline.ts). */
  readonly notifier?: BusinessNotifier;
}

export type TriageOutcome =
  | {
      outcome: 'TRIAGED';
      provider: string;
      model: string;
      degraded: boolean;
      degradedReason?: 'budget';
      route: string;
      citations: number;
    }
  | { outcome: 'ALREADY_TRIAGED' };

export async function triageException(request: TriageRequest, deps: TriageDeps): Promise<TriageOutcome> {
  const exception = await deps.store.get(request.exception_id);
  // Recon writes the exception before it queues the request; absent means not visible yet.
  if (!exception) throw new TransientError(`exception ${request.exception_id} not found`);

  const { masker, policy } = await deps.policies.forDataset(exception.dataset);
  // A triage the rules gave because the day's budget was spent is not final: asked again, a model may
  // answer. Nor is one older than an analyst's request to triage again (a redelivered request finds
  // the newer triage and stops here).
  if (
    exception.triage &&
    exception.triage.content_hash === exception.content_hash &&
    exception.triage.prompt_version === PROMPT_VERSION &&
    exception.triage.degraded_reason !== 'budget' &&
    (request.requested_at === undefined || answersRequest(exception.triage.triaged_at, request.requested_at))
  ) {
    await index(masker.exception(exception), deps);
    return { outcome: 'ALREADY_TRIAGED' };
  }

  // What leaves the table: sensitive values as tokens. The rules provider reads `exception` (it
  // calls nothing); models read only the prompt.
  const seen = masker.exception(exception);
  const [retrieved, found] = await Promise.all([
    retrievePassages(seen, deps.embedder, deps.policyIndex),
    findPrecedents(seen, deps),
  ]);
  const precedents = found.map((p) => ({ ...p, key: masker.row(p.key) }));
  const passages = numberPassages(retrieved);
  const result = await triageCall(
    {
      exception,
      passages,
      precedents,
      ...(policy ? { policy } : {}),
      system: SYSTEM_PROMPT,
      user: buildUserPrompt(seen, passages, precedents),
    },
    {
      runId: request.run_id,
      dataset: exception.dataset,
      exceptionType: exception.exception_type,
      policySeverity: exception.policy_severity,
    },
    deps,
  );
  // The answer names tokens where the prompt had them: stored with the values (the table holds them).
  const unmask = (text: string) => masker.unmask(text, exception);
  const triage = triageRecord(result, {
    policySeverity: exception.policy_severity,
    passages,
    promptVersion: PROMPT_VERSION,
    contentHash: exception.content_hash,
    triagedAt: new Date(deps.now()).toISOString(),
    unmask,
  });
  await announceCritical(exception, triage.severity, deps);
  const deadline = deadlineAfterTriage(exception, triage.severity, policy);
  if (
    !(await deps.store.saveTriage(
      exception.exception_id,
      triage,
      exception.content_hash,
      deadline,
      undefined,
      exception.status,
    ))
  ) {
    throw new TransientError(
      `exception ${exception.exception_id} changed during triage; its new content will be triaged`,
    );
  }
  await index(masker.exception({ ...exception, triage, severity: triage.severity }), deps);
  return {
    outcome: 'TRIAGED',
    provider: triage.provider,
    model: triage.model,
    degraded: triage.degraded,
    ...(result.degradedReason ? { degradedReason: result.degradedReason } : {}),
    route: result.route,
    citations: triage.policy_citations.length,
  };
}

/** Indexes exceptions for search through the shared batcher: a page of pattern members in a few embedding calls and writes. */
export async function indexExceptions(
  exceptions: readonly ExceptionRecord[],
  deps: Pick<TriageDeps, 'embedder' | 'exceptionsIndex'> & { readonly store?: Pick<TriageStore, 'saveEmbedding'> },
): Promise<void> {
  await Promise.all(exceptions.map((e) => index(e, deps)));
}

/** One batcher per index: the records of a batch, handled concurrently, share embedding calls and writes. */
const batchers = new WeakMap<VectorIndex, IndexBatcher>();

function batcherOf(deps: Pick<TriageDeps, 'embedder' | 'exceptionsIndex'>): IndexBatcher {
  let batcher = batchers.get(deps.exceptionsIndex);
  if (!batcher) batchers.set(deps.exceptionsIndex, (batcher = new IndexBatcher(deps.embedder, deps.exceptionsIndex)));
  return batcher;
}

/** Embeddings of exceptions (already masked), as index() would compute them: a page's in a few calls. */
export async function embedExceptions(exceptions: readonly ExceptionRecord[], embedder: Embedder): Promise<number[][]> {
  const vectors: number[][] = [];
  for (let start = 0; start < exceptions.length; start += EMBED_BATCH) {
    const texts = exceptions.slice(start, start + EMBED_BATCH).map(exceptionEmbeddingText);
    const out = await embedder.embed(texts);
    if (out.length !== texts.length)
      throw new Error(`embedder returned ${out.length} vectors for ${texts.length} texts`);
    vectors.push(...out);
  }
  return vectors;
}

/** Texts per embedding call (the batcher's flush size). */
const EMBED_BATCH = 100;

/**
 * Indexes exceptions (already masked) whose vectors the caller computed and stored with their
 * triage (saveTriage's embedding): written through the shared batcher, no embedding call.
 */
export async function indexEmbedded(
  exceptions: readonly { readonly exception: ExceptionRecord; readonly vector: number[] }[],
  deps: Pick<TriageDeps, 'embedder' | 'exceptionsIndex'>,
): Promise<void> {
  const batcher = batcherOf(deps);
  await Promise.all(exceptions.map((e) => batcher.addDocument(exceptionDocument(e.exception, e.vector))));
}

/**
 * Indexes an exception already masked for its dataset, and keeps its vector on the item: each
 * region's stream consumer (functions/stream-index) rebuilds the document from the item alone.
 */
async function index(
  exception: ExceptionRecord,
  deps: Pick<TriageDeps, 'embedder' | 'exceptionsIndex'> & { readonly store?: Pick<TriageStore, 'saveEmbedding'> },
): Promise<void> {
  const batcher = batcherOf(deps);
  let vector: number[] | undefined;
  await batcher.add(exceptionEmbeddingText(exception), (v) => exceptionDocument(exception, (vector = v)));
  if (vector) await deps.store?.saveEmbedding?.(exception.exception_id, vector, deps.embedder.id);
}

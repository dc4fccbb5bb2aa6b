/**
 * Ingest core: one S3 "Object Created" event in, at most one ingest out.
 *
 * Idempotent on bucket + key + ETag (never on messageId: a message redriven from the DLQ gets a
 * new one). Validates the file before anything downstream sees it, records it, and when both
 * sides of a (dataset, date) are accepted asks for exactly one reconciliation run.
 */
import { createHash } from 'node:crypto';
import { validateExtract, type ValidationResult } from '../shared/extract.ts';
import { PermanentError } from '../shared/errors.ts';
import { validateDatasetPolicy, type DatasetPolicyStore } from '../shared/dataset-policies.ts';
import { formatMismatch, PolicyError } from '../shared/policy.ts';
import {
  ObjectChangedError,
  ObjectMissingError,
  type MessageQueue,
  type ObjectRef,
  type ObjectStore,
} from '../shared/ports.ts';
import type { FileRecord, FileStore } from '../shared/tables/files.ts';
import type { IdempotencyStore } from '../shared/tables/idempotency.ts';
import type { RunStore } from '../shared/tables/runs.ts';
import { HeldElsewhereError, withHeartbeat } from '../shared/lease.ts';
import { crashPoint } from '../shared/crash-point.ts';
import { PREFIXES } from '../shared/resources.ts';
import type { ReconRequest, UncitedRequest } from '../shared/messages.ts';
import {
  isLaterUpload,
  DATASET_RULE,
  datasetPolicyKey,
  idempotencyKey,
  INCOMING_KEY_LAYOUT,
  parseDatasetPolicyKey,
  parseIncomingKey,
  type IncomingKey,
} from '../shared/keys.ts';
import { passageDocument, passageEmbeddingText, splitIntoPassages } from '../shared/policy-corpus.ts';
import type { Embedder, VectorIndex } from '../shared/search/ports.ts';
import type { ObjectCreatedEvent } from '../shared/messages.ts';

/** `incoming/{dataset}/{YYYY-MM-DD}/{source|target}.csv`, or a PermanentError saying what was expected. */
function requireIncomingKey(key: string): IncomingKey {
  const parsed = parseIncomingKey(key);
  if (parsed.ok) return parsed.key;
  const expected = `expected ${INCOMING_KEY_LAYOUT} with dataset made of ${DATASET_RULE} (or ${PREFIXES.policies}{name}.md for a governance document, ${PREFIXES.policies}datasets/{dataset}.md for a dataset's policy)`;
  throw new PermanentError('INVALID_KEY', `object key "${key}" ${parsed.reason}; ${expected}`);
}

const POLICY_KEY = /^policies\/((?:datasets\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.md)$/;

/**
 * `policies/{name}.md`, a governance document for the triage corpus, or
 * `policies/datasets/{dataset}.md`, a dataset's policy (cited by the triage too): the document's
 * name under policies/.
 */
export function parsePolicyKey(key: string): string | undefined {
  const document = POLICY_KEY.exec(key)?.[1];
  if (document?.startsWith('datasets/') && parseDatasetPolicyKey(key) === undefined) return undefined;
  return document;
}

export interface PolicyCorpusDeps {
  readonly embedder: Embedder;
  readonly index: VectorIndex;
}

export interface IngestDeps {
  readonly objects: ObjectStore;
  readonly files: FileStore;
  readonly runs: RunStore;
  readonly idempotency: IdempotencyStore;
  readonly reconQueue: MessageQueue<ReconRequest>;
  /** A policy document indexed asks triage to answer again the exceptions whose triage cites nothing. */
  readonly triageQueue: MessageQueue<UncitedRequest>;
  /** Each dataset's policy in force: what its extracts are validated against; where an accepted upload goes. */
  readonly policies: DatasetPolicyStore;
  /** Where governance documents under policies/ are chunked, embedded and indexed. */
  readonly policyCorpus: PolicyCorpusDeps;
  readonly now: () => number;
  /**
   * How long one worker owns an ingest without renewing it: a heartbeat renews it every third
   * of this while the work goes on, so a dead worker's claim is free again within one lease.
   */
  readonly leaseMs: number;
  /** A fresh owner token for this worker's claim (shared/lease.ts newLeaseOwner). */
  readonly newLeaseOwner: () => string;
  /** Where a failed renewal is reported (it is retried at the next beat). */
  readonly onHeartbeatError?: (error: unknown) => void;
}

export type IngestOutcome =
  | { outcome: 'DUPLICATE' }
  | { outcome: 'STALE' }
  | { outcome: 'ACCEPTED'; rows: number; runRequested?: string }
  | { outcome: 'REJECTED'; code: string; message: string; line?: number }
  | { outcome: 'POLICY_INDEXED'; document: string; passages: number; replaced: number };

export async function ingestObject(event: ObjectCreatedEvent, deps: IngestDeps): Promise<IngestOutcome> {
  const { bucket, object } = event.detail;
  const document = parsePolicyKey(object.key);
  const parsed = document === undefined ? requireIncomingKey(object.key) : undefined;
  const ref: ObjectRef = { bucket: bucket.name, key: object.key, etag: object.etag };
  const id = idempotencyKey(ref);

  const owner = deps.newLeaseOwner();
  const lease = () => ({ owner, now: deps.now(), leaseMs: deps.leaseMs });
  const began = await deps.idempotency.begin(id, object.sequencer, lease());
  if (began.state === 'in_progress') throw new HeldElsewhereError(`${id} is being ingested by another worker`);
  // An unchanged policy document (same ETag) is skipped.
  if (began.state === 'completed' && parsed === undefined) return { outcome: 'DUPLICATE' };
  if (began.state === 'completed' && parsed !== undefined) {
    // A later upload of byte-identical content is a duplicate unless the side has moved on to
    // other content since (a revert): then it must become current again.
    const current = await deps.files.get(parsed.dataset, parsed.businessDate, parsed.side);
    const isRevert =
      current !== undefined &&
      current.etag !== ref.etag &&
      isLaterUpload(
        { bucket: ref.bucket, key: ref.key, sequencer: object.sequencer, ...uploadedAt(event.time) },
        current,
      );
    if (!isRevert || !(await deps.idempotency.reopen(id, object.sequencer, began.sequencer, lease()))) {
      return { outcome: 'DUPLICATE' };
    }
  }
  try {
    const outcome = await withHeartbeat(
      () => deps.idempotency.renew(id, lease()),
      deps.leaseMs,
      () =>
        parsed === undefined
          ? indexPolicyDocument(ref, document as string, deps)
          : ingestOnce(event, parsed, ref, id, deps),
      deps.onHeartbeatError,
    );
    await deps.idempotency.complete(id, owner, outcome.outcome, deps.now());
    return outcome;
  } catch (error) {
    await deps.idempotency.release(id, owner).catch(() => undefined);
    throw error;
  }
}

async function ingestOnce(
  event: ObjectCreatedEvent,
  key: IncomingKey,
  ref: ObjectRef,
  id: string,
  deps: IngestDeps,
): Promise<IngestOutcome> {
  const { object } = event.detail;
  let validation: ValidationResult;
  try {
    const policy = await deps.policies.current(ref.bucket, key.dataset);
    const file = `s3://${ref.bucket}/${ref.key}`;
    const mismatch = policy && formatMismatch(policy, key.dataset, key.side, key.format ?? 'csv');
    validation =
      policy === undefined
        ? {
            ok: false,
            code: 'NO_POLICY',
            message: `dataset "${key.dataset}" has no policy; upload ${datasetPolicyKey(key.dataset)} first`,
          }
        : mismatch
          ? {
              ok: false,
              code: 'FORMAT_MISMATCH',
              message: `${mismatch} (upload it as ${key.side}.${policy.sides[key.side].format})`,
            }
          : await validateExtract(await deps.objects.read(ref), file, policy, key.side);
  } catch (error) {
    // Overwritten or deleted since the event: a later event describes the current object.
    if (error instanceof ObjectChangedError || error instanceof ObjectMissingError) return { outcome: 'STALE' };
    throw error;
  }
  const previous = await deps.files.get(key.dataset, key.businessDate, key.side);
  const file: FileRecord = {
    ...ref,
    dataset: key.dataset,
    business_date: key.businessDate,
    side: key.side,
    sequencer: object.sequencer,
    size: object.size ?? 0,
    rows: validation.ok ? validation.rows : 0,
    status: validation.ok ? 'ACCEPTED' : 'REJECTED',
    ...(validation.ok
      ? {}
      : {
          error: {
            code: validation.code,
            message: validation.message,
            ...(validation.line === undefined ? {} : { line: validation.line }),
          },
        }),
    ...uploadedAt(event.time),
    ingested_at: new Date(deps.now()).toISOString(),
    // A retry of this same ingest keeps the generation it wrote, and so the same run id.
    generation: previous?.sequencer === object.sequencer ? previous.generation : (previous?.generation ?? 0) + 1,
  };
  if (!(await deps.files.putIfNewer(file))) return { outcome: 'STALE' };
  crashPoint('ingest:recorded');
  if (!validation.ok)
    return {
      outcome: 'REJECTED',
      code: validation.code,
      message: validation.message,
      ...(validation.line === undefined ? {} : { line: validation.line }),
    };

  const other = await deps.files.get(key.dataset, key.businessDate, key.side === 'source' ? 'target' : 'source');
  if (other?.status !== 'ACCEPTED') return { outcome: 'ACCEPTED', rows: file.rows };
  const [source, target] = key.side === 'source' ? [file, other] : [other, file];
  const runId = runIdFor(source, target);
  const { created, run } = await deps.runs.request({
    run_id: runId,
    dataset: key.dataset,
    business_date: key.businessDate,
    source: { bucket: source.bucket, key: source.key, etag: source.etag },
    target: { bucket: target.bucket, key: target.key, etag: target.etag },
    status: 'REQUESTED',
    requested_at: new Date(deps.now()).toISOString(),
    requested_by: id,
  });
  // Only the ingest that created the run (or its own retry) sends the request: two sides landing
  // at once still make one recon message.
  if (created || run.requested_by === id) {
    await deps.reconQueue.send([
      { run_id: runId, dataset: key.dataset, business_date: key.businessDate, source: run.source, target: run.target },
    ]);
    return { outcome: 'ACCEPTED', rows: file.rows, runRequested: runId };
  }
  return { outcome: 'ACCEPTED', rows: file.rows };
}

/** The S3 event's time is when the object was written: what people call "uploaded". */
function uploadedAt(time: string): { uploaded_at?: string } {
  const t = Date.parse(time);
  return Number.isNaN(t) ? {} : { uploaded_at: new Date(t).toISOString() };
}

/** Replaces the document's passages in the policy index with those of this version. */
async function indexPolicyDocument(ref: ObjectRef, document: string, deps: IngestDeps): Promise<IngestOutcome> {
  let text = '';
  try {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for await (const chunk of await deps.objects.read(ref)) text += decoder.decode(chunk, { stream: true });
    text += decoder.decode();
  } catch (error) {
    if (error instanceof ObjectChangedError || error instanceof ObjectMissingError) return { outcome: 'STALE' };
    if (error instanceof TypeError)
      throw new PermanentError('ENCODING', `s3://${ref.bucket}/${ref.key} is not valid UTF-8`);
    throw error;
  }
  // A dataset's policy is validated before anything else: one that does not validate changes
  // nothing (the version in force stays), and every problem is named for `tally dlq`.
  const dataset = parseDatasetPolicyKey(ref.key);
  if (dataset !== undefined) {
    try {
      validateDatasetPolicy(dataset, text, `s3://${ref.bucket}/${ref.key}`);
    } catch (error) {
      if (error instanceof PolicyError) throw new PermanentError('POLICY_INVALID', error.message);
      throw error;
    }
  }
  const passages = splitIntoPassages(document, text);
  if (passages.length === 0)
    throw new PermanentError('POLICY_EMPTY', `s3://${ref.bucket}/${ref.key} has no headed sections to cite`);
  const { embedder, index } = deps.policyCorpus;
  const vectors = await embedder.embed(passages.map(passageEmbeddingText));
  await index.ensure();
  const replaced = await index.deleteWhere('source_key', ref.key);
  crashPoint('ingest:indexing');
  for (const [i, p] of passages.entries()) {
    await index.replace(passageDocument(p, vectors[i] as number[], { key: ref.key, etag: ref.etag }));
  }
  // A retry after a failure above indexes again and then puts it in force.
  if (dataset !== undefined) await deps.policies.accept(ref.bucket, dataset, text);
  // Last: the exceptions triaged while the corpus lacked what they should cite are asked again
  // (functions/triage/uncited.ts). A retry asks again: triage answers the later request only for
  // those still uncited.
  await deps.triageQueue.send([
    {
      kind: 'uncited',
      requested_at: new Date(deps.now()).toISOString(),
      document,
      ...(dataset === undefined ? {} : { dataset }),
    },
  ]);
  return { outcome: 'POLICY_INDEXED', document, passages: passages.length, replaced };
}

/** Deterministic: the same pair of current files always means the same run. */
export function runIdFor(source: FileRecord, target: FileRecord): string {
  const material = [
    source.dataset,
    source.business_date,
    source.etag,
    source.generation,
    target.etag,
    target.generation,
  ].join('\u001f');
  return `run-${source.business_date}-${createHash('sha256').update(material).digest('hex').slice(0, 16)}`;
}

import { z } from 'zod';
import { BUSINESS_DATE_PATTERN } from './keys.ts';

/** Body of a message on the ingest queue: the EventBridge "Object Created" event S3 sends. */
export const objectCreatedEventSchema = z.object({
  'detail-type': z.literal('Object Created'),
  source: z.literal('aws.s3'),
  time: z.string(),
  detail: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({
      key: z.string().min(1),
      size: z.number().int().nonnegative().optional(),
      etag: z.string().min(1),
      sequencer: z.string().min(1),
    }),
  }),
});
export type ObjectCreatedEvent = z.infer<typeof objectCreatedEventSchema>;

/** Body of a message on the recon queue. */
export const reconRequestSchema = z.object({
  run_id: z.string().min(1),
  dataset: z.string().min(1),
  business_date: z.string().regex(BUSINESS_DATE_PATTERN),
  source: z.object({ bucket: z.string(), key: z.string(), etag: z.string() }),
  target: z.object({ bucket: z.string(), key: z.string(), etag: z.string() }),
});
export type ReconRequest = z.infer<typeof reconRequestSchema>;

/** The recon queue message that carries a run on Athena from one step to the next. */
export const athenaCheckSchema = z.object({
  kind: z.literal('athena-check'),
  run_id: z.string().min(1),
  dataset: z.string().min(1),
  business_date: z.string().min(1),
  source: z.object({ bucket: z.string(), key: z.string(), etag: z.string() }),
  target: z.object({ bucket: z.string(), key: z.string(), etag: z.string() }),
  /** Each side's header (the plan is rebuilt from it at every step: it is deterministic). */
  headers: z.object({ source: z.array(z.string()), target: z.array(z.string()) }),
  /** The index of the step running (or to start). */
  step: z.int().min(0),
  query_id: z.string().optional(),
  /** The summary queries done so far, by summary key: their rows are read at the end. */
  summary_queries: z.record(z.string(), z.string()),
  /** Checks of the current query so far (the delay grows with them). */
  polls: z.int().min(0),
  started_at: z.number(),
});
export type AthenaCheck = z.infer<typeof athenaCheckSchema>;

/**
 * Any body on the recon queue: a recon request (no `kind`: every message before the Athena path
 * has none) or a run on Athena's delayed check (`kind: "athena-check"`).
 */
export const reconQueueMessageSchema = z.union([
  athenaCheckSchema,
  reconRequestSchema.extend({ kind: z.literal('recon').optional() }),
]);
export type ReconQueueMessage = z.infer<typeof reconQueueMessageSchema>;

/** One exception's triage (the only body the triage queue carried before dispatch: it had no `kind`). */
export const triageRequestSchema = z.object({
  kind: z.literal('exception').optional(),
  exception_id: z.string().min(1),
  run_id: z.string().min(1),
  content_hash: z.string().min(1),
  /**
   * An analyst's request (POST /exceptions/{id}/triage) or the corpus's (an uncited triage,
   * functions/triage/uncited.ts), as an ISO time: triage it again unless it was triaged at or after this. Without it an exception already triaged for its content is not.
   */
  requested_at: z.iso.datetime().optional(),
});
export type TriageRequest = z.infer<typeof triageRequestSchema>;

/**
 * A completed (or released) run's dispatch: its exceptions that need triage listed a page at a
 * time, each page's singletons queued, the next page carried by the next message with the totals
 * so far (a redelivered page repeats the same totals).
 */
export const dispatchRequestSchema = z.object({
  kind: z.literal('dispatch'),
  run_id: z.string().min(1),
  cursor: z.string().min(1).optional(),
  /** Singletons queued so far, and per saved pattern its members found so far. */
  counted: z.object({ singletons: z.int().min(0), members: z.record(z.string(), z.int().min(0)) }).optional(),
});
export type DispatchRequest = z.infer<typeof dispatchRequestSchema>;

/** One pattern's triage: one model call for every member. */
export const patternRequestSchema = z.object({
  kind: z.literal('pattern'),
  run_id: z.string().min(1),
  pattern_id: z.string().min(1),
  /** Asked again (an uncited triage, functions/triage/uncited.ts): triaged again unless triaged at or after this. */
  requested_at: z.iso.datetime().optional(),
});
export type PatternRequest = z.infer<typeof patternRequestSchema>;

/** A page of a triaged pattern's members taking its triage (at most MEMBERS_PER_MESSAGE). */
export const patternMembersRequestSchema = z.object({
  kind: z.literal('pattern-members'),
  run_id: z.string().min(1),
  pattern_id: z.string().min(1),
  cursor: z.string().min(1).optional(),
  /** The pattern's request, if asked again: every member triaged before it takes the pattern's triage. */
  requested_at: z.iso.datetime().optional(),
});
export type PatternMembersRequest = z.infer<typeof patternMembersRequestSchema>;

/**
 * The policy corpus gained a document (ingest-worker): the exceptions whose triage cites no policy
 * passage (by_uncited_sharded) are asked again; or a model answered again after its circuit
 * breaker opened (triage): those the rules triaged because every model failed. A page at a time,
 * the next page carried by the next message.
 */
export const uncitedRequestSchema = z
  .object({
    kind: z.literal('uncited'),
    requested_at: z.iso.datetime(),
    /** The document indexed, under policies/ (for the logs): asks the triages citing nothing. */
    document: z.string().min(1).optional(),
    /** The model (its breaker's key) that answered again: asks the triages failing models left to the rules. */
    recovered: z.string().min(1).optional(),
    /** A dataset's policy: only that dataset's exceptions (retrieval leaves other datasets' policies out). */
    dataset: z.string().min(1).optional(),
    cursor: z.string().min(1).optional(),
  })
  .refine((r) => (r.document === undefined) !== (r.recovered === undefined), {
    message: 'expected one of document (a policy document indexed) and recovered (a model answering again)',
  });
export type UncitedRequest = z.infer<typeof uncitedRequestSchema>;

/** Any body on the triage queue; a body without `kind` is an exception's (messages in flight over a deploy). */
export const triageQueueMessageSchema = z.union([
  dispatchRequestSchema,
  uncitedRequestSchema,
  patternRequestSchema,
  patternMembersRequestSchema,
  triageRequestSchema,
]);
export type TriageQueueMessage = z.infer<typeof triageQueueMessageSchema>;

/**
 * Body of a message on the store queue: one chunk of a run's findings under results/{run_id}/
 * (functions/recon/chunks.ts). `chunk` numbers the run's chunks from 0; `findings` is how many
 * the chunk holds.
 */
export const storeRequestSchema = z.object({
  run_id: z.string().min(1),
  dataset: z.string().min(1),
  business_date: z.string().regex(BUSINESS_DATE_PATTERN),
  bucket: z.string().min(1),
  key: z.string().min(1),
  chunk: z.number().int().nonnegative(),
  findings: z.number().int().nonnegative(),
});
export type StoreRequest = z.infer<typeof storeRequestSchema>;

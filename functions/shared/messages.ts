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

/** Body of a message on the triage queue. */
export const triageRequestSchema = z.object({
  exception_id: z.string().min(1),
  run_id: z.string().min(1),
  content_hash: z.string().min(1),
});
export type TriageRequest = z.infer<typeof triageRequestSchema>;

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

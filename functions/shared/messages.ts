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

/** Body of a message on the triage queue. */
export const triageRequestSchema = z.object({
  exception_id: z.string().min(1),
  run_id: z.string().min(1),
  content_hash: z.string().min(1),
});
export type TriageRequest = z.infer<typeof triageRequestSchema>;

import { z } from 'zod';

/** Body of a message on the recon queue. */
export const reconRequestSchema = z.object({
  run_id: z.string().min(1),
  dataset: z.string().min(1),
  business_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
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

/**
 * S3 sequencers are hexadecimal values of varying length; the greater value is the later event.
 * Compare them as numbers: left-pad the shorter with zeros.
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const x = a.toUpperCase().padStart(width, '0');
  const y = b.toUpperCase().padStart(width, '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

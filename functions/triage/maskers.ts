/**
 * Which values triage must mask, per dataset: the `sensitive_fields` of the dataset's policy in
 * force (functions/shared/masking.ts), read once a minute per dataset and container. A policy
 * that cannot be read fails the triage (retried, then the DLQ): sending a prompt unmasked because
 * S3 hiccuped is the one outcome that must not happen. A dataset with no policy has nothing named
 * sensitive (its uploads are refused anyway).
 */
import type { DatasetPolicyStore } from '../shared/dataset-policies.ts';
import { createMasker, NO_MASKING, type Masker } from '../shared/masking.ts';

export interface MaskerSource {
  forDataset(dataset: string): Promise<Masker>;
}

export const MASKER_TTL_MS = 60_000;

export function datasetMaskers(
  policies: Pick<DatasetPolicyStore, 'current'>,
  bucket: string,
  secret: string | undefined,
  now: () => number = Date.now,
): MaskerSource {
  const cache = new Map<string, { masker: Masker; at: number }>();
  return {
    async forDataset(dataset) {
      const hit = cache.get(dataset);
      if (hit && now() - hit.at < MASKER_TTL_MS) return hit.masker;
      const policy = await policies.current(bucket, dataset);
      const masker =
        policy === undefined || policy.sensitiveFields.length === 0
          ? NO_MASKING
          : createMasker(policy.sensitiveFields, secret);
      cache.set(dataset, { masker, at: now() });
      return masker;
    },
  };
}

/** Tests and callers that mask nothing. */
export const NO_MASKERS: MaskerSource = { forDataset: async () => NO_MASKING };

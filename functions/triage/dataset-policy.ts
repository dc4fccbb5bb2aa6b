/**
 * What triage needs of an exception's dataset: its policy in force (the rules provider quotes
 * its tolerance and cites it) and, from its `sensitive_fields`, the masker for everything that
 * leaves the table (functions/shared/masking.ts). Read once a minute per dataset and container.
 *
 * A policy that cannot be read fails the triage (retried, then the DLQ): sending a prompt
 * unmasked because S3 hiccuped is the one outcome that must not happen. A dataset with no policy
 * has nothing named sensitive (its uploads are refused anyway) and the rules use their own.
 */
import type { DatasetPolicyStore } from '../shared/dataset-policies.ts';
import { createMasker, NO_MASKING, type Masker } from '../shared/masking.ts';
import type { ReconPolicy } from '../shared/policy.ts';

export interface TriagePolicy {
  readonly masker: Masker;
  /** Undefined when the dataset has no policy in force. */
  readonly policy?: ReconPolicy;
}

export interface TriagePolicies {
  forDataset(dataset: string): Promise<TriagePolicy>;
}

export const TRIAGE_POLICY_TTL_MS = 60_000;

export function datasetTriagePolicies(
  policies: Pick<DatasetPolicyStore, 'current'>,
  bucket: string,
  secret: string | undefined,
  now: () => number = Date.now,
): TriagePolicies {
  const cache = new Map<string, { view: TriagePolicy; at: number }>();
  return {
    async forDataset(dataset) {
      const hit = cache.get(dataset);
      if (hit && now() - hit.at < TRIAGE_POLICY_TTL_MS) return hit.view;
      const policy = await policies.current(bucket, dataset);
      const masker =
        policy === undefined || policy.sensitiveFields.length === 0
          ? NO_MASKING
          : createMasker(policy.sensitiveFields, secret);
      const view: TriagePolicy = policy === undefined ? { masker } : { masker, policy };
      cache.set(dataset, { view, at: now() });
      return view;
    },
  };
}

/** Tests and callers with no dataset policies: nothing masked, the rules use their own policy. */
export const NO_DATASET_POLICIES: TriagePolicies = { forDataset: async () => ({ masker: NO_MASKING }) };

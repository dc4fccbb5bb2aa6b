/**
 * Per-dataset policies: each dataset runs under its own policy (`policies/datasets/{dataset}.md`).
 *
 * Uploading that file is how a policy is added or changed (no redeploy): ingest validates it and,
 * only if it validates, copies it to `policies-in-force/{dataset}.md`, the version every later
 * ingest and run applies. A failed upload therefore leaves the previous version in force. The
 * policies shipped in the bundle (the repository's policies/datasets/) are the baseline until a
 * dataset's first upload is accepted, so a fresh stack reconciles its shipped datasets at once.
 * A dataset with neither has no policy: its uploads are refused.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DATASET_PATTERN, DATASET_POLICY_DIR } from './keys.ts';
import { DEFAULT_WORKFLOW, parseReconPolicy, type ReconPolicy, type WorkflowSettings } from './policy.ts';

/** Where the accepted policies live (an S3 prefix in the stack). */
export interface DatasetPolicyStore {
  /** The dataset's policy in force, or undefined when it has none. */
  current(bucket: string, dataset: string): Promise<ReconPolicy | undefined>;
  /** Makes `text` (already validated) the dataset's policy in force. */
  accept(bucket: string, dataset: string, text: string): Promise<void>;
  /** The datasets that have a policy in force, sorted. */
  known(bucket: string): Promise<string[]>;
}

/**
 * The policy a `policies/datasets/{dataset}.md` document states, or a PolicyError naming every
 * problem. Its `"dataset"` must be the file's name: a copied file left unedited would otherwise
 * silently replace another dataset's rules.
 */
export function validateDatasetPolicy(dataset: string, markdown: string, source: string): ReconPolicy {
  return parseReconPolicy(markdown, source, dataset);
}

/** The policies shipped next to the code (the build copies policies/ into each bundle). */
export function bundledPoliciesDir(root = process.env.LAMBDA_TASK_ROOT ?? process.cwd()): string {
  return join(root, DATASET_POLICY_DIR);
}

/** The datasets with a policy in `dir`, sorted. */
export function bundledDatasets(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && DATASET_PATTERN.test(f.slice(0, -3)))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** A store whose datasets without an accepted upload fall back to the policies shipped in `dir`. */
export function withBundledPolicies(store: DatasetPolicyStore, dir = bundledPoliciesDir()): DatasetPolicyStore {
  const bundled = new Map<string, ReconPolicy>();
  const shipped = bundledDatasets(dir);
  const load = (dataset: string): ReconPolicy => {
    let policy = bundled.get(dataset);
    if (policy === undefined) {
      const file = join(dir, `${dataset}.md`);
      policy = validateDatasetPolicy(dataset, readFileSync(file, 'utf8'), file);
      bundled.set(dataset, policy);
    }
    return policy;
  };
  return {
    async current(bucket, dataset) {
      const accepted = await store.current(bucket, dataset);
      if (accepted !== undefined) return accepted;
      return shipped.includes(dataset) ? load(dataset) : undefined;
    },
    accept: (bucket, dataset, text) => store.accept(bucket, dataset, text),
    async known(bucket) {
      return [...new Set([...shipped, ...(await store.known(bucket))])].sort();
    },
  };
}

/** How long a dataset's workflow settings are reused before the policy in force is read again. */
export const WORKFLOW_TTL_MS = 60_000;

/**
 * Each dataset's workflow settings (identity, resolution targets, late-arrival window) from its
 * policy in force, read at most once a minute per dataset and container. A dataset with no policy
 * has the defaults: per date, no deadlines, no window.
 */
export function datasetWorkflows(
  policies: Pick<DatasetPolicyStore, 'current'>,
  now: () => number = Date.now,
): (dataset: string, bucket: string) => Promise<WorkflowSettings> {
  const cache = new Map<string, { settings: WorkflowSettings; at: number }>();
  return async (dataset, bucket) => {
    const key = `${bucket}/${dataset}`;
    const hit = cache.get(key);
    if (hit && now() - hit.at < WORKFLOW_TTL_MS) return hit.settings;
    const settings = (await policies.current(bucket, dataset))?.workflow ?? DEFAULT_WORKFLOW;
    cache.set(key, { settings, at: now() });
    return settings;
  };
}

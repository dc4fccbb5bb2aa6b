import { fileURLToPath } from 'node:url';

/** Repository-relative locations used by the CLI and the local stack (never by Lambda code). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_POLICY_PATH = fileURLToPath(new URL('../../policies/recon-policy.md', import.meta.url));
export const SAMPLE_DIR = fileURLToPath(new URL('../../scripts/local/sample/', import.meta.url));
export const POLICIES_DIR = fileURLToPath(new URL('../../policies/', import.meta.url));

import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseReconPolicy, type ReconPolicy } from './policy.ts';

/**
 * Loads the recon policy a function runs under. The build copies policies/ next to each bundle,
 * so the same relative path works in Lambda (/var/task) and from the repository root.
 */
export function loadReconPolicyFile(path = 'policies/recon-policy.md'): ReconPolicy {
  const full = isAbsolute(path) ? path : join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), path);
  return parseReconPolicy(readFileSync(full, 'utf8'), full);
}

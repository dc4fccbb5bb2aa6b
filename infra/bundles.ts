/**
 * Which function bundles the stacks deploy. A function in the shared list whose folder has no
 * handler.ts yet is skipped (with its wiring) and reported, so synth keeps working while a
 * function is being written; a function that has a handler but no bundle is an error — a
 * deployment must never silently leave out code that exists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FUNCTION_NAMES, type FunctionName } from '../functions/shared/resources.ts';

export interface Bundles {
  /** Directory holding dist/<name>/index.mjs for each deployed function. */
  readonly distDir: string;
  readonly deployed: readonly FunctionName[];
  /** Declared in the shared list but not written yet (no handler.ts). */
  readonly skipped: readonly FunctionName[];
}

export class MissingBundleError extends Error {
  constructor(missing: readonly string[], distDir: string) {
    super(
      `no bundle for ${missing.join(', ')} in ${distDir} (expected <name>/index.mjs); run "npm run build" first ("npm run synth" does)`,
    );
    this.name = 'MissingBundleError';
  }
}

export function locateBundles(repoRoot: string, distDir: string = join(repoRoot, 'dist')): Bundles {
  const written = FUNCTION_NAMES.filter((name) => existsSync(join(repoRoot, 'functions', name, 'handler.ts')));
  const missing = written.filter((name) => !existsSync(join(distDir, name, 'index.mjs')));
  if (missing.length > 0) throw new MissingBundleError(missing, distDir);
  return { distDir, deployed: written, skipped: FUNCTION_NAMES.filter((name) => !written.includes(name)) };
}

/**
 * CDKTF entry point (`app` in infra/cdktf.json): synthesises the stacks from the configuration
 * and the function bundles in dist/. `npm run synth` builds the bundles first, then runs this.
 */
import { App } from 'cdktf';
import { REPO_ROOT } from '../functions/shared/paths.ts';
import { buildTally } from './app.ts';
import { locateBundles } from './bundles.ts';
import { loadInfraConfig } from './config.ts';

export function synthesize(outdir?: string): { stacks: string[]; notes: readonly string[]; outdir: string } {
  const config = loadInfraConfig();
  const bundles = locateBundles(REPO_ROOT);
  // cdktf's CLI passes its output directory in CDKTF_OUTDIR; App reads it when none is given.
  const app = new App(outdir ? { outdir } : {});
  const stacks = buildTally(app, config, bundles);
  app.synth();
  return {
    stacks: [stacks.primary, stacks.secondary, stacks.replication, ...(stacks.global ? [stacks.global] : [])].map(
      (s) => s.node.id,
    ),
    notes: stacks.notes,
    outdir: app.outdir,
  };
}

if (import.meta.main) {
  const { notes } = synthesize();
  for (const note of notes) process.stderr.write(`note: ${note}\n`);
}

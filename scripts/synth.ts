/**
 * `npm run synth`: builds what the enabled stacks deploy — the function bundles (dist/<fn>/) and,
 * with web.enabled, the dashboard (dist/web/) — then synthesises the Terraform JSON of every stack
 * into cdktf.out/ — offline: no AWS account, no provider download, no terraform.
 * `cdktf deploy` (infra/cdktf.json) runs this same script, so a deploy always ships fresh bundles.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../functions/shared/paths.ts';
import { synthesize } from '../infra/main.ts';
import { InfraConfigError, loadInfraConfig } from '../infra/config.ts';
import { MissingWebBuildError } from '../infra/constructs/static-site.ts';
import { buildWeb } from './build-web.ts';
import { MissingBundleError } from '../infra/bundles.ts';

const help = `Usage: npm run synth [-- --no-build]

Builds dist/ (the function bundles, and the web dashboard when web.enabled), then writes one Terraform JSON per stack to cdktf.out/stacks/.
Configuration: TALLY_INFRA_CONFIG (a JSON file; default infra/tally.config.json when present)
or TALLY_INFRA_CONFIG_JSON (inline JSON). See infra/tally.config.example.json.

Options:
  --no-build   use the bundles (and dashboard) already in dist/
  -h, --help   show this help
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { 'no-build': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  const started = Date.now();
  // stdout stays clean for cdktf (it runs this as the app); progress goes to stderr.
  try {
    if (!values['no-build']) {
      execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build.ts')], { stdio: ['ignore', 2, 'inherit'] });
      // The static site's stack reads dist/web: a clean clone has none yet (issue 9, defect 8).
      if (loadInfraConfig().web.enabled) {
        const { files } = await buildWeb();
        process.stderr.write(`web dashboard: ${files.length} files in dist/web\n`);
      }
    }
    const { stacks, notes, outdir } = synthesize(process.env.CDKTF_OUTDIR ?? join(REPO_ROOT, 'cdktf.out'));
    for (const stack of stacks) {
      const file = join(outdir, 'stacks', stack, 'cdk.tf.json');
      const resources = Object.values(
        (JSON.parse(readFileSync(file, 'utf8')) as { resource?: Record<string, object> }).resource ?? {},
      ).reduce((n, byName) => n + Object.keys(byName).length, 0);
      process.stderr.write(`${stack.padEnd(20)} ${relative(REPO_ROOT, file)}  (${resources} resources)\n`);
    }
    for (const note of notes) process.stderr.write(`note: ${note}\n`);
    process.stderr.write(`synthesised ${stacks.length} stacks in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (error) {
    if (
      error instanceof InfraConfigError ||
      error instanceof MissingBundleError ||
      error instanceof MissingWebBuildError
    ) {
      process.stderr.write(`synth: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

process.exitCode = await main();

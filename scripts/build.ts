/**
 * `npm run build`: one esbuild bundle per function folder (functions/<name>/handler.ts) into
 * dist/<name>/index.mjs with its source map, plus the policies the function reads at run time.
 */
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../functions/shared/paths.ts';

const functionsDir = join(REPO_ROOT, 'functions');
const outRoot = join(REPO_ROOT, 'dist');

export function functionNames(): string[] {
  return readdirSync(functionsDir)
    .filter((name) => existsSync(join(functionsDir, name, 'handler.ts')))
    .sort();
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

async function main(): Promise<void> {
  const names = functionNames();
  rmSync(outRoot, { recursive: true, force: true });
  for (const name of names) {
    const outdir = join(outRoot, name);
    await build({
      entryPoints: [join(functionsDir, name, 'handler.ts')],
      outfile: join(outdir, 'index.mjs'),
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      sourcemap: true,
      minify: true,
      // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
      banner: {
        js: "import { createRequire as __tallyCreateRequire } from 'node:module'; const require = __tallyCreateRequire(import.meta.url);",
      },
      logLevel: 'warning',
    });
    cpSync(join(REPO_ROOT, 'policies'), join(outdir, 'policies'), { recursive: true });
    const bundle = statSync(join(outdir, 'index.mjs')).size;
    const map = statSync(join(outdir, 'index.mjs.map')).size;
    process.stdout.write(
      `${name.padEnd(16)} dist/${name}/index.mjs  ${kib(bundle).padStart(10)}   (source map ${kib(map)})\n`,
    );
  }
  process.stdout.write(`built ${names.length} function bundle(s)\n`);
}

await main();

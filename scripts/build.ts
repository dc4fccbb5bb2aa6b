/**
 * `npm run build`: one esbuild bundle per function folder (functions/<name>/handler.ts) into
 * dist/<name>/index.mjs with its source map, plus the policies the function reads at run time.
 */
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../functions/shared/paths.ts';

const functionsDir = join(REPO_ROOT, 'functions');
const defaultOutRoot = join(REPO_ROOT, 'dist');

export function functionNames(): string[] {
  return readdirSync(functionsDir)
    .filter((name) => existsSync(join(functionsDir, name, 'handler.ts')))
    .sort();
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/** Bundles every function into outRoot/<name>/ (emptied first); returns the bundles' sizes. */
export async function buildFunctions(
  outRoot: string = defaultOutRoot,
): Promise<{ name: string; bundleBytes: number; mapBytes: number }[]> {
  const built: { name: string; bundleBytes: number; mapBytes: number }[] = [];
  rmSync(outRoot, { recursive: true, force: true });
  for (const name of functionNames()) {
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
    built.push({
      name,
      bundleBytes: statSync(join(outdir, 'index.mjs')).size,
      mapBytes: statSync(join(outdir, 'index.mjs.map')).size,
    });
  }
  return built;
}

if (import.meta.main) {
  const built = await buildFunctions();
  for (const b of built)
    process.stdout.write(
      `${b.name.padEnd(16)} dist/${b.name}/index.mjs  ${kib(b.bundleBytes).padStart(10)}   (source map ${kib(b.mapBytes)})\n`,
    );
  process.stdout.write(`built ${built.length} function bundle(s)\n`);
}

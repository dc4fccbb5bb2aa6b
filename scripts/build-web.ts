/**
 * `npm run build:web`: the dashboard (web/) into static assets, dist/web by default: index.html,
 * assets/app-<hash>.js and .css (content-hashed, cacheable forever), and a copy of the on-call
 * runbooks the Operations view links to. esbuild, already the functions' bundler, does it all.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT } from '../functions/shared/paths.ts';

export const WEB_SOURCE = join(REPO_ROOT, 'web');
export const WEB_DIST = join(REPO_ROOT, 'dist', 'web');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * True when outDir has no build, or web/, functions/shared/ (the dashboard bundles the exception
 * lifecycle and the API's contract from there) or a runbook changed since it was built.
 */
export function webBuildIsStale(outDir: string = WEB_DIST): boolean {
  const index = join(outDir, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  return [WEB_SOURCE, join(REPO_ROOT, 'functions', 'shared'), join(REPO_ROOT, 'docs', 'runbooks')].some(
    (dir) => newestMtime(dir) > built,
  );
}

export async function buildWeb(outDir: string = WEB_DIST): Promise<{ files: string[] }> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: { app: join(WEB_SOURCE, 'src', 'main.tsx') },
    outdir: join(outDir, 'assets'),
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => join(REPO_ROOT, p));
  const asset = (ext: string) => {
    const file = outputs.find((p) => p.endsWith(ext) && !p.endsWith('.map'));
    if (!file) throw new Error(`the web build produced no ${ext} file`);
    return `assets/${basename(file)}`;
  };
  const html = readFileSync(join(WEB_SOURCE, 'index.html'), 'utf8')
    .replace('<!-- build: styles -->', `<link rel="stylesheet" href="${asset('.css')}">`)
    .replace('<!-- build: script -->', `<script type="module" src="${asset('.js')}"></script>`);
  writeFileSync(join(outDir, 'index.html'), html);
  cpSync(join(REPO_ROOT, 'docs', 'runbooks'), join(outDir, 'docs', 'runbooks'), { recursive: true });
  return { files: [join(outDir, 'index.html'), ...outputs].map((f) => relative(outDir, f)) };
}

if (import.meta.main) {
  const { files } = await buildWeb();
  process.stdout.write(
    `web dashboard: ${files.length} files in dist/web (${files.filter((f) => f.startsWith('assets/') && !f.endsWith('.map')).join(', ')})\n`,
  );
}

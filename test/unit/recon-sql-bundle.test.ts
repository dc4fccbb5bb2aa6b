/**
 * DuckDB is a native module for the local stack and the CLI only: no Lambda bundle may carry it
 * (it would not load on Lambda's runtime, and it is ~60 MB). Nor the offline semantic embedder's
 * TensorFlow.js and weights (local stack and CLI only; Lambda embeds with Titan). The bundles are
 * built exactly as `npm run build` builds them.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFunctions, functionNames } from '../../scripts/build.ts';

describe('the Lambda bundles and the SQL engine', () => {
  const out = mkdtempSync(join(tmpdir(), 'tally-bundles-'));
  beforeAll(async () => {
    await buildFunctions(out);
  }, 120_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('the recon bundle does not contain DuckDB, and no other bundle does', () => {
    expect(functionNames()).toContain('recon');
    for (const name of functionNames()) {
      const bundle = readFileSync(join(out, name, 'index.mjs'), 'utf8');
      expect(bundle.length).toBeGreaterThan(1000);
      expect({ name, duckdb: /duckdb/i.test(bundle) }).toEqual({ name, duckdb: false });
    }
  });

  it('the recon bundle carries the engine choice and the Athena runner, not the DuckDB one (the check above is not vacuous)', () => {
    const map = JSON.parse(readFileSync(join(out, 'recon', 'index.mjs.map'), 'utf8')) as { sources: string[] };
    expect(map.sources.some((s) => s.endsWith('functions/recon/engine-choice.ts'))).toBe(true);
    expect(map.sources.some((s) => s.endsWith('functions/recon/sql/athena.ts'))).toBe(true);
    expect(map.sources.some((s) => s.endsWith('functions/recon/sql/duckdb.ts'))).toBe(false);
  });

  it('no bundle carries the offline semantic model (TensorFlow.js, the USE weights): Lambda keeps Titan', () => {
    for (const name of functionNames()) {
      const map = JSON.parse(readFileSync(join(out, name, 'index.mjs.map'), 'utf8')) as { sources: string[] };
      const model = map.sources.filter((s) => s.includes('@energetic-ai/') || s.includes('@tensorflow/'));
      expect({ name, model }).toEqual({ name, model: [] });
    }
    // Not vacuous: the embedder's adapter is there (the factory names it), its packages are not.
    const triage = JSON.parse(readFileSync(join(out, 'triage', 'index.mjs.map'), 'utf8')) as { sources: string[] };
    expect(triage.sources.some((s) => s.endsWith('functions/shared/search/semantic-embedder.ts'))).toBe(true);
  });

  it('every bundle stays under 2.5 MiB (1.3-1.8 MB before the semantic embedder; TensorFlow.js alone is 1.7 MB)', () => {
    for (const name of functionNames()) {
      const bytes = statSync(join(out, name, 'index.mjs')).size;
      expect({ name, under: bytes < 2.5 * 1024 * 1024 }).toEqual({ name, under: true });
    }
  });

  it('only recon carries the SQL engine', () => {
    for (const name of functionNames().filter((n) => n !== 'recon')) {
      const map = JSON.parse(readFileSync(join(out, name, 'index.mjs.map'), 'utf8')) as { sources: string[] };
      expect({ name, sql: map.sources.some((s) => s.includes('/recon/sql/')) }).toEqual({ name, sql: false });
    }
  });
});

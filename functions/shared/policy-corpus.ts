/**
 * The governance documents as a corpus of citable passages: each markdown document is split
 * along its headings, and each passage keeps its document, its section path and a stable id,
 * so a triage can cite "exception-handling-runbook.md › Amount mismatch › What to check".
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { VectorDocument } from './search/ports.ts';
import { EXCEPTION_TYPES, type ExceptionType } from './types.ts';

export interface Passage {
  /** `${document}#${section-slug}`: stable while the heading is. */
  readonly passage_id: string;
  readonly document: string;
  /** Heading path, outermost first, joined with " › ". */
  readonly section: string;
  readonly text: string;
  /** The exception type this passage is about, when its headings name exactly one. */
  readonly exception_type: ExceptionType | '';
}

const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/;

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

function typesIn(text: string): ExceptionType[] {
  return EXCEPTION_TYPES.filter((t) => text.includes(t));
}

/**
 * Splits on every heading. The document title (`#`) becomes the first element of every section
 * path; text before the first `##` becomes the passage for the title itself. Machine-readable
 * fenced blocks (```json tally-policy) are left out: they configure, they are not prose to cite.
 */
export function splitIntoPassages(document: string, markdown: string): Passage[] {
  const passages: Passage[] = [];
  const path: string[] = [];
  let body: string[] = [];
  let inFence = false;
  let skipFence = false;

  const flush = () => {
    const text = body
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
    body = [];
    if (text.length === 0 || path.length === 0) return;
    const section = path.join(' › ');
    const types = [...new Set(path.flatMap(typesIn))];
    passages.push({
      passage_id: `${document}#${path.map(slug).join('/')}`,
      document,
      section,
      text,
      exception_type: types.length === 1 ? (types[0] as ExceptionType) : '',
    });
  };

  for (const line of markdown.split(/\r?\n/)) {
    if (line.startsWith('```')) {
      if (!inFence) skipFence = /tally-policy/.test(line);
      inFence = !inFence;
      if (!skipFence) body.push(line);
      if (!inFence) skipFence = false;
      continue;
    }
    if (inFence) {
      if (!skipFence) body.push(line);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      flush();
      const level = (heading[1] as string).length;
      path.splice(level - 1);
      while (path.length < level - 1) path.push('');
      path[level - 1] = (heading[2] as string).trim();
      continue;
    }
    body.push(line);
  }
  flush();
  return passages.map((p) => ({ ...p, section: p.section.replace(/^( › )+/, '') }));
}

/** Hash of the passages a triage saw: its "policy version". */
export function passagesVersion(passages: readonly Pick<Passage, 'passage_id' | 'text'>[]): string {
  const hash = createHash('sha256');
  for (const p of [...passages].sort((a, b) => a.passage_id.localeCompare(b.passage_id)))
    hash.update(`${p.passage_id}\u001f${p.text}\u001e`);
  return hash.digest('hex').slice(0, 16);
}

/** The text embedded for a passage: its section path carries much of its meaning. */
export function passageEmbeddingText(p: Passage): string {
  return `${p.document.replace(/\.md$/, '').replaceAll('-', ' ')} — ${p.section}\n${p.text}`;
}

/**
 * The documents ingest treats as policy (functions/ingest-worker/ingest.ts: parsePolicyKey), as
 * paths under policies/: governance documents and each dataset's policy (`datasets/{dataset}.md`).
 */
export function policyDocuments(sourceDir: string): string[] {
  const datasets = join(sourceDir, 'datasets');
  return [
    ...readdirSync(sourceDir).filter((f) => /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.md$/.test(f)),
    ...(existsSync(datasets) ? readdirSync(datasets) : [])
      .filter((f) => /^[A-Za-z0-9_-]{1,64}\.md$/.test(f))
      .map((f) => `datasets/${f}`),
  ].sort();
}

/**
 * How a passage is indexed (ingest, and the tools and tests that build the corpus as ingest does):
 * its id, vector and text, and the fields retrieval filters on. `source` is the object it came
 * from, when there is one: a re-uploaded document replaces the passages of its key.
 */
export function passageDocument(
  p: Passage,
  vector: number[],
  source?: { readonly key: string; readonly etag?: string },
): VectorDocument {
  return {
    id: p.passage_id,
    vector,
    text: p.text,
    fields: {
      passage_id: p.passage_id,
      document: p.document,
      section: p.section,
      exception_types: p.exception_type,
      ...(source ? { source_key: source.key } : {}),
      ...(source?.etag ? { etag: source.etag } : {}),
    },
  };
}

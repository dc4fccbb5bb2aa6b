/**
 * How an exception is represented in the exceptions vector index: one definition used by triage
 * (which indexes it) and by whoever updates its status.
 */
import { boundedView } from '../exception-view.ts';
import type { ExceptionRecord } from '../types.ts';
import type { VectorDocument } from './ports.ts';

/**
 * At most this many characters are embedded (~5k tokens for dense text such as ids and amounts):
 * Titan Text Embeddings v2 takes 8k tokens a text, OpenAI's models 8,191.
 */
export const EMBEDDED_CHARS = 20_000;

/** What gets embedded: type, key, values, differences, reason and the triage summary. */
export function exceptionEmbeddingText(e: ExceptionRecord): string {
  const words = e.exception_type.toLowerCase().replaceAll('_', ' ');
  const key = Object.entries(e.key)
    .map(([k, v]) => `${k} ${v}`)
    .join(' ');
  // Rows and diffs as a model reads them: embedding models take ~8k tokens a text at most.
  const view = boundedView(e);
  const diffs = view.diffs
    .map((d) => `${d.field} differs ${d.source} ${d.target}${d.delta ? ` delta ${d.delta}` : ''}`)
    .join('; ');
  const row = (r: Record<string, string> | null) =>
    r
      ? Object.entries(r)
          .map(([k, v]) => `${k} ${v}`)
          .join(' ')
      : '';
  const head = [words, e.exception_type, key, diffs, e.reason ?? ''];
  const summary = e.triage?.summary ?? '';
  // The rows give way first: what is left of EMBEDDED_CHARS after the rest.
  const room = EMBEDDED_CHARS - head.join('\n').length - summary.length - 3;
  const rows = [row(view.source), row(view.target)].filter(Boolean).join('\n').slice(0, Math.max(0, room));
  return [...head, rows, summary].filter(Boolean).join('\n');
}

/**
 * `name=value` for every key field and every field of either row: what the `field`/`value`
 * filter of search matches (an account in the key, or in a compared column, on either side).
 */
export function fieldValues(e: ExceptionRecord): string[] {
  const values = new Set<string>();
  for (const row of [e.key, e.source, e.target])
    for (const [name, value] of Object.entries(row ?? {})) if (value !== '') values.add(fieldValue(name, value));
  return [...values].sort();
}

export function fieldValue(name: string, value: string): string {
  return `${name}=${value}`;
}

export function exceptionDocument(e: ExceptionRecord, vector: number[]): VectorDocument {
  return {
    id: e.exception_id,
    vector,
    text: e.triage?.summary ?? '',
    // Every word search may match exactly: ids, accounts, amounts, the reason and the summary.
    lexical: exceptionEmbeddingText(e),
    fields: {
      exception_id: e.exception_id,
      exception_type: e.exception_type,
      status: e.status,
      severity: e.triage?.severity ?? e.policy_severity,
      dataset: e.dataset,
      business_date: e.business_date,
      run_id: e.run_id,
      key: JSON.stringify(e.key),
      values: fieldValues(e),
      // Absent on exceptions stored before break patterns.
      pattern_id: e.pattern_id ?? null,
    },
  };
}

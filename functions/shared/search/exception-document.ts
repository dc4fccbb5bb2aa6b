/**
 * How an exception is represented in the exceptions vector index: one definition used by triage
 * (which indexes it) and by whoever updates its status.
 */
import type { ExceptionRecord } from '../types.ts';
import type { VectorDocument } from './ports.ts';

/** What gets embedded: type, key, values, differences, reason and the triage summary. */
export function exceptionEmbeddingText(e: ExceptionRecord): string {
  const words = e.exception_type.toLowerCase().replaceAll('_', ' ');
  const key = Object.entries(e.key)
    .map(([k, v]) => `${k} ${v}`)
    .join(' ');
  const diffs = e.diffs
    .map((d) => `${d.field} differs ${d.source} ${d.target}${d.delta ? ` delta ${d.delta}` : ''}`)
    .join('; ');
  const row = (r: Record<string, string> | null) =>
    r
      ? Object.entries(r)
          .map(([k, v]) => `${k} ${v}`)
          .join(' ')
      : '';
  return [words, e.exception_type, key, diffs, e.reason ?? '', row(e.source), row(e.target), e.triage?.summary ?? '']
    .filter(Boolean)
    .join('\n');
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

/** Small pieces shared by the views. */
import type { ComponentChildren } from 'preact';
import { ApiError } from '../api.ts';

export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const message =
    error instanceof ApiError
      ? `${error.message} (${error.code})`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <p class="error" role="alert">
      {message}
    </p>
  );
}

export function Badge({ kind, value }: { kind: 'status' | 'severity' | 'type'; value: string | null | undefined }) {
  if (!value) return <span class="muted">—</span>;
  return <span class={`badge ${kind}-${value.toLowerCase()}`}>{value.replaceAll('_', ' ')}</span>;
}

/** `skipped`: empty pages a paged listing has read past so far (paging.ts), said while it reads on. */
export function Loading({ what, skipped = 0 }: { what: string; skipped?: number }) {
  return (
    <p class="muted" role="status">
      Loading {what}…{skipped > 0 && ` ${skipped} page${skipped === 1 ? '' : 's'} read without a match so far`}
    </p>
  );
}

export function when(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').slice(0, 19);
}

/** Horizontal bar chart of counts, as a labelled list (readable without the bars). */
export function BarChart({
  title,
  counts,
  kind,
}: {
  title: string;
  counts: Record<string, number>;
  kind: 'type' | 'severity';
}) {
  const entries = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const max = Math.max(1, ...entries.map(([, n]) => n));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {entries.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <ul>
          {entries.map(([label, n]) => (
            <li key={label}>
              <span class="bar-label">{label.replaceAll('_', ' ')}</span>
              <span class="bar-track" aria-hidden="true">
                <span class={`bar ${kind}-${label.toLowerCase()}`} style={{ width: `${(100 * n) / max}%` }} />
              </span>
              <span class="bar-value">{n}</span>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}

export function Field({ id, label, children }: { id: string; label: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {children}
    </div>
  );
}

/** `1 pattern`, `2 patterns`. */
export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

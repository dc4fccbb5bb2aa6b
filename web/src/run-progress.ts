/**
 * Where a run is while its findings are stored: recon writes them in chunks, the store consumer
 * stores each (functions/store/). Pure, for the dashboard's run view.
 */
export interface RunProgress {
  readonly status: string;
  /** Set once every chunk is written and queued (status STORING). */
  readonly chunks_total?: number | undefined;
  readonly chunks_stored?: number | undefined;
}

/** `storing 3 of 12 chunks`, `reconciling; 2 chunks stored so far`, or null when not storing. */
export function storingText(run: RunProgress): string | null {
  const stored = run.chunks_stored ?? 0;
  if (run.status === 'STORING' && run.chunks_total !== undefined)
    return `storing ${stored} of ${run.chunks_total} chunk${run.chunks_total === 1 ? '' : 's'}`;
  if (run.status === 'RUNNING')
    return stored > 0 ? `reconciling; ${stored} chunk${stored === 1 ? '' : 's'} stored so far` : 'reconciling';
  return null;
}

/**
 * The idempotency table: one record per ingested object version, keyed by the idempotency key
 * ingest builds from bucket, key and ETag (never the message id: a redriven message gets a new one).
 */

export type BeginResult = { state: 'acquired' } | { state: 'completed'; sequencer: string } | { state: 'in_progress' };

export interface IdempotencyStore {
  /**
   * Starts work under `id`. 'acquired': go ahead; 'completed': done before (with the sequencer
   * recorded then); 'in_progress': another worker holds a live lease.
   */
  begin(id: string, sequencer: string, now: number, leaseMs: number): Promise<BeginResult>;
  /** Takes over a completed record for a later upload of the same bytes. */
  reopen(id: string, sequencer: string, previousSequencer: string, now: number, leaseMs: number): Promise<boolean>;
  complete(id: string, outcome: string, now: number): Promise<void>;
  /** Gives the lease back after a failure so a retry can start at once. */
  release(id: string): Promise<void>;
}

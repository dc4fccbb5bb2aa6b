/**
 * The idempotency table: one record per ingested object version, keyed by the idempotency key
 * ingest builds from bucket, key and ETag (never the message id: a redriven message gets a new one).
 * An IN_PROGRESS record is a lease held by one worker (its owner token, shared/lease.ts), renewed
 * while it works; COMPLETED is final.
 */

export type BeginResult = { state: 'acquired' } | { state: 'completed'; sequencer: string } | { state: 'in_progress' };

/** Who holds a lease, since when (epoch ms) and for how long. */
export interface LeaseTerms {
  readonly owner: string;
  readonly now: number;
  readonly leaseMs: number;
}

export interface IdempotencyStore {
  /**
   * Starts work under `id`. 'acquired': go ahead; 'completed': done before (with the sequencer
   * recorded then); 'in_progress': another worker holds a live lease.
   */
  begin(id: string, sequencer: string, lease: LeaseTerms): Promise<BeginResult>;
  /** Takes over a completed record for a later upload of the same bytes. */
  reopen(id: string, sequencer: string, previousSequencer: string, lease: LeaseTerms): Promise<boolean>;
  /** Extends the owner's lease; false when the record is no longer its IN_PROGRESS lease. */
  renew(id: string, lease: LeaseTerms): Promise<boolean>;
  /** Marks the work done; throws LeaseLostError when another worker has taken the lease over. */
  complete(id: string, owner: string, outcome: string, now: number): Promise<void>;
  /** Gives the owner's lease back after a failure so a retry can start at once. */
  release(id: string, owner: string): Promise<void>;
}

/**
 * A run's exceptions as triage's dispatch reads them: those that need triage (never triaged, or
 * triaged for other content or by a prompt no longer current; never a PENDING late arrival), a page at a time from the run's
 * index (by_run_sharded), so a run of 80,000 breaks is never held in memory at once.
 */
import type { ExceptionRecord } from '../types.ts';

/** What dispatch needs of one exception (a projection, not the item). */
export interface TriageCandidate {
  readonly exception_id: string;
  readonly content_hash: string;
  readonly pattern_id?: string;
}

export interface CandidatePage<T> {
  readonly items: T[];
  /** Where the next page starts; absent after the last. */
  readonly cursor?: string;
}

export interface PageOptions {
  readonly cursor?: string;
  /** Items a page holds at most. */
  readonly limit: number;
  /** Prompt versions whose triage is current: an exception triaged under another needs it again. */
  readonly currentPrompts: readonly string[];
  /**
   * A request to triage again (an ISO time): every exception triaged before it needs triage,
   * whatever its prompt (pattern members only: their whole items are read anyway).
   */
  readonly requestedAt?: string;
}

export interface RunExceptionListing {
  /** The run's exceptions that need triage, projected. */
  needingTriage(runId: string, options: PageOptions): Promise<CandidatePage<TriageCandidate>>;
  /** The run's members of one pattern that need triage, whole (their triage is written and indexed). */
  patternMembersNeedingTriage(
    runId: string,
    patternId: string,
    options: PageOptions,
  ): Promise<CandidatePage<ExceptionRecord & { content_hash: string }>>;
}

/** What the uncited sweep needs of an exception whose triage cites no policy passage. */
export interface UncitedCandidate {
  readonly exception_id: string;
  readonly run_id: string;
  readonly content_hash: string;
  readonly pattern_id?: string;
}

/**
 * The exceptions whose triage cites no policy passage, or (`degraded`) those the rules triaged
 * because every model failed (by_uncited_sharded), still open and not a PENDING late arrival (its
 * triage waits for its promotion), a page at a time.
 */
export interface UncitedListing {
  uncited(options: {
    readonly limit: number;
    readonly cursor?: string;
    /** Only this dataset's. */
    readonly dataset?: string;
    /** The triages failing models left to the rules, not those citing nothing. */
    readonly degraded?: boolean;
  }): Promise<CandidatePage<UncitedCandidate>>;
}

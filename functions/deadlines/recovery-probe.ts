/**
 * After a model outage, the trial call that closes a provider's circuit breaker is made by the next
 * triage (functions/triage/chain.ts), and its answer asks every degraded triage again
 * (functions/triage/uncited.ts). With no run arriving after the outage (a night, a weekend), no
 * triage makes that call, and the exceptions the rules triaged wait with their degraded triage. So
 * the deadline sweep, on its schedule, asks one degraded triage again while any breaker waits for its
 * trial: that triage's chain makes the trial call, and an answer starts the recovery as a run's
 * would. A model still failing opens its breaker again, for another cool-down and another probe.
 *
 * One of the first few degraded triages listed, picked at random: one whose answers a model always
 * refuses (its schema, a guardrail) would otherwise be asked at every sweep and never close the breaker.
 */
import type { TriageRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { BreakerTrials } from '../shared/tables/circuit-breaker.ts';
import type { UncitedListing } from '../shared/tables/run-exceptions.ts';

/** How many degraded triages the probe picks one from. */
export const PROBE_CHOICES = 20;

export interface RecoveryProbeDeps {
  readonly breakers: BreakerTrials;
  /** The degraded partition of by_uncited_sharded (open exceptions only). */
  readonly degraded: UncitedListing;
  readonly triageQueue: MessageQueue<TriageRequest>;
  readonly now: () => number;
  /** [0, 1): which of the listed triages is asked (default Math.random). */
  readonly random?: () => number;
}

export interface RecoveryProbe {
  /** The providers whose breaker waits for its trial. */
  readonly providers: string[];
  /** The exception asked again, if any triage is degraded. */
  readonly exception_id?: string;
}

/** Nothing when no breaker waits for a trial; else the probe made (if a degraded triage was found). */
export async function probeRecovery(deps: RecoveryProbeDeps): Promise<RecoveryProbe | undefined> {
  const now = deps.now();
  const providers = await deps.breakers.onTrial(now);
  if (providers.length === 0) return undefined;
  const { items } = await deps.degraded.uncited({ limit: PROBE_CHOICES, degraded: true });
  const picked = items[Math.floor((deps.random ?? Math.random)() * items.length)];
  if (picked === undefined) return { providers };
  await deps.triageQueue.send([
    {
      kind: 'exception',
      exception_id: picked.exception_id,
      run_id: picked.run_id,
      content_hash: picked.content_hash,
      // Triaged again unless triaged since (functions/shared/retriage.ts).
      requested_at: new Date(now).toISOString(),
    },
  ]);
  return { providers, exception_id: picked.exception_id };
}

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
 *
 * Each trial's probes are spaced further apart (15 minutes after the first, then 30, 60... up to a
 * day): a breaker no triage will call stays on trial (the fallback's, once the primary answers
 * again), and asking one degraded triage every sweep for it would make ~96 model calls a day until
 * its item expires (30 days); spaced, about 36 in all. A trial call that fails opens the breaker
 * again, and the trial after that cool-down is a new one, probed at once.
 */
import type { TriageRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { BreakerTrials } from '../shared/tables/circuit-breaker.ts';
import type { UncitedListing } from '../shared/tables/run-exceptions.ts';

/** How many degraded triages the probe picks one from. */
export const PROBE_CHOICES = 20;
/** The wait after a trial's first probe, doubled after each probe of the same trial... */
export const PROBE_BACKOFF_MS = 15 * 60_000;
/** ...up to this. */
export const PROBE_BACKOFF_MAX_MS = 24 * 3_600_000;

/** How long after a trial's `made`-th probe the next is due. */
export function probeBackoff(made: number): number {
  return Math.min(PROBE_BACKOFF_MS * 2 ** Math.min(Math.max(made - 1, 0), 30), PROBE_BACKOFF_MAX_MS);
}

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
  /** Those whose probe was due and is made by this sweep (the others wait for their next). */
  readonly probed: string[];
  /** The exception asked again, if a probe was due and a triage is degraded. */
  readonly exception_id?: string;
}

/** Nothing when no breaker waits for a trial; else which were probed, and with which triage. */
export async function probeRecovery(deps: RecoveryProbeDeps): Promise<RecoveryProbe | undefined> {
  const now = deps.now();
  const breakers = await deps.breakers.onTrial(now);
  if (breakers.length === 0) return undefined;
  const providers = breakers.map((b) => b.provider);
  const due = breakers.filter((b) => b.nextProbeAt === undefined || b.nextProbeAt <= now);
  if (due.length === 0) return { providers, probed: [] };
  const { items } = await deps.degraded.uncited({ limit: PROBE_CHOICES, degraded: true });
  const picked = items[Math.floor((deps.random ?? Math.random)() * items.length)];
  // Nothing to ask: no probe spent (a triage degraded later is asked at the next sweep).
  if (picked === undefined) return { providers, probed: [] };
  // Recorded before the ask: a sweep running beside this one asks nothing for the same probe.
  const probed: string[] = [];
  for (const breaker of due)
    if (await deps.breakers.claimProbe(breaker, now, now + probeBackoff(breaker.probes + 1)))
      probed.push(breaker.provider);
  if (probed.length === 0) return { providers, probed };
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
  return { providers, probed, exception_id: picked.exception_id };
}

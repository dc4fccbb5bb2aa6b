/**
 * Pattern triage: one model call for a break pattern (functions/shared/tables/patterns.ts), its
 * answer saved on the pattern, then taken by each member of the run that needs triage — a page of
 * at most MEMBERS_PER_MESSAGE at a time, each member's triage the pattern's with `pattern_id`,
 * `inherited: true` and its own content hash, written only if its content is still that (as
 * triageException's saveTriage), and indexed for search in batches.
 *
 * Idempotent: a pattern already triaged under the current pattern prompt is not sent to a model
 * again; a member already carrying it is not listed again. Asked again (`requested_at`: its
 * triage cited nothing, functions/triage/uncited.ts), the pattern is triaged again unless it was
 * at or after the request, and every member triaged before the request takes the new triage.
 */
import { PermanentError, TransientError } from '../shared/errors.ts';
import { answersRequest } from '../shared/retriage.ts';
import type { PatternMembersRequest, PatternRequest, TriageQueueMessage } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { PatternRecord, PatternStore } from '../shared/tables/patterns.ts';
import type { RunExceptionListing } from '../shared/tables/run-exceptions.ts';
import { SEVERITIES, severityFloor, type ExceptionRecord, type Severity, type Triage } from '../shared/types.ts';
import { triageCall, triageRecord } from './call.ts';
import { runLimited } from '../store/exception-writes.ts';
import {
  buildPatternPrompt,
  MAX_REPRESENTATIVES,
  PATTERN_PROMPT_VERSION,
  PATTERN_SYSTEM_PROMPT,
  patternRetrievalQuery,
} from './pattern-prompt.ts';
import { numberPassages } from './prompt.ts';
import { retrievePassagesFor } from './retrieval.ts';
import { embedExceptions, indexEmbedded, type TriageDeps } from './triage.ts';
import { deadlineAfterTriage } from './deadline.ts';

/** Members a pattern-members message applies the triage to at most. */
export const MEMBERS_PER_MESSAGE = 500;
/** Conditional member writes in flight at once. */
const MEMBER_WRITES_AT_ONCE = 16;

export interface PatternTriageDeps extends TriageDeps {
  readonly patterns: Pick<PatternStore, 'get' | 'saveTriage'>;
  readonly listing: Pick<RunExceptionListing, 'patternMembersNeedingTriage'>;
  readonly triageQueue: MessageQueue<TriageQueueMessage>;
  /** Members a pattern-members message applies the triage to (default MEMBERS_PER_MESSAGE). */
  readonly membersPerMessage?: number;
}

export type PatternOutcome =
  | {
      outcome: 'TRIAGED';
      provider: string;
      model: string;
      degraded: boolean;
      degradedReason?: 'budget';
      route: string;
    }
  | { outcome: 'ALREADY_TRIAGED' };

export async function triagePattern(request: PatternRequest, deps: PatternTriageDeps): Promise<PatternOutcome> {
  const pattern = await patternOf(request, deps);
  let outcome: PatternOutcome = { outcome: 'ALREADY_TRIAGED' };
  // Asked again (its triage cited nothing, functions/triage/uncited.ts): unless triaged since.
  const askedAgain =
    request.requested_at !== undefined && !answersRequest(pattern.triage?.triaged_at, request.requested_at);
  if (pattern.triage?.prompt_version !== PATTERN_PROMPT_VERSION || askedAgain) {
    const triage = await askModel(pattern, deps);
    // One notice for the whole pattern, not one per member (a run's 5,000 alike breaks would
    // flood the channel): published before saving, so a failure repeats it rather than loses it.
    if (deps.notifier && triage.severity === 'CRITICAL' && pattern.triage?.severity !== 'CRITICAL')
      await deps.notifier.publish({
        kind: 'critical',
        exception_id: pattern.representatives[0] ?? pattern.pattern_id,
        dataset: pattern.dataset,
        business_date: pattern.business_date,
        run_id: pattern.run_id,
        exception_type: pattern.exception_type,
        severity: 'CRITICAL',
        text: `New CRITICAL break pattern in ${pattern.dataset} ${pattern.business_date}: ${pattern.size} ${pattern.exception_type} exceptions, ${pattern.description} (pattern ${pattern.pattern_id})`,
        at: new Date(deps.now()).toISOString(),
      });
    await deps.patterns.saveTriage(pattern.run_id, pattern.pattern_id, triage);
    outcome = {
      outcome: 'TRIAGED',
      provider: triage.provider,
      model: triage.model,
      degraded: triage.degraded,
      ...(triage.degraded_reason ? { degradedReason: triage.degraded_reason } : {}),
      route: triage.route ?? 'default',
    };
  }
  // The members take it a page at a time, each page its own message (and its own retries).
  await deps.triageQueue.send([
    {
      kind: 'pattern-members',
      run_id: request.run_id,
      pattern_id: request.pattern_id,
      ...(request.requested_at === undefined ? {} : { requested_at: request.requested_at }),
    },
  ]);
  return outcome;
}

async function patternOf(request: { run_id: string; pattern_id: string }, deps: PatternTriageDeps) {
  const pattern = await deps.patterns.get(request.run_id, request.pattern_id);
  if (pattern === undefined)
    throw new PermanentError('UNKNOWN_PATTERN', `run ${request.run_id} has no pattern ${request.pattern_id}`);
  return pattern;
}

async function askModel(pattern: PatternRecord, deps: PatternTriageDeps): Promise<Triage> {
  const representatives = (
    await Promise.all(pattern.representatives.slice(0, MAX_REPRESENTATIVES).map((id) => deps.store.get(id)))
  ).filter((e) => e !== undefined);
  const first = representatives[0];
  // The run's exceptions are stored before it completes, and it completes before dispatch.
  if (first === undefined) throw new TransientError(`no representative of pattern ${pattern.pattern_id} is stored`);
  // What leaves the table: the dataset's sensitive values as tokens, in the members and the segments.
  const { masker, policy } = await deps.policies.forDataset(pattern.dataset);
  const seen = representatives.map((e) => masker.exception(e));
  const seenPattern: PatternRecord = {
    ...pattern,
    segments: pattern.segments.map((s) => (masker.isSensitive(s.field) ? { ...s, value: masker.token(s.value) } : s)),
  };
  const unmask = (text: string) => representatives.reduce((t, e) => masker.unmask(t, e), text);
  const passages = numberPassages(
    await retrievePassagesFor(
      patternRetrievalQuery(seenPattern, seen[0] ?? first),
      pattern.exception_type,
      pattern.dataset,
      deps.embedder,
      deps.policyIndex,
    ),
  );
  const policySeverity = highest(representatives.map((e) => e.policy_severity));
  const result = await triageCall(
    {
      // Providers that answer from one record (rules) read the first representative.
      exception: first,
      passages,
      ...(policy ? { policy } : {}),
      system: PATTERN_SYSTEM_PROMPT,
      user: buildPatternPrompt(seenPattern, seen, passages),
    },
    { runId: pattern.run_id, dataset: pattern.dataset, exceptionType: pattern.exception_type, policySeverity },
    deps,
  );
  return {
    // Floored at the highest policy severity among the representatives.
    ...triageRecord(result, {
      policySeverity,
      passages,
      promptVersion: PATTERN_PROMPT_VERSION,
      // A pattern's content is its signature, which its id hashes.
      contentHash: pattern.pattern_id,
      triagedAt: new Date(deps.now()).toISOString(),
      unmask,
    }),
    pattern_id: pattern.pattern_id,
  };
}

export interface MembersOutcome {
  readonly outcome: 'MEMBERS_APPLIED';
  readonly applied: number;
  /** Members whose content changed after they were listed: their new content is triaged on its own. */
  readonly changed: number;
  readonly more: boolean;
}

export async function triagePatternMembers(
  request: PatternMembersRequest,
  deps: PatternTriageDeps,
): Promise<MembersOutcome> {
  const pattern = await patternOf(request, deps);
  const triage = pattern.triage;
  if (triage === undefined) throw new TransientError(`pattern ${pattern.pattern_id} is not triaged yet`);
  const page = await deps.listing.patternMembersNeedingTriage(request.run_id, request.pattern_id, {
    limit: deps.membersPerMessage ?? MEMBERS_PER_MESSAGE,
    // Only the pattern's own current triage counts: a member triaged alone before now inherits it.
    currentPrompts: [PATTERN_PROMPT_VERSION],
    ...(request.cursor === undefined ? {} : { cursor: request.cursor }),
    ...(request.requested_at === undefined ? {} : { requestedAt: request.requested_at }),
  });
  const { masker, policy } = await deps.policies.forDataset(pattern.dataset);
  const members = page.items.map((member) => {
    const inherited: Triage = {
      ...triage,
      // The floor is each member's own: a member its policy rates higher keeps that severity, and
      // a rules answer (no model severity) leaves each member at its policy's.
      severity: severityFloor(member.policy_severity, triage.model_severity ?? member.policy_severity),
      pattern_id: pattern.pattern_id,
      inherited: true,
      content_hash: member.content_hash,
    };
    return {
      member,
      inherited,
      seen: masker.exception({ ...member, triage: inherited, severity: inherited.severity }),
    };
  });
  // Embedded before the write, so the vector goes onto the item with the triage: one write a
  // member, not a second for the vector (stored-embedding.ts); a page takes a few embedding calls.
  const vectors = await embedExceptions(
    members.map((m) => m.seen),
    deps.embedder,
  );
  const applied: { exception: ExceptionRecord; vector: number[] }[] = [];
  let changed = 0;
  await runLimited(
    members.map(({ member, inherited, seen }, i) => async () => {
      const vector = vectors[i] as number[];
      const deadline = deadlineAfterTriage(member, inherited.severity, policy);
      if (
        await deps.store.saveTriage(
          member.exception_id,
          inherited,
          member.content_hash,
          deadline,
          { vector, model: deps.embedder.id },
          member.status,
        )
      )
        applied.push({ exception: seen, vector });
      else changed++;
    }),
    MEMBER_WRITES_AT_ONCE,
  );
  await indexEmbedded(applied, deps);
  if (page.cursor !== undefined)
    await deps.triageQueue.send([
      {
        kind: 'pattern-members',
        run_id: request.run_id,
        pattern_id: request.pattern_id,
        cursor: page.cursor,
        ...(request.requested_at === undefined ? {} : { requested_at: request.requested_at }),
      },
    ]);
  return { outcome: 'MEMBERS_APPLIED', applied: applied.length, changed, more: page.cursor !== undefined };
}

function highest(severities: readonly Severity[]): Severity {
  return severities.reduce<Severity>(
    (max, s) => (SEVERITIES.indexOf(s) > SEVERITIES.indexOf(max) ? s : max),
    SEVERITIES[0],
  );
}

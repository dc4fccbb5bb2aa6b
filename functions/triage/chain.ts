/**
 * The provider chain: each configured provider in turn, throttling retried with backoff,
 * failures counted by the shared circuit breaker, answers validated against the schema and the
 * retrieved passages. The rules provider always ends the chain, so nothing is left untriaged.
 */
import { triageAnswerSchema, type NumberedPassage, type TriageAnswer } from './prompt.ts';
import type { CircuitBreaker } from '../shared/tables/circuit-breaker.ts';
import {
  ProviderError,
  ProviderThrottledError,
  type ProviderAnswer,
  type ProviderInput,
  type TriageProvider,
} from './providers/types.ts';
import { backoff } from '../shared/retry.ts';
import type { PolicyCitation, PrecedentCitation } from '../shared/types.ts';
import { precedentCitation, type Precedent } from './precedents.ts';

const THROTTLE_BACKOFF = { baseMs: 250, capMs: 8000 };

export interface ChainDeps {
  readonly providers: readonly TriageProvider[];
  readonly breaker: CircuitBreaker;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Retries of a throttled call before the provider counts as failed. */
  readonly maxThrottleRetries: number;
  /**
   * A model answered its breaker's trial call (it had opened): the triages failing models left to
   * the rules are asked again (uncited.ts). Called by the one worker that claims the recovery (at
   * most one an hour per provider); a failure to queue the request hands the claim back and fails
   * this message, whose retry finds the breaker on trial again.
   */
  readonly onRecovered?: (provider: string) => Promise<void>;
}

export interface ChainResult {
  readonly answer: TriageAnswer;
  readonly citations: PolicyCitation[];
  readonly precedentCitations: PrecedentCitation[];
  readonly rejectedCitations: string[];
  readonly provider: TriageProvider;
  readonly degraded: boolean;
  readonly attempts: { provider: string; model: string; outcome: string }[];
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly latencyMs?: number;
}

export function breakerKey(provider: TriageProvider): string {
  return `${provider.name}:${provider.model}`;
}

/** Validates a raw answer; citations must name passages (and precedents) that were actually retrieved. */
export function validateAnswer(
  raw: unknown,
  passages: readonly NumberedPassage[],
  precedents: readonly Precedent[] = [],
):
  | {
      ok: true;
      answer: TriageAnswer;
      citations: PolicyCitation[];
      precedentCitations: PrecedentCitation[];
      rejected: string[];
    }
  | { ok: false; reason: string } {
  const parsed = triageAnswerSchema.safeParse(raw);
  if (!parsed.success)
    return {
      ok: false,
      reason: `answer does not match the schema: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    };
  const byRef = new Map<string, NumberedPassage>();
  for (const p of passages) {
    byRef.set(p.ref.toUpperCase(), p);
    byRef.set(p.passage_id.toUpperCase(), p);
  }
  const citations: PolicyCitation[] = [];
  const rejected: string[] = [];
  for (const cited of parsed.data.policy_citations) {
    const passage = byRef.get(
      cited
        .replace(/^\[|\]$/g, '')
        .trim()
        .toUpperCase(),
    );
    if (!passage) {
      rejected.push(cited);
    } else if (!citations.some((c) => c.passage_id === passage.passage_id)) {
      citations.push({
        passage_id: passage.passage_id,
        document: passage.document,
        section: passage.section,
        passage: passage.text,
      });
    }
  }
  if (citations.length === 0 && passages.length > 0)
    return {
      ok: false,
      reason: `no citation names a retrieved passage (cited ${parsed.data.policy_citations.join(', ')})`,
    };
  const byPrecedentRef = new Map<string, Precedent>();
  for (const p of precedents) {
    byPrecedentRef.set(p.ref.toUpperCase(), p);
    byPrecedentRef.set(p.exception_id.toUpperCase(), p);
  }
  const precedentCitations: PrecedentCitation[] = [];
  for (const cited of parsed.data.precedent_citations) {
    const precedent = byPrecedentRef.get(
      cited
        .replace(/^\[|\]$/g, '')
        .trim()
        .toUpperCase(),
    );
    if (!precedent) rejected.push(cited);
    else if (!precedentCitations.some((c) => c.exception_id === precedent.exception_id))
      precedentCitations.push(precedentCitation(precedent));
  }
  return { ok: true, answer: parsed.data, citations, precedentCitations, rejected };
}

/** An answer that passed {@link validateAnswer}. */
type ValidAnswer = Extract<ReturnType<typeof validateAnswer>, { ok: true }>;

export async function runChain(input: ProviderInput, deps: ChainDeps): Promise<ChainResult> {
  const attempts: ChainResult['attempts'] = [];
  const usedModelFirst = deps.providers.some((p) => p.kind === 'model');
  for (const provider of deps.providers) {
    const key = breakerKey(provider);
    const breaker = provider.kind === 'model' ? await deps.breaker.state(key, deps.now()) : 'closed';
    if (breaker === 'open') {
      attempts.push({ provider: provider.name, model: provider.model, outcome: 'skipped: circuit open' });
      continue;
    }
    for (let attempt = 0; ; attempt++) {
      let answered: { raw: ProviderAnswer; valid: ValidAnswer };
      try {
        const raw = await provider.triage(input);
        const valid = validateAnswer(raw.answer, input.passages, input.precedents);
        if (!valid.ok) throw new ProviderError(valid.reason);
        answered = { raw, valid };
      } catch (error) {
        if (error instanceof ProviderThrottledError && attempt < deps.maxThrottleRetries) {
          // Model throttling clears slower than a batch call's: 250 ms doubling, capped at 8 s, plus 100 ms.
          await deps.sleep(backoff(attempt, THROTTLE_BACKOFF) + 100);
          continue;
        }
        if (provider.kind === 'rules') throw error; // rules never fail; if they do, it's a bug
        await deps.breaker.recordFailure(key, deps.now());
        attempts.push({
          provider: provider.name,
          model: provider.model,
          outcome:
            `${error instanceof ProviderThrottledError ? 'throttled' : 'failed'}: ${(error as Error).message}`.slice(
              0,
              300,
            ),
        });
        break;
      }
      // Outside the provider's try: failing to record its answer is not the provider failing.
      const { raw, valid } = answered;
      if (provider.kind === 'model') {
        if (breaker === 'trial') await recovered(key, deps);
        await deps.breaker.recordSuccess(key);
      }
      return {
        answer: valid.answer,
        citations: valid.citations,
        precedentCitations: valid.precedentCitations,
        rejectedCitations: valid.rejected,
        provider,
        degraded: provider.kind === 'rules' && usedModelFirst,
        attempts,
        ...(raw.inputTokens === undefined ? {} : { inputTokens: raw.inputTokens }),
        ...(raw.outputTokens === undefined ? {} : { outputTokens: raw.outputTokens }),
        ...(raw.latencyMs === undefined ? {} : { latencyMs: raw.latencyMs }),
      };
    }
  }
  throw new Error('internal: the provider chain has no rules provider at its end');
}

/**
 * A trial call answered: the worker that claims the recovery asks the degraded triages again; if
 * queuing that fails, it hands the claim back (the breaker is on trial again) and fails this
 * message, whose retry, or the next answer, claims it anew.
 */
async function recovered(key: string, deps: ChainDeps): Promise<void> {
  const { breaker, onRecovered } = deps;
  if (!onRecovered || !breaker.claimRecovery) return;
  const claim = await breaker.claimRecovery(key, deps.now());
  if (claim === undefined) return; // another worker's trial answered first, or one did within the hour
  try {
    await onRecovered(key);
  } catch (error) {
    await breaker.releaseRecovery?.(key, claim);
    throw error;
  }
}

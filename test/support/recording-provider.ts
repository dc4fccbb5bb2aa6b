/** A model provider that answers every call validly and records what it was asked: calls are counted, prompts inspected. */
import type { CircuitBreaker } from '../../functions/shared/tables/circuit-breaker.ts';
import type { ProviderAnswer, ProviderInput, TriageProvider } from '../../functions/triage/providers/types.ts';

export class RecordingProvider implements TriageProvider {
  readonly name = 'recording';
  readonly model = 'recording-model-v1';
  readonly kind = 'model' as const;
  readonly calls: ProviderInput[] = [];
  /** What it rates a pattern (HIGH unless a test wants another). */
  patternSeverity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL' = 'HIGH';

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    this.calls.push(input);
    const pattern = input.user.includes('<pattern>');
    return {
      answer: {
        severity: pattern ? this.patternSeverity : 'MEDIUM',
        summary: pattern
          ? `Systematic: ${input.exception.exception_type} across the pattern.`
          : `One ${input.exception.exception_type}.`,
        recommended_actions: ['Check the source system.'],
        root_cause_hypotheses: ['A shared cause.'],
        policy_citations: input.passages.length > 0 ? ['P1'] : [],
      },
      inputTokens: 100,
      outputTokens: 20,
    };
  }
}

/** Circuits always closed: the recording provider never fails. */
export const closedBreaker: CircuitBreaker = {
  state: async () => 'closed',
  recordSuccess: async () => undefined,
  recordFailure: async () => undefined,
};

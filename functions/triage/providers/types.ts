import type { NumberedPassage } from '../prompt.ts';
import type { Precedent } from '../precedents.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import type { ExceptionRecord } from '../../shared/types.ts';

export interface ProviderInput {
  readonly exception: ExceptionRecord;
  readonly passages: readonly NumberedPassage[];
  /** Resolved exceptions of the same kind (R1, R2, …); none when there are none yet. */
  readonly precedents?: readonly Precedent[];
  /** The dataset's policy in force, when triage read it (the rules quote its tolerance). */
  readonly policy?: ReconPolicy;
  readonly system: string;
  readonly user: string;
}

export interface ProviderAnswer {
  /** The structured answer, not yet validated. */
  readonly answer: unknown;
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly latencyMs?: number;
}

export interface TriageProvider {
  /** e.g. `bedrock`, `openai`, `rules`. */
  readonly name: string;
  readonly model: string;
  /** Rules answer from policy alone; everything else is a model. */
  readonly kind: 'model' | 'rules';
  triage(input: ProviderInput): Promise<ProviderAnswer>;
}

/** The provider is rate-limiting us: worth retrying after a pause. */
export class ProviderThrottledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderThrottledError';
  }
}

/** The provider failed or answered with something unusable. */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderError';
  }
}

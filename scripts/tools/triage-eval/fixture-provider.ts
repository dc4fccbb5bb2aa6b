/**
 * A model-like provider that replays recorded answers, so the evaluation (and its tests) run
 * offline: no model can be reached from here. A recording holds, per golden item, the raw answer a
 * model gave (validated by the real chain like any model's), its token counts and its latency. An
 * item without a recording fails the way a model call fails, and the chain falls back.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  ProviderError,
  type ProviderAnswer,
  type ProviderInput,
  type TriageProvider,
} from '../../../functions/triage/providers/types.ts';

export const DEFAULT_RECORDING = new URL('./recorded-answers.json', import.meta.url).pathname;

const recordingSchema = z
  .object({
    about: z.string().optional(),
    /** The model the answers are attributed to (and priced as). */
    model: z.string().min(1),
    answers: z.record(
      z.string(),
      z
        .object({
          note: z.string().optional(),
          /** Left unvalidated here on purpose: the chain validates it, as it would a model's. */
          answer: z.unknown(),
          input_tokens: z.number().int().nonnegative(),
          output_tokens: z.number().int().nonnegative(),
          latency_ms: z.number().nonnegative(),
        })
        .strict(),
    ),
  })
  .strict();
export type Recording = z.infer<typeof recordingSchema>;

export function loadRecording(path: string): Recording {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`recorded answers ${path}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = recordingSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `recorded answers ${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

export class FixtureProvider implements TriageProvider {
  readonly name = 'fixture';
  readonly kind = 'model' as const;
  readonly model: string;
  private readonly recording: Recording;
  /** The golden item an exception belongs to (recordings are keyed by item, not by hash). */
  private readonly itemOf: (exceptionId: string) => string | undefined;

  constructor(recording: Recording, itemOf: (exceptionId: string) => string | undefined) {
    this.recording = recording;
    this.model = recording.model;
    this.itemOf = itemOf;
  }

  /** Recorded items the golden set does not have (a typo would otherwise never be replayed). */
  unknownItems(known: ReadonlySet<string>): string[] {
    return Object.keys(this.recording.answers).filter((id) => !known.has(id));
  }

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    const item = this.itemOf(input.exception.exception_id);
    const recorded = item === undefined ? undefined : this.recording.answers[item];
    if (!recorded)
      throw new ProviderError(`${this.model}: no recorded answer for ${item ?? input.exception.exception_id}`);
    return {
      answer: recorded.answer,
      inputTokens: recorded.input_tokens,
      outputTokens: recorded.output_tokens,
      latencyMs: recorded.latency_ms,
    };
  }
}

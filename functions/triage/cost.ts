/**
 * What a model call costs: input and output tokens priced from a table keyed by model id, in US
 * dollars per million tokens (how Bedrock and OpenAI publish their prices). The table is
 * configuration (`TALLY_TRIAGE_PRICES`, JSON); the defaults below are the public on-demand list
 * prices of the models Tally's docs name, so an unconfigured deployment still sees an estimate.
 * A model in neither is priced at zero and reported as unpriced, never guessed.
 *
 * Costs are summed in micro-dollars (integers): thousands of calls of fractions of a cent add up
 * exactly, and DynamoDB's ADD on a number stays exact.
 */
import { z } from 'zod';

export const modelPriceSchema = z
  .object({
    input_per_million_usd: z.number().nonnegative(),
    output_per_million_usd: z.number().nonnegative(),
  })
  .strict();
export type ModelPrice = z.infer<typeof modelPriceSchema>;

export const priceTableSchema = z.record(z.string().min(1), modelPriceSchema);
export type PriceTable = z.infer<typeof priceTableSchema>;

/** On-demand list prices (us-east-1, USD per million tokens) of the models the docs name. */
export const DEFAULT_PRICES: PriceTable = {
  'amazon.nova-micro-v1:0': { input_per_million_usd: 0.035, output_per_million_usd: 0.14 },
  'amazon.nova-lite-v1:0': { input_per_million_usd: 0.06, output_per_million_usd: 0.24 },
  'amazon.nova-pro-v1:0': { input_per_million_usd: 0.8, output_per_million_usd: 3.2 },
  'anthropic.claude-3-haiku-20240307-v1:0': { input_per_million_usd: 0.25, output_per_million_usd: 1.25 },
  'anthropic.claude-3-5-haiku-20241022-v1:0': { input_per_million_usd: 0.8, output_per_million_usd: 4 },
  'anthropic.claude-3-5-sonnet-20240620-v1:0': { input_per_million_usd: 3, output_per_million_usd: 15 },
};

/** Parses `TALLY_TRIAGE_PRICES` (JSON) over the defaults: a configured model replaces its default. */
export function parsePriceTable(json: string | undefined): PriceTable {
  if (json === undefined || json.trim() === '') return { ...DEFAULT_PRICES };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`the price table is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const parsed = priceTableSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `the price table is not {"<model id>": {"input_per_million_usd": n, "output_per_million_usd": n}}: ${parsed.error.issues
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
    );
  return { ...DEFAULT_PRICES, ...parsed.data };
}

export interface CallCost {
  /** Micro-dollars (1e-6 USD), rounded up: a call is never priced below what it cost. */
  readonly micro_usd: number;
  /** False when the model has no price in the table (its cost counts as zero). */
  readonly priced: boolean;
}

/** A Bedrock cross-region inference profile (`us.`, `eu.`, `apac.`, `global.`) costs what its model costs. */
function priceFor(model: string, prices: PriceTable): ModelPrice | undefined {
  return prices[model] ?? prices[model.replace(/^(us|eu|apac|global)\./, '')];
}

export function priceCall(
  model: string,
  tokens: { input?: number | undefined; output?: number | undefined },
  prices: PriceTable,
): CallCost {
  const price = priceFor(model, prices);
  if (price === undefined) return { micro_usd: 0, priced: false };
  const micro = (tokens.input ?? 0) * price.input_per_million_usd + (tokens.output ?? 0) * price.output_per_million_usd;
  // The epsilon keeps float noise (0.035 × 1e3 = 35.000000000000004) from rounding up a whole unit.
  return { micro_usd: micro <= 0 ? 0 : Math.ceil(micro - 1e-9), priced: true };
}

// Display lives with the usage shapes, where the dashboard can import it without zod.
export { formatUsd } from '../shared/tables/usage.ts';

/**
 * One triage call, whatever it triages (an exception; a pattern, for the pattern triage): the
 * route chosen for it (routing.ts), the daily budget checked, the route's chain run, and the
 * answer's model call priced (cost.ts) and added to its run's `cost` and to the day's usage.
 *
 * Past the day's budget the route's rules answer, marked degraded for the reason "budget", and
 * the TriageBudgetExceeded metric (the budget alarm's) counts it. Workers check the day's total
 * before their call and add after it, so concurrent calls can overshoot the budget by what is in
 * flight (at most the triage function's concurrency times its batch, one call each).
 */
import type { BusinessMetrics } from '../shared/metrics.ts';
import { passagesVersion, type Passage } from '../shared/policy-corpus.ts';
import type { RunCostStore } from '../shared/tables/runs.ts';
import { usageDay, type UsageCounts, type UsageStore } from '../shared/tables/usage.ts';
import { severityFloor, type ExceptionType, type Severity, type Triage } from '../shared/types.ts';
import { runChain, type ChainDeps, type ChainResult } from './chain.ts';
import { priceCall, type CallCost, type PriceTable } from './cost.ts';
import type { ProviderInput, TriageProvider } from './providers/types.ts';
import { chooseRoute, type RouteTable } from './routing.ts';

export interface TriageCallContext {
  /** The run whose cost the call adds to. */
  readonly runId: string;
  readonly dataset: string;
  readonly exceptionType: ExceptionType;
  readonly policySeverity: Severity;
}

export interface TriageCallDeps extends Omit<ChainDeps, 'providers'> {
  /** Each route's providers, built once per container (routing.ts buildRouteTable). */
  readonly routes: RouteTable<TriageProvider>;
  readonly prices: PriceTable;
  /** What a UTC day's model calls may cost, in micro-dollars; undefined: no budget. */
  readonly dailyBudgetMicroUsd?: number | undefined;
  readonly usage: UsageStore;
  readonly runCosts: RunCostStore;
  readonly metrics?: BusinessMetrics | undefined;
}

export interface TriageCallResult extends ChainResult {
  /** The routing rule that chose the chain, or "default". */
  readonly route: string;
  /** What the answering call cost (zero for a rules answer). */
  readonly cost: CallCost;
  /** Set when the answer is degraded for a reason other than failing models. */
  readonly degradedReason?: 'budget';
}

const FREE: CallCost = { micro_usd: 0, priced: true };

export async function triageCall(
  input: ProviderInput,
  ctx: TriageCallContext,
  deps: TriageCallDeps,
): Promise<TriageCallResult> {
  const route = chooseRoute(deps.routes, ctx);
  const day = usageDay(deps.now());
  const models = route.providers.filter((p) => p.kind === 'model');

  if (models.length > 0 && deps.dailyBudgetMicroUsd !== undefined) {
    const spent = await deps.usage.get(day);
    if (spent.micro_usd >= deps.dailyBudgetMicroUsd) {
      const result = await runChain(input, { ...deps, providers: route.providers.filter((p) => p.kind === 'rules') });
      deps.metrics?.count('triageBudgetExceeded');
      return {
        ...result,
        degraded: true,
        degradedReason: 'budget',
        attempts: [
          ...models.map((p) => ({ provider: p.name, model: p.model, outcome: `skipped: the daily budget is spent` })),
          ...result.attempts,
        ],
        route: route.name,
        cost: FREE,
      };
    }
  }

  const result = await runChain(input, { ...deps, providers: route.providers });
  if (result.provider.kind !== 'model') return { ...result, route: route.name, cost: FREE };
  const cost = priceCall(
    result.provider.model,
    { input: result.inputTokens, output: result.outputTokens },
    deps.prices,
  );
  const counts: UsageCounts = {
    micro_usd: cost.micro_usd,
    input_tokens: result.inputTokens ?? 0,
    output_tokens: result.outputTokens ?? 0,
    calls: 1,
  };
  // Recorded before the triage is saved: the call was made (and paid for) whatever happens next.
  await Promise.all([deps.runCosts.addCost(ctx.runId, counts), deps.usage.add(day, counts)]);
  deps.metrics?.count('triageCost', cost.micro_usd);
  return { ...result, route: route.name, cost };
}

/**
 * What a stored triage records of its call, for an exception or a pattern alike: the severity
 * floored at the policy's (the model may raise it, never lower it), what the model said, the
 * route, what the call cost, and why it is degraded when models did not fail.
 */
export function callRecord(
  result: TriageCallResult,
  policySeverity: Severity,
): Pick<Triage, 'severity' | 'model_severity' | 'route' | 'cost_micro_usd' | 'degraded_reason'> {
  const byModel = result.provider.kind === 'model';
  return {
    severity: severityFloor(policySeverity, result.answer.severity),
    ...(byModel ? { model_severity: result.answer.severity, cost_micro_usd: result.cost.micro_usd } : {}),
    route: result.route,
    ...(result.degradedReason ? { degraded_reason: result.degradedReason } : {}),
  };
}

/** What a stored triage takes from its call beyond the record of the call itself. */
export interface TriageContext {
  /** The severity floor: the exception's policy severity (a pattern's: its representatives' highest). */
  readonly policySeverity: Severity;
  /** The passages the prompt held: none means the answer could not be grounded (degraded). */
  readonly passages: readonly Passage[];
  readonly promptVersion: string;
  readonly contentHash: string;
  readonly triagedAt: string;
  /** Turns the tokens a model wrote for masked values back into the values. */
  readonly unmask: (text: string) => string;
}

/** The stored triage of one call: an exception's own, or a pattern's (which its members inherit). */
export function triageRecord(result: TriageCallResult, ctx: TriageContext): Triage {
  return {
    // The severity floored at the policy's, the model's own, the route, the cost.
    ...callRecord(result, ctx.policySeverity),
    summary: ctx.unmask(result.answer.summary),
    recommended_actions: result.answer.recommended_actions.map(ctx.unmask),
    root_cause_hypotheses: result.answer.root_cause_hypotheses.map(ctx.unmask),
    policy_citations: result.citations,
    ...(result.precedentCitations.length > 0 ? { precedent_citations: result.precedentCitations } : {}),
    rejected_citations: result.rejectedCitations,
    provider: result.provider.name,
    model: result.provider.model,
    triaged_at: ctx.triagedAt,
    // Without passages (the policy index missing or empty) an answer cannot be grounded.
    degraded: result.degraded || ctx.passages.length === 0,
    prompt_version: ctx.promptVersion,
    policy_version: passagesVersion(ctx.passages),
    content_hash: ctx.contentHash,
    attempts: result.attempts,
    ...(result.inputTokens === undefined ? {} : { input_tokens: result.inputTokens }),
    ...(result.outputTokens === undefined ? {} : { output_tokens: result.outputTokens }),
    ...(result.latencyMs === undefined ? {} : { latency_ms: result.latencyMs }),
  };
}

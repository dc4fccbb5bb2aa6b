/**
 * Which provider chain triages an exception (or a pattern): rules in configuration
 * (`TALLY_TRIAGE_ROUTES`, JSON) matched on the dataset, the exception type and the policy
 * severity, first match wins, `TALLY_TRIAGE_PROVIDERS` otherwise (the route "default"). Each chain
 * uses the syntax of `TALLY_TRIAGE_PROVIDERS` and ends with the rules provider, so every route
 * answers. Everything here is pure: the handler builds each route's providers once per container.
 *
 * ```json
 * [
 *   { "name": "critical-amounts", "match": { "exception_type": "AMOUNT_MISMATCH", "policy_severity": ["CRITICAL"] },
 *     "providers": "bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0,rules" },
 *   { "name": "invalid-rows", "match": { "exception_type": "INVALID_RECORD" }, "providers": "rules" }
 * ]
 * ```
 * Within a field any listed value matches; every field given must match; a rule without `match`
 * matches everything.
 */
import { z } from 'zod';
import { ConfigError } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';
import { EXCEPTION_TYPES, SEVERITIES, type ExceptionType, type Severity } from '../shared/types.ts';

export type ProviderSpec =
  { readonly kind: 'bedrock' | 'openai'; readonly model: string } | { readonly kind: 'rules'; readonly model: '' };

/** The route of a triage when no rule matched. */
export const DEFAULT_ROUTE = 'default';

export interface RouteMatch {
  readonly dataset?: readonly string[];
  readonly exception_type?: readonly ExceptionType[];
  readonly policy_severity?: readonly Severity[];
}

export interface Route<P = ProviderSpec> {
  readonly name: string;
  readonly match: RouteMatch;
  readonly providers: readonly P[];
}

export interface RouteTable<P = ProviderSpec> {
  /** In configuration order: the first that matches wins. */
  readonly rules: readonly Route<P>[];
  readonly fallback: Route<P>;
}

/** What a route is chosen on. */
export interface RouteContext {
  readonly dataset: string;
  readonly exceptionType: ExceptionType;
  readonly policySeverity: Severity;
}

/**
 * Parses a chain (`bedrock:<model id>,openai:<model>,rules`). Returns the problems instead of
 * throwing so each caller names where the chain came from.
 */
export function parseProviderChain(text: string): { providers: ProviderSpec[]; problems: string[] } {
  const providers: ProviderSpec[] = [];
  const problems: string[] = [];
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [kind, ...rest] = entry.split(':');
    const model = rest.join(':');
    if (kind === 'rules' && model === '') providers.push({ kind: 'rules', model: '' });
    else if ((kind === 'bedrock' || kind === 'openai') && model !== '') providers.push({ kind, model });
    else problems.push(`"${entry}" is not a provider; expected bedrock:<model id>, openai:<model> or rules`);
  }
  return { providers, problems };
}

/** Nothing is left untriaged: rules end every chain (appended when a chain does not name them). */
export function endWithRules(providers: readonly ProviderSpec[]): ProviderSpec[] {
  return providers.some((p) => p.kind === 'rules') ? [...providers] : [...providers, { kind: 'rules', model: '' }];
}

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.infer<T>[]);

const ruleSchema = z
  .object({
    name: z
      .string({ error: 'needs a "name" (recorded on every triage it routes)' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a name is 1-64 letters, digits, "-", "_" or "."'),
    match: z
      .object({
        dataset: oneOrMany(z.string().min(1)).optional(),
        exception_type: oneOrMany(z.enum(EXCEPTION_TYPES)).optional(),
        policy_severity: oneOrMany(z.enum(SEVERITIES)).optional(),
      })
      .strict()
      .default({}),
    providers: z.string({ error: 'needs "providers", a chain such as "bedrock:<model id>,rules"' }).min(1),
  })
  .strict();

/**
 * Parses `TALLY_TRIAGE_ROUTES` over the default chain. Every problem is named with its rule (by
 * name, else position) in one ConfigError, so a bad deployment fails on its first cold start.
 */
export function parseRouteTable(
  routesJson: string | undefined,
  defaultChain: readonly ProviderSpec[],
  options: { openaiConfigured: boolean },
): RouteTable {
  const fallback: Route = { name: DEFAULT_ROUTE, match: {}, providers: endWithRules(defaultChain) };
  if (routesJson === undefined || routesJson.trim() === '') return { rules: [], fallback };
  let raw: unknown;
  try {
    raw = JSON.parse(routesJson);
  } catch (error) {
    throw new ConfigError(`${ENV.triageRoutes}: not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new ConfigError(`${ENV.triageRoutes}: expected a JSON array of rules`);
  const problems: string[] = [];
  const rules: Route[] = [];
  const names = new Set<string>([DEFAULT_ROUTE]);
  raw.forEach((entry: unknown, i) => {
    const label =
      typeof (entry as { name?: unknown } | null)?.name === 'string'
        ? `rule ${i + 1} "${(entry as { name: string }).name}"`
        : `rule ${i + 1}`;
    const parsed = ruleSchema.safeParse(entry);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        problems.push(`${label}: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
      return;
    }
    const rule = parsed.data;
    if (names.has(rule.name))
      problems.push(
        `${label}: the name is ${rule.name === DEFAULT_ROUTE ? 'reserved for the default chain' : 'used twice'}`,
      );
    names.add(rule.name);
    const chain = parseProviderChain(rule.providers);
    problems.push(...chain.problems.map((p) => `${label}: ${p}`));
    if (chain.providers.length === 0 && chain.problems.length === 0) problems.push(`${label}: names no provider`);
    const rulesAt = chain.providers.findIndex((p) => p.kind === 'rules');
    if (rulesAt >= 0 && rulesAt < chain.providers.length - 1)
      problems.push(`${label}: rules must end the chain (the providers after it would never be asked)`);
    if (!options.openaiConfigured && chain.providers.some((p) => p.kind === 'openai'))
      problems.push(`${label}: names an openai provider but ${ENV.openaiBaseUrl} is not set`);
    const match: RouteMatch = Object.fromEntries(Object.entries(rule.match).filter(([, v]) => v !== undefined));
    rules.push({ name: rule.name, match, providers: endWithRules(chain.providers) });
  });
  if (problems.length > 0) throw new ConfigError(`${ENV.triageRoutes}: ${problems.join('; ')}`);
  return { rules, fallback };
}

export function routeMatches(match: RouteMatch, ctx: RouteContext): boolean {
  return (
    (match.dataset === undefined || match.dataset.includes(ctx.dataset)) &&
    (match.exception_type === undefined || match.exception_type.includes(ctx.exceptionType)) &&
    (match.policy_severity === undefined || match.policy_severity.includes(ctx.policySeverity))
  );
}

/** The first rule that matches, else the default chain. */
export function chooseRoute<P>(table: RouteTable<P>, ctx: RouteContext): Route<P> {
  return table.rules.find((rule) => routeMatches(rule.match, ctx)) ?? table.fallback;
}

/**
 * The same table with each provider built: one instance per distinct provider (`kind:model`),
 * shared by the routes that name it, so its clients and connections are made once per container.
 */
export function buildRouteTable<P>(table: RouteTable, build: (spec: ProviderSpec) => P): RouteTable<P> {
  const built = new Map<string, P>();
  const providerOf = (spec: ProviderSpec): P => {
    const key = `${spec.kind}:${spec.model}`;
    let provider = built.get(key);
    if (provider === undefined) built.set(key, (provider = build(spec)));
    return provider;
  };
  const withProviders = (route: Route): Route<P> => ({ ...route, providers: route.providers.map(providerOf) });
  return { rules: table.rules.map(withProviders), fallback: withProviders(table.fallback) };
}

/** A table of one chain and no rules: every triage takes `providers` (the route "default"). */
export function routeTableOf<P>(providers: readonly P[]): RouteTable<P> {
  return { rules: [], fallback: { name: DEFAULT_ROUTE, match: {}, providers } };
}

/** Every Bedrock model a table names (infra grants InvokeModel on exactly these). */
export function bedrockModelsOf(table: RouteTable): string[] {
  return [
    ...new Set(
      [...table.rules, table.fallback].flatMap((r) =>
        r.providers.filter((p) => p.kind === 'bedrock').map((p) => p.model),
      ),
    ),
  ];
}

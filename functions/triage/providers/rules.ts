import type { NumberedPassage } from '../prompt.ts';
import { decimal, formatDecimal, multiplyDecimal } from '../../shared/decimal.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import type { ExceptionRecord } from '../../shared/types.ts';
import type { ProviderAnswer, ProviderInput, TriageProvider } from './types.ts';

/** What the rules read of a policy: the amount's tolerance and columns. */
export type RulesPolicy = Pick<ReconPolicy, 'amountTolerance'> & Partial<Pick<ReconPolicy, 'amountField' | 'fields'>>;

/**
 * Deterministic triage from policy alone: severity from the recon policy's severity rules (the
 * engine already applied them: `policy_severity`), actions and causes from the runbook section
 * for the exception's type, citing exactly those passages and the dataset's own policy section.
 * Never fails, never calls out. The tolerance it quotes is the one the engine applied: the
 * dataset's policy in force when triage passes it (`input.policy`), else the one it was built with.
 */
export class RulesProvider implements TriageProvider {
  readonly name = 'rules';
  readonly model = 'recon-policy-rules';
  readonly kind = 'rules' as const;
  private readonly policy: RulesPolicy;

  constructor(policy: RulesPolicy) {
    this.policy = policy;
  }

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    const { exception, passages } = input;
    const policy = input.policy ?? this.policy;
    const forType = passages.filter((p) => p.exception_type === exception.exception_type);
    const check = forType.find((p) => /what to check/i.test(p.section));
    const causes = forType.find((p) => /likely causes/i.test(p.section));
    const owner = forType.find((p) => /owner/i.test(p.section));
    // The dataset's own policy defines its breaks; the shared recon policy when it has none.
    const definition =
      passages.find((p) => p.document === `datasets/${exception.dataset}.md` && coversType(p, exception)) ??
      forType.find((p) => p.document === 'recon-policy.md');
    const cited = [check, causes, owner, definition].filter((p): p is NumberedPassage => p !== undefined);
    // Whatever was retrieved first is still the best grounding when the runbook has no section.
    if (cited.length === 0 && passages[0]) cited.push(passages[0]);
    // How an analyst closed the nearest earlier break of this kind comes first.
    const precedent = input.precedents?.find((p) => p.note !== undefined);
    const followPrecedent = precedent
      ? [
          `As with ${precedent.exception_id} (${precedent.business_date}, ${precedent.status.toLowerCase().replace('_', ' ')}): ${precedent.note}`,
        ]
      : [];
    return {
      answer: {
        severity: exception.policy_severity,
        summary: summarise(exception, policy),
        recommended_actions: [...followPrecedent, ...bullets(check), ...(owner ? [firstSentence(owner.text)] : [])],
        root_cause_hypotheses: bullets(causes),
        policy_citations: cited.map((p) => p.ref),
        precedent_citations: precedent ? [precedent.ref] : [],
      },
    };
  }
}

function bullets(passage: NumberedPassage | undefined): string[] {
  if (!passage) return [];
  return passage.text
    .split('\n')
    .filter((l) => /^\s*[-*]\s+/.test(l))
    .map((l) => l.replace(/^\s*[-*]\s+/, '').trim());
}

function firstSentence(text: string): string {
  return (text.replace(/\s+/g, ' ').match(/^.*?[.!?](\s|$)/)?.[0] ?? text).trim();
}

function keyText(exception: ExceptionRecord): string {
  return Object.entries(exception.key)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** A passage about this exception's type, including one headed by two types (duplicates). */
function coversType(p: NumberedPassage, e: ExceptionRecord): boolean {
  return p.exception_type === e.exception_type || p.section.includes(e.exception_type);
}

/** `0.01`, or `0.01 + 0.05% of the larger amount` with a relative part (as the engine applies it). */
function toleranceText(policy: RulesPolicy): string {
  const spec = policy.fields?.find((f) => f.field === policy.amountField);
  const absolute = formatDecimal(spec?.tolerance.absolute ?? policy.amountTolerance);
  if (!spec || spec.tolerance.relative.units === 0n) return absolute;
  // 0.0500 -> 0.05, 10 stays 10: only a fraction's trailing zeros go.
  const percent = formatDecimal(multiplyDecimal(spec.tolerance.relative, decimal('100')))
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
  return `${absolute} + ${percent}% of the larger amount`;
}

/** The row's amount, read from the side's column for the policy's amount field. */
function amountOf(e: ExceptionRecord, side: 'source' | 'target', policy: RulesPolicy): string | undefined {
  const spec = policy.fields?.find((f) => f.field === policy.amountField);
  const row = e[side];
  if (!spec || !row) return undefined;
  return row[spec[side]] ?? row[spec.field];
}

function summarise(e: ExceptionRecord, policy: RulesPolicy): string {
  const key = keyText(e);
  const amount = (side: 'source' | 'target') => {
    const value = amountOf(e, side, policy);
    return value === undefined || value === '' ? '' : ` for ${value}`;
  };
  switch (e.exception_type) {
    case 'AMOUNT_MISMATCH': {
      const d = e.diffs.find((x) => x.delta !== undefined);
      return `${key}: amount differs between source (${d?.source}) and target (${d?.target}), a difference of ${d?.delta}, beyond the ${toleranceText(policy)} tolerance.`;
    }
    case 'FIELD_MISMATCH':
      return `${key}: ${e.diffs.map((d) => `${d.field} is ${d.source} in source but ${d.target} in target`).join('; ')}.`;
    case 'MISSING_IN_TARGET':
      return `${key}${amount('source')} is in the source extract (line ${e.lines.source.join(', ')}) but missing from the target.`;
    case 'MISSING_IN_SOURCE':
      return `${key}${amount('target')} is in the target extract (line ${e.lines.target.join(', ')}) but missing from the source.`;
    case 'DUPLICATE_IN_TARGET':
      return `${key} appears ${e.lines.target.length} times in the target extract (lines ${e.lines.target.join(', ')}).`;
    case 'DUPLICATE_IN_SOURCE':
      return `${key} appears ${e.lines.source.length} times in the source extract (lines ${e.lines.source.join(', ')}).`;
    case 'INVALID_RECORD': {
      // The key names the rejected row (`side`, `line`); `lines` may also hold the other side's row it hides.
      const side =
        e.key.side === 'target' || e.key.side === 'source' ? e.key.side : e.lines.source.length ? 'source' : 'target';
      const line = e.key.line ?? e.lines[side].join(', ');
      return `Line ${line} of the ${side} extract was rejected: ${e.reason}.`;
    }
  }
}

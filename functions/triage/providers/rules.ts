import type { NumberedPassage } from '../prompt.ts';
import { formatDecimal } from '../../shared/decimal.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import type { ExceptionRecord } from '../../shared/types.ts';
import type { ProviderAnswer, ProviderInput, TriageProvider } from './types.ts';

/**
 * Deterministic triage from policy alone: severity from the recon policy's severity rules (the
 * engine already applied them: `policy_severity`), actions and causes from the runbook section
 * for the exception's type, citing exactly those passages. Never fails, never calls out.
 * The tolerance it quotes is the recon policy's, the one the engine applied.
 */
export class RulesProvider implements TriageProvider {
  readonly name = 'rules';
  readonly model = 'recon-policy-rules';
  readonly kind = 'rules' as const;
  private readonly tolerance: string;

  constructor(policy: Pick<ReconPolicy, 'amountTolerance'>) {
    this.tolerance = formatDecimal(policy.amountTolerance);
  }

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    const { exception, passages } = input;
    const forType = passages.filter((p) => p.exception_type === exception.exception_type);
    const check = forType.find((p) => /what to check/i.test(p.section));
    const causes = forType.find((p) => /likely causes/i.test(p.section));
    const owner = forType.find((p) => /owner/i.test(p.section));
    const definition = forType.find((p) => p.document === 'recon-policy.md');
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
        summary: summarise(exception, this.tolerance),
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

function summarise(e: ExceptionRecord, tolerance: string): string {
  const key = keyText(e);
  switch (e.exception_type) {
    case 'AMOUNT_MISMATCH': {
      const d = e.diffs.find((x) => x.delta !== undefined);
      return `${key}: amount differs between source (${d?.source}) and target (${d?.target}), a difference of ${d?.delta}, beyond the ${tolerance} tolerance.`;
    }
    case 'FIELD_MISMATCH':
      return `${key}: ${e.diffs.map((d) => `${d.field} is ${d.source} in source but ${d.target} in target`).join('; ')}.`;
    case 'MISSING_IN_TARGET':
      return `${key} is in the source extract (line ${e.lines.source.join(', ')}) but missing from the target.`;
    case 'MISSING_IN_SOURCE':
      return `${key} is in the target extract (line ${e.lines.target.join(', ')}) but missing from the source.`;
    case 'DUPLICATE_IN_TARGET':
      return `${key} appears ${e.lines.target.length} times in the target extract (lines ${e.lines.target.join(', ')}).`;
    case 'DUPLICATE_IN_SOURCE':
      return `${key} appears ${e.lines.source.length} times in the source extract (lines ${e.lines.source.join(', ')}).`;
    case 'INVALID_RECORD':
      return `Line ${[...e.lines.source, ...e.lines.target].join(', ')} of the ${e.lines.source.length ? 'source' : 'target'} extract was rejected: ${e.reason}.`;
  }
}

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { decimal, type Decimal } from './decimal.ts';
import { EXCEPTION_TYPES, SEVERITIES, type ExceptionType, type Severity } from './types.ts';

/**
 * The recon policy: one markdown document whose fenced ```json tally-policy block drives the
 * engine, and whose prose the triage cites. Parsing it in one place keeps both in step.
 */

const decimalText = z.string().refine((s) => {
  try {
    decimal(s);
    return true;
  } catch {
    return false;
  }
}, 'must be a decimal string such as "0.01"');

const columnName = z
  .string()
  .trim()
  .min(1)
  .transform((s) => s.toLowerCase());

const settingsSchema = z
  .object({
    policy_version: z.string().min(1),
    key_columns: z.array(columnName).min(1),
    compared_fields: z.array(columnName),
    amount_field: columnName.optional(),
    amount_tolerance: z.object({ absolute: decimalText }).optional(),
    severity_rules: z.array(
      z.object({
        exception_type: z.enum(EXCEPTION_TYPES),
        min_abs_delta: decimalText.optional(),
        severity: z.enum(SEVERITIES),
      }),
    ),
    default_severity: z.enum(SEVERITIES),
    /**
     * A side with a header and no rows is normally a broken extract (rejected as EMPTY_FILE);
     * datasets where "nothing happened today" is a real answer set this to reconcile it.
     */
    allow_empty_sides: z.boolean().optional(),
  })
  .strict();

export interface SeverityRule {
  readonly exceptionType: ExceptionType;
  readonly minAbsDelta?: Decimal;
  readonly severity: Severity;
}

export interface ReconPolicy {
  readonly policyVersion: string;
  /** sha256 of the whole document: what a run records to prove which policy it applied. */
  readonly hash: string;
  readonly keyColumns: readonly string[];
  /** Compared fields other than the amount field. */
  readonly textFields: readonly string[];
  readonly amountField: string | undefined;
  readonly amountTolerance: Decimal;
  readonly severityRules: readonly SeverityRule[];
  readonly defaultSeverity: Severity;
  /** Whether a file with a header and no data rows is accepted (default false). */
  readonly allowEmptySides: boolean;
}

export class PolicyError extends Error {
  readonly code = 'POLICY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const FENCE = /^```json[ \t]+tally-policy[ \t]*\r?\n([\s\S]*?)^```/m;

export function parseReconPolicy(markdown: string, source = 'recon policy'): ReconPolicy {
  const block = FENCE.exec(markdown);
  if (!block)
    throw new PolicyError(
      `${source}: no \`\`\`json tally-policy block found; expected the machine-readable settings in one`,
    );
  let json: unknown;
  try {
    json = JSON.parse(block[1] ?? '');
  } catch (error) {
    throw new PolicyError(`${source}: the tally-policy block is not valid JSON (${(error as Error).message})`);
  }
  const parsed = settingsSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PolicyError(`${source}: invalid settings: ${problems}`);
  }
  const s = parsed.data;
  if (s.amount_field !== undefined && !s.compared_fields.includes(s.amount_field)) {
    throw new PolicyError(`${source}: amount_field "${s.amount_field}" must also be listed in compared_fields`);
  }
  const overlap = s.key_columns.filter((k) => s.compared_fields.includes(k));
  if (overlap.length > 0)
    throw new PolicyError(`${source}: ${overlap.join(', ')} cannot be both a key column and a compared field`);
  return Object.freeze({
    policyVersion: s.policy_version,
    hash: createHash('sha256').update(markdown).digest('hex'),
    keyColumns: Object.freeze([...s.key_columns]),
    textFields: Object.freeze(s.compared_fields.filter((f) => f !== s.amount_field)),
    amountField: s.amount_field,
    amountTolerance: decimal(s.amount_tolerance?.absolute ?? '0'),
    severityRules: Object.freeze(
      s.severity_rules.map((r) => ({
        exceptionType: r.exception_type,
        severity: r.severity,
        ...(r.min_abs_delta === undefined ? {} : { minAbsDelta: decimal(r.min_abs_delta) }),
      })),
    ),
    defaultSeverity: s.default_severity,
    allowEmptySides: s.allow_empty_sides ?? false,
  });
}

/** All columns a file must carry for this policy. */
export function requiredColumns(policy: ReconPolicy): string[] {
  return [...policy.keyColumns, ...policy.textFields, ...(policy.amountField ? [policy.amountField] : [])];
}

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { decimal, type Decimal } from './decimal.ts';
import {
  parseResolutionTarget,
  RESOLUTION_TARGET_PATTERN,
  RESOLUTION_TARGET_RULE,
  type ResolutionTarget,
} from './deadlines.ts';
import { EXCEPTION_TYPES, SEVERITIES, type ExceptionType, type Severity, type Side } from './types.ts';

/**
 * The recon policy: one markdown document whose fenced ```json tally-policy block drives the
 * engine, and whose prose the triage cites. Parsing it in one place keeps both in step.
 *
 * Two forms are accepted. The long form (`key`, `fields`) is the contract: per-side column names,
 * typed fields with their own normalisers and tolerances, file formats, thresholds and control
 * totals. The short form (`key_columns`, `compared_fields`, `amount_field`, `amount_tolerance`)
 * is what policies said before there was a long form; it is read as the long form it abbreviates.
 * Every problem found is named in one error (path and what was expected), so a policy author
 * fixes them in one pass.
 */

// --- Schema ---------------------------------------------------------------------------------

const isDecimalText = (s: string): boolean => {
  try {
    decimal(s);
    return true;
  } catch {
    return false;
  }
};

const decimalText = z.string().refine(isDecimalText, 'must be a decimal string such as "0.01"');
const nonNegativeDecimalText = decimalText.refine(
  (s) => !isDecimalText(s) || decimal(s).units >= 0n,
  'must not be negative',
);

const columnName = z
  .string()
  .trim()
  .min(1, 'must be a non-empty column name')
  .transform((s) => s.toLowerCase());

export const NORMALIZERS = ['trim', 'upper', 'lower', 'strip_leading_zeros'] as const;
export type Normalizer = (typeof NORMALIZERS)[number];

export const FIELD_TYPES = ['text', 'decimal', 'date', 'integer'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export const FORMATS = ['csv', 'jsonl', 'parquet'] as const;
export type FileFormat = (typeof FORMATS)[number];

/** How an exception is identified: per business date, or the same across consecutive dates. */
export const IDENTITIES = ['per_date', 'across_dates'] as const;
export type Identity = (typeof IDENTITIES)[number];

export const DELIMITERS = [',', ';', '\t', '|'] as const;
export const ENCODINGS = ['utf-8', 'latin-1'] as const;
export type Encoding = (typeof ENCODINGS)[number];

const dateFormatText = z
  .string()
  .refine((s) => compileDateFormat(s) !== undefined, 'must contain YYYY, MM and DD once each, e.g. "DD/MM/YYYY"');

const sideSchema = z
  .object({
    format: z.enum(FORMATS).optional(),
    delimiter: z.enum(DELIMITERS).optional(),
    decimal_separator: z.enum(['.', ',']).optional(),
    encoding: z.enum(ENCODINGS).optional(),
  })
  .strict();

const severityRuleSchema = z
  .object({
    exception_type: z.enum(EXCEPTION_TYPES),
    min_abs_delta: decimalText.optional(),
    severity: z.enum(SEVERITIES),
  })
  .strict();

const thresholdSetSchema = z
  .object({
    break_rate: nonNegativeDecimalText.optional(),
    exceptions: z.partialRecord(z.enum(EXCEPTION_TYPES), z.int().min(0)).optional(),
    net_amount_difference: nonNegativeDecimalText.optional(),
  })
  .strict();

/** Settings both forms share. */
const common = {
  policy_version: z.string().min(1),
  dataset: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "-" or "_"')
    .optional(),
  source: sideSchema.optional(),
  target: sideSchema.optional(),
  amount_field: columnName.optional(),
  thresholds: z
    .object({ warn: thresholdSetSchema.optional(), fail: thresholdSetSchema.optional() })
    .strict()
    .optional(),
  control_totals: z
    .object({ group_by: z.array(columnName), sum: z.array(columnName) })
    .strict()
    .optional(),
  severity_rules: z.array(severityRuleSchema).default([]),
  default_severity: z.enum(SEVERITIES).default('MEDIUM'),
  /**
   * A side with a header and no rows (JSON Lines: no lines) is normally a broken extract (rejected as EMPTY_FILE);
   * datasets where "nothing happened today" is a real answer set this to reconcile it.
   */
  allow_empty_sides: z.boolean().optional(),
  /**
   * How a run's exceptions are triaged: `hold_above` holds a run whose break rate or exception
   * count is above it (triage not started until an analyst releases it); exceptions that share a
   * pattern of at least `pattern_min_members` members are triaged once, as the pattern.
   */
  triage: z
    .object({
      hold_above: z
        .object({
          break_rate: nonNegativeDecimalText.optional(),
          exceptions: z.int('must be a whole number of exceptions').min(0, 'must be 0 or more').optional(),
        })
        .strict()
        .optional(),
      pattern_min_members: z
        .int('must be a whole number of members')
        .min(2, 'must be at least 2 (a pattern of one member is a singleton)')
        .optional(),
    })
    .strict()
    .optional(),
  /**
   * Columns whose values never leave the table in clear: prompts, embedded text and the search
   * index see a keyed token instead (functions/shared/masking.ts). Key or compared field names
   * (each side's column for them is covered too) or any other column of either side.
   */
  sensitive_fields: z.array(columnName).optional(),
  /**
   * Whether a break belongs to one business date (`per_date`, the default) or is the same break on
   * every date it is found (`across_dates`: snapshot data such as positions, where it ages).
   */
  identity: z.enum(IDENTITIES).optional(),
  /** How long each severity has to be resolved: "4h" or "1bd" (exceptions get a due_at from it). */
  resolution_targets: z
    .partialRecord(z.enum(SEVERITIES), z.string().regex(RESOLUTION_TARGET_PATTERN, `must be ${RESOLUTION_TARGET_RULE}`))
    .optional(),
  /**
   * A MISSING_IN_TARGET within `days` business days of its row's `field` date (a key or compared
   * field; the business date when not given) is PENDING: the row may still arrive.
   */
  late_arrival: z
    .object({ days: z.int().min(0, 'must be 0 or more').max(31, 'must be 31 or fewer'), field: columnName.optional() })
    .strict()
    .optional(),
  /** Which engine reconciles a run: above `large_above_bytes` (both files together), the SQL engine. */
  engine: z
    .object({ large_above_bytes: z.int().min(0, 'must be a number of bytes, 0 or more') })
    .strict()
    .optional(),
};

const shortSchema = z
  .object({
    ...common,
    key_columns: z.array(columnName).min(1),
    compared_fields: z.array(columnName),
    amount_tolerance: z.object({ absolute: decimalText }).strict().optional(),
  })
  .strict();

const keySchema = z
  .object({
    field: columnName,
    source: columnName.optional(),
    target: columnName.optional(),
    normalize: z.array(z.enum(NORMALIZERS)).optional(),
  })
  .strict();

const fieldSchema = z
  .object({
    field: columnName,
    source: columnName.optional(),
    target: columnName.optional(),
    type: z.enum(FIELD_TYPES).optional(),
    normalize: z.array(z.enum(NORMALIZERS)).optional(),
    equivalents: z.array(z.array(z.string()).min(2, 'an equivalence group needs at least two values')).optional(),
    tolerance: z
      .object({ absolute: nonNegativeDecimalText.optional(), relative: nonNegativeDecimalText.optional() })
      .strict()
      .optional(),
    source_format: dateFormatText.optional(),
    target_format: dateFormatText.optional(),
    tolerance_days: z.int().min(0).optional(),
  })
  .strict();

const longSchema = z
  .object({
    ...common,
    key: z.array(keySchema).min(1),
    fields: z.array(fieldSchema),
  })
  .strict();

// --- The policy the engine runs under ---------------------------------------------------------

export interface SeverityRule {
  readonly exceptionType: ExceptionType;
  readonly minAbsDelta?: Decimal;
  readonly severity: Severity;
}

/** How one side's file is read. */
export interface SideOptions {
  readonly format: FileFormat;
  /** CSV only. */
  readonly delimiter: string;
  /** CSV only: `,` makes `.` the thousands separator. */
  readonly decimalSeparator: '.' | ',';
  readonly encoding: Encoding;
}

/** A parsed date format: where YYYY, MM and DD are, and the literal text between them. */
export interface DateFormat {
  readonly pattern: string;
  /** Parses `text` (already trimmed) to days since 1970-01-01, or undefined. */
  readonly parse: (text: string) => number | undefined;
}

interface Mapped {
  /** The name the policy, the diffs and the key rows use. */
  readonly field: string;
  /** Each side's column name (lower case: headers are matched case-insensitively). */
  readonly source: string;
  readonly target: string;
}

export interface KeySpec extends Mapped {
  /** Applied after trimming (always on for keys), in the order given. */
  readonly normalize: readonly Normalizer[];
}

export interface Tolerance {
  readonly absolute: Decimal;
  readonly relative: Decimal;
}

export interface FieldSpec extends Mapped {
  readonly type: FieldType;
  /** Text only; trimming is always applied. */
  readonly normalize: readonly Normalizer[];
  /** Text only: each normalised member of a group maps to the group's first member. */
  readonly equivalents: ReadonlyMap<string, string> | undefined;
  /** Decimal only; zero when not given. */
  readonly tolerance: Tolerance;
  /** Date only. */
  readonly sourceFormat: DateFormat;
  readonly targetFormat: DateFormat;
  readonly toleranceDays: number;
}

export interface ThresholdSet {
  readonly breakRate?: Decimal;
  readonly exceptions: Partial<Record<ExceptionType, number>>;
  readonly netAmountDifference?: Decimal;
}

/** How a run's exceptions are triaged (the policy's `triage` block, defaults filled in). */
export interface TriageSettings {
  /** A run above either limit is held before triage (functions/triage/guard.ts). */
  readonly holdAbove: { readonly breakRate?: Decimal; readonly exceptions?: number };
  /** Patterns with at least this many members are saved and triaged once; the rest one by one. */
  readonly patternMinMembers: number;
}

/** The workflow settings: identity, deadlines and the late-arrival window. */
export interface WorkflowSettings {
  readonly identity: Identity;
  readonly resolutionTargets: Readonly<Partial<Record<Severity, ResolutionTarget>>>;
  /** `field`: the key or compared field whose source value (a date) starts the window. */
  readonly lateArrival?: { readonly days: number; readonly field?: KeySpec | FieldSpec };
}

/** A policy's workflow when it sets nothing (and a dataset with no policy). */
export const DEFAULT_WORKFLOW: WorkflowSettings = Object.freeze({ identity: 'per_date', resolutionTargets: {} });

/** `triage.hold_above.break_rate` when the policy gives none: half the keys broken is a wrong file, not a bad day. */
export const DEFAULT_HOLD_BREAK_RATE = '0.5';
/** `triage.hold_above.exceptions` when the policy gives none. */
export const DEFAULT_HOLD_EXCEPTIONS = 100_000;
/** `triage.pattern_min_members` when the policy gives none. */
export const DEFAULT_PATTERN_MIN_MEMBERS = 10;

export interface ReconPolicy {
  readonly policyVersion: string;
  /** The dataset this policy is for, when it names one. */
  readonly dataset: string | undefined;
  /** sha256 of the whole document: what a run records to prove which policy it applied. */
  readonly hash: string;
  readonly sides: Readonly<Record<Side, SideOptions>>;
  readonly keys: readonly KeySpec[];
  /** Every compared field, the amount field included, in the policy's order. */
  readonly fields: readonly FieldSpec[];
  /** Key field names. */
  readonly keyColumns: readonly string[];
  /** Compared field names other than the amount field (the short form's view). */
  readonly textFields: readonly string[];
  readonly amountField: string | undefined;
  /** The amount field's absolute tolerance (zero when none). */
  readonly amountTolerance: Decimal;
  readonly thresholds: { readonly warn?: ThresholdSet; readonly fail?: ThresholdSet } | undefined;
  readonly controlTotals: { readonly groupBy: readonly string[]; readonly sum: readonly string[] } | undefined;
  readonly severityRules: readonly SeverityRule[];
  readonly defaultSeverity: Severity;
  /** Whether a file with a header and no data rows is accepted (default false). */
  readonly allowEmptySides: boolean;
  /**
   * The sensitive columns, lower case: each named field, and both sides' columns when it names a
   * key or compared field (so a row keyed by either side's header is masked alike). Empty: none.
   */
  readonly sensitiveFields: readonly string[];
  /**
   * Both sides read alike (same format options, same column per field, same date formats), so
   * the same raw row on both sides is the same row: the engine's fast path may rely on it.
   */
  readonly symmetric: boolean;
  /** Engine choice: runs whose two files together exceed `largeAboveBytes` use the SQL engine. */
  readonly engine: { readonly largeAboveBytes: number };
  /** The runaway guard's limits and the break patterns' minimum size (defaults when absent). */
  readonly triage: TriageSettings;
  readonly workflow: WorkflowSettings;
}

/**
 * Both files' size together above which a run goes to the SQL engine (Athena on AWS, DuckDB
 * locally) unless the policy says otherwise: 512 MiB. The in-memory engine's measured ceiling is
 * about 8M rows / 350 MB per side (700 MB together) in a 3008 MB Lambda; 512 MiB keeps a quarter
 * of that as headroom for wider rows and many findings. Once the engine's memory is bounded the
 * limit is time: at the slowest measured shape (payments, 15.3 s per 1M rows per side, ~95 bytes a
 * row) 512 MiB is ~2.8M rows per side, well inside 15 minutes with the write phase after it.
 */
export const DEFAULT_LARGE_ABOVE_BYTES = 512 * 1024 * 1024;

export class PolicyError extends Error {
  readonly code = 'POLICY_INVALID';
  /** Each problem on its own (the message joins them with "; ", which a problem may itself hold). */
  readonly problems: readonly string[];
  constructor(message: string, problems?: readonly string[]) {
    super(message);
    this.name = 'PolicyError';
    this.problems = problems ?? [message];
  }
}

/** The settings block's problems, each in `problems` and together in the message. */
function invalidSettings(source: string, problems: string[]): PolicyError {
  return new PolicyError(`${source}: invalid settings: ${problems.join('; ')}`, problems);
}

const FENCE = /^```json[ \t]+tally-policy[ \t]*\r?\n([\s\S]*?)^```/m;

type ShortSettings = z.infer<typeof shortSchema>;
type LongSettings = z.infer<typeof longSchema>;
type Problem = string;

/**
 * `expectedDataset`: the dataset the document must be the policy of (its file name), checked
 * with the other settings so every problem is named in one error.
 */
export function parseReconPolicy(markdown: string, source = 'recon policy', expectedDataset?: string): ReconPolicy {
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
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalidSettings(source, ['(root): expected a JSON object']);
  const raw = json as Record<string, unknown>;
  const isShort = 'key_columns' in raw || 'compared_fields' in raw;
  if (isShort && ('key' in raw || 'fields' in raw)) {
    const problem =
      '(root): use either the short form (key_columns, compared_fields) or the long form (key, fields), not both';
    throw invalidSettings(source, [problem]);
  }
  const parsed = (isShort ? shortSchema : longSchema).safeParse(json);
  const datasetProblem =
    expectedDataset === undefined || raw.dataset === expectedDataset
      ? []
      : [
          `dataset: ${raw.dataset === undefined ? 'is missing' : `is ${JSON.stringify(raw.dataset)}`}, expected "${expectedDataset}" (the file's name)`,
        ];
  if (!parsed.success || datasetProblem.length > 0) {
    const problems = [
      ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)),
      ...datasetProblem,
    ];
    throw invalidSettings(source, problems);
  }
  const settings = isShort ? fromShortForm(parsed.data as ShortSettings) : (parsed.data as LongSettings);
  const problems: Problem[] = [];
  const policy = build(settings, markdown, isShort, problems);
  if (problems.length > 0) throw new PolicyError(`${source}: ${problems.join('; ')}`, problems);
  return policy;
}

/** The long form a short-form policy abbreviates. */
function fromShortForm(s: ShortSettings): LongSettings {
  const { key_columns, compared_fields, amount_tolerance, ...rest } = s;
  return {
    ...rest,
    key: key_columns.map((field) => ({ field })),
    fields: compared_fields.map((field) =>
      field === s.amount_field
        ? {
            field,
            type: 'decimal' as const,
            ...(amount_tolerance === undefined ? {} : { tolerance: { absolute: amount_tolerance.absolute } }),
          }
        : { field },
    ),
  };
}

const ISO_DATE = 'YYYY-MM-DD';

function sideOptions(s: z.infer<typeof sideSchema> | undefined): SideOptions {
  return Object.freeze({
    format: s?.format ?? 'csv',
    delimiter: s?.delimiter ?? ',',
    decimalSeparator: s?.decimal_separator ?? '.',
    encoding: s?.encoding ?? 'utf-8',
  });
}

function build(s: LongSettings, markdown: string, isShort: boolean, problems: Problem[]): ReconPolicy {
  const sides = { source: sideOptions(s.source), target: sideOptions(s.target) };
  for (const side of ['source', 'target'] as const) {
    const o = s[side];
    if (o === undefined) continue;
    const format = o.format ?? 'csv';
    for (const option of ['delimiter', 'decimal_separator', 'encoding'] as const)
      if (o[option] !== undefined && format !== 'csv')
        problems.push(`${side}.${option}: applies to csv files only; this side's format is ${format}`);
  }

  const keys: KeySpec[] = s.key.map((k) =>
    Object.freeze({
      field: k.field,
      source: k.source ?? k.field,
      target: k.target ?? k.field,
      normalize: Object.freeze((k.normalize ?? []).filter((n) => n !== 'trim')),
    }),
  );
  const fields: FieldSpec[] = s.fields.map((f, i) => fieldSpec(f, `fields.${i}`, problems));

  // Names must be unique, and a key is never also a compared field.
  const keyNames = keys.map((k) => k.field);
  const fieldNames = fields.map((f) => f.field);
  const repeated = (names: string[]) => names.filter((n, i) => names.indexOf(n) !== i);
  for (const n of new Set(repeated(keyNames))) problems.push(`key: field "${n}" is listed more than once`);
  for (const n of new Set(repeated(fieldNames))) problems.push(`fields: field "${n}" is listed more than once`);
  const overlap = keyNames.filter((k) => fieldNames.includes(k));
  if (overlap.length > 0)
    problems.push(
      isShort
        ? `${overlap.join(', ')} cannot be both a key column and a compared field`
        : `${overlap.join(', ')} cannot be both a key field and a compared field`,
    );
  for (const side of ['source', 'target'] as const) {
    const columns = [...keys, ...fields].map((m) => m[side]);
    for (const c of new Set(repeated(columns)))
      problems.push(`${side}: column "${c}" is mapped to more than one key or field`);
  }

  const amount = s.amount_field === undefined ? undefined : fields.find((f) => f.field === s.amount_field);
  if (s.amount_field !== undefined) {
    if (amount === undefined)
      problems.push(
        isShort
          ? `amount_field "${s.amount_field}" must also be listed in compared_fields`
          : `amount_field: "${s.amount_field}" must be one of the fields`,
      );
    else if (amount.type !== 'decimal')
      problems.push(`amount_field: "${s.amount_field}" must be a field of type decimal, not ${amount.type}`);
  }

  const thresholds =
    s.thresholds === undefined
      ? undefined
      : Object.freeze({
          ...(s.thresholds.warn ? { warn: thresholdSet(s.thresholds.warn) } : {}),
          ...(s.thresholds.fail ? { fail: thresholdSet(s.thresholds.fail) } : {}),
        });
  for (const level of ['warn', 'fail'] as const)
    if (s.thresholds?.[level]?.net_amount_difference !== undefined && amount === undefined)
      problems.push(`thresholds.${level}.net_amount_difference: needs an amount_field`);

  if (s.control_totals !== undefined) {
    s.control_totals.group_by.forEach((g, i) => {
      if (!keyNames.includes(g) && !fieldNames.includes(g))
        problems.push(`control_totals.group_by.${i}: "${g}" must be a key field or a compared field`);
    });
    s.control_totals.sum.forEach((n, i) => {
      const f = fields.find((x) => x.field === n);
      if (f?.type !== 'decimal')
        problems.push(`control_totals.sum.${i}: "${n}" must be a compared field of type decimal`);
    });
  }

  const lateField = s.late_arrival?.field;
  const lateSpec = lateField === undefined ? undefined : [...keys, ...fields].find((m) => m.field === lateField);
  if (lateField !== undefined && lateSpec === undefined)
    problems.push(`late_arrival.field: "${lateField}" must be a key field or a compared field`);

  const symmetric =
    sides.source.format === sides.target.format &&
    sides.source.delimiter === sides.target.delimiter &&
    sides.source.decimalSeparator === sides.target.decimalSeparator &&
    sides.source.encoding === sides.target.encoding &&
    [...keys, ...fields].every((m) => m.source === m.target) &&
    fields.every((f) => f.sourceFormat.pattern === f.targetFormat.pattern);

  return Object.freeze({
    policyVersion: s.policy_version,
    dataset: s.dataset,
    hash: createHash('sha256').update(markdown).digest('hex'),
    sides: Object.freeze(sides),
    keys: Object.freeze(keys),
    fields: Object.freeze(fields),
    keyColumns: Object.freeze(keyNames),
    textFields: Object.freeze(fieldNames.filter((f) => f !== s.amount_field)),
    amountField: amount === undefined ? undefined : s.amount_field,
    amountTolerance: amount?.tolerance.absolute ?? decimal('0'),
    thresholds,
    controlTotals:
      s.control_totals === undefined
        ? undefined
        : Object.freeze({
            groupBy: Object.freeze([...s.control_totals.group_by]),
            sum: Object.freeze([...s.control_totals.sum]),
          }),
    severityRules: Object.freeze(
      s.severity_rules.map((r) =>
        Object.freeze({
          exceptionType: r.exception_type,
          severity: r.severity,
          ...(r.min_abs_delta === undefined ? {} : { minAbsDelta: decimal(r.min_abs_delta) }),
        }),
      ),
    ),
    defaultSeverity: s.default_severity,
    allowEmptySides: s.allow_empty_sides ?? false,
    sensitiveFields: Object.freeze(sensitiveColumns(s.sensitive_fields ?? [], [...keys, ...fields])),
    symmetric,
    engine: Object.freeze({ largeAboveBytes: s.engine?.large_above_bytes ?? DEFAULT_LARGE_ABOVE_BYTES }),
    triage: triageSettings(s.triage),
    workflow: Object.freeze({
      identity: s.identity ?? 'per_date',
      resolutionTargets: Object.freeze(
        Object.fromEntries(
          Object.entries(s.resolution_targets ?? {}).map(([severity, text]) => [
            severity,
            parseResolutionTarget(text as string) as ResolutionTarget,
          ]),
        ),
      ),
      ...(s.late_arrival === undefined
        ? {}
        : { lateArrival: Object.freeze({ days: s.late_arrival.days, ...(lateSpec ? { field: lateSpec } : {}) }) }),
    }),
  });
}

function triageSettings(t: LongSettings['triage']): TriageSettings {
  // Each key absent takes its default; a limit that can never be crossed ("break_rate": "1") turns it off.
  return Object.freeze({
    holdAbove: Object.freeze({
      breakRate: decimal(t?.hold_above?.break_rate ?? DEFAULT_HOLD_BREAK_RATE),
      exceptions: t?.hold_above?.exceptions ?? DEFAULT_HOLD_EXCEPTIONS,
    }),
    patternMinMembers: t?.pattern_min_members ?? DEFAULT_PATTERN_MIN_MEMBERS,
  });
}

function sensitiveColumns(named: readonly string[], mapped: readonly Mapped[]): string[] {
  const columns = new Set<string>();
  for (const name of named) {
    columns.add(name);
    for (const m of mapped)
      if (m.field.toLowerCase() === name || m.source === name || m.target === name)
        for (const c of [m.field.toLowerCase(), m.source, m.target]) columns.add(c);
  }
  return [...columns].sort();
}

function thresholdSet(t: z.infer<typeof thresholdSetSchema>): ThresholdSet {
  return Object.freeze({
    ...(t.break_rate === undefined ? {} : { breakRate: decimal(t.break_rate) }),
    exceptions: Object.freeze({ ...(t.exceptions ?? {}) }),
    ...(t.net_amount_difference === undefined ? {} : { netAmountDifference: decimal(t.net_amount_difference) }),
  });
}

function fieldSpec(f: z.infer<typeof fieldSchema>, path: string, problems: Problem[]): FieldSpec {
  const type = f.type ?? 'text';
  const only = (option: keyof typeof f, types: FieldType[]) => {
    if (f[option] !== undefined && !types.includes(type))
      problems.push(`${path}.${option}: applies to ${types.join(' or ')} fields only; this field is ${type}`);
  };
  only('normalize', ['text']);
  only('equivalents', ['text']);
  only('tolerance', ['decimal']);
  only('source_format', ['date']);
  only('target_format', ['date']);
  only('tolerance_days', ['date']);
  const normalize = Object.freeze((f.normalize ?? []).filter((n) => n !== 'trim'));
  let equivalents: Map<string, string> | undefined;
  if (f.equivalents !== undefined && type === 'text') {
    equivalents = new Map();
    f.equivalents.forEach((group, g) => {
      const canonical = normalizeText(group[0] as string, normalize);
      for (const member of group) {
        const value = normalizeText(member, normalize);
        const before = equivalents?.get(value);
        if (before !== undefined && before !== canonical)
          problems.push(`${path}.equivalents.${g}: "${member}" is already in another group`);
        else equivalents?.set(value, canonical);
      }
    });
  }
  return Object.freeze({
    field: f.field,
    source: f.source ?? f.field,
    target: f.target ?? f.field,
    type,
    normalize,
    equivalents,
    tolerance: Object.freeze({
      absolute: decimal(f.tolerance?.absolute ?? '0'),
      relative: decimal(f.tolerance?.relative ?? '0'),
    }),
    sourceFormat: compileDateFormat(f.source_format ?? ISO_DATE) as DateFormat,
    targetFormat: compileDateFormat(f.target_format ?? ISO_DATE) as DateFormat,
    toleranceDays: f.tolerance_days ?? 0,
  });
}

// --- Normalisers and date formats (the engine applies them; the policy validates with them) ----

/** Trims, then applies `normalize` in order. */
export function normalizeText(value: string, normalize: readonly Normalizer[]): string {
  let v = value.trim();
  for (const n of normalize) {
    if (n === 'upper') v = v.toUpperCase();
    else if (n === 'lower') v = v.toLowerCase();
    else if (n === 'strip_leading_zeros') {
      let i = 0;
      while (i < v.length - 1 && v.charCodeAt(i) === 48) i++;
      v = v.slice(i);
    }
  }
  return v;
}

const DAY_MS = 86_400_000;

/**
 * A date format built from YYYY, MM and DD (each exactly once, fixed width) and literal text
 * between them, or undefined when `pattern` is not one.
 */
export function compileDateFormat(pattern: string): DateFormat | undefined {
  const at = { YYYY: pattern.indexOf('YYYY'), MM: pattern.indexOf('MM'), DD: pattern.indexOf('DD') };
  for (const [token, i] of Object.entries(at)) if (i < 0 || pattern.indexOf(token, i + 1) >= 0) return undefined;
  const length = pattern.length;
  const literal: [number, number][] = [];
  for (let i = 0; i < length; i++) {
    const inToken = (i >= at.YYYY && i < at.YYYY + 4) || (i >= at.MM && i < at.MM + 2) || (i >= at.DD && i < at.DD + 2);
    if (!inToken) literal.push([i, pattern.charCodeAt(i)]);
  }
  const digits = (text: string, from: number, n: number): number => {
    let v = 0;
    for (let i = from; i < from + n; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return -1;
      v = v * 10 + d;
    }
    return v;
  };
  return Object.freeze({
    pattern,
    parse(text: string): number | undefined {
      if (text.length !== length) return undefined;
      for (const [i, c] of literal) if (text.charCodeAt(i) !== c) return undefined;
      const y = digits(text, at.YYYY, 4);
      const m = digits(text, at.MM, 2);
      const d = digits(text, at.DD, 2);
      if (y < 0 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return undefined;
      return daysFromCivil(y, m, d);
    },
  });
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Days since 1970-01-01 as YYYY-MM-DD. */
export function isoDate(days: number): string {
  return new Date(days * DAY_MS).toISOString().slice(0, 10);
}

// --- Views ------------------------------------------------------------------------------------

/** Whether a run over files of these sizes (bytes) goes to the SQL engine under this policy. */
export function usesSqlEngine(policy: ReconPolicy, sourceBytes: number, targetBytes: number): boolean {
  return sourceBytes + targetBytes > policy.engine.largeAboveBytes;
}

/** The key and compared field specs in the order a file's columns are required. */
function mappedInOrder(policy: ReconPolicy): Mapped[] {
  const amount = policy.fields.find((f) => f.field === policy.amountField);
  return [...policy.keys, ...policy.fields.filter((f) => f !== amount), ...(amount ? [amount] : [])];
}

/** All columns a side's file must carry for this policy (the source's by default). */
export function requiredColumns(policy: ReconPolicy, side: Side = 'source'): string[] {
  return mappedInOrder(policy).map((m) => m[side]);
}

/**
 * Why a file of `format` cannot be `side` of `dataset` under `policy` (it reads another format), or
 * undefined. POST /uploads says it before the bytes are sent; ingest when they arrive another way.
 */
export function formatMismatch(policy: ReconPolicy, dataset: string, side: Side, format: string): string | undefined {
  const expected = policy.sides[side].format;
  return expected === format ? undefined : `the ${dataset} policy reads the ${side} as ${expected}, not ${format}`;
}

/** The field spec of the amount field, if the policy has one. */
export function amountSpec(policy: ReconPolicy): FieldSpec | undefined {
  return policy.fields.find((f) => f.field === policy.amountField);
}

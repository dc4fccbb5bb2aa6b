/**
 * What the API accepts, validated at the edge. Every rejection names the field, what was wrong
 * and what is allowed, so a 400 is enough to fix the request.
 */
import { LIST_SORTS } from '../shared/deadlines.ts';
import { z } from 'zod';
import { EXCEPTION_STATUSES, PATTERN_ACTION_NAMES } from '../shared/exception-lifecycle.ts';
import { PATTERN_ID_PATTERN } from '../shared/patterns/signature.ts';
import { DATASET_PATTERN, DATASET_RULE, EXCEPTION_ID_PATTERN, isCalendarDate } from '../shared/keys.ts';
import { EXCEPTION_TYPES, SEVERITIES, SIDES } from '../shared/types.ts';
import { FORMATS } from '../shared/policy.ts';
import { FILE_STATUSES } from '../shared/tables/files.ts';
import { MATCH_REASON_CODES } from '../shared/manual-match.ts';
import { BadRequestError } from './errors.ts';

// Routes check exception ids against this; it lives with the other ids.
export { EXCEPTION_ID_PATTERN } from '../shared/keys.ts';
export { PATTERN_ID_PATTERN } from '../shared/patterns/signature.ts';
type PatternActionName = (typeof PATTERN_ACTION_NAMES)[number];
export const UPLOAD_CONTENT_TYPES = [
  'text/csv',
  'text/plain',
  'application/x-ndjson',
  'application/vnd.apache.parquet',
  'application/gzip',
  'application/octet-stream',
] as const;
/** S3's limit for a single PUT; larger files need a multipart upload. */
export const MAX_UPLOAD_BYTES = 5 * 1024 ** 3;
export const LIST_LIMIT = { min: 1, max: 200, default: 25 } as const;
export const SEARCH_K = { min: 1, max: 50, default: 10 } as const;
export const RUNS_LIMIT = { min: 1, max: 100, default: 20 } as const;
export const RUN_STATUSES = ['REQUESTED', 'RUNNING', 'STORING', 'COMPLETED', 'FAILED', 'SUPERSEDED'] as const;
export const FILES_LIMIT = { min: 1, max: 100, default: 25 } as const;
/** GET /usage: UTC days, today included (one BatchGetItem reads up to 100 keys). */
export const USAGE_DAYS = { min: 1, max: 90, default: 7 } as const;
const MAX_QUERY_TEXT = 1000;

/** A value as a message names it: its JSON type, and the value itself when short. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

/**
 * The message for a value of the wrong type: "is required" only when it is missing; otherwise
 * what was expected and what was received (a string "5" where a number belongs is not missing).
 */
function expected(what: string, whenMissing: string = what) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? `is required: ${whenMissing}` : `must be ${what}, got ${describeValue(issue.input)}`;
}

/**
 * One of `values`. `inQuery`: a query parameter given twice (`status=OPEN&status=RESOLVED`)
 * reaches the handler joined with a comma, as API Gateway passes it: say so, rather than only
 * "got OPEN,RESOLVED" (not for a JSON body, where no such joining happens).
 */
const oneOf = <T extends readonly [string, ...string[]]>(values: T, inQuery = false) =>
  z.enum(values, {
    error: (issue) => {
      const message = expected(`one of ${values.join(', ')}`)(issue);
      const joined =
        inQuery &&
        typeof issue.input === 'string' &&
        issue.input.split(',').every((v) => (values as readonly string[]).includes(v));
      return joined
        ? `${message} (one value: a query parameter given more than once arrives joined with commas)`
        : message;
    },
  });

/** Same rule as the object keys: the dataset becomes a path segment. */
const dataset = z
  .string({ error: expected(`a string of ${DATASET_RULE}`, `the dataset name, ${DATASET_RULE}`) })
  .regex(DATASET_PATTERN, `must be ${DATASET_RULE}`);

const calendarDate = z
  .string({ error: expected('a date string YYYY-MM-DD') })
  .refine(isCalendarDate, 'must be a calendar date YYYY-MM-DD');

function intParam(bounds: { min: number; max: number; default: number }) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return bounds.default;
      const n = Number(value);
      if (!/^\d{1,9}$/.test(value) || n < bounds.min || n > bounds.max) {
        ctx.addIssue({
          code: 'custom',
          message: `must be an integer from ${bounds.min} to ${bounds.max} (default ${bounds.default})`,
        });
        return z.NEVER;
      }
      return n;
    });
}

/** An object that names unknown keys and the allowed ones; `whenMissing`: what to send when it is absent. */
function strictObject<S extends z.ZodRawShape>(shape: S, what: string, whenMissing?: string) {
  const allowed = Object.keys(shape).join(', ');
  // An empty shape (a body that takes nothing) says so rather than list nothing.
  const takes = allowed === '' ? `this takes no ${what}s` : `allowed: ${allowed}`;
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown ${what} ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${takes}`
        : issue.code === 'invalid_type' && whenMissing !== undefined
          ? expected(`an object of ${allowed}`, whenMissing)(issue)
          : undefined,
  });
}

const filterShape = {
  status: oneOf(EXCEPTION_STATUSES, true).optional(),
  exception_type: oneOf(EXCEPTION_TYPES, true).optional(),
  severity: oneOf(SEVERITIES, true).optional(),
  dataset: dataset.optional(),
  business_date: calendarDate.optional(),
  run_id: z.string().min(1).max(256).optional(),
};
/** The filters search shares with the listing (the exceptions index has these fields). */
export const FILTER_NAMES = Object.keys(filterShape) as (keyof typeof filterShape)[];

/** A field of the dataset's key or rows, by its policy name: `account_id`, `trade_id`. */
const FIELD_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * Filters search and the listing share beyond the index's own: `field` + `value` (an exception
 * whose key or either row has that field equal to that value: `field=account_id&value=ACCT1002`)
 * and a business-date range (`date_from`, `date_to`, inclusive).
 */
const fieldAndDatesShape = {
  field: z
    .string({ error: expected('a field name') })
    .regex(FIELD_NAME_PATTERN, 'must be a field name of the dataset (letters, digits, _ . -), e.g. account_id')
    .optional(),
  value: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
  date_from: calendarDate.optional(),
  date_to: calendarDate.optional(),
};

/** field goes with value; a range runs forwards. */
function fieldAndDatesAgree(
  q: { field?: string; value?: string; date_from?: string; date_to?: string },
  ctx: z.RefinementCtx,
) {
  if ((q.field === undefined) !== (q.value === undefined))
    ctx.addIssue({
      code: 'custom',
      message: 'goes with value: field names a key or compared field, value the value it must have',
      path: ['field'],
    });
  if (q.date_from !== undefined && q.date_to !== undefined && q.date_from > q.date_to)
    ctx.addIssue({ code: 'custom', message: 'must not be after date_to', path: ['date_from'] });
}

/** An assignee or a team: free text, as an analyst typed it. */
const ownerName = (what: string) =>
  z
    .string({ error: expected(`a ${what}`) })
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'must be at most 200 characters');

/**
 * The listing's and the counts' filters: the shared ones, a break pattern's members
 * (by_pattern_sharded), and the owner filters (no index of their own: a FilterExpression on the
 * partition the others choose). `assignee=me` is the caller (routes.ts resolves it).
 */
const listFilterShape = {
  ...filterShape,
  pattern_id: z
    .string({ error: expected('a pattern id') })
    .regex(PATTERN_ID_PATTERN, 'must be a pattern id: pat_ and 16 lower-case hexadecimal characters')
    .optional(),
  assignee: ownerName('person (or me)').optional(),
  team: ownerName('team name').optional(),
  ...fieldAndDatesShape,
};
export const LIST_FILTER_NAMES = Object.keys(listFilterShape) as (keyof typeof listFilterShape)[];

/** `overdue=true`: open exceptions past their due date (`false` is the same as leaving it out). */
const overdueParam = z
  .enum(['true', 'false'], { error: expected('true or false') })
  .optional()
  .transform((v) => (v === 'true' ? ('true' as const) : undefined));

export const listQuerySchema = strictObject(
  {
    ...listFilterShape,
    overdue: overdueParam,
    sort: oneOf(LIST_SORTS, true).optional(),
    limit: intParam(LIST_LIMIT),
    next_token: z.string().min(1, 'must not be empty').optional(),
  },
  'query parameter',
)
  .refine((q) => q.business_date === undefined || q.dataset !== undefined, {
    // Exceptions are indexed by dataset and date together; a date alone would read every dataset.
    message: 'business_date needs dataset as well (exceptions are indexed by dataset and business date together)',
    path: ['business_date'],
  })
  .superRefine(fieldAndDatesAgree);
export type ListQuery = z.infer<typeof listQuerySchema>;

/** GET /exception-counts: the listing's filters (`overdue` among them), no paging. */
export const countsQuerySchema = strictObject({ ...listFilterShape, overdue: overdueParam }, 'query parameter')
  .refine((q) => q.business_date === undefined || q.dataset !== undefined, {
    message: 'business_date needs dataset as well (exceptions are indexed by dataset and business date together)',
    path: ['business_date'],
  })
  .superRefine(fieldAndDatesAgree);
export type ListFilters = Pick<ListQuery, (typeof LIST_FILTER_NAMES)[number]> & { readonly overdue?: 'true' };

export const searchFilterShape = {
  ...fieldAndDatesShape,
  pattern_id: z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
};

export const searchQuerySchema = strictObject(
  {
    ...filterShape,
    ...searchFilterShape,
    q: z
      .string({ error: expected('text', 'the text to search for, e.g. q=settlement%20delay') })
      .trim()
      .min(1, 'must not be empty: say what to look for')
      .max(MAX_QUERY_TEXT, `must be at most ${MAX_QUERY_TEXT} characters`),
    k: intParam(SEARCH_K),
  },
  'query parameter',
).superRefine(fieldAndDatesAgree);
export type SearchQuery = z.infer<typeof searchQuerySchema>;

export const reportQuerySchema = strictObject(
  { format: z.enum(['md', 'html'], { error: expected('md or html') }).default('html') },
  'query parameter',
);

export const runsQuerySchema = strictObject(
  {
    dataset: dataset.optional(),
    business_date: calendarDate.optional(),
    status: oneOf(RUN_STATUSES, true).optional(),
    limit: intParam(RUNS_LIMIT),
    next_token: z.string().min(1, 'must not be empty').optional(),
  },
  'query parameter',
).refine((q) => q.business_date === undefined || q.dataset !== undefined, {
  message: 'business_date needs dataset as well (runs are indexed by dataset and business date together)',
  path: ['business_date'],
});
export type RunsQuery = z.infer<typeof runsQuerySchema>;

/** GET /usage. */
export const usageQuerySchema = strictObject({ days: intParam(USAGE_DAYS) }, 'query parameter');
export type UsageQuery = z.infer<typeof usageQuerySchema>;

/** GET /files. A date alone is allowed: one day's files across datasets is a small partition. */
export const filesQuerySchema = strictObject(
  {
    dataset: dataset.optional(),
    business_date: calendarDate.optional(),
    status: oneOf(FILE_STATUSES, true).optional(),
    limit: intParam(FILES_LIMIT),
    next_token: z.string().min(1, 'must not be empty').optional(),
  },
  'query parameter',
);
export type FilesQuery = z.infer<typeof filesQuerySchema>;

/** POST /runs/{id}/triage: what an analyst does with a run the runaway guard held. */
export const RUN_TRIAGE_ACTIONS = ['release', 'abandon'] as const;
export const runTriageBodySchema = strictObject({ action: oneOf(RUN_TRIAGE_ACTIONS) }, 'field');
/** POST /exceptions/{id}/triage takes nothing: no body, or `{}` (a field would be silently ignored). */
export const retriageBodySchema = strictObject({}, 'field');

const exceptionChangeShape = {
  version: z
    .number({ error: expected('an integer', 'the version you last read (409 if it has changed since)') })
    .int('must be an integer')
    .min(1, 'must be at least 1'),
  status: oneOf(EXCEPTION_STATUSES).optional(),
  /** null clears the assignee. */
  assignee: z
    .union(
      [
        z
          .string()
          .trim()
          .min(1, 'must not be empty (send null to clear it)')
          .max(200, 'must be at most 200 characters'),
        z.null(),
      ],
      { error: expected('a string, or null to clear it') },
    )
    .optional(),
  /** null clears the team. */
  team: z.union([ownerName('team name'), z.null()], { error: expected('a team name, or null to clear it') }).optional(),
  note: z
    .string({ error: expected('a string') })
    .trim()
    .min(1, 'must not be empty')
    .max(2000, 'must be at most 2000 characters')
    .optional(),
};
const changesSomething = (b: { status?: unknown; assignee?: unknown; team?: unknown; note?: unknown }) =>
  b.status !== undefined || b.assignee !== undefined || b.team !== undefined || b.note !== undefined;
const NOTHING_TO_CHANGE = 'nothing to change: send at least one of status, assignee, team or note';

export const patchBodySchema = strictObject(exceptionChangeShape, 'field').refine(changesSomething, {
  message: NOTHING_TO_CHANGE,
});
export type PatchBody = z.infer<typeof patchBodySchema>;

const versionNumber = z
  .number({ error: expected('an integer', 'the version you last read (409 if it has changed since)') })
  .int('must be an integer')
  .min(1, 'must be at least 1');

/** Exception id to the version the caller last read. */
const versionsByException = z.record(
  z.string().regex(EXCEPTION_ID_PATTERN, 'must be exception ids (32 lower-case hexadecimal characters)'),
  z
    .number({ error: expected('an integer version') })
    .int('must be an integer')
    .min(1, 'must be at least 1'),
  { error: expected('an object of exception id to version') },
);

/** Exceptions one bulk request may change (ids, or a filter's first matches). */
export const BULK_MAX = 500;

/**
 * POST /exceptions/bulk: one change (PATCH's fields but the version) to the exceptions named by
 * `ids`, or to the first BULK_MAX a listing `filter` matches. Each is checked against its version
 * in `versions`, or (an exception not named there) the version read when the request runs.
 */
export const bulkBodySchema = strictObject(
  {
    ids: z
      .array(z.string().regex(EXCEPTION_ID_PATTERN, 'must be exception ids (32 lower-case hexadecimal characters)'), {
        error: expected('an array of exception ids'),
      })
      .min(1, 'must name at least one exception')
      .max(BULK_MAX, `must name at most ${BULK_MAX} exceptions (or send a filter)`)
      .optional(),
    filter: strictObject(listFilterShape, 'filter')
      .refine((q) => q.business_date === undefined || q.dataset !== undefined, {
        message: 'business_date needs dataset as well (exceptions are indexed by dataset and business date together)',
        path: ['business_date'],
      })
      .optional(),
    change: strictObject(
      (({ version: _version, ...rest }) => rest)(exceptionChangeShape),
      'change field',
      'the change to make to each exception, e.g. {"status": "ACKNOWLEDGED"} or {"note": "..."}',
    ).refine(changesSomething, { message: NOTHING_TO_CHANGE }),
    versions: versionsByException.optional(),
  },
  'field',
)
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), {
    message: 'send exactly one of ids (the exceptions to change) or filter (a listing filter)',
  })
  // With ids, a version for an exception not among them would be silently unused: a typo'd id.
  .superRefine((b, ctx) => {
    if (b.ids === undefined || b.versions === undefined) return;
    const named = new Set(b.ids);
    const stray = Object.keys(b.versions).filter((id) => !named.has(id));
    if (stray.length > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['versions'],
        message: `names ${stray.join(', ')}, not among ids: a version is checked only for an exception the request changes`,
      });
  });
export type BulkBody = z.infer<typeof bulkBodySchema>;

/** POST /exceptions/{id}/approval: an approver's decision on the move waiting for it. */
export const APPROVAL_DECISIONS = ['approve', 'reject'] as const;
export const approvalBodySchema = strictObject(
  {
    version: versionNumber,
    decision: oneOf(APPROVAL_DECISIONS),
    note: z
      .string({ error: expected('a string') })
      .trim()
      .min(1, 'must not be empty')
      .max(2000, 'must be at most 2000 characters')
      .optional(),
  },
  'field',
);
export type ApprovalBody = z.infer<typeof approvalBodySchema>;

/** POST /exceptions/{id}/match: pair this missing exception with the opposite side's. */
export const matchBodySchema = strictObject(
  {
    other_id: z.string({ error: expected('an exception id') }).regex(EXCEPTION_ID_PATTERN, 'must be an exception id'),
    reason_code: oneOf(MATCH_REASON_CODES),
    version: versionNumber,
    other_version: versionNumber,
    note: z
      .string({ error: expected('a string') })
      .trim()
      .min(1, 'must not be empty')
      .max(2000, 'must be at most 2000 characters')
      .optional(),
  },
  'field',
);
export type MatchBody = z.infer<typeof matchBodySchema>;

export const SUGGESTIONS_LIMIT = { min: 1, max: 20, default: 5 } as const;
export const suggestionsQuerySchema = strictObject({ limit: intParam(SUGGESTIONS_LIMIT) }, 'query parameter');

export const uploadBodySchema = strictObject(
  {
    dataset,
    business_date: calendarDate,
    side: oneOf(SIDES),
    format: oneOf(FORMATS).optional(),
    gzip: z.boolean({ error: expected('true or false', 'whether the file is gzip-compressed') }).optional(),
    /** Signed as given; by default the format's (functions/shared/keys.ts contentTypeOf). */
    content_type: oneOf(UPLOAD_CONTENT_TYPES).optional(),
    content_length: z
      .number({ error: expected('a whole number of bytes', 'the file size in bytes') })
      .int('must be an integer')
      .min(1, 'must be at least 1 (an empty file cannot be reconciled)')
      .max(MAX_UPLOAD_BYTES, `must be at most ${MAX_UPLOAD_BYTES} bytes (5 GiB, the S3 single-PUT limit)`),
  },
  'field',
);
export type UploadBody = z.infer<typeof uploadBodySchema>;

/** A policy document is prose and one JSON block: far below this. */
export const MAX_POLICY_BYTES = 1024 * 1024;

export const policyUploadBodySchema = strictObject(
  {
    dataset,
    content_length: z
      .number({ error: expected('a whole number of bytes', 'the file size in bytes') })
      .int('must be an integer')
      .min(1, 'must be at least 1')
      .max(MAX_POLICY_BYTES, `must be at most ${MAX_POLICY_BYTES} bytes (a policy document)`),
  },
  'field',
);
export type PolicyUploadBody = z.infer<typeof policyUploadBodySchema>;

/** POST /runs/{id}/patterns/{pattern_id}/actions. */
export const patternActionBodySchema = strictObject(
  {
    action: oneOf(PATTERN_ACTION_NAMES as [PatternActionName, ...PatternActionName[]]),
    note: z
      .string({ error: expected('a string') })
      .trim()
      .min(1, 'must not be empty')
      .max(2000, 'must be at most 2000 characters')
      .optional(),
    /** The version the caller last read of each member: a member changed since is a CONFLICT. */
    versions: z
      .record(
        z.string().regex(EXCEPTION_ID_PATTERN, 'must be exception ids (32 lower-case hexadecimal characters)'),
        z
          .number({ error: expected('an integer version') })
          .int('must be an integer')
          .min(1, 'must be at least 1'),
        { error: expected('an object of exception id to version') },
      )
      .optional(),
  },
  'field',
);
export type PatternActionBody = z.infer<typeof patternActionBodySchema>;

/** Parses `input` or throws a 400 listing every problem. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.infer<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({
    field: issue.path.join('.') || '(root)',
    message: issue.message,
  }));
  const text = issues.map((i) => (i.field === '(root)' ? i.message : `${i.field}: ${i.message}`)).join('; ');
  throw new BadRequestError('VALIDATION_ERROR', `invalid ${what}: ${text}`, { issues });
}

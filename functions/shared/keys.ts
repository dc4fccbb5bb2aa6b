/**
 * Keys and identifiers: how a record's partition values, object keys and ids are built and
 * parsed, and the name and date rules they rely on. Every place that builds or reads one imports
 * it from here.
 */
import { createHash } from 'node:crypto';
import { PREFIXES } from './resources.ts';
import { FORMATS, type FileFormat, type Identity } from './policy.ts';
import { SIDES, type ExceptionType, type Side } from './types.ts';

// --- Names and dates ------------------------------------------------------------------------

/** A dataset name becomes a path segment of object keys and part of partition values. */
export const DATASET_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const DATASET_RULE = '1-64 letters, digits, "-" or "_"';

/** The shape of a business date; {@link isCalendarDate} also checks the day exists. */
export const BUSINESS_DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** A real calendar date YYYY-MM-DD: 2025-02-30 matches the pattern but is rejected. */
export function isCalendarDate(value: string): boolean {
  if (!BUSINESS_DATE_PATTERN.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
}

// --- Partition values -----------------------------------------------------------------------

/** Partition value shared by the files table and the `by_dataset_date` indexes of exceptions and runs. */
export function datasetDateKey(dataset: string, businessDate: string): string {
  return `${dataset}#${businessDate}`;
}

// --- Incoming object keys -------------------------------------------------------------------

export interface IncomingKey {
  readonly dataset: string;
  readonly businessDate: string;
  readonly side: Side;
  /** The file's format, from its extension (`csv` when not given). */
  readonly format?: FileFormat;
  /** Whether the key ends in `.gz` (gzip is also detected from the bytes, whatever the key). */
  readonly gzip?: boolean;
}

/** Where an extract is uploaded: `incoming/{dataset}/{YYYY-MM-DD}/{source|target}.{csv|jsonl|parquet}[.gz]`. */
export function incomingKey(key: IncomingKey): string {
  return `${PREFIXES.incoming}${key.dataset}/${key.businessDate}/${key.side}.${key.format ?? 'csv'}${key.gzip ? '.gz' : ''}`;
}

/** The layout {@link incomingKey} builds, as people read it. */
export const INCOMING_KEY_LAYOUT = `${PREFIXES.incoming}{dataset}/{YYYY-MM-DD}/{${SIDES.join('|')}}.{${FORMATS.join('|')}}[.gz]`;

/** The content type an upload of this format is signed for. */
export function contentTypeOf(format: FileFormat, gzip: boolean): string {
  if (gzip) return 'application/gzip';
  return format === 'jsonl'
    ? 'application/x-ndjson'
    : format === 'parquet'
      ? 'application/vnd.apache.parquet'
      : 'text/csv';
}

export type ParsedIncomingKey =
  | { readonly ok: true; readonly key: IncomingKey & { readonly format: FileFormat; readonly gzip: boolean } }
  | { readonly ok: false; readonly reason: string };

/** Segments of `{prefix}{dataset}/{date}/{side}.{format}[.gz]`, each checked below. */
const INCOMING_SEGMENTS = /^([^/]*)\/([^/]*)\/([^/]*)\.(csv|jsonl|parquet)(\.gz)?$/;

/**
 * The inverse of {@link incomingKey}. Anything else gets the reason it is not an extract key,
 * worded to follow `object key "..." `.
 */
export function parseIncomingKey(key: string): ParsedIncomingKey {
  const m = key.startsWith(PREFIXES.incoming) ? INCOMING_SEGMENTS.exec(key.slice(PREFIXES.incoming.length)) : null;
  const [, dataset = '', businessDate = '', side = '', format = 'csv', gz] = m ?? [];
  if (
    !m ||
    !DATASET_PATTERN.test(dataset) ||
    !BUSINESS_DATE_PATTERN.test(businessDate) ||
    !(SIDES as readonly string[]).includes(side)
  ) {
    return { ok: false, reason: 'is not an extract key' };
  }
  if (!isCalendarDate(businessDate))
    return { ok: false, reason: `has "${businessDate}", which is not a calendar date` };
  return {
    ok: true,
    key: { dataset, businessDate, side: side as Side, format: format as FileFormat, gzip: gz !== undefined },
  };
}

// --- Dataset policy keys -------------------------------------------------------------------

/** Where a dataset's policy is uploaded (and where it lives in the repository): `policies/datasets/{dataset}.md`. */
export const DATASET_POLICY_DIR = PREFIXES.datasetPolicies;

export function datasetPolicyKey(dataset: string): string {
  return `${DATASET_POLICY_DIR}${dataset}.md`;
}

/** The dataset a `policies/datasets/{dataset}.md` key is the policy of, or undefined. */
export function parseDatasetPolicyKey(key: string): string | undefined {
  if (!key.startsWith(DATASET_POLICY_DIR) || !key.endsWith('.md')) return undefined;
  const dataset = key.slice(DATASET_POLICY_DIR.length, -'.md'.length);
  return DATASET_PATTERN.test(dataset) ? dataset : undefined;
}

/** The accepted version of a dataset's policy, the one runs apply. */
export function policyInForceKey(dataset: string): string {
  return `${PREFIXES.policiesInForce}${dataset}.md`;
}

/** The dataset of a `policies-in-force/{dataset}.md` key, or undefined. */
export function parsePolicyInForceKey(key: string): string | undefined {
  if (!key.startsWith(PREFIXES.policiesInForce) || !key.endsWith('.md')) return undefined;
  const dataset = key.slice(PREFIXES.policiesInForce.length, -'.md'.length);
  return DATASET_PATTERN.test(dataset) ? dataset : undefined;
}

// --- S3 event sequencers --------------------------------------------------------------------

/**
 * S3 sequencers are hexadecimal values of varying length; the greater value is the later event.
 * Compare them as numbers: left-pad the shorter with zeros. Only sequencers of the same key in the
 * same bucket compare meaningfully (never across the two regions' buckets).
 */
export function compareSequencers(a: string, b: string): number {
  const width = Math.max(a.length, b.length);
  const x = a.toUpperCase().padStart(width, '0');
  const y = b.toUpperCase().padStart(width, '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What orders two uploads of one (dataset, date, side): where, the sequencer there, and when. */
export interface UploadOrder {
  readonly bucket: string;
  /** The object's key: a side can arrive under several (`source.csv`, `source.jsonl`, `source.csv.gz`). */
  readonly key: string;
  readonly sequencer: string;
  /** The S3 event's time (ISO-8601), when known. */
  readonly uploaded_at?: string | undefined;
}

/**
 * Whether upload `a` is later than `b`. For the same key in the same bucket by sequencer (S3
 * orders events only per key). Otherwise — another key of the same side (`source.csv` then
 * `source.jsonl`), or the secondary region's bucket after a failover — sequencers mean nothing,
 * so by the event time: S3 stamps it to the second, so two such uploads in the same second
 * order arbitrarily (the later arrival wins a tie), and one without a time counts as later than
 * the recorded one.
 * files-dynamo.ts states the same rule as the write's condition.
 */
export function isLaterUpload(a: UploadOrder, b: UploadOrder): boolean {
  if (a.bucket === b.bucket && a.key === b.key) return compareSequencers(a.sequencer, b.sequencer) > 0;
  if (a.uploaded_at === undefined || b.uploaded_at === undefined) return true;
  return a.uploaded_at >= b.uploaded_at;
}

/**
 * A sequencer as a fixed-width upper-case string, so a database compares it right as a string
 * (a stored conditional write keeps the later event). Agrees with {@link compareSequencers} for
 * sequencers up to 32 hex digits.
 */
export function sequencerSortKey(sequencer: string): string {
  return sequencer.toUpperCase().padStart(32, '0');
}

// --- Identifiers ----------------------------------------------------------------------------

/** Idempotency key of one version of one object: never the SQS messageId (a redrive changes it). */
export function idempotencyKey(ref: { readonly bucket: string; readonly key: string; readonly etag: string }): string {
  return `s3://${ref.bucket}/${ref.key}#${ref.etag}`;
}

export const EXCEPTION_ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Stable exception id: a hash of (dataset, business date, type, key). Re-running the same
 * reconciliation lands on the same ids, so it updates records instead of duplicating them.
 */
export function exceptionId(dataset: string, businessDate: string, type: ExceptionType, keyText: string): string {
  return createHash('sha256')
    .update(`${dataset}\u001f${businessDate}\u001f${type}\u001f${keyText}`)
    .digest('hex')
    .slice(0, 32);
}

/**
 * The exception id under a dataset's identity: `per_date` is {@link exceptionId}; `across_dates`
 * (snapshot data) leaves the business date out, so the same break found on consecutive dates
 * lands on one exception that ages instead of a new one each day.
 */
export function exceptionIdFor(
  identity: Identity,
  dataset: string,
  businessDate: string,
  type: ExceptionType,
  keyText: string,
): string {
  if (identity === 'per_date') return exceptionId(dataset, businessDate, type, keyText);
  // A marker no business date can be, so the two identities never share an id.
  return exceptionId(dataset, 'across_dates', type, keyText);
}

/**
 * The reconciliation engine: source vs target under the recon policy. Pure: no AWS, no clock
 * except for the run duration. Streams both files; holds one compact entry per key.
 *
 * The parts: `side-loader.ts` reads a side and applies the row rules, `source-index.ts` holds the
 * source's keys and what the target matched, `findings.ts` builds the breaks (tolerance and
 * severity). This file runs them in order and walks the index for the findings.
 */
import { CsvFileError, readCsvInto } from '../shared/csv.ts';
import { ReconInputError } from '../shared/extract.ts';
import { gunzipIfCompressed, GzipError } from '../shared/formats/gzip.ts';
import { JsonLinesFileError, readJsonLinesInto } from '../shared/formats/jsonl.ts';
import { ParquetFileError, readParquetInto } from '../shared/formats/parquet.ts';
import { formatDecimal } from '../shared/decimal.ts';
import { requiredColumns, type ReconPolicy } from '../shared/policy.ts';
import type { ExceptionType, RunSummary, Side } from '../shared/types.ts';
import { ControlTotals } from './control-totals.ts';
import { displayRow, FindingBuilder, type Finding } from './findings.ts';
import { outcomeOf, ratioText } from './outcome.ts';
import { SideLoader, type Columns } from './side-loader.ts';
import {
  REPEAT,
  SOURCE_DUPLICATED,
  SourceIndex,
  TARGET_DUPLICATED,
  TARGET_SAME_TEXT,
  TARGET_SEEN,
} from './source-index.ts';

export interface ReconInput {
  /** Shown in errors: a path or an s3:// URL. */
  readonly name: string;
  readonly stream: AsyncIterable<Uint8Array | string>;
}

/** The run summary the engine always fills in full. */
export type ReconSummary = Required<Omit<RunSummary, 'amount_totals'>> & Pick<RunSummary, 'amount_totals'>;

export interface ReconResult {
  readonly findings: Finding[];
  readonly summary: ReconSummary;
}

export type { Finding } from './findings.ts';
export { MAX_FIELD_CHARS } from './side-loader.ts';
// File-level errors and header rules are shared with ingest's validation (shared/extract.ts).
export { ReconInputError, type ReconErrorCode } from '../shared/extract.ts';

export async function reconcile(source: ReconInput, target: ReconInput, policy: ReconPolicy): Promise<ReconResult> {
  const started = performance.now();
  const build = new FindingBuilder(policy);
  const index = new SourceIndex();
  const totals = ControlTotals.wanted(policy) ? new ControlTotals(policy) : undefined;
  const s = await loadSide(
    new SideLoader('source', source.name, index, policy, build, undefined, totals),
    source,
    policy,
  );
  index.build();
  const t = await loadSide(
    new SideLoader('target', target.name, index, policy, build, s.header, totals),
    target,
    policy,
  );
  const sCols = s.cols as Columns;
  const tCols = t.cols as Columns;
  const findings: Finding[] = [];
  let matched = 0;
  let keys = 0;
  let keysWithException = 0;
  const sInvalid = [...s.invalid];
  const tInvalid = [...t.invalid];

  for (let slot = 0; slot < index.size; slot++) {
    const flags = index.flags(slot);
    if (flags & REPEAT) continue;
    keys++;
    if (
      (flags & (SOURCE_DUPLICATED | TARGET_DUPLICATED | TARGET_SEEN | TARGET_SAME_TEXT)) ===
      (TARGET_SEEN | TARGET_SAME_TEXT)
    ) {
      matched++;
      continue;
    }
    const keyText = index.keyText(slot);
    const se = index.sourceEntry(slot);
    const te = flags & TARGET_SEEN ? index.targetEntry(slot, se) : undefined;
    const tDup = flags & TARGET_DUPLICATED ? index.targetRepeats(slot) : undefined;
    if (flags & SOURCE_DUPLICATED) {
      const sDup = index.sourceRepeats(slot);
      // Both sides duplicated: each finding accounts for its own side's rows only.
      findings.push(build.duplicate('DUPLICATE_IN_SOURCE', keyText, s, se, sDup, t, te, tDup, tDup === undefined));
      if (te && tDup) findings.push(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, sDup, false));
      keysWithException++;
      continue;
    }
    if (te === undefined) {
      // The key's target row was rejected as invalid: this row belongs on that exception.
      const invalidAt = t.invalidKeys.get(keyText);
      if (invalidAt !== undefined && attach(tInvalid, invalidAt, 'source', displayRow(s, se), se.line)) {
        t.invalidKeys.delete(keyText);
        keys--; // counted with the invalid row
        continue;
      }
      findings.push(build.missing('MISSING_IN_TARGET', keyText, s, se));
      keysWithException++;
      continue;
    }
    keysWithException++;
    if (tDup) {
      findings.push(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, undefined, true));
      continue;
    }
    const finding = build.compare(keyText, s, se, sCols, t, te, tCols);
    if (finding) findings.push(finding);
    else {
      matched++;
      keysWithException--;
    }
  }
  for (const [keyText, te] of t.targetOnly) {
    keys++;
    keysWithException++;
    if (te.extra) {
      findings.push(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, te.extra, s, undefined, undefined, true));
      continue;
    }
    const invalidAt = s.invalidKeys.get(keyText);
    if (invalidAt !== undefined && attach(sInvalid, invalidAt, 'target', displayRow(t, te), te.line)) {
      s.invalidKeys.delete(keyText);
      keys--;
      keysWithException--;
      continue;
    }
    findings.push(build.missing('MISSING_IN_SOURCE', keyText, t, te));
  }
  findings.push(...sInvalid, ...tInvalid);
  keys += sInvalid.length + tInvalid.length;
  keysWithException += sInvalid.length + tInvalid.length;

  const exceptions: Partial<Record<ExceptionType, number>> = {};
  for (const f of findings) exceptions[f.type] = (exceptions[f.type] ?? 0) + 1;
  const net = totals?.netAmountDifference();
  const verdict = outcomeOf(policy, { keys, keysWithException, exceptions, netAmountDifference: net });
  return {
    findings,
    summary: {
      rows: { source: s.rows, target: t.rows },
      matched,
      exceptions,
      rejected: { source: s.invalid.length, target: t.invalid.length },
      duration_ms: Math.round(performance.now() - started),
      outcome: verdict.outcome,
      thresholds_crossed: verdict.crossed,
      keys,
      keys_with_exception: keysWithException,
      match_rate: ratioText(matched, keys),
      break_rate: ratioText(keysWithException, keys),
      fields: build.stats.toJSON(),
      ...(totals && net !== undefined
        ? { amount_totals: { ...totals.amountTotals(), net_difference: formatDecimal(net) } }
        : {}),
      control_totals: totals?.result() ?? [],
    },
  };
}

/**
 * Puts the other side's row of an invalid row's key on that INVALID_RECORD, so the key has one
 * exception. False when the finding already carries a row of that side.
 */
function attach(invalid: Finding[], at: number, side: Side, row: Finding['source'], line: number): boolean {
  const f = invalid[at] as Finding;
  if (f[side] !== null) return false;
  invalid[at] = { ...f, [side]: row, lines: { ...f.lines, [side]: [line] } };
  return true;
}

async function loadSide(loader: SideLoader, input: ReconInput, policy: ReconPolicy): Promise<SideLoader> {
  const options = policy.sides[loader.side];
  const stream = gunzipIfCompressed(input.stream);
  try {
    if (options.format === 'jsonl') await readJsonLinesInto(stream, loader);
    else if (options.format === 'parquet') await readParquetInto(stream, loader);
    else await readCsvInto(stream, loader, { delimiter: options.delimiter, encoding: options.encoding });
  } catch (error) {
    if (error instanceof CsvFileError || error instanceof JsonLinesFileError || error instanceof ParquetFileError)
      throw new ReconInputError(error.code, input.name, error.message, error.line);
    if (error instanceof GzipError) throw new ReconInputError('FILE_UNREADABLE', input.name, error.message);
    if (error instanceof ReconInputError) throw error;
    throw new ReconInputError('FILE_UNREADABLE', input.name, `cannot read file: ${(error as Error).message}`);
  }
  if (loader.cols === undefined) {
    throw new ReconInputError(
      'FILE_EMPTY',
      input.name,
      options.format === 'csv'
        ? `file is empty; expected a header row with columns ${requiredColumns(policy, loader.side).join(', ')}`
        : `file is empty; expected ${options.format === 'jsonl' ? 'one JSON object per line' : 'a Parquet file'} with fields ${requiredColumns(policy, loader.side).join(', ')}`,
    );
  }
  return loader;
}

/** Where reconcileInto sends each finding; awaited, so a slow sink holds the engine back. */
export type FindingSink = (finding: Finding) => void | Promise<void>;

/**
 * Streams every finding into the sink; resolves with the run summary (the shared contract of
 * issue 11). A stand-in over `reconcile` until the streaming engine replaces it.
 */
export async function reconcileInto(
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  sink: FindingSink,
): Promise<ReconSummary> {
  const result = await reconcile(source, target, policy);
  for (const finding of result.findings) await sink(finding);
  return result.summary;
}

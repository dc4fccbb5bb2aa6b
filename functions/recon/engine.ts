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
import { requiredColumns, type ReconPolicy } from '../shared/policy.ts';
import type { ExceptionType, RunSummary } from '../shared/types.ts';
import { FindingBuilder, type Finding } from './findings.ts';
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

export interface ReconResult {
  readonly findings: Finding[];
  readonly summary: RunSummary;
}

export type { Finding } from './findings.ts';
export { MAX_FIELD_CHARS } from './side-loader.ts';
// File-level errors and header rules are shared with ingest's validation (shared/extract.ts).
export { ReconInputError, type ReconErrorCode } from '../shared/extract.ts';

export async function reconcile(source: ReconInput, target: ReconInput, policy: ReconPolicy): Promise<ReconResult> {
  const started = performance.now();
  const build = new FindingBuilder(policy);
  const index = new SourceIndex();
  const s = await loadSide(new SideLoader('source', source.name, index, policy, build), source, policy);
  index.build();
  const t = await loadSide(new SideLoader('target', target.name, index, policy, build, s.header), target, policy);
  const sCols = s.cols as Columns;
  const tCols = t.cols as Columns;
  const findings: Finding[] = [];
  let matched = 0;

  for (let slot = 0; slot < index.size; slot++) {
    const flags = index.flags(slot);
    if (flags & REPEAT) continue;
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
      continue;
    }
    if (te === undefined) {
      findings.push(build.missing('MISSING_IN_TARGET', keyText, s, se));
      continue;
    }
    if (tDup) {
      findings.push(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, undefined, true));
      continue;
    }
    const finding = build.compare(keyText, s, se, sCols, t, te, tCols);
    if (finding) findings.push(finding);
    else matched++;
  }
  for (const [keyText, te] of t.targetOnly) {
    findings.push(
      te.extra
        ? build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, te.extra, s, undefined, undefined, true)
        : build.missing('MISSING_IN_SOURCE', keyText, t, te),
    );
  }
  findings.push(...s.invalid, ...t.invalid);

  const exceptions: Partial<Record<ExceptionType, number>> = {};
  for (const f of findings) exceptions[f.type] = (exceptions[f.type] ?? 0) + 1;
  return {
    findings,
    summary: {
      rows: { source: s.rows, target: t.rows },
      matched,
      exceptions,
      rejected: { source: s.invalid.length, target: t.invalid.length },
      duration_ms: Math.round(performance.now() - started),
    },
  };
}

async function loadSide(loader: SideLoader, input: ReconInput, policy: ReconPolicy): Promise<SideLoader> {
  try {
    await readCsvInto(input.stream, loader);
  } catch (error) {
    if (error instanceof CsvFileError) throw new ReconInputError(error.code, input.name, error.message, error.line);
    if (error instanceof ReconInputError) throw error;
    throw new ReconInputError('FILE_UNREADABLE', input.name, `cannot read file: ${(error as Error).message}`);
  }
  if (loader.cols === undefined) {
    throw new ReconInputError(
      'FILE_EMPTY',
      input.name,
      `file is empty; expected a header row with columns ${requiredColumns(policy).join(', ')}`,
    );
  }
  return loader;
}

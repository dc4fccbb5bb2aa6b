/**
 * The reconciliation engine: source vs target under the recon policy. Pure: no AWS, no clock
 * except for the run duration. Streams both files; holds one compact entry per key.
 *
 * The parts: `side-loader.ts` reads a side and applies the row rules, `source-index.ts` holds the
 * source's keys and what the target matched, `findings.ts` builds the breaks (tolerance and
 * severity), `partition.ts` spills both sides to disk when they outgrow the memory budget. This
 * file runs them in order and walks the index for the findings.
 */
import { CsvFileError, readCsvInto } from '../shared/csv.ts';
import { columnsOfEmptyFile, ReconInputError } from '../shared/extract.ts';
import { gunzipIfCompressed, GzipError } from '../shared/formats/gzip.ts';
import { JsonLinesFileError, readJsonLinesInto } from '../shared/formats/jsonl.ts';
import { ParquetFileError, readParquetInto } from '../shared/formats/parquet.ts';
import { formatDecimal } from '../shared/decimal.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import { EXCEPTION_TYPES, type ExceptionType, type RunSummary, type Side } from '../shared/types.ts';
import { ControlTotals } from './control-totals.ts';
import { displayRow, FindingBuilder, type Finding } from './findings.ts';
import { summarise } from './outcome.ts';
import {
  defaultMemoryBudgetBytes,
  MAX_DEPTH,
  PARTITIONS,
  readPartition,
  SpillArea,
  type PartitionWriter,
} from './partition.ts';
import { CHECK_EVERY, SideLoader, type Columns } from './side-loader.ts';
import {
  hashOf,
  REPEAT,
  SOURCE_DUPLICATED,
  SourceIndex,
  TARGET_DUPLICATED,
  TARGET_SAME_TEXT,
  TARGET_SEEN,
  type Entry,
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

/** Receives each finding as it is found; a returned promise is awaited (backpressure). */
export type FindingSink = (finding: Finding) => void | Promise<void>;

export interface ReconOptions {
  /** Above this many bytes of working memory the engine partitions both sides to disk. */
  readonly memoryBudgetBytes?: number;
  /** Where partition files go; default `os.tmpdir()`. */
  readonly tmpDir?: string;
  /** Told what an operator may want to know of how the sides were read (the run's log). */
  readonly note?: (message: string, details: Record<string, unknown>) => void;
}

export type { Finding } from './findings.ts';
export { MAX_FIELD_CHARS } from './side-loader.ts';
// File-level errors and header rules are shared with ingest's validation (shared/extract.ts).
export { ReconInputError, type ReconErrorCode } from '../shared/extract.ts';

/** As `reconcileInto`, collecting the findings (the CLI, tests). */
export async function reconcile(
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  options?: ReconOptions,
): Promise<ReconResult> {
  const findings: Finding[] = [];
  const summary = await reconcileInto(source, target, policy, (f) => void findings.push(f), options);
  return { findings, summary };
}

/**
 * Streams every finding into the sink as it is found; resolves with the run summary at the end.
 *
 * Rows are matched in memory while what the engine holds stays under `memoryBudgetBytes`; past
 * it, both sides go to partition files by key hash under `tmpDir` and each partition is
 * reconciled on its own (`partition.ts`), with the same findings and summary. In that case the
 * findings come partition by partition: each partition's in the order a run in memory gives
 * them, the partitions in a fixed order.
 */
export async function reconcileInto(
  source: ReconInput,
  target: ReconInput,
  policy: ReconPolicy,
  sink: FindingSink,
  options: ReconOptions = {},
): Promise<ReconSummary> {
  const started = performance.now();
  const build = new FindingBuilder(policy);
  const totals = ControlTotals.wanted(policy) ? new ControlTotals(policy) : undefined;
  const budget = options.memoryBudgetBytes ?? defaultMemoryBudgetBytes();
  const area = new SpillArea(options.tmpDir);
  const run = new Run(policy, build, sink, budget, area, { source: source.name, target: target.name });
  let s: SideLoader;
  let t: SideLoader;
  try {
    const index = new SourceIndex();
    const level = new Level(run, index, 0);
    s = level.watch(new SideLoader('source', source.name, index, policy, build, undefined, totals));
    await loadSide(s, source, policy);
    level.sourceLoaded();
    t = level.watch(new SideLoader('target', target.name, index, policy, build, s.header, totals));
    await loadSide(t, target, policy);
    await level.finish(s, t);
  } finally {
    area.dispose();
  }

  const { matched, keys, keysWithException } = run;
  // In the types' order, so the summary reads the same whichever order the findings came in.
  const exceptions: Partial<Record<ExceptionType, number>> = {};
  for (const type of EXCEPTION_TYPES) if (run.exceptions[type] !== undefined) exceptions[type] = run.exceptions[type];
  const net = totals?.netAmountDifference();
  return summarise(policy, {
    rows: { source: s.rows, target: t.rows },
    matched,
    exceptions,
    rejected: { source: s.rejected, target: t.rejected },
    durationMs: Math.round(performance.now() - started),
    keys,
    keysWithException,
    netAmountDifference: net,
    fields: build.stats.toJSON(),
    amountTotals:
      totals && net !== undefined ? { ...totals.amountTotals(), net_difference: formatDecimal(net) } : undefined,
    controlTotals: totals?.result() ?? [],
  });
}

/** What one run shares across its partitions: the policy, the sink and the counts. */
class Run {
  matched = 0;
  keys = 0;
  keysWithException = 0;
  readonly exceptions: Partial<Record<ExceptionType, number>> = {};
  readonly policy: ReconPolicy;
  readonly build: FindingBuilder;
  readonly budget: number;
  readonly area: SpillArea;
  readonly names: Readonly<Record<Side, string>>;
  private readonly sink: FindingSink;

  constructor(
    policy: ReconPolicy,
    build: FindingBuilder,
    sink: FindingSink,
    budget: number,
    area: SpillArea,
    names: Record<Side, string>,
  ) {
    this.policy = policy;
    this.build = build;
    this.sink = sink;
    this.budget = budget;
    this.area = area;
    this.names = names;
  }

  /** Counts a finding and hands it on; the sink's promise, if it returned one. */
  emit(f: Finding): void | Promise<void> {
    this.exceptions[f.type] = (this.exceptions[f.type] ?? 0) + 1;
    return this.sink(f);
  }
}

/**
 * The rows of both sides (a whole run, or one partition of it), matched in memory unless what
 * they hold outgrows the budget: then everything held so far and every later row goes to this
 * level's partition files, and `finish` reconciles the partitions one by one (a level deeper).
 */
class Level {
  private readonly run: Run;
  private readonly index: SourceIndex;
  private readonly depth: number;
  private writer: PartitionWriter | undefined;
  private s: SideLoader | undefined;
  private t: SideLoader | undefined;

  constructor(run: Run, index: SourceIndex, depth: number) {
    this.run = run;
    this.index = index;
    this.depth = depth;
  }

  /** Registers a side's loader: it reports its growth here, or spills straight away. */
  watch(loader: SideLoader): SideLoader {
    if (loader.side === 'source') this.s = loader;
    else this.t = loader;
    if (this.writer !== undefined) loader.startSpilling(this.writer);
    else if (this.depth < MAX_DEPTH) {
      // Small budgets are looked at more often, so that growth between two looks stays small.
      loader.checkEvery = Math.max(1, Math.min(CHECK_EVERY, Math.floor(this.run.budget / (1 << 16))));
      loader.onGrowth = () => this.check();
    }
    return loader;
  }

  /** The source is in: build its index, unless its rows went to partitions. */
  sourceLoaded(): void {
    // The last rows were held after the last look at the budget.
    if (this.depth < MAX_DEPTH) this.check();
    if (this.writer === undefined) this.index.build();
  }

  private check(): void {
    if (this.writer !== undefined) return;
    const held = this.index.approxBytes() + (this.s?.retainedBytes ?? 0) + (this.t?.retainedBytes ?? 0);
    if (held > this.run.budget) this.spill();
  }

  /** Writes what the loaders and the index hold to partition files, and lets go of it. */
  private spill(): void {
    const writer = this.run.area.writer(this.depth);
    this.writer = writer;
    const index = this.index;
    const s = this.s as SideLoader;
    const t = this.t;
    // Every source row, in file order (a key's later rows are slots of their own).
    for (let slot = 0; slot < index.size; slot++) {
      const e = index.sourceEntry(slot);
      spillEntry(writer, 'source', index.hashAt(slot), index.keyText(slot), e);
    }
    spillInvalid(writer, s);
    if (t !== undefined) {
      // The target rows matched so far, each key's first row first; then the target-only keys.
      for (let slot = 0; slot < index.size; slot++) {
        const flags = index.flags(slot);
        if (flags & REPEAT || !(flags & TARGET_SEEN)) continue;
        const h = index.hashAt(slot);
        const key = index.keyText(slot);
        const te = index.targetEntry(slot, index.sourceEntry(slot));
        spillEntry(writer, 'target', h, key, te);
        // A later row's text is never shown (its line is): the first row's text stands in for it.
        for (const line of index.targetExtraLines(slot) ?? []) spillEntry(writer, 'target', h, key, { ...te, line });
      }
      for (const [key, e] of t.targetOnly) {
        const h = hashOf(key, 0, key.length);
        spillEntry(writer, 'target', h, key, e);
        for (const line of e.extra ?? []) spillEntry(writer, 'target', h, key, { line, text: e.text });
      }
      spillInvalid(writer, t);
    }
    index.clear();
    s.startSpilling(writer);
    t?.startSpilling(writer);
  }

  /** Emits the findings of this level's rows, or of each of its partitions in turn. */
  async finish(s: SideLoader, t: SideLoader): Promise<void> {
    const writer = this.writer;
    if (writer === undefined) {
      await walk(this.run, this.index, s, t);
      return;
    }
    writer.close();
    const { run } = this;
    for (let p = 0; p < PARTITIONS; p++) {
      if (!writer.hasRows(p)) continue;
      const index = new SourceIndex();
      const level = new Level(run, index, this.depth + 1);
      const ps = level.watch(new SideLoader('source', run.names.source, index, run.policy, run.build));
      ps.presetHeader(s.header);
      if (writer.has('source', p)) readPartition(writer.path('source', p), ps);
      level.sourceLoaded();
      const pt = level.watch(new SideLoader('target', run.names.target, index, run.policy, run.build, s.header));
      pt.presetHeader(t.header);
      if (writer.has('target', p)) readPartition(writer.path('target', p), pt);
      await level.finish(ps, pt);
      writer.remove(p);
    }
  }
}

function spillEntry(writer: PartitionWriter, side: Side, h: number, key: string, e: Entry): void {
  if (typeof e.text === 'string')
    writer.valid(side, h, key, 0, key.length, e.text, 0, e.text.length, undefined, e.line);
  else writer.valid(side, h, key, 0, key.length, '', 0, 0, e.text, e.line);
}

function spillInvalid(writer: PartitionWriter, loader: SideLoader): void {
  for (let i = 0; i < loader.invalid.length; i++)
    writer.invalid(loader.side, loader.invalid[i] as Finding, loader.invalidKey[i]);
}

/** The findings of rows matched in memory: a key at a time, then the invalid rows. */
async function walk(run: Run, index: SourceIndex, s: SideLoader, t: SideLoader): Promise<void> {
  const build = run.build;
  const sCols = s.cols as Columns;
  const tCols = t.cols as Columns;
  let matched = 0;
  let keys = 0;
  let keysWithException = 0;
  const sInvalid = [...s.invalid];
  const tInvalid = [...t.invalid];
  let pending: void | Promise<void>;

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
      pending = run.emit(build.duplicate('DUPLICATE_IN_SOURCE', keyText, s, se, sDup, t, te, tDup, tDup === undefined));
      if (pending) await pending;
      if (te && tDup) {
        pending = run.emit(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, sDup, false));
        if (pending) await pending;
      }
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
      pending = run.emit(build.missing('MISSING_IN_TARGET', keyText, s, se));
      if (pending) await pending;
      keysWithException++;
      continue;
    }
    keysWithException++;
    if (tDup) {
      pending = run.emit(build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, tDup, s, se, undefined, true));
      if (pending) await pending;
      continue;
    }
    const finding = build.compare(keyText, s, se, sCols, t, te, tCols);
    if (finding) {
      pending = run.emit(finding);
      if (pending) await pending;
    } else {
      matched++;
      keysWithException--;
    }
  }
  for (const [keyText, te] of t.targetOnly) {
    keys++;
    keysWithException++;
    if (te.extra) {
      pending = run.emit(
        build.duplicate('DUPLICATE_IN_TARGET', keyText, t, te, te.extra, s, undefined, undefined, true),
      );
      if (pending) await pending;
      continue;
    }
    const invalidAt = s.invalidKeys.get(keyText);
    if (invalidAt !== undefined && attach(sInvalid, invalidAt, 'target', displayRow(t, te), te.line)) {
      s.invalidKeys.delete(keyText);
      keys--;
      keysWithException--;
      continue;
    }
    pending = run.emit(build.missing('MISSING_IN_SOURCE', keyText, t, te));
    if (pending) await pending;
  }
  for (const f of [...sInvalid, ...tInvalid]) {
    pending = run.emit(f);
    if (pending) await pending;
  }
  keys += sInvalid.length + tInvalid.length;
  keysWithException += sInvalid.length + tInvalid.length;
  run.matched += matched;
  run.keys += keys;
  run.keysWithException += keysWithException;
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
  if (loader.cols === undefined) loader.presetHeader(columnsOfEmptyFile(policy, loader.side, input.name));
  return loader;
}

/**
 * The finding builders: what a break looks like, where the amount tolerance is applied, and
 * which severity the policy gives it. One `FindingBuilder` per run: it holds the run's policy and
 * what it has worked out from it.
 */
import { absDecimal, compareDecimal, formatDecimal, subtractDecimal, ZERO, type Decimal } from '../shared/decimal.ts';
import { splitPlain } from '../shared/csv.ts';
import { characterCount, firstCharacters } from '../shared/formats/utf8.ts';
import { amountSpec, type FieldSpec, type ReconPolicy } from '../shared/policy.ts';
import { EXCEPTION_TYPES, type Diff, type ExceptionType, type Row, type Severity, type Side } from '../shared/types.ts';
import { compareField, FieldStats, withinTolerance } from './field-rules.ts';
import type { Entry } from './source-index.ts';

/** One break, before it is given an id, a run and a lifecycle. */
export interface Finding {
  readonly type: ExceptionType;
  /** Key columns and their values (trimmed). For INVALID_RECORD, `side:line`-based. */
  readonly key: Row;
  /** Stable text of the key, the input to the exception id. */
  readonly keyText: string;
  readonly source: Row | null;
  readonly target: Row | null;
  readonly diffs: Diff[];
  readonly lines: { source: number[]; target: number[] };
  readonly reason?: string;
  readonly severity: Severity;
  /** Its break pattern (functions/shared/patterns/), given as the finding goes into a chunk. */
  readonly patternId?: string;
}

/** What the finding builders need of a side. */
export interface LoadedSide {
  readonly side: Side;
  readonly header: string[];
  /** A stored row's values in header order (default: a comma-separated line). */
  values?(text: string | string[]): string[];
}

/** Where a side's compared columns are, in the policy's order. */
export interface ComparedColumns {
  /** Per `policy.textFields` (every compared field but the amount): the column's position. */
  readonly text: readonly number[];
  /** The amount column's position, or -1 when the policy compares no amount. */
  readonly amount: number;
}

/** Joins the values of a composite key into its key text (and `keyRow` splits them again). */
export const KEY_SEPARATOR = '\u001f';

export function severityOf(type: ExceptionType, policy: ReconPolicy, delta?: Decimal): Severity {
  const magnitude = delta === undefined ? undefined : absDecimal(delta);
  for (const rule of policy.severityRules) {
    if (rule.exceptionType !== type) continue;
    if (rule.minAbsDelta !== undefined && (magnitude === undefined || compareDecimal(magnitude, rule.minAbsDelta) < 0))
      continue;
    return rule.severity;
  }
  return policy.defaultSeverity;
}

/**
 * Two amounts agree when their absolute difference is at most the policy's tolerance (a
 * difference equal to it is within it). Returns the signed difference target - source when
 * they do not, undefined when they agree.
 */
export function amountBreak(source: Decimal, target: Decimal, policy: ReconPolicy): Decimal | undefined {
  const delta = subtractDecimal(target, source);
  const spec = amountSpec(policy) ?? { tolerance: { absolute: policy.amountTolerance, relative: ZERO } };
  return withinTolerance(absDecimal(delta), source, target, spec) ? undefined : delta;
}

export class FindingBuilder {
  private readonly policy: ReconPolicy;
  /** Severity without a delta depends on the type alone: worked out once per run. */
  private readonly plainSeverity: Record<ExceptionType, Severity>;
  /** The compared fields other than the amount, and their positions in `policy.fields`. */
  private readonly others: readonly FieldSpec[];
  private readonly otherIndex: readonly number[];
  private readonly amount: FieldSpec | undefined;
  private readonly amountIndex: number;
  private readonly separators: Readonly<Record<Side, '.' | ','>>;
  /** What the comparisons found per field, for the run summary. */
  readonly stats: FieldStats;

  constructor(policy: ReconPolicy) {
    this.policy = policy;
    this.amount = amountSpec(policy);
    this.amountIndex = this.amount === undefined ? -1 : policy.fields.indexOf(this.amount);
    this.others = policy.fields.filter((f) => f !== this.amount);
    this.otherIndex = this.others.map((f) => policy.fields.indexOf(f));
    this.separators = { source: policy.sides.source.decimalSeparator, target: policy.sides.target.decimalSeparator };
    this.stats = new FieldStats(policy);
    const plain = {} as Record<ExceptionType, Severity>;
    for (const type of EXCEPTION_TYPES) plain[type] = severityOf(type, policy);
    this.plainSeverity = plain;
  }

  /**
   * A key present once on each side: undefined when the rows agree (every compared field equal,
   * or unequal within its tolerance, which is counted in the field statistics), else an
   * AMOUNT_MISMATCH when the amount is the only field that breaks, or a FIELD_MISMATCH naming
   * every field that breaks (the amount among them, with its delta, when it breaks too).
   */
  compare(
    keyText: string,
    s: LoadedSide,
    se: Entry,
    sc: ComparedColumns,
    t: LoadedSide,
    te: Entry,
    tc: ComparedColumns,
  ): Finding | undefined {
    const policy = this.policy;
    const sv = valuesOf(s, se);
    const tv = valuesOf(t, te);
    const diffs: Diff[] = [];
    const others = this.others;
    for (let i = 0; i < others.length; i++) {
      const a = (sv[sc.text[i] as number] ?? '').trim();
      const b = (tv[tc.text[i] as number] ?? '').trim();
      const spec = others[i] as FieldSpec;
      const c = compareField(spec, a, b, this.separators);
      this.stats.add(this.otherIndex[i] as number, c, se.line);
      if (c.kind === 'break')
        diffs.push(
          c.delta === undefined
            ? { field: spec.field, source: a, target: b }
            : { field: spec.field, source: a, target: b, delta: formatDecimal(c.delta) },
        );
    }
    let delta: Decimal | undefined;
    const amount = this.amount;
    if (sc.amount >= 0 && amount !== undefined) {
      const a = (sv[sc.amount] as string).trim();
      const b = (tv[tc.amount] as string).trim();
      const c = compareField(amount, a, b, this.separators);
      this.stats.add(this.amountIndex, c, se.line);
      if (c.kind === 'break' && c.delta !== undefined) {
        delta = c.delta;
        diffs.push({ field: amount.field, source: a, target: b, delta: formatDecimal(delta) });
      }
    }
    if (diffs.length === 0) return undefined;
    const type: ExceptionType = diffs.length === 1 && delta !== undefined ? 'AMOUNT_MISMATCH' : 'FIELD_MISMATCH';
    return {
      type,
      key: this.keyRow(keyText),
      keyText,
      source: rowOf(s.header, sv),
      target: rowOf(t.header, tv),
      diffs,
      lines: { source: [se.line], target: [te.line] },
      severity: severityOf(type, policy, delta),
    };
  }

  missing(
    type: 'MISSING_IN_TARGET' | 'MISSING_IN_SOURCE',
    keyText: string,
    present: LoadedSide,
    entry: Entry,
  ): Finding {
    const row = rowOf(present.header, valuesOf(present, entry));
    return {
      type,
      key: this.keyRow(keyText),
      keyText,
      source: present.side === 'source' ? row : null,
      target: present.side === 'target' ? row : null,
      diffs: [],
      lines: present.side === 'source' ? { source: [entry.line], target: [] } : { source: [], target: [entry.line] },
      severity: this.plainSeverity[type],
    };
  }

  /**
   * One finding per duplicated key. The counterpart on the other side is shown for context; with
   * `accountOther` this finding also accounts for its rows (they are then not reported as missing
   * or mismatched).
   */
  duplicate(
    type: 'DUPLICATE_IN_SOURCE' | 'DUPLICATE_IN_TARGET',
    keyText: string,
    dupSide: LoadedSide,
    entry: Entry,
    extraLines: number[],
    otherSide: LoadedSide,
    other: Entry | undefined,
    otherExtra: number[] | undefined,
    accountOther: boolean,
  ): Finding {
    const dupLines = [entry.line, ...extraLines];
    const otherLines = other && accountOther ? [other.line, ...(otherExtra ?? [])] : [];
    const dupRow = rowOf(dupSide.header, valuesOf(dupSide, entry));
    const otherRow = other ? rowOf(otherSide.header, valuesOf(otherSide, other)) : null;
    const isSource = dupSide.side === 'source';
    return {
      type,
      key: this.keyRow(keyText),
      keyText,
      source: isSource ? dupRow : otherRow,
      target: isSource ? otherRow : dupRow,
      diffs: [],
      lines: isSource ? { source: dupLines, target: otherLines } : { source: otherLines, target: dupLines },
      severity: this.plainSeverity[type],
    };
  }

  /**
   * A row that cannot be reconciled, keyed by its side and line; long fields are cut for display,
   * and fields past the header shown up to SHOWN_EXTRA_FIELDS, the rest counted.
   */
  invalidRecord(side: Side, header: string[], fields: string[], line: number, reason: string): Finding {
    const more = fields.length - header.length - SHOWN_EXTRA_FIELDS;
    const shown = more > 0 ? fields.slice(0, header.length + SHOWN_EXTRA_FIELDS) : fields;
    const raw = rowOf(
      header.length >= shown.length
        ? header
        : [...header, ...shown.slice(header.length).map((_, i) => `_extra_${i + 1}`)],
      shown.map(shownField),
    );
    if (more > 0) raw[EXTRA_MORE] = `${more} more field${more === 1 ? '' : 's'}`;
    return {
      type: 'INVALID_RECORD',
      key: { side, line: String(line) },
      keyText: `${side}:${line}`,
      source: side === 'source' ? raw : null,
      target: side === 'target' ? raw : null,
      diffs: [],
      lines: side === 'source' ? { source: [line], target: [] } : { source: [], target: [line] },
      reason,
      severity: this.plainSeverity.INVALID_RECORD,
    };
  }

  private keyRow(keyText: string): Row {
    const columns = this.policy.keyColumns;
    const row: Row = {};
    if (columns.length === 1) {
      row[columns[0] as string] = keyText;
      return row;
    }
    const parts = keyText.split(KEY_SEPARATOR);
    for (let i = 0; i < columns.length; i++) row[columns[i] as string] = parts[i] ?? '';
    return row;
  }
}

function valuesOf(side: LoadedSide, entry: Entry): string[] {
  if (side.values) return side.values(entry.text);
  return typeof entry.text === 'string' ? splitPlain(entry.text, 0, entry.text.length) : entry.text;
}

/** A stored row as the finding shows it: its side's header and values. */
export function displayRow(side: LoadedSide, entry: Entry): Row {
  return rowOf(side.header, valuesOf(side, entry));
}

function rowOf(header: string[], values: string[]): Row {
  const row: Row = {};
  for (let i = 0; i < header.length; i++) row[header[i] as string] = values[i] ?? '';
  return row;
}

/** Fields past the header an invalid record shows as `_extra_1`…; the rest are counted in EXTRA_MORE. */
export const SHOWN_EXTRA_FIELDS = 8;
export const EXTRA_MORE = '_extra_more';

/**
 * A field of an invalid record as it is shown: its first 256 characters and an ellipsis when
 * longer (characters as the SQL engine's `substr` counts them, so both engines show the same).
 */
function shownField(field: string): string {
  return field.length > 256 && characterCount(field) > 256 ? `${firstCharacters(field, 256)}…` : field;
}

/**
 * The finding builders: what a break looks like, where the amount tolerance is applied, and
 * which severity the policy gives it. One `FindingBuilder` per run: it holds the run's policy and
 * what it has worked out from it.
 */
import {
  absDecimal,
  compareDecimal,
  formatDecimal,
  parseDecimal,
  subtractDecimal,
  type Decimal,
} from '../shared/decimal.ts';
import { splitPlain } from '../shared/csv.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import { EXCEPTION_TYPES, type Diff, type ExceptionType, type Row, type Severity, type Side } from '../shared/types.ts';
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
}

/** What the finding builders need of a side. */
export interface LoadedSide {
  readonly side: Side;
  readonly header: string[];
}

/** Where a side's compared columns are, in the policy's order. */
export interface ComparedColumns {
  /** Per `policy.textFields`: the column's position. */
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
  return compareDecimal(absDecimal(delta), policy.amountTolerance) > 0 ? delta : undefined;
}

export class FindingBuilder {
  private readonly policy: ReconPolicy;
  /** Severity without a delta depends on the type alone: worked out once per run. */
  private readonly plainSeverity: Record<ExceptionType, Severity>;

  constructor(policy: ReconPolicy) {
    this.policy = policy;
    const plain = {} as Record<ExceptionType, Severity>;
    for (const type of EXCEPTION_TYPES) plain[type] = severityOf(type, policy);
    this.plainSeverity = plain;
  }

  /**
   * A key present once on each side: undefined when the rows agree (text fields trimmed and
   * equal, amounts within tolerance), else an AMOUNT_MISMATCH or FIELD_MISMATCH.
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
    const sv = valuesOf(se);
    const tv = valuesOf(te);
    const diffs: Diff[] = [];
    for (let i = 0; i < sc.text.length; i++) {
      const a = (sv[sc.text[i] as number] as string).trim();
      const b = (tv[tc.text[i] as number] as string).trim();
      if (a !== b) diffs.push({ field: policy.textFields[i] as string, source: a, target: b });
    }
    let delta: Decimal | undefined;
    if (sc.amount >= 0) {
      const a = (sv[sc.amount] as string).trim();
      const b = (tv[tc.amount] as string).trim();
      if (a !== b) {
        delta = amountBreak(amountOf(a), amountOf(b), policy);
        if (delta !== undefined)
          diffs.push({ field: policy.amountField as string, source: a, target: b, delta: formatDecimal(delta) });
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
    const row = rowOf(present.header, valuesOf(entry));
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
    const dupRow = rowOf(dupSide.header, valuesOf(entry));
    const otherRow = other ? rowOf(otherSide.header, valuesOf(other)) : null;
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

  /** A row that cannot be reconciled, keyed by its side and line; long fields are cut for display. */
  invalidRecord(side: Side, header: string[], fields: string[], line: number, reason: string): Finding {
    const raw = rowOf(
      header.length >= fields.length
        ? header
        : [...header, ...fields.slice(header.length).map((_, i) => `_extra_${i + 1}`)],
      fields.map((f) => (f.length > 256 ? `${f.slice(0, 256)}…` : f)),
    );
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

function valuesOf(entry: Entry): string[] {
  return typeof entry.text === 'string' ? splitPlain(entry.text, 0, entry.text.length) : entry.text;
}

function rowOf(header: string[], values: string[]): Row {
  const row: Row = {};
  for (let i = 0; i < header.length; i++) row[header[i] as string] = values[i] ?? '';
  return row;
}

function amountOf(text: string): Decimal {
  const parsed = parseDecimal(text);
  // Rows with unparseable amounts were rejected on load, so this cannot fail here.
  if (!parsed.ok) throw new Error(`internal: amount ${text} passed validation but does not parse`);
  return parsed.value;
}

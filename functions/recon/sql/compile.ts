/**
 * The recon policy compiled to SQL: the same rules as the in-memory engine (`engine.ts`,
 * `side-loader.ts`, `findings.ts`, `field-rules.ts`, `control-totals.ts`), written once over a
 * per-side relation of raw text fields so DuckDB and Athena (Trino) run the same statements.
 * Engine differences live in `dialect.ts`; reading the files is the runner's (each side becomes
 * `s_raw` / `t_raw`, see {@link RAW_COLUMNS}).
 *
 * The stages, each a table the next reads:
 * - `{p}_rows`: every record of a side with its key, its reason to be invalid (the row rules in
 *   the engine's order) and its compared values read by type (decimals exact in DECIMAL(38, 12)).
 * - `{p}_keys`: per valid key, its row count and first row; `{p}_bad`: per key the first invalid
 *   row it could be read from (the other side's lone row of that key rides on that exception).
 * - `pairs`: both sides' keys joined; `cmp`: each key present once on both sides, compared field
 *   by field; `findings`: one row per exception, as the JSON of a `Finding`.
 * The summary is a few small aggregate queries; `summary.ts` turns their rows into the run summary.
 *
 * What cannot hold: line numbers (SQL reads records, not lines): every finding's `lines` is empty
 * and its `reason` says so; an invalid row, which the engine keys by `side:line`, is keyed by a
 * digest of its fields (and its occurrence, when identical rows repeat).
 */
import { formatDecimal, type Decimal } from '../../shared/decimal.ts';
import { amountSpec, type FieldSpec, type ReconPolicy, type DateFormat } from '../../shared/policy.ts';
import type { ExceptionType, Side } from '../../shared/types.ts';
import { ControlTotals } from '../control-totals.ts';
import { EXTRA_MORE, SHOWN_EXTRA_FIELDS } from '../findings.ts';
import { blankLine, MAX_FIELD_CHARS } from '../side-loader.ts';
import { JSON_MAX_DEPTH, repeatedFieldReason, TOO_DEEP_REASON } from '../../shared/formats/jsonl.ts';
import {
  DECIMAL_INTEGER_DIGITS,
  DECIMAL_SCALE,
  DECIMAL_TYPE,
  JS_WHITESPACE,
  WHITESPACE_CLASS,
  type Dialect,
  type JsonPair,
} from './dialect.ts';

/**
 * Extra fields beyond the header a raw relation carries (a row with more is a structural reject):
 * as many as an invalid record shows; the rest are only counted.
 */
export const EXTRA_FIELDS = SHOWN_EXTRA_FIELDS;

/** What the SQL engine says on every finding in place of line numbers. */
export const LINES_NOTE = 'line numbers are not known to the SQL engine; the rows are identified by key';

/**
 * The raw relation of a side: `rec` (ordinal in file order where the engine keeps it), `c0…c{N-1}`
 * the header's fields as text (NULL: the record has fewer fields), `x1…x{EXTRA_FIELDS}` fields
 * beyond the header, `nf` the record's field count, `bad` a structural problem found while reading
 * (the row is then shown as `{ _line: line_text }`), `line_text`.
 */
export const RAW_COLUMNS = ['rec', 'nf', 'bad', 'line_text'] as const;

export interface SideLayout {
  /** The side's column names, lower case, in file order (CSV header, JSON Lines or Parquet columns). */
  readonly header: readonly string[];
}

export interface CompiledRecon {
  /** Tables to create in order: `CREATE TABLE name AS sql`. */
  readonly stages: readonly { readonly name: string; readonly sql: string }[];
  /** Columns `type`, `finding` (the Finding's JSON text). */
  readonly findings: string;
  /** One row: counts (see {@link SummaryCounts}). */
  readonly counts: string;
  /** One row per compared field: `field`, `unequal`, `within`, `largest`. */
  readonly fieldStats: string;
  /** One row per side and group: `side`, `g0…`, `rows`, `sum0…`, `scale0…`; undefined without control totals. */
  readonly controlTotals: string | undefined;
  /** One row per side: `side`, `total`, `scale`; undefined when the run needs no amount totals. */
  readonly amountTotals: string | undefined;
}

/** The counts query's columns. */
export interface SummaryCounts {
  rows_s: number;
  rows_t: number;
  rejected_s: number;
  rejected_t: number;
  valid_keys: number;
  attached: number;
  matched: number;
}

const SIDES: readonly Side[] = ['source', 'target'];
const P: Record<Side, 's' | 't'> = { source: 's', target: 't' };

function reEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A text's length in UTF-16 units, as MAX_FIELD_CHARS counts (the in-memory engine's
 * `string.length`): its characters, plus one for each beyond U+FFFF. Those are counted only in a
 * text long enough for the count to matter.
 */
function utf16Length(sql: string, d: Dialect): string {
  const astral = d.cardinality(d.extractAll(sql, '[\\x{10000}-\\x{10FFFF}]', 0));
  return `(length(${sql}) + CASE WHEN length(${sql}) > ${MAX_FIELD_CHARS / 2} THEN ${astral} ELSE 0 END)`;
}

/** `count` columns named `prefix0…`. */
const cols = (prefix: string, count: number, from = 0): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}${i + from}`);

export function compileRecon(
  policy: ReconPolicy,
  layouts: Readonly<Record<Side, SideLayout>>,
  d: Dialect,
): CompiledRecon {
  const amount = amountSpec(policy);
  const fields = policy.fields;
  const lit = d.literal;
  const dec = (value: Decimal) => `CAST(${lit(formatDecimal(value))} AS ${DECIMAL_TYPE})`;

  // --- Per side: records, row rules, typed values ---------------------------------------------
  const sideStages = SIDES.map((side) => {
    const p = P[side];
    const header = layouts[side].header;
    const n = header.length;
    const at = (column: string): number => header.indexOf(column);
    const sep = policy.sides[side].decimalSeparator;
    const cell = (column: string) => `coalesce(c${at(column)}, '')`;

    // Stage 1: trimmed key parts and field values.
    const trimmed = [
      ...policy.keys.map((k, i) => `${d.trim(cell(k[side]))} AS kt${i}`),
      ...fields.map((f, j) => `${d.trim(cell(f[side]))} AS ft${j}`),
    ];
    const longest = `greatest(${[...cols('c', n), ...cols('x', EXTRA_FIELDS, 1)].map((c) => `coalesce(${utf16Length(c, d)}, 0)`).join(', ')}, 0)`;
    const stage1 = `SELECT *, ${trimmed.join(', ')}, ${longest} AS longest FROM ${p}_raw`;

    // Stage 2: decimal pieces, normalised keys, typed values.
    // Computed in levels, each reading the columns of the one before: a value is named once and
    // read by name, so no expression is repeated (DuckDB plans large repeated CASEs slowly).
    const levels: string[][] = Array.from({ length: LEVELS }, () => []);
    policy.keys.forEach((k, i) => levels[0]?.push(`${normalized(`kt${i}`, k.normalize, d)} AS k${i}`));
    fields.forEach((f, j) => typedColumns(f, j, side, sep, f === amount ? 'amount' : 'value', d, levels));
    const stage2 = levels.reduce(
      (from, columns, i) => (columns.length === 0 ? from : `SELECT *, ${columns.join(', ')} FROM (${from}) l${i}`),
      stage1,
    );

    // Stage 3: the reason a row is invalid, in the order the engine checks.
    // The engine's CSV reader flags a NUL byte as damage to its record (JSON may escape one).
    const nul =
      policy.sides[side].format === 'csv'
        ? `strpos(concat_ws(chr(1), ${[...cols('c', n), ...cols('x', EXTRA_FIELDS, 1)].map((c) => `coalesce(${c}, '')`).join(', ')}), chr(0)) > 0`
        : 'false';
    const reasons: string[] = [
      `WHEN bad IS NOT NULL THEN bad`,
      `WHEN ${nul} THEN 'record contains a NUL byte'`,
      `WHEN nf = ${n} AND longest > ${MAX_FIELD_CHARS} THEN ${lit(`a field is longer than ${MAX_FIELD_CHARS} characters`)}`,
      ...(n > 1 ? [`WHEN nf = 1 AND ${d.trim("coalesce(c0, '')")} = '' THEN ${lit(blankLine(n))}`] : []),
      `WHEN nf <> ${n} THEN ${lit(`expected ${n} fields, found `)} || CAST(nf AS VARCHAR)`,
      ...policy.keys.map((_, i) => `WHEN kt${i} = '' THEN ${lit(`key column ${policy.keyColumns[i]} is empty`)}`),
    ];
    // As in the engine: an over-long field leaves the key readable; damage or a wrong count does not.
    const keyOk = `(bad IS NULL AND NOT ${nul} AND nf = ${n}${policy.keys.map((_, i) => ` AND kt${i} <> ''`).join('')})`;
    if (amount !== undefined) {
      const j = fields.indexOf(amount);
      reasons.push(`WHEN fp${j} IS NOT NULL THEN ${lit(`${amount.field}: `)} || fp${j}`);
    }
    fields.forEach((f, j) => {
      if (f === amount || f.type === 'text') return;
      reasons.push(`WHEN ft${j} <> '' AND fp${j} IS NOT NULL THEN ${lit(`${f.field}: `)} || fp${j}`);
    });
    const key =
      policy.keys.length === 1 ? 'k0' : `concat_ws(chr(31), ${policy.keys.map((_, i) => `k${i}`).join(', ')})`;
    // Only what later stages read: the intermediate columns of stage 2 would widen every join.
    const kept = [
      ...RAW_COLUMNS,
      ...cols('c', n),
      ...cols('x', EXTRA_FIELDS, 1),
      ...policy.keys.flatMap((_, i) => [`kt${i}`, `k${i}`]),
      ...fields.flatMap((_, j) => [`ft${j}`, `fv${j}`, `fs${j}`]),
    ];
    const stage3 = `SELECT ${kept.join(', ')}, CASE ${reasons.join(' ')} ELSE NULL END AS reason, ${keyOk} AS key_ok, ${key} AS k FROM (${stage2}) r2`;

    return [
      { name: `${p}_rows`, sql: stage3 },
      {
        name: `${p}_keys`,
        sql: `SELECT k, count(*) AS n, min(rec) AS first_rec FROM ${p}_rows WHERE reason IS NULL GROUP BY k`,
      },
      {
        name: `${p}_first`,
        sql: `SELECT r.* FROM ${p}_rows r JOIN ${p}_keys f ON r.rec = f.first_rec`,
      },
      {
        name: `${p}_bad`,
        sql: `SELECT k, min(rec) AS rec FROM ${p}_rows WHERE reason IS NOT NULL AND key_ok GROUP BY k`,
      },
    ];
  });

  // --- Both sides ----------------------------------------------------------------------------
  const pairs = `SELECT coalesce(s.k, t.k) AS k, coalesce(s.n, 0) AS sn, coalesce(t.n, 0) AS tn,
    (coalesce(s.n, 0) = 1 AND coalesce(t.n, 0) = 0 AND tb.k IS NOT NULL) AS att_t,
    (coalesce(s.n, 0) = 0 AND coalesce(t.n, 0) = 1 AND sb.k IS NOT NULL) AS att_s
    FROM s_keys s FULL OUTER JOIN t_keys t ON s.k = t.k
    LEFT JOIN t_bad tb ON tb.k = coalesce(s.k, t.k)
    LEFT JOIN s_bad sb ON sb.k = coalesce(s.k, t.k)`;

  // Each field of a pair present once on both sides: its comparison kind (E equal, W within
  // tolerance, B break), its signed difference and its magnitude (non-text, non-empty values).
  const cmpColumns: string[] = [];
  fields.forEach((f, j) => {
    const a = `s.ft${j}`;
    const b = `t.ft${j}`;
    const empty = `${a} = '' OR ${b} = ''`;
    const emptyKind = `CASE WHEN ${a} = ${b} THEN 'E' ELSE 'B' END`;
    let kind: string;
    let delta = 'NULL';
    let scale = '0';
    switch (f.type) {
      case 'text':
        kind = `CASE WHEN ${empty} THEN ${emptyKind} WHEN s.fv${j} = t.fv${j} THEN 'E' ELSE 'B' END`;
        break;
      case 'decimal': {
        delta = `CASE WHEN ${empty} THEN NULL ELSE t.fv${j} - s.fv${j} END`;
        scale = `greatest(s.fs${j}, t.fs${j})`;
        const mag = `abs(t.fv${j} - s.fv${j})`;
        const { absolute, relative } = f.tolerance;
        const larger = `greatest(abs(s.fv${j}), abs(t.fv${j}))`;
        // |d| <= abs + rel * max(|s|, |t|), exactly: (|d| - abs) * 10^r <= units(rel) * max(|s|, |t|).
        // Those products can overflow DECIMAL(38) for huge values: then by doubles, where a
        // difference that large is nowhere near the bound.
        const exact = `(${mag} - ${dec(absolute)}) * CAST(${lit(`1${'0'.repeat(relative.scale)}`)} AS DECIMAL(38, 0)) <= CAST(${lit(relative.units.toString())} AS DECIMAL(38, 0)) * ${larger}`;
        const approximate = `CAST(${mag} AS DOUBLE) <= CAST(${dec(absolute)} AS DOUBLE) + ${Number(formatDecimal(relative))} * CAST(${larger} AS DOUBLE)`;
        const within =
          relative.units === 0n
            ? `${mag} <= ${dec(absolute)}`
            : `${mag} <= ${dec(absolute)} OR coalesce(${d.tryOrNull(exact)}, ${approximate})`;
        kind = `CASE WHEN ${empty} THEN ${emptyKind} WHEN s.fv${j} = t.fv${j} THEN 'E' WHEN ${within} THEN 'W' ELSE 'B' END`;
        break;
      }
      case 'date':
        delta = `CASE WHEN ${empty} THEN NULL ELSE CAST(date_diff('day', s.fv${j}, t.fv${j}) AS ${DECIMAL_TYPE}) END`;
        kind = `CASE WHEN ${empty} THEN ${emptyKind} WHEN s.fv${j} = t.fv${j} THEN 'E' WHEN abs(date_diff('day', s.fv${j}, t.fv${j})) <= ${f.toleranceDays} THEN 'W' ELSE 'B' END`;
        break;
      case 'integer':
        // In the values' own DECIMAL(38, 0): DECIMAL_TYPE holds 21 integer digits, and a larger
        // difference failed the run. One past 38 digits (two opposite 38-digit values) is NULL.
        delta = `CASE WHEN ${empty} THEN NULL ELSE ${d.tryOrNull(`t.fv${j} - s.fv${j}`)} END`;
        kind = `CASE WHEN ${empty} THEN ${emptyKind} WHEN s.fv${j} = t.fv${j} THEN 'E' ELSE 'B' END`;
        break;
    }
    cmpColumns.push(`${kind} AS kind${j}`, `${delta} AS delta${j}`, `${scale} AS dscale${j}`);
  });
  const cmp = `SELECT p.k, s.rec AS s_rec, t.rec AS t_rec${cmpColumns.map((c) => `, ${c}`).join('')}
    FROM pairs p JOIN s_first s ON s.k = p.k JOIN t_first t ON t.k = p.k
    WHERE p.sn = 1 AND p.tn = 1`;
  const fmt = (j: number) => formatSql(`c.delta${j}`, `c.dscale${j}`);
  const fmtAbs = (j: number) => formatSql(`abs(delta${j})`, `dscale${j}`);

  // --- Findings ------------------------------------------------------------------------------
  const others = fields.map((f, j) => ({ f, j })).filter(({ f }) => f !== amount);
  const amountJ = amount === undefined ? -1 : fields.indexOf(amount);
  const diffOf = ({ f, j }: { f: FieldSpec; j: number }, withDelta: boolean) => {
    const base: JsonPair[] = [
      ['field', lit(f.field)],
      ['source', `s.ft${j}`],
      ['target', `t.ft${j}`],
    ];
    if (!withDelta) return `CASE WHEN c.kind${j} = 'B' THEN ${d.jsonObject(base)} END`;
    return `CASE WHEN c.kind${j} = 'B' AND c.delta${j} IS NULL THEN ${d.jsonObject(base)} WHEN c.kind${j} = 'B' THEN ${d.jsonObject([...base, ['delta', fmt(j)]])} END`;
  };
  const diffItems = [
    ...others.map((o) => diffOf(o, o.f.type !== 'text')),
    ...(amount === undefined
      ? []
      : [
          `CASE WHEN c.kind${amountJ} = 'B' AND c.delta${amountJ} IS NOT NULL THEN ${d.jsonObject([
            ['field', lit(amount.field)],
            ['source', `s.ft${amountJ}`],
            ['target', `t.ft${amountJ}`],
            ['delta', fmt(amountJ)],
          ])} END`,
        ]),
  ];
  const otherBreaks =
    others.length === 0 ? '0' : others.map(({ j }) => `(CASE WHEN c.kind${j} = 'B' THEN 1 ELSE 0 END)`).join(' + ');
  const amountBreaks = amount === undefined ? 'false' : `(c.kind${amountJ} = 'B' AND c.delta${amountJ} IS NOT NULL)`;
  const amountDelta = amount === undefined ? 'NULL' : `CASE WHEN ${amountBreaks} THEN c.delta${amountJ} END`;
  const mismatchType = `CASE WHEN ${otherBreaks} = 0 AND ${amountBreaks} THEN 'AMOUNT_MISMATCH' ELSE 'FIELD_MISMATCH' END`;

  const keyJson = (alias: string) => d.jsonObject(policy.keyColumns.map((c, i) => [c, `${alias}.k${i}`] as const));
  const rowJson = (side: Side, alias: string) =>
    d.jsonObject(layouts[side].header.map((h, i) => [h, `coalesce(${alias}.c${i}, '')`] as const));
  const cut = (v: string) =>
    `CASE WHEN length(${v}) > 256 THEN substr(${v}, 1, 256) || '…' ELSE coalesce(${v}, '') END`;
  const invalidRowJson = (side: Side, alias: string) => {
    const header = layouts[side].header;
    const base: JsonPair[] = header.map((h, i) => [h, cut(`${alias}.c${i}`)] as const);
    const variants = Array.from({ length: EXTRA_FIELDS }, (_, e) => {
      const extras: JsonPair[] = Array.from(
        { length: e + 1 },
        (_, x) => [`_extra_${x + 1}`, cut(`${alias}.x${x + 1}`)] as const,
      );
      return `WHEN ${alias}.nf = ${header.length + e + 1} THEN ${d.jsonObject([...base, ...extras])}`;
    });
    const allExtras: JsonPair[] = Array.from(
      { length: EXTRA_FIELDS },
      (_, x) => [`_extra_${x + 1}`, cut(`${alias}.x${x + 1}`)] as const,
    );
    const more = `${alias}.nf - ${header.length + EXTRA_FIELDS}`;
    const moreText = `CAST(${more} AS VARCHAR) || CASE WHEN ${more} = 1 THEN ' more field' ELSE ' more fields' END`;
    variants.push(
      `WHEN ${alias}.nf > ${header.length + EXTRA_FIELDS} THEN ${d.jsonObject([...base, ...allExtras, [EXTRA_MORE, moreText]])}`,
    );
    return `CASE WHEN ${alias}.bad IS NOT NULL AND ${alias}.line_text IS NOT NULL THEN ${d.jsonObject([['_line', cut(`${alias}.line_text`)]])} ${variants.join(' ')} ELSE ${d.jsonObject(base)} END`;
  };

  const finding = (f: {
    type: string;
    key: string;
    keyText: string;
    source: string;
    target: string;
    diffs?: string;
    reason?: string;
    severity: string;
  }) =>
    d.jsonObject([
      ['type', f.type],
      ['key', f.key, 'json'],
      ['keyText', f.keyText],
      ['source', f.source, 'json'],
      ['target', f.target, 'json'],
      ['diffs', f.diffs ?? `'[]'`, 'json'],
      ['lines', `'{"source":[],"target":[]}'`, 'json'],
      ['reason', f.reason ?? lit(LINES_NOTE)],
      ['severity', f.severity],
    ]);
  const sev = (type: ExceptionType) => lit(severityFor(policy, type));

  const findingSelects: string[] = [];
  // A duplicated source key: its first source row, the target's first row for context.
  findingSelects.push(
    `SELECT 'DUPLICATE_IN_SOURCE' AS type, ${finding({
      type: `'DUPLICATE_IN_SOURCE'`,
      key: keyJson('s'),
      keyText: 'p.k',
      source: rowJson('source', 's'),
      target: `CASE WHEN t.rec IS NULL THEN NULL ELSE ${rowJson('target', 't')} END`,
      severity: sev('DUPLICATE_IN_SOURCE'),
    })} AS finding FROM pairs p JOIN s_first s ON s.k = p.k LEFT JOIN t_first t ON t.k = p.k WHERE p.sn >= 2`,
  );
  findingSelects.push(
    `SELECT 'DUPLICATE_IN_TARGET' AS type, ${finding({
      type: `'DUPLICATE_IN_TARGET'`,
      key: keyJson('t'),
      keyText: 'p.k',
      source: `CASE WHEN s.rec IS NULL THEN NULL ELSE ${rowJson('source', 's')} END`,
      target: rowJson('target', 't'),
      severity: sev('DUPLICATE_IN_TARGET'),
    })} AS finding FROM pairs p JOIN t_first t ON t.k = p.k LEFT JOIN s_first s ON s.k = p.k WHERE p.tn >= 2`,
  );
  findingSelects.push(
    `SELECT 'MISSING_IN_TARGET' AS type, ${finding({
      type: `'MISSING_IN_TARGET'`,
      key: keyJson('s'),
      keyText: 'p.k',
      source: rowJson('source', 's'),
      target: 'NULL',
      severity: sev('MISSING_IN_TARGET'),
    })} AS finding FROM pairs p JOIN s_first s ON s.k = p.k WHERE p.sn = 1 AND p.tn = 0 AND NOT p.att_t`,
  );
  findingSelects.push(
    `SELECT 'MISSING_IN_SOURCE' AS type, ${finding({
      type: `'MISSING_IN_SOURCE'`,
      key: keyJson('t'),
      keyText: 'p.k',
      source: 'NULL',
      target: rowJson('target', 't'),
      severity: sev('MISSING_IN_SOURCE'),
    })} AS finding FROM pairs p JOIN t_first t ON t.k = p.k WHERE p.sn = 0 AND p.tn = 1 AND NOT p.att_s`,
  );
  findingSelects.push(`SELECT ${mismatchType} AS type, ${finding({
    type: mismatchType,
    key: keyJson('s'),
    keyText: 'c.k',
    source: rowJson('source', 's'),
    target: rowJson('target', 't'),
    diffs: d.jsonArrayOfPresent(diffItems),
    severity: severitySql(policy, mismatchType, amountDelta),
  })} AS finding FROM cmp c JOIN s_first s ON s.rec = c.s_rec JOIN t_first t ON t.rec = c.t_rec
    WHERE ${otherBreaks} > 0 OR ${amountBreaks}`);
  for (const side of SIDES) {
    const p = P[side];
    const o = side === 'source' ? 't' : 's';
    const other: Side = side === 'source' ? 'target' : 'source';
    const attachFlag = side === 'source' ? 'att_s' : 'att_t';
    const digest = `substr(${d.md5(
      `concat_ws(chr(30), CAST(r.nf AS VARCHAR), coalesce(r.bad, ''), coalesce(r.line_text, ''), ${[
        ...cols('r.c', layouts[side].header.length),
        ...cols('r.x', EXTRA_FIELDS, 1),
      ]
        .map((c) => `coalesce(${c}, chr(0))`)
        .join(', ')})`,
    )}, 1, 16)`;
    const own = invalidRowJson(side, 'r');
    const attached = `CASE WHEN a.k IS NOT NULL THEN ${rowJson(other, 'a')} END`;
    findingSelects.push(`SELECT 'INVALID_RECORD' AS type, ${finding({
      type: `'INVALID_RECORD'`,
      key: d.jsonObject([
        ['side', lit(side)],
        ['record', 'r.id'],
      ]),
      keyText: `${lit(`${side}:`)} || r.id`,
      source: side === 'source' ? own : attached,
      target: side === 'source' ? attached : own,
      reason: `r.reason || ${lit(` (${LINES_NOTE})`)}`,
      severity: sev('INVALID_RECORD'),
    })} AS finding
    FROM (SELECT q.*, CASE WHEN q.occurrence = 1 THEN q.digest ELSE q.digest || '-' || CAST(q.occurrence AS VARCHAR) END AS id
          FROM (SELECT r.*, ${digest} AS digest, row_number() OVER (PARTITION BY ${digest} ORDER BY r.rec) AS occurrence
                FROM ${p}_rows r WHERE r.reason IS NOT NULL) q) r
    LEFT JOIN ${p}_bad b ON b.rec = r.rec
    LEFT JOIN pairs pa ON pa.k = b.k AND pa.${attachFlag}
    LEFT JOIN ${o}_first a ON a.k = pa.k`);
  }
  const findings = findingSelects.join('\nUNION ALL\n');

  // --- Summary ---------------------------------------------------------------------------------
  const counts = `SELECT
    (SELECT count(*) FROM s_rows) AS rows_s, (SELECT count(*) FROM t_rows) AS rows_t,
    (SELECT count(*) FROM s_rows WHERE reason IS NOT NULL) AS rejected_s,
    (SELECT count(*) FROM t_rows WHERE reason IS NOT NULL) AS rejected_t,
    (SELECT count(*) FROM pairs) AS valid_keys,
    (SELECT count(*) FROM pairs WHERE att_s OR att_t) AS attached,
    (SELECT count(*) FROM cmp c WHERE NOT (${otherBreaks} > 0 OR ${amountBreaks})) AS matched`;
  const fieldStats =
    fields.length === 0
      ? `SELECT '' AS field, 0 AS unequal, 0 AS within, '' AS largest WHERE 1 = 0`
      : fields
          .map(
            (f, j) => `SELECT ${lit(f.field)} AS field,
      count(*) FILTER (WHERE kind${j} <> 'E') AS unequal,
      count(*) FILTER (WHERE kind${j} = 'W') AS within,
      (SELECT ${fmtAbs(j)} FROM cmp WHERE kind${j} <> 'E' AND delta${j} IS NOT NULL ORDER BY abs(delta${j}) DESC, s_rec LIMIT 1) AS largest
      FROM cmp`,
          )
          .join('\nUNION ALL\n');

  let controlTotals: string | undefined;
  if (policy.controlTotals !== undefined) {
    const groupCols = policy.controlTotals.groupBy.map((name) => {
      const k = policy.keyColumns.indexOf(name);
      if (k >= 0) return `k${k}`;
      const j = fields.findIndex((f) => f.field === name);
      const f = fields[j] as FieldSpec;
      if (f.type === 'text') return `fv${j}`;
      if (f.type === 'date') return `coalesce(CAST(fv${j} AS VARCHAR), '')`;
      return `ft${j}`;
    });
    const sums = policy.controlTotals.sum.map((name) => fields.findIndex((f) => f.field === name));
    controlTotals = SIDES.map((side) => {
      const p = P[side];
      return `SELECT ${lit(side)} AS side, ${groupCols.map((g, i) => `${g} AS g${i}`).join(', ')}${groupCols.length === 0 ? '' : ', '}count(*) AS rows${sums
        .map((j, i) => `, CAST(sum(coalesce(fv${j}, 0)) AS VARCHAR) AS sum${i}, max(coalesce(fs${j}, 0)) AS scale${i}`)
        .join('')}
        FROM ${p}_rows WHERE reason IS NULL${groupCols.length === 0 ? '' : ` GROUP BY ${groupCols.join(', ')}`}`;
    }).join('\nUNION ALL\n');
  }
  const amountTotals =
    amount !== undefined && ControlTotals.wanted(policy)
      ? SIDES.map(
          (side) =>
            `SELECT ${lit(side)} AS side, CAST(coalesce(sum(fv${amountJ}), 0) AS VARCHAR) AS total, coalesce(max(fs${amountJ}), 0) AS scale FROM ${P[side]}_rows WHERE reason IS NULL`,
        ).join('\nUNION ALL\n')
      : undefined;

  return {
    stages: [
      ...(sideStages[0] ?? []),
      ...(sideStages[1] ?? []),
      { name: 'pairs', sql: pairs },
      { name: 'cmp', sql: cmp },
      { name: 'findings', sql: findings },
    ],
    findings: 'SELECT type, finding FROM findings',
    counts,
    fieldStats,
    controlTotals,
    amountTotals,
  };
}

/** A DECIMAL(38, 12) value as text with exactly `scale` decimals (it has no more). */
function formatSql(value: string, scale: string): string {
  const text = `CAST(${value} AS VARCHAR)`;
  return `CASE WHEN ${value} IS NULL THEN NULL WHEN ${scale} = 0 THEN split_part(${text}, '.', 1) ELSE substr(${text}, 1, strpos(${text}, '.') + ${scale}) END`;
}

/** Severity of a type when no delta is involved. */
function severityFor(policy: ReconPolicy, type: ExceptionType): string {
  for (const rule of policy.severityRules) {
    if (rule.exceptionType !== type) continue;
    if (rule.minAbsDelta !== undefined) continue;
    return rule.severity;
  }
  return policy.defaultSeverity;
}

/** `severityOf` as SQL: the first rule of the type whose min_abs_delta |delta| meets. */
function severitySql(policy: ReconPolicy, typeSql: string, deltaSql: string): string {
  const whens = policy.severityRules.map((rule) => {
    const cond = [`${typeSql} = '${rule.exceptionType}'`];
    if (rule.minAbsDelta !== undefined)
      cond.push(
        `${deltaSql} IS NOT NULL AND abs(${deltaSql}) >= CAST('${formatDecimal(rule.minAbsDelta)}' AS ${DECIMAL_TYPE})`,
      );
    return `WHEN ${cond.join(' AND ')} THEN '${rule.severity}'`;
  });
  return whens.length === 0
    ? `'${policy.defaultSeverity}'`
    : `CASE ${whens.join(' ')} ELSE '${policy.defaultSeverity}' END`;
}

/** Trims (already done), then the normalisers in order. */
function normalized(sql: string, normalize: readonly string[], d: Dialect): string {
  let v = sql;
  for (const n of normalize) {
    if (n === 'upper') v = d.upper(v);
    else if (n === 'lower') v = d.lower(v);
    else if (n === 'strip_leading_zeros')
      v = `(CASE WHEN ${v} <> '' AND ltrim(${v}, '0') = '' THEN '0' ELSE ltrim(${v}, '0') END)`;
  }
  return v;
}

/** Levels of a side's typed columns (see stage 2). */
const LEVELS = 6;

/**
 * Field `j`'s typed columns on a side, added to `levels`: `fv{j}` the comparable value (text
 * normalised and mapped through its equivalents; DECIMAL; DATE; DECIMAL(38, 0)), `fs{j}` a
 * decimal's scale as written, `fp{j}` why a non-empty value cannot be read (NULL when it can).
 */
function typedColumns(
  f: FieldSpec,
  j: number,
  side: Side,
  sep: '.' | ',',
  noun: 'amount' | 'value',
  d: Dialect,
  levels: string[][],
): void {
  const t = `ft${j}`;
  const lit = d.literal;
  const at = (level: number, ...columns: string[]) => levels[level]?.push(...columns);
  switch (f.type) {
    case 'text': {
      const norm = normalized(t, f.normalize, d);
      if (f.equivalents === undefined || f.equivalents.size === 0) {
        at(0, `${norm} AS fv${j}`, `NULL AS fs${j}`, `NULL AS fp${j}`);
        return;
      }
      const whens = [...f.equivalents].map(([from, to]) => `WHEN ${lit(from)} THEN ${lit(to)}`).join(' ');
      at(0, `${norm} AS fn${j}`);
      at(1, `CASE fn${j} ${whens} ELSE fn${j} END AS fv${j}`, `NULL AS fs${j}`, `NULL AS fp${j}`);
      return;
    }
    case 'decimal':
      decimalColumns(t, j, sep, noun, d, at);
      return;
    case 'date': {
      const format = side === 'source' ? f.sourceFormat : f.targetFormat;
      at(0, `TRY_CAST(${dateIso(t, format, d)} AS DATE) AS fv${j}`, `NULL AS fs${j}`);
      at(
        1,
        `CASE WHEN ${t} = '' THEN NULL WHEN fv${j} IS NULL THEN 'value ' || ${d.jsonQuote(t)} || ${lit(` is not a date in the format ${format.pattern}`)} END AS fp${j}`,
      );
      return;
    }
    case 'integer':
      at(
        0,
        `${d.fullMatch(t, '[+-]?[0-9]+')} AS fi${j}`,
        `TRY_CAST(replace(${t}, '+', '') AS DECIMAL(38, 0)) AS fc${j}`,
        `NULL AS fs${j}`,
      );
      at(
        1,
        `CASE WHEN fi${j} THEN fc${j} END AS fv${j}`,
        `CASE WHEN ${t} = '' THEN NULL WHEN NOT fi${j} THEN 'value ' || ${d.jsonQuote(t)} || ' is not an integer' WHEN fc${j} IS NULL THEN 'value ' || ${d.jsonQuote(t)} || ' has more than 38 digits' END AS fp${j}`,
      );
      return;
  }
}

/** YYYY-MM-DD text of a value written in `format`, or NULL when its shape does not match. */
function dateIso(t: string, format: DateFormat, d: Dialect): string {
  const pattern = format.pattern;
  const y = pattern.indexOf('YYYY');
  const m = pattern.indexOf('MM');
  const dd = pattern.indexOf('DD');
  let re = '';
  for (let i = 0; i < pattern.length;) {
    if (i === y) {
      re += '[0-9]{4}';
      i += 4;
    } else if (i === m || i === dd) {
      re += '[0-9]{2}';
      i += 2;
    } else {
      re += reEscape(pattern[i] as string);
      i++;
    }
  }
  return `CASE WHEN ${d.fullMatch(t, re)} THEN substr(${t}, ${y + 1}, 4) || '-' || substr(${t}, ${m + 1}, 2) || '-' || substr(${t}, ${dd + 1}, 2) END`;
}

/**
 * A decimal as `parseDecimalWith` reads it: optional sign or accounting parentheses, digits with
 * optional thousands separators in threes, an optional fraction; `,` as the decimal separator
 * swaps the two marks first. Beyond DECIMAL(38, 17) the SQL engine cannot hold a value exactly:
 * such a value makes the row invalid, with a reason saying so.
 */
function decimalColumns(
  t: string,
  j: number,
  sep: '.' | ',',
  noun: string,
  d: Dialect,
  at: (level: number, ...columns: string[]) => void,
): void {
  const lit = d.literal;
  at(0, `${sep === ',' ? `translate(${t}, ',.', '.,')` : t} AS du${j}`);
  at(1, `(du${j} LIKE '(%)') AS dp${j}`);
  at(2, `CASE WHEN dp${j} THEN ${d.trim(`substr(du${j}, 2, length(du${j}) - 2)`)} ELSE du${j} END AS dn${j}`);
  at(
    3,
    `(substr(dn${j}, 1, 1) IN ('+', '-')) AS dg${j}`,
    `(dp${j} OR substr(dn${j}, 1, 1) = '-') AS dm${j}`,
    `CASE WHEN substr(dn${j}, 1, 1) IN ('+', '-') THEN substr(dn${j}, 2) ELSE dn${j} END AS db${j}`,
  );
  at(
    4,
    `${d.fullMatch(`db${j}`, '([0-9]+|[0-9]{1,3}(,[0-9]{3})+)?(\\.[0-9]*)?')} AS dh${j}`,
    `replace(split_part(db${j}, '.', 1), ',', '') AS di${j}`,
    `CASE WHEN strpos(db${j}, '.') > 0 THEN substr(db${j}, strpos(db${j}, '.') + 1) ELSE '' END AS df${j}`,
  );
  const digits = `(length(di${j}) + length(df${j}))`;
  const fits = `(length(df${j}) <= ${DECIMAL_SCALE} AND length(ltrim(di${j}, '0')) <= ${DECIMAL_INTEGER_DIGITS})`;
  const quoted = d.jsonQuote(t);
  const example =
    sep === ',' ? '(expected e.g. 1250,50, -300, "1.250,50")' : '(expected e.g. 1250.50, -300, "1,250.50")';
  at(
    5,
    `CASE
    WHEN ${t} = '' THEN ${lit(`${noun} is empty`)}
    WHEN dp${j} AND dg${j} THEN ${lit(`${noun} `)} || ${quoted} || ' has both parentheses and a sign'
    WHEN NOT dh${j} OR ${digits} = 0 THEN ${lit(`${noun} `)} || ${quoted} || ${lit(` is not a decimal number ${example}`)}
    WHEN ${digits} > 38 THEN ${lit(`${noun} `)} || ${quoted} || ' has more than 38 digits'
    WHEN NOT ${fits} THEN ${lit(`${noun} `)} || ${quoted} || ${lit(` does not fit the SQL engine's ${DECIMAL_TYPE}`)}
  END AS fp${j}`,
    `CASE WHEN dh${j} AND ${digits} > 0 AND ${digits} <= 38 AND NOT (dp${j} AND dg${j}) AND ${fits} THEN ${d.decimalFromUnits(`(CASE WHEN dm${j} THEN '-' ELSE '' END) || (CASE WHEN di${j} = '' THEN '0' ELSE di${j} END) || rpad(df${j}, ${DECIMAL_SCALE}, '0')`)} END AS fv${j}`,
    `CASE WHEN dh${j} AND ${digits} > 0 AND ${digits} <= 38 AND NOT (dp${j} AND dg${j}) AND ${fits} THEN length(df${j}) END AS fs${j}`,
  );
}

// --- Raw relations: what the runners select from the files they read --------------------------

/** How a runner's relation of fields becomes a raw relation. */
export interface RawOptions {
  /** The record's ordinal in file order (DuckDB: `rowid + 1` of the table read; Athena has none). */
  readonly ordinal: string;
  /**
   * The reader's structural rejects: a relation of `line_no`, `reason` (NULL when the record only
   * has too many fields) and `line_text`, the record's raw text, split here into fields as the
   * engine's reader splits a damaged record (a quoted part unquoted, the text after it kept).
   */
  readonly rejects?: string;
  /** Every record has every column (Parquet): NULL is an empty value, not a missing field. */
  readonly fixedWidth?: boolean;
}

/**
 * A side's raw relation from a relation of `n + EXTRA_FIELDS` text columns `c0…`, `x1…` (NULL
 * where a record has no such field, unless `fixedWidth`).
 */
export function rawFromColumns(relation: string, n: number, options: RawOptions, d: Dialect, delimiter = ','): string {
  const extras = cols('x', EXTRA_FIELDS, 1);
  const all = [...cols('c', n), ...extras];
  const nf = options.fixedWidth ? `${n}` : all.map((c) => `(CASE WHEN ${c} IS NULL THEN 0 ELSE 1 END)`).join(' + ');
  const fields = options.fixedWidth ? [...cols('c', n).map((c) => `coalesce(${c}, '')`), ...extras] : all;
  const rows = `SELECT ${options.ordinal} AS rec, ${fields.map((f, i) => `${f} AS ${all[i]}`).join(', ')}, ${nf} AS nf, CAST(NULL AS VARCHAR) AS bad, CAST(NULL AS VARCHAR) AS line_text FROM ${relation}`;
  if (options.rejects === undefined) return rows;
  const dl = reEscape(delimiter);
  const field = `(?:^|${dl})(("(?:[^"]|"")*")?([^${dl}]*))`;
  const quoted = d.extractAll('line_text', field, 2);
  const rest = d.extractAll('line_text', field, 3);
  const value = (i: number) => {
    const q = d.element('q', i);
    return `CASE WHEN ${d.cardinality('q')} < ${i} THEN NULL ELSE replace(substr(coalesce(${q}, ''), 2, greatest(length(coalesce(${q}, '')) - 2, 0)), '""', '"') || coalesce(${d.element('r', i)}, '') END`;
  };
  // Rejects come after every read record: they never are a key's first row (their key is unread).
  return `${rows} UNION ALL SELECT 1000000000000 + line_no AS rec, ${all.map((c, i) => `${value(i + 1)} AS ${c}`).join(', ')}, ${d.cardinality('q')} AS nf, reason AS bad, CAST(NULL AS VARCHAR) AS line_text
    FROM (SELECT line_no, reason, ${quoted} AS q, ${rest} AS r FROM ${options.rejects}) rj`;
}

/** A JSON string token. */
const JSON_STRING = '"(?:[^"\\\\]|\\\\.)*"';

/**
 * An object or array (in valid JSON) nesting at most `depth` levels, itself included: each level's
 * strings are skipped whole, so brackets inside them do not count.
 */
function jsonContainer(depth: number): string {
  let pattern = `[\\[{](?:${JSON_STRING}|[^\\[\\]{}"])*[\\]}]`;
  for (let level = 2; level <= depth; level++) pattern = `[\\[{](?:${JSON_STRING}|[^\\[\\]{}"]|${pattern})*[\\]}]`;
  return pattern;
}

/** A character's escapes in a JSON string, as patterns (`\u` and its hex in any case: the caller's `(?i:`). */
function jsonEscapes(char: string): string[] {
  const units = Array.from({ length: char.length }, (_, i) => char.charCodeAt(i).toString(16).padStart(4, '0'));
  const short = SHORT_ESCAPES[char];
  return [`\\\\u${units.join('\\\\u')}`, ...(short === undefined ? [] : [`\\\\${reEscape(short)}`])];
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  '\b': 'b',
  '\f': 'f',
  '\n': 'n',
  '\r': 'r',
  '\t': 't',
};

/**
 * The text between a key's quotes that names one of the columns `names` (trimmed, lower-case
 * names) as the in-memory engine reads keys (`columnName`): escapes decoded, any letter case,
 * padded with what `trim` removes. Each character is matched as written or escaped
 * (`\u0061mount`, `\u00e9` as Python's ensure_ascii writes it, a surrogate pair for an astral one).
 * `plain`: the line is ASCII with no backslash (most lines), where only a space can pad and every
 * character is written as itself (the escape-aware pattern on every line took ~7% longer for a
 * flat 1M-line side).
 */
function jsonKeyText(names: readonly string[], plain: boolean): string {
  if (plain) return ` *(?i:${names.map(reEscape).join('|')}) *`;
  const pad = `(?:${WHITESPACE_CLASS}|${[...JS_WHITESPACE].flatMap(jsonEscapes).join('|')})*`;
  const char = (c: string) => {
    const forms = new Set([c, c.toLowerCase(), c.toUpperCase()].filter((f) => [...f].length === 1));
    const escapes = [...forms].flatMap(jsonEscapes);
    // A quote, a backslash or a control character is never written as itself inside a string.
    const asItself = c === '"' || c === '\\' || c < ' ' ? [] : [reEscape(c)];
    return `(?:${[...asItself, ...escapes].join('|')})`;
  };
  const name = (n: string) => [...n].map(char).join('');
  return `(?i:${pad}(?:${names.map(name).join('|')})${pad})`;
}

/**
 * A JSON Lines side's raw relation from a relation of its non-blank lines (`line`, in file order):
 * each header column's value read from the object's own members by its name, case-insensitively,
 * as the engine reads them (strings unescaped, numbers by their text, booleans as `true`/`false`,
 * null as empty). A member is found by skipping the members before it whole (nested values up to
 * JSON_MAX_DEPTH), so a nested object's key of the same name is never read. A line the engine
 * refuses is refused here with its reason (jsonRowProblem): not an object, nested too deep, or a
 * column named twice among the object's own keys.
 */
export function rawFromJsonLines(relation: string, header: readonly string[], ordinal: string, d: Dialect): string {
  // An own member's value: nested at most one level less than the object.
  const nested = jsonContainer(JSON_MAX_DEPTH - 1);
  const value = `(?:${JSON_STRING}|${nested}|[^,{}\\[\\]"]*)`;
  const member = `\\s*${JSON_STRING}\\s*:\\s*${value}\\s*,`;
  const before = `^\\s*\\{(?:${member})*?`;
  const key = (h: string, plain = false) => `\\s*"${jsonKeyText([h], plain)}"\\s*:\\s*`;
  const lexeme = `(${JSON_STRING}|${nested}|[-0-9][-+0-9.eE]*|true|false|null)`;
  // In an object that nests nothing every key is its own, and the first key of the name is found
  // unanchored (RE2 then extracts the group from the match alone: the anchored pattern walks every
  // member before it, ~50% more time for the whole run on a flat 1M-line side).
  const lexemes = header.map((h, i) => {
    const unanchored = (plain: boolean) => `regexp_extract(line, ${d.literal(`[{,]${key(h, plain)}${lexeme}`)}, 1)`;
    const anchored = (plain: boolean) => `regexp_extract(line, ${d.literal(`${before}${key(h, plain)}${lexeme}`)}, 1)`;
    const own = `CASE WHEN flat AND plain THEN ${unanchored(true)} WHEN flat THEN ${unanchored(false)} WHEN plain THEN ${anchored(true)} ELSE ${anchored(false)} END`;
    return `CASE WHEN ok THEN coalesce(${own}, '') END AS lx${i}`;
  });
  const values = header.map(
    (_, i) =>
      `CASE WHEN lx${i} LIKE '"%' THEN ${d.jsonStringValue(`lx${i}`)} WHEN lx${i} = 'null' THEN '' WHEN ${d.fullMatch(`lx${i}`, EXPONENT)} THEN ${plainNumberSql(`lx${i}`)} ELSE lx${i} END AS c${i}`,
  );
  // Every key of a column's name at any depth: when there are no more than the columns found among
  // the object's own members, none is there twice (most lines), so the per-column test is skipped.
  const keysAnywhere = (plain: boolean) =>
    d.cardinality(d.extractAll('line', `[{,]\\s*"${jsonKeyText(header, plain)}"\\s*:`, 0));
  const anyDepth = `(CASE WHEN plain THEN ${keysAnywhere(true)} ELSE ${keysAnywhere(false)} END)`;
  const found = header.map((_, i) => `(CASE WHEN lx${i} <> '' THEN 1 ELSE 0 END)`).join(' + ');
  const twice = header.map(
    (h) =>
      `WHEN ${d.matches('line', `${before}${key(h)}${value}\\s*,(?:${member})*?${key(h)}`)} THEN ${d.literal(repeatedFieldReason(h))}`,
  );
  // One `{` and no `[` anywhere: the object nests nothing (a bracket inside a string only sends
  // the line to the exact tests).
  const flat = `(length(line) - length(replace(line, '{', '')) = 1 AND strpos(line, '[') = 0)`;
  const shallow = `(flat OR ${d.fullMatch('line', `\\s*${jsonContainer(JSON_MAX_DEPTH)}\\s*`)})`;
  // Whether a refused line is JSON at all is asked of refused lines only (not a column of every line).
  const bad = `CASE
      WHEN NOT ok THEN CASE WHEN ${d.isJsonValue('line')} THEN 'line is not a JSON object; expected one object per line' ELSE 'line is not valid JSON' END
      WHEN NOT ${shallow} THEN ${d.literal(TOO_DEEP_REASON)}
      WHEN ${anyDepth} > ${found} THEN CASE ${twice.join(' ')} END
    END`;
  return `SELECT rec, ${values.join(', ')}, ${cols('x', EXTRA_FIELDS, 1)
    .map((x) => `CAST(NULL AS VARCHAR) AS ${x}`)
    .join(', ')}, ${header.length} AS nf, bad, CASE WHEN bad IS NULL THEN NULL ELSE line END AS line_text
    FROM (SELECT *, ${bad} AS bad
    FROM (SELECT *, ${lexemes.join(', ')}
      FROM (SELECT *, ${d.isJsonObject('line')} AS ok, ${flat} AS flat, ${d.isPlainAscii('line')} AS plain
        FROM (SELECT ${ordinal} AS rec, line FROM ${relation} WHERE ${d.trim('line')} <> '') l0) l1) l2) l3`;
}

const EXPONENT = '-?[0-9]+(\\.[0-9]+)?[eE][+-]?[0-9]+';

/** A JSON number with an exponent as plain decimal text, digit for digit (as `plainNumberText`). */
function plainNumberSql(lexeme: string): string {
  const part = (group: number) =>
    `regexp_extract(${lexeme}, '^-?([0-9]+)(?:\\.([0-9]+))?[eE]([+-]?[0-9]+)$', ${group})`;
  const int = part(1);
  const digits = `(${int} || coalesce(${part(2)}, ''))`;
  const point = `(length(${int}) + CAST(replace(${part(3)}, '+', '') AS INTEGER))`;
  const all = `CASE WHEN ${point} <= 0 THEN lpad('', CAST(1 - ${point} AS INTEGER), '0') || ${digits} WHEN ${point} > length(${digits}) THEN ${digits} || lpad('', CAST(${point} - length(${digits}) AS INTEGER), '0') ELSE ${digits} END`;
  const at = `greatest(${point}, 1)`;
  const whole = `ltrim(substr(${all}, 1, ${at}), '0')`;
  const fraction = `substr(${all}, ${at} + 1)`;
  return `(CASE WHEN ${lexeme} LIKE '-%' THEN '-' ELSE '' END) || (CASE WHEN ${whole} = '' THEN '0' ELSE ${whole} END) || (CASE WHEN ${fraction} = '' THEN '' ELSE '.' || ${fraction} END)`;
}

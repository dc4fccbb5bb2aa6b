/**
 * Every difference between the two SQL engines the compiled reconciliation runs on: DuckDB
 * (embedded: the CLI and the local stack) and Trino (Amazon Athena engine v3). The compiler
 * (`compile.ts`) writes only portable SQL plus calls into this module, so a rule is written once.
 *
 * The portable part it relies on, present in both: CTEs, `CREATE TABLE … AS`, window functions
 * (`row_number() OVER (PARTITION BY … ORDER BY …)`), `count(*) FILTER (WHERE …)`, `TRY_CAST`,
 * DECIMAL(38, s) arithmetic, `date_diff('day', …)`, `translate`, `ltrim(x, chars)`, `strpos`,
 * `substr`, `length`, `concat_ws`, `chr`, `lpad`, FULL OUTER JOIN.
 */
import { lowerSql, upperSql } from './case-map.ts';

/**
 * Working type of every decimal value: exact, 38 digits of which DECIMAL_SCALE after the point.
 * A value may use DECIMAL_INTEGER_DIGITS before it, one fewer than the type holds, so the
 * difference of any two values fits too. 17 decimals hold a double's text (0.30000000000000004);
 * 20 integer digits hold any amount of money.
 */
export const DECIMAL_SCALE = 17;
export const DECIMAL_INTEGER_DIGITS = 38 - DECIMAL_SCALE - 1;
export const DECIMAL_TYPE = `DECIMAL(38, ${DECIMAL_SCALE})`;

/** The characters JavaScript's `String.prototype.trim` removes (what the in-memory engine trims). */
export const JS_WHITESPACE =
  '\t\n\u000b\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff';

export interface Dialect {
  readonly name: 'duckdb' | 'trino';
  /** A string literal. */
  literal(text: string): string;
  /** Trims what JavaScript's trim trims. */
  trim(sql: string): string;
  /**
   * A DECIMAL_TYPE value from the text of its units at DECIMAL_SCALE (an optional `-` and at most
   * 37 digits).
   */
  decimalFromUnits(sql: string): string;
  /** Whether the whole of `sql` matches the RE2 pattern `pattern`. */
  fullMatch(sql: string, pattern: string): string;
  /** Whether some part of `sql` matches the RE2 pattern `pattern`. */
  matches(sql: string, pattern: string): string;
  /** Whether the text is ASCII without a backslash (no character in it is written as an escape). */
  isPlainAscii(sql: string): string;
  /** Hex md5 of a string. */
  md5(sql: string): string;
  /**
   * A JSON object text from (name, value) pairs; a NULL value is written as JSON null. A pair
   * marked `json` holds JSON text to embed as is (an object or array built by this module).
   */
  jsonObject(pairs: readonly JsonPair[]): string;
  /** Whether the text is one JSON object. */
  isJsonObject(sql: string): string;
  /** Whether the text is valid JSON. */
  isJsonValue(sql: string): string;
  /** A JSON array text of the non-NULL JSON texts among `items`. */
  jsonArrayOfPresent(items: readonly string[]): string;
  /** `sql`, or NULL where evaluating it fails (an overflow). */
  tryOrNull(sql: string): string;
  /** All matches of `pattern` in `sql`, capture group `group` of each: an array. */
  extractAll(sql: string, pattern: string, group: number): string;
  /** Element `i` (1-based SQL) of an array, NULL beyond its end. */
  element(array: string, i: number): string;
  /** An array's length. */
  cardinality(array: string): string;
  /** A JSON string value's text from a JSON text holding just that string (e.g. `"a\\"b"`). */
  jsonStringValue(sql: string): string;
  /** A text as a JSON string, escaped as JSON.stringify escapes it (how reasons quote a value). */
  jsonQuote(sql: string): string;
  /** The `upper` normaliser: as JavaScript's toUpperCase. */
  upper(sql: string): string;
  /** The `lower` normaliser: as JavaScript's toLowerCase. */
  lower(sql: string): string;
}

/**
 * JSON.stringify writes a control character's `\u` escape in lower case, DuckDB's to_json (and
 * Jackson, for Trino) in upper: the nine with a letter are lowered. (A value holding such an
 * escape's text after a backslash of its own is lowered too: no extract has been seen to.)
 */
function lowerControlEscapes(json: string): string {
  let out = json;
  for (const hex of ['0B', '0E', '0F', '1A', '1B', '1C', '1D', '1E', '1F'])
    out = `replace(${out}, '\\u00${hex}', '\\u00${hex.toLowerCase()}')`;
  return out;
}

/** An RE2 character class of JS_WHITESPACE. */
export const WHITESPACE_CLASS = `[${[...JS_WHITESPACE].map((c) => `\\x{${c.codePointAt(0)?.toString(16)}}`).join('')}]`;

export type JsonPair = readonly [name: string, sql: string, json?: 'json'];

const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/**
 * Outside strings, what DuckDB's json_valid accepts and JSON (and JSON.parse, the in-memory
 * engine's last word) does not: a trailing comma, NaN and Infinity (in any case, as `nan`/`inf`).
 * Inside strings such text is data; the strings are blanked out to look, but only on lines where
 * the pattern is found at all (a cheap scan), not on every line.
 */
const LENIENT_JSON = '(?i:,\\s*[\\]}]|nan|inf)';
const JSON_STRINGS = '"(?:[^"\\\\]|\\\\.)*"';
// A CASE, not AND: DuckDB evaluates both sides of an AND, which blanked the strings of every
// line (1.1 s against 0.05 s for json_valid alone on 1M lines; 0.2 s as a CASE).
const strictJsonValid = (sql: string): string =>
  `(CASE WHEN NOT json_valid(${sql}) THEN false WHEN NOT regexp_matches(${sql}, ${literal(LENIENT_JSON)}) THEN true ELSE NOT regexp_matches(regexp_replace(${sql}, ${literal(JSON_STRINGS)}, '""', 'g'), ${literal(LENIENT_JSON)}) END)`;

export const duckdb: Dialect = {
  name: 'duckdb',
  literal,
  // trim() with a set of characters is ~20x slower than the test for an edge to trim.
  trim: (sql) =>
    `(CASE WHEN regexp_matches(${sql}, ${literal(`^${WHITESPACE_CLASS}|${WHITESPACE_CLASS}$`)}) THEN trim(${sql}, ${literal(JS_WHITESPACE)}) ELSE ${sql} END)`,
  // Text to DECIMAL(38, s) is ~50x slower than text to HUGEINT, and the rest is an exact multiply.
  decimalFromUnits: (sql) =>
    `(CAST(CAST(${sql} AS HUGEINT) AS DECIMAL(38, 0)) * CAST('0.${'0'.repeat(DECIMAL_SCALE - 1)}1' AS DECIMAL(${DECIMAL_SCALE + 1}, ${DECIMAL_SCALE})))`,
  fullMatch: (sql, pattern) => `regexp_full_match(${sql}, ${literal(pattern)})`,
  matches: (sql, pattern) => `regexp_matches(${sql}, ${literal(pattern)})`,
  // strlen counts bytes, length characters: equal only for ASCII.
  isPlainAscii: (sql) => `(strlen(${sql}) = length(${sql}) AND strpos(${sql}, '\\') = 0)`,
  md5: (sql) => `md5(${sql})`,
  jsonObject: (pairs) =>
    pairs.length === 0
      ? `'{}'`
      : `CAST(json_object(${pairs.map(([k, v, json]) => `${literal(k)}, ${json ? `CAST(${v} AS JSON)` : v}`).join(', ')}) AS VARCHAR)`,
  isJsonObject: (sql) => `(CASE WHEN ${strictJsonValid(sql)} THEN json_type(${sql}) = 'OBJECT' ELSE false END)`,
  isJsonValue: strictJsonValid,
  jsonArrayOfPresent: (items) =>
    items.length === 0
      ? `'[]'`
      : `CAST(to_json(list_transform(list_filter([${items.join(', ')}], lambda x: x IS NOT NULL), lambda x: CAST(x AS JSON))) AS VARCHAR)`,
  tryOrNull: (sql) => `try(${sql})`,
  extractAll: (sql, pattern, group) => `regexp_extract_all(${sql}, ${literal(pattern)}, ${group})`,
  element: (array, i) => `${array}[${i}]`,
  cardinality: (array) => `len(${array})`,
  jsonStringValue: (sql) => `json_extract_string(${sql}, '$')`,
  jsonQuote: (sql) => lowerControlEscapes(`CAST(to_json(${sql}) AS VARCHAR)`),
  upper: (sql) => upperSql(sql, literal),
  lower: (sql) => lowerSql(sql, literal),
};

/** Trino as Athena engine v3 runs it. Not exercised here (no Athena): see athena.ts. */
export const trino: Dialect = {
  name: 'trino',
  literal,
  trim: (sql) => `trim(BOTH ${literal(JS_WHITESPACE)} FROM ${sql})`,
  decimalFromUnits: (sql) =>
    `CAST(CAST(${sql} AS DECIMAL(38, 0)) * DECIMAL '0.${'0'.repeat(DECIMAL_SCALE - 1)}1' AS ${DECIMAL_TYPE})`,
  fullMatch: (sql, pattern) => `regexp_like(${sql}, ${literal(`^(?:${pattern})$`)})`,
  matches: (sql, pattern) => `regexp_like(${sql}, ${literal(pattern)})`,
  isPlainAscii: (sql) => `(length(to_utf8(${sql})) = length(${sql}) AND strpos(${sql}, '\\') = 0)`,
  md5: (sql) => `lower(to_hex(md5(to_utf8(${sql}))))`,
  jsonObject: (pairs) =>
    pairs.length === 0
      ? `'{}'`
      : `json_format(CAST(MAP(ARRAY[${pairs.map(([k]) => literal(k)).join(', ')}], ARRAY[${pairs
          .map(([, v, json]) => (json ? `json_parse(${v})` : `CAST(${v} AS JSON)`))
          .join(', ')}]) AS JSON))`,
  jsonArrayOfPresent: (items) =>
    items.length === 0
      ? `'[]'`
      : `json_format(CAST(transform(filter(ARRAY[${items.join(', ')}], x -> x IS NOT NULL), x -> json_parse(x)) AS JSON))`,
  isJsonObject: (sql) => `coalesce(try(json_parse(${sql}) IS NOT NULL AND substr(ltrim(${sql}), 1, 1) = '{'), false)`,
  isJsonValue: (sql) => `(try(json_parse(${sql})) IS NOT NULL)`,
  tryOrNull: (sql) => `try(${sql})`,
  extractAll: (sql, pattern, group) => `regexp_extract_all(${sql}, ${literal(pattern)}, ${group})`,
  element: (array, i) => `element_at(${array}, ${i})`,
  cardinality: (array) => `cardinality(${array})`,
  jsonStringValue: (sql) => `json_extract_scalar(${sql}, '$')`,
  jsonQuote: (sql) => lowerControlEscapes(`json_format(CAST(${sql} AS JSON))`),
  // Trino's own: whether it maps ß, final sigma and the other characters case-map.ts lists as
  // JavaScript does is unverified (no Athena here).
  upper: (sql) => `upper(${sql})`,
  lower: (sql) => `lower(${sql})`,
};

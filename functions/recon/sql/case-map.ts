/**
 * The `upper` and `lower` normalisers on DuckDB, as the in-memory engine applies them
 * (JavaScript's toUpperCase / toLowerCase). DuckDB maps each character alone, by an older
 * Unicode: it upper-cases ß to ẞ where JavaScript writes SS (and ŉ, ǰ, the Greek letters with
 * iota subscript, the ligatures ﬁ…), lower-cases İ to i where JavaScript writes i̇, knows no
 * case of the letters Unicode 16 added, and lower-cases every Σ to σ where
 * JavaScript writes ς at the end of a word. On a key, one engine would find a break the other
 * does not.
 *
 * So a value holding one of the characters DuckDB maps otherwise is mapped character by
 * character, those characters by JavaScript's own mapping (computed here, when the module loads),
 * the rest by DuckDB's; a value without any (nearly all) takes DuckDB's function whole.
 * test/unit/recon-sql-case.test.ts checks every code point against the running DuckDB, so a new
 * DuckDB or Node that maps a character otherwise fails it rather than a reconciliation.
 */
type Ranges = readonly (number | readonly [number, number])[];

/** The code points whose upper case DuckDB 1.5 gives other than Node 22's toUpperCase. */
const UPPER_DIFFERS: Ranges = [
  0xdf,
  0x149,
  0x19b,
  0x1f0,
  0x264,
  0x390,
  0x3b0,
  0x587,
  0x1c8a,
  [0x1e96, 0x1e9a],
  0x1f50,
  0x1f52,
  0x1f54,
  0x1f56,
  [0x1f80, 0x1faf],
  [0x1fb2, 0x1fb4],
  [0x1fb6, 0x1fb7],
  0x1fbc,
  [0x1fc2, 0x1fc4],
  [0x1fc6, 0x1fc7],
  0x1fcc,
  [0x1fd2, 0x1fd3],
  [0x1fd6, 0x1fd7],
  [0x1fe2, 0x1fe4],
  [0x1fe6, 0x1fe7],
  [0x1ff2, 0x1ff4],
  [0x1ff6, 0x1ff7],
  0x1ffc,
  0xa7cd,
  0xa7cf,
  0xa7d3,
  0xa7d5,
  0xa7db,
  [0xfb00, 0xfb06],
  [0xfb13, 0xfb17],
  [0x10d70, 0x10d85],
  [0x16ebb, 0x16ed3],
];

/** The code points whose lower case DuckDB 1.5 gives other than Node 22's toLowerCase (alone). */
const LOWER_DIFFERS: Ranges = [
  0x130,
  0x1c89,
  [0xa7cb, 0xa7cc],
  0xa7ce,
  0xa7d2,
  0xa7d4,
  0xa7da,
  0xa7dc,
  [0x10d50, 0x10d65],
  [0x16ea0, 0x16eb8],
];

const SIGMA = '\u03a3';
const FINAL_SIGMA = '\u03c2';
/** Unicode's Cased letters, as near as RE2's classes reach (Lu, Ll, Lt). */
const CASED = '\\p{Lu}\\p{Ll}\\p{Lt}';
/** Unicode's Case_Ignorable: marks, format characters, modifiers and the mid-word punctuation. */
const IGNORABLE =
  "\\p{Mn}\\p{Me}\\p{Cf}\\p{Lm}\\p{Sk}'.:\\x{b7}\\x{2018}\\x{2019}\\x{2024}\\x{2027}\\x{fe13}\\x{fe52}\\x{fe55}\\x{ff07}\\x{ff0e}\\x{ff1a}";
/**
 * A Σ JavaScript lowers to ς (Final_Sigma): after a cased letter and any case-ignorables, and
 * not followed by case-ignorables and a cased letter.
 */
const FINAL_SIGMA_PATTERN = `([${CASED}][${IGNORABLE}]*)${SIGMA}([${IGNORABLE}]*)([^${CASED}${IGNORABLE}]|$)`;

export function upperSql(sql: string, literal: (text: string) => string): string {
  return asciiFirst(
    sql,
    'upper',
    caseMapped(sql, 'upper', UPPER_DIFFERS, (c) => c.toUpperCase(), literal),
  );
}

export function lowerSql(sql: string, literal: (text: string) => string): string {
  const sigma = `(CASE WHEN strpos(${sql}, ${literal(SIGMA)}) > 0 THEN regexp_replace(${sql}, ${literal(FINAL_SIGMA_PATTERN)}, ${literal(`\\1${FINAL_SIGMA}\\2\\3`)}, 'g') ELSE ${sql} END)`;
  return asciiFirst(
    sql,
    'lower',
    caseMapped(sigma, 'lower', LOWER_DIFFERS, (c) => c.toLowerCase(), literal),
  );
}

/**
 * ASCII text (strlen counts bytes, length characters) by DuckDB's function alone, where both
 * agree: measured on 3M ASCII keys, the pattern test on each took ~2.5x the time of `upper`.
 */
function asciiFirst(sql: string, fn: 'upper' | 'lower', other: string): string {
  return `(CASE WHEN strlen(${sql}) = length(${sql}) THEN ${fn}(${sql}) ELSE ${other} END)`;
}

function caseMapped(
  sql: string,
  fn: 'upper' | 'lower',
  differs: Ranges,
  js: (c: string) => string,
  literal: (text: string) => string,
): string {
  const hex = (n: number) => `\\x{${n.toString(16)}}`;
  const chars = differs.flatMap((r) => (typeof r === 'number' ? [r] : range(r[0], r[1])));
  const cls = `[${differs.map((r) => (typeof r === 'number' ? hex(r) : `${hex(r[0])}-${hex(r[1])}`)).join('')}]`;
  const whens = chars
    .map((n) => String.fromCodePoint(n))
    .map((c) => `WHEN ${literal(c)} THEN ${literal(js(c))}`)
    .join(' ');
  return `(CASE WHEN regexp_matches(${sql}, ${literal(cls)}) THEN array_to_string(list_transform(string_split(${sql}, ''), lambda c: CASE c ${whens} ELSE ${fn}(c) END), '') ELSE ${fn}(${sql}) END)`;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

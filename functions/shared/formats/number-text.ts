/**
 * Numbers as exact decimal text. JSON and Parquet numbers reach us as source text or as doubles;
 * either way they become plain decimal text (no exponent), which the one decimal parser reads.
 */

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * A JSON number's source text without its exponent, digit for digit: `1.5e-7` is `0.00000015`,
 * `12E2` is `1200`. Undefined when `text` is not a JSON number or its exponent is absurd (more
 * than 400 places, beyond any double and any amount).
 */
export function plainNumberText(text: string): string | undefined {
  const m = NUMBER.exec(text);
  if (!m) return undefined;
  const [, sign = '', int = '', frac = '', exp] = m;
  if (exp === undefined) return text;
  const shift = Number(exp);
  if (!Number.isSafeInteger(shift) || Math.abs(shift) > 400) return undefined;
  const digits = int + frac;
  let point = int.length + shift;
  let all = digits;
  if (point <= 0) {
    all = '0'.repeat(1 - point) + all;
    point = 1;
  } else if (point > all.length) {
    all = all + '0'.repeat(point - all.length);
  }
  let whole = all.slice(0, point).replace(/^0+(?=\d)/, '');
  const fraction = all.slice(point);
  if (whole === '') whole = '0';
  return `${sign}${whole}${fraction === '' ? '' : `.${fraction}`}`;
}

/**
 * A double as the shortest decimal text that reads back as the same double (what
 * `Number.prototype.toString` picks), without an exponent. NaN and the infinities stay as
 * words: no decimal parser accepts them, so a typed field holding one is an invalid record.
 */
export function doubleText(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Object.is(value, -0)) return '0';
  return plainNumberText(String(value)) as string;
}

/**
 * Exact decimals for money. Amounts are parsed into a scaled BigInt and never pass through a
 * binary float, so 0.1 + 0.2 style drift cannot turn a match into a break (or hide one).
 */

export interface Decimal {
  /** The value times 10^scale. */
  readonly units: bigint;
  readonly scale: number;
}

export type DecimalParseResult = { ok: true; value: Decimal } | { ok: false; reason: string };

/** Upper bound on digits; beyond this an "amount" is data corruption, not money. */
export const MAX_DIGITS = 38;

// Digits with optional thousands separators (groups of three), then an optional fraction.
const PLAIN = /^(\d+|\d{1,3}(?:,\d{3})+)?(?:\.(\d*))?$/;

/**
 * Parses an amount as it appears in a bank extract.
 * Accepts: surrounding whitespace, a leading `+` or `-`, thousands separators (`1,250.50`),
 * trailing zeros (`1250.5000`), leading zeros (`00123`), and accounting negatives (`(300.00)`).
 * Rejects: empty values, exponents (`1E5`), hex (`0x1F`), currency symbols, and anything else,
 * with a reason a person can act on.
 */
export function parseDecimal(raw: string): DecimalParseResult {
  const simple = simpleDecimal(raw, 46, 44);
  if (simple !== undefined) return { ok: true, value: simple };
  return parseDecimalFully(raw);
}

/** {@link parseDecimal} without the fast path for common shapes: the oracle its fuzz test uses. */
export function parseDecimalFully(raw: string): DecimalParseResult {
  let text = raw.trim();
  if (text === '') return { ok: false, reason: 'amount is empty' };
  let negative = false;
  if (text.startsWith('(') && text.endsWith(')')) {
    negative = true;
    text = text.slice(1, -1).trim();
  }
  const sign = text.charCodeAt(0);
  if (sign === 43 /* + */ || sign === 45 /* - */) {
    if (negative) return { ok: false, reason: `amount ${JSON.stringify(raw)} has both parentheses and a sign` };
    negative = sign === 45;
    text = text.slice(1);
  }
  const match = PLAIN.exec(text);
  const intPart = match?.[1]?.replaceAll(',', '') ?? '';
  const fracPart = match?.[2] ?? '';
  if (!match || intPart.length + fracPart.length === 0) {
    return {
      ok: false,
      reason: `amount ${JSON.stringify(raw)} is not a decimal number (expected e.g. 1250.50, -300, "1,250.50")`,
    };
  }
  if (intPart.length + fracPart.length > MAX_DIGITS) {
    return { ok: false, reason: `amount ${JSON.stringify(raw)} has more than ${MAX_DIGITS} digits` };
  }
  const magnitude = BigInt((intPart || '0') + fracPart);
  return { ok: true, value: { units: negative ? -magnitude : magnitude, scale: fracPart.length } };
}

/** Parses a decimal that must be valid (policy settings, constants); throws otherwise. */
export function decimal(raw: string): Decimal {
  const parsed = parseDecimal(raw);
  if (!parsed.ok) throw new RangeError(parsed.reason);
  return parsed.value;
}

function rescale(value: Decimal, scale: number): bigint {
  return value.units * 10n ** BigInt(scale - value.scale);
}

export function compareDecimal(a: Decimal, b: Decimal): -1 | 0 | 1 {
  const scale = Math.max(a.scale, b.scale);
  const x = rescale(a, scale);
  const y = rescale(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function subtractDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) - rescale(b, scale), scale };
}

export function absDecimal(a: Decimal): Decimal {
  return a.units < 0n ? { units: -a.units, scale: a.scale } : a;
}

/** Canonical text: no exponent, no thousands separators, at least `minScale` decimals. */
export function formatDecimal(value: Decimal, minScale = 0): string {
  const scale = Math.max(value.scale, minScale);
  const units = rescale(value, scale);
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const body = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${body}` : body;
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) + rescale(b, scale), scale };
}

export function multiplyDecimal(a: Decimal, b: Decimal): Decimal {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

export const ZERO: Decimal = Object.freeze({ units: 0n, scale: 0 });

/**
 * {@link parseDecimal} for text written with `,` as the decimal separator (and `.` then as the
 * thousands separator): `1.234,56` is 1234.56. Reasons quote the text as written.
 */
export function parseDecimalWith(raw: string, decimalSeparator: '.' | ','): DecimalParseResult {
  if (decimalSeparator === '.') return parseDecimal(raw);
  const simple = simpleDecimal(raw, 44, 46);
  if (simple !== undefined) return { ok: true, value: simple };
  let swapped = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    swapped += c === ',' ? '.' : c === '.' ? ',' : c;
  }
  const parsed = parseDecimal(swapped);
  if (parsed.ok) return parsed;
  return {
    ok: false,
    reason: parsed.reason
      .replace(JSON.stringify(swapped), JSON.stringify(raw))
      .replace('(expected e.g. 1250.50, -300, "1,250.50")', '(expected e.g. 1250,50, -300, "1.250,50")'),
  };
}

/**
 * The common shapes of an amount, read without a regular expression: an optional sign, digits
 * (grouped by `group` in threes, or not at all), and optionally `point` and digits. Anything else
 * (whitespace, parentheses, too many digits, odd grouping) is left to the full parser: undefined.
 */
function simpleDecimal(text: string, point: number, group: number): Decimal | undefined {
  const n = text.length;
  let i = 0;
  const first = text.charCodeAt(0);
  const negative = first === 45;
  if (negative || first === 43) i++;
  let digits = '';
  let run = 0;
  let groups = 0;
  let from = i;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      run++;
      continue;
    }
    if (c !== group) break;
    // A group separator: the first run is 1-3 digits, every later one exactly 3.
    if (run === 0 || (groups === 0 ? run > 3 : run !== 3)) return undefined;
    digits += text.slice(from, i);
    groups++;
    run = 0;
    from = i + 1;
  }
  if (run === 0 || (groups > 0 && run !== 3)) return undefined;
  digits += text.slice(from, i);
  let scale = 0;
  if (i < n) {
    if (text.charCodeAt(i) !== point) return undefined;
    const fraction = ++i;
    while (i < n && (text.charCodeAt(i) - 48) >>> 0 < 10) i++;
    if (i !== n || i === fraction) return undefined;
    scale = n - fraction;
    digits += text.slice(fraction);
  }
  if (digits.length > MAX_DIGITS) return undefined;
  const magnitude = BigInt(digits);
  return { units: negative ? -magnitude : magnitude, scale };
}

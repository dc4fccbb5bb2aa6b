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

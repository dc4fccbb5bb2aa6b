import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  absDecimal,
  compareDecimal,
  decimal,
  formatDecimal,
  parseDecimal,
  subtractDecimal,
  type Decimal,
} from '../../functions/shared/decimal.ts';

function parsed(raw: string): Decimal {
  const result = parseDecimal(raw);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(raw)} to parse, got: ${result.reason}`);
  return result.value;
}

function add(a: Decimal, b: Decimal): Decimal {
  return subtractDecimal(a, subtractDecimal(decimal('0'), b));
}

describe('parseDecimal accepts the amount spellings the policy lists', () => {
  it.each(['1,250.50', ' 1250.50 ', '+1250.5', '1250.5000', '1250.50', '1,250.5', '\t1250.50\n'])(
    'reads %j as 1250.50',
    (raw) => {
      // Act
      const value = parsed(raw);
      // Assess
      expect(compareDecimal(value, decimal('1250.50'))).toBe(0);
      expect(formatDecimal(subtractDecimal(value, decimal('1250.50')))).toMatch(/^0(\.0+)?$/);
    },
  );

  it('reads an accounting negative (300.00) as -300.00', () => {
    const value = parsed('(300.00)');
    expect(compareDecimal(value, decimal('-300.00'))).toBe(0);
    expect(formatDecimal(value, 2)).toBe('-300.00');
  });

  it('reads leading zeros 00123 as 123', () => {
    const value = parsed('00123');
    expect(compareDecimal(value, decimal('123'))).toBe(0);
    expect(formatDecimal(value)).toBe('123');
  });

  it('reads a negative with thousands separators and a bare fraction', () => {
    expect(formatDecimal(parsed('-1,000,000.25'))).toBe('-1000000.25');
    expect(formatDecimal(parsed('.5'))).toBe('0.5');
    expect(formatDecimal(parsed('5.'))).toBe('5');
  });
});

describe('parseDecimal rejects what is not an amount, with a reason', () => {
  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['1E5', /not a decimal/],
    ['1e5', /not a decimal/],
    ['0x1F', /not a decimal/],
    ['$5', /not a decimal/],
    ['1,25.0', /not a decimal/],
    ['12,34', /not a decimal/],
    ['--1', /not a decimal/],
    ['+-1', /not a decimal/],
    ['(-5)', /both parentheses and a sign/],
    ['abc', /not a decimal/],
    ['.', /not a decimal/],
    ['1.2.3', /not a decimal/],
    ['NaN', /not a decimal/],
    ['Infinity', /not a decimal/],
    ["=cmd|'/C calc'!A0", /not a decimal/],
    ['1 000', /not a decimal/],
    ['1'.repeat(39), /more than 38 digits/],
  ])('rejects %j', (raw, reason) => {
    // Act
    const result = parseDecimal(raw);
    // Assess
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('decimal() throws a RangeError carrying the same reason', () => {
    expect(() => decimal('1E5')).toThrow(RangeError);
    expect(() => decimal('1E5')).toThrow(/not a decimal number/);
  });
});

describe('decimal arithmetic is exact', () => {
  it('0.1 + 0.2 equals 0.3 exactly, unlike binary floats', () => {
    // Prepare
    const sum = add(decimal('0.1'), decimal('0.2'));
    // Assess
    expect(0.1 + 0.2).not.toBe(0.3);
    expect(compareDecimal(sum, decimal('0.3'))).toBe(0);
    expect(formatDecimal(sum)).toBe('0.3');
  });

  it('subtracts across scales without rounding', () => {
    expect(formatDecimal(subtractDecimal(decimal('475.00'), decimal('450')))).toBe('25.00');
    expect(formatDecimal(subtractDecimal(decimal('295.00'), decimal('310.00')))).toBe('-15.00');
    expect(formatDecimal(subtractDecimal(decimal('1.011'), decimal('1')))).toBe('0.011');
    expect(formatDecimal(subtractDecimal(decimal('0.3'), decimal('0.1')))).toBe('0.2');
  });

  it('keeps huge values beyond 2^53 exact', () => {
    // Prepare: 2^53 + 1 cannot be represented as a double.
    const big = decimal('9007199254740993.01');
    const bigger = decimal('9007199254740993.02');
    // Act
    const diff = subtractDecimal(bigger, big);
    // Assess
    expect(Number('9007199254740993')).toBe(9007199254740992);
    expect(formatDecimal(diff)).toBe('0.01');
    expect(compareDecimal(big, bigger)).toBe(-1);
    expect(formatDecimal(decimal('123456789012345678901234567890.12345678'))).toBe(
      '123456789012345678901234567890.12345678',
    );
  });

  it('compares equal values at different scales as equal', () => {
    expect(compareDecimal(decimal('1.5'), decimal('1.500000'))).toBe(0);
    expect(compareDecimal(decimal('-0.01'), decimal('0'))).toBe(-1);
    expect(compareDecimal(decimal('0.011'), decimal('0.01'))).toBe(1);
  });

  it('formats with a minimum scale, a sign and leading zero', () => {
    expect(formatDecimal(decimal('-0.5'), 2)).toBe('-0.50');
    expect(formatDecimal(decimal('7'), 2)).toBe('7.00');
    expect(formatDecimal(decimal('0.001'))).toBe('0.001');
    expect(formatDecimal(decimal('-0.00'))).toBe('0.00');
    expect(formatDecimal(absDecimal(decimal('-12.30')))).toBe('12.30');
  });
});

describe('decimal properties', () => {
  const decimalValue = fc.record({
    units: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
    scale: fc.integer({ min: 0, max: 8 }),
  });

  it('parseDecimal never throws on any string', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[\s()+\-,.\d eExX$]{0,20}$/)),
        (raw) => {
          const result = parseDecimal(raw);
          expect(typeof result.ok).toBe('boolean');
          if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('format(parse(text)) round-trips canonical decimals', () => {
    fc.assert(
      fc.property(decimalValue, (value) => {
        const text = formatDecimal(value);
        const back = parsed(text);
        expect(compareDecimal(back, value)).toBe(0);
        expect(formatDecimal(back)).toBe(text);
      }),
    );
  });

  it('parse agrees with thousands-separated and padded spellings', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 20n }), fc.integer({ min: 0, max: 99 }), (whole, cents) => {
        const plain = `${whole}.${String(cents).padStart(2, '0')}`;
        const grouped = `${whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${String(cents).padStart(2, '0')}00`;
        expect(compareDecimal(parsed(` ${grouped} `), parsed(plain))).toBe(0);
        expect(compareDecimal(parsed(`(${grouped})`), parsed(`-${plain}`))).toBe(0);
      }),
    );
  });

  it('compare is antisymmetric and consistent with subtract', () => {
    fc.assert(
      fc.property(decimalValue, decimalValue, (a, b) => {
        const ab = compareDecimal(a, b);
        expect(compareDecimal(b, a) + ab).toBe(0);
        const diff = subtractDecimal(a, b);
        expect(compareDecimal(diff, decimal('0'))).toBe(ab);
      }),
    );
  });
});

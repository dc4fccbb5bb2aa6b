/**
 * The exact-identifier ranking's check (fusion.ts hasTokens) skips tokenising a text that cannot
 * hold the identifiers: held here to the plain definition (every wanted token among the text's
 * tokens) on texts built to sit at its edges — case, underscores, stemmed suffixes, stop words,
 * identifiers inside longer tokens.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasTokens, identifiers } from '../../functions/shared/search/fusion.ts';
import { tokenize } from '../../functions/shared/search/hashing-embedder.ts';

const reference = (text: string, wanted: readonly string[]) => {
  const have = new Set(tokenize(text));
  return wanted.every((token) => have.has(token));
};

const piece = fc.constantFrom(
  'T000004217',
  't000004217s',
  'ACCT4217',
  'acct4217_x',
  'xacct4217',
  'acct42',
  'trade',
  'amounts',
  'the',
  'ACCT-4217',
  '4217ed',
  'run_cash_3',
  'differences',
);
const text = fc
  .array(fc.tuple(piece, fc.constantFrom(' ', '_', '-', ', ', '')), { maxLength: 8 })
  .map((parts) => parts.map(([p, sep]) => p + sep).join(''));

describe('hasTokens', () => {
  it('agrees with tokenising the whole text', () => {
    fc.assert(
      fc.property(text, text, (body, query) => {
        const wanted = identifiers(query);
        expect(hasTokens(body, wanted)).toBe(reference(body, wanted));
      }),
      { numRuns: 2000 },
    );
  });

  it('finds an identifier as a token and not inside a longer one', () => {
    expect(hasTokens('Trade T000004217 amount differs', ['t000004217'])).toBe(true);
    expect(hasTokens('account ACCT4217s', ['acct4217'])).toBe(true);
    expect(hasTokens('account XACCT4217', ['acct4217'])).toBe(false);
    expect(hasTokens('account ACCT42', ['acct4217'])).toBe(false);
  });
});

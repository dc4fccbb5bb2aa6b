import { describe, expect, it } from 'vitest';
import { createMasker, isMaskToken, NO_MASKING, queryWithTokens } from '../../functions/shared/masking.ts';

const SECRET = 'a-secret-of-sixteen+';
const exception = {
  key: { trade_id: 'T1', account: 'ACCT1004' },
  source: { trade_id: 'T1', acct: 'ACCT1004', client_name: 'Jane Doe', amount: '10.00' },
  target: { trade_id: 'T1', account_no: 'ACCT1004', client_name: 'Jane Doe', amount: '1000.00' },
  diffs: [
    { field: 'amount', source: '10.00', target: '1000.00', delta: '990.00' },
    { field: 'client_name', source: 'Jane Doe', target: 'J. Doe' },
  ],
  reason: 'account "ACCT1004" of Jane Doe is closed',
};

describe('masking sensitive fields', () => {
  it('tokenises every sensitive value in keys, rows, diffs and the reason, and nothing else', () => {
    const m = createMasker(['account', 'acct', 'account_no', 'Client_Name'], SECRET);
    const out = m.exception(exception);
    const text = JSON.stringify(out);
    for (const secret of ['ACCT1004', 'Jane Doe', 'J. Doe']) expect(text).not.toContain(secret);
    expect(out.key.trade_id).toBe('T1');
    expect(out.source.amount).toBe('10.00');
    expect(out.diffs[0]).toEqual(exception.diffs[0]);
    expect(out.diffs[1]).not.toHaveProperty('delta');
    expect(isMaskToken(out.key.account!)).toBe(true);
    // The same value is the same token in every column; the input is not changed.
    expect(out.source.acct).toBe(out.key.account);
    expect(out.target.account_no).toBe(out.key.account);
    expect(out.reason).toBe(`account "${out.key.account}" of ${out.source.client_name} is closed`);
    expect(exception.key.account).toBe('ACCT1004');
  });

  it('depends on the secret, is stable, and is idempotent', () => {
    const a = createMasker(['account'], SECRET);
    const b = createMasker(['account'], `${SECRET}x`);
    expect(a.token('ACCT1004')).toBe(a.token('ACCT1004'));
    expect(a.token('ACCT1004')).not.toBe(b.token('ACCT1004'));
    expect(a.token(a.token('ACCT1004'))).toBe(a.token('ACCT1004'));
  });

  it('adds the token of each query word so an exact sensitive value can still be searched', () => {
    const m = createMasker(['account'], SECRET);
    expect(m.queryTerms('ACCT1004 late')).toEqual(['ACCT1004', 'late', m.token('ACCT1004'), m.token('late')]);
    expect(NO_MASKING.queryTerms('ACCT1004 late')).toEqual(['ACCT1004', 'late']);
  });

  it('refuses sensitive fields without a secret, and passes everything through when none are named', () => {
    expect(() => createMasker(['account'], undefined)).toThrow(/no masking secret/);
    expect(() => createMasker(['account'], 'short')).toThrow(/at least 16/);
    expect(NO_MASKING.exception(exception)).toBe(exception);
    expect(NO_MASKING.active).toBe(false);
  });

  it("adds each query word's token under the current key, whichever key the last search used", () => {
    const other = 'another-secret-of-16';
    const words = (key: string) =>
      `ACCT1004 closed ${createMasker(['*'], key).token('ACCT1004')} ${createMasker(['*'], key).token('closed')}`;
    expect(queryWithTokens('ACCT1004  closed', SECRET)).toBe(words(SECRET));
    // Asked again (remembered), then under another key (nothing of the first key's kept).
    expect(queryWithTokens('ACCT1004 closed', SECRET)).toBe(words(SECRET));
    expect(queryWithTokens('ACCT1004 closed', other)).toBe(words(other));
    expect(queryWithTokens('ACCT1004 closed', SECRET)).toBe(words(SECRET));
    expect(queryWithTokens('ACCT1004 closed', undefined)).toBe('ACCT1004 closed');
    // More distinct words than are kept: each still gets its own token.
    for (let n = 0; n < 10_050; n++)
      expect(queryWithTokens(`w${n}`, SECRET)).toBe(`w${n} ${createMasker(['*'], SECRET).token(`w${n}`)}`);
  });
});

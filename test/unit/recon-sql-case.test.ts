/**
 * The `upper` and `lower` normalisers on DuckDB (case-map.ts) against JavaScript's, which the
 * in-memory engine applies: every code point alone, then words where the context counts (a Σ
 * ending a word lowers to ς).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { duckdb } from '../../functions/recon/sql/dialect.ts';

let db: DuckDBConnection;
beforeAll(async () => {
  db = await (await DuckDBInstance.create(':memory:')).connect();
});
afterAll(() => db.closeSync());

/** Each text upper- and lower-cased by the dialect's SQL. */
async function mapped(texts: readonly string[]): Promise<{ upper: string; lower: string }[]> {
  await db.run('CREATE OR REPLACE TEMP TABLE texts (i INTEGER, s VARCHAR)');
  const appender = await db.createAppender('texts', 'main', 'temp');
  texts.forEach((text, i) => {
    appender.appendInteger(i);
    appender.appendVarchar(text);
    appender.endRow();
  });
  appender.closeSync();
  const reader = await db.runAndReadAll(
    `SELECT ${duckdb.upper('s')} AS u, ${duckdb.lower('s')} AS l FROM texts ORDER BY i`,
  );
  return reader.getRows().map(([u, l]) => ({ upper: u as string, lower: l as string }));
}

function differences(texts: readonly string[], got: { upper: string; lower: string }[]): string[] {
  const seen: string[] = [];
  texts.forEach((text, i) => {
    const hex = [...text].map((c) => c.codePointAt(0)?.toString(16)).join(' ');
    if (got[i]?.upper !== text.toUpperCase()) seen.push(`upper ${hex}: ${got[i]?.upper} vs ${text.toUpperCase()}`);
    if (got[i]?.lower !== text.toLowerCase()) seen.push(`lower ${hex}: ${got[i]?.lower} vs ${text.toLowerCase()}`);
  });
  return seen;
}

describe('upper and lower on DuckDB, as JavaScript maps them', () => {
  it('maps every code point as JavaScript does', async () => {
    // After a letter: a value reaches the normaliser trimmed, and DuckDB's Node client drops a
    // U+FEFF that starts a text it returns (a byte order mark to its decoder).
    const texts: string[] = [];
    for (let cp = 1; cp <= 0x10ffff; cp++) if (cp < 0xd800 || cp > 0xdfff) texts.push(`a${String.fromCodePoint(cp)}`);
    expect(differences(texts, await mapped(texts)).slice(0, 10)).toEqual([]);
  });

  it('maps words as JavaScript does: ß, İ and a final sigma', async () => {
    const words = ['straße', 'İstanbul', 'ΟΔΟΣ', 'ΟΔΟΣ ΑΘΗΝΩΝ', 'ΑΣ.Σ', "ΑΣ'", 'ΣΑ', 'Σ', 'ΑΣΣ', 'ΑΣ́', 'ΑΣ1', 'ﬁnance'];
    const got = await mapped(words);
    expect(differences(words, got)).toEqual([]);
    expect(got.map((g) => g.lower).slice(2, 4)).toEqual(['οδος', 'οδος αθηνων']);
  });

  it('maps random words of Greek, Latin, marks and punctuation as JavaScript does', async () => {
    const alphabet = ['Σ', 'σ', 'ς', 'Α', 'α', 'a', 'B', 'ß', 'İ', ' ', '.', "'", '\u0301', '\u00ad', '1', '-', 'ʰ'];
    const words = fc.sample(
      fc.array(fc.constantFrom(...alphabet), { maxLength: 8 }).map((a) => a.join('')),
      {
        numRuns: 3000,
        seed: 17,
      },
    );
    expect(differences(words, await mapped(words)).slice(0, 10)).toEqual([]);
  });
});

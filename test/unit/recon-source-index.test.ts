import { describe, expect, it } from 'vitest';
import {
  hashOf,
  REPEAT,
  SOURCE_DUPLICATED,
  SourceIndex,
  TARGET_DUPLICATED,
  TARGET_SAME_TEXT,
  TARGET_SEEN,
} from '../../functions/recon/source-index.ts';

/** An index over `lines` (key = text before the first comma), one decoded chunk, built. */
function indexOf(lines: string[]): { index: SourceIndex; chunk: string; starts: number[] } {
  const chunk = lines.join('\n');
  const index = new SourceIndex();
  const starts: number[] = [];
  let from = 0;
  lines.forEach((line, i) => {
    starts.push(from);
    const keyEnd = from + line.indexOf(',');
    const holder = index.holderOf(chunk);
    index.append(hashOf(chunk, from, keyEnd), holder, from, keyEnd, holder, from, from + line.length, undefined, i + 2);
    from += line.length + 1;
  });
  index.build();
  return { index, chunk, starts };
}

describe('SourceIndex', () => {
  it('hashes a key the same wherever its text sits', () => {
    expect(hashOf('xxT1,A', 2, 4)).toBe(hashOf('T1', 0, 2));
    expect(hashOf('T1', 0, 2)).not.toBe(hashOf('T2', 0, 2));
    expect(hashOf('T1', 0, 2)).toBeLessThan(2 ** 30);
  });

  it('finds the first row of a key and marks later rows of it as repeats', () => {
    // Act
    const { index } = indexOf(['T1,a', 'T2,b', 'T1,c', 'T3,d', 'T1,e']);
    // Assess
    expect(index.size).toBe(5);
    expect(index.find(hashOf('T1', 0, 2), 'T1', 0, 2)).toBe(0);
    expect(index.find(hashOf('T3', 0, 2), 'T3', 0, 2)).toBe(3);
    expect(index.find(hashOf('T9', 0, 2), 'T9', 0, 2)).toBe(-1);
    expect(index.flags(0) & SOURCE_DUPLICATED).toBeTruthy();
    expect(index.flags(2) & REPEAT).toBeTruthy();
    expect(index.flags(4) & REPEAT).toBeTruthy();
    expect(index.sourceRepeats(0)).toEqual([4, 6]);
    expect(index.keyText(0)).toBe('T1');
    expect(index.sourceEntry(1)).toEqual({ line: 3, text: 'T2,b' });
  });

  it('steps over repeats to the next first row', () => {
    const { index } = indexOf(['T1,a', 'T1,b', 'T1,c', 'T2,d']);
    expect(index.firstAfter(-1)).toBe(0);
    expect(index.firstAfter(0)).toBe(3);
    expect(index.firstAfter(3)).toBe(4);
    expect(index.hasKey(1, hashOf('T1', 0, 2), 'T1', 0, 2)).toBe(false); // a repeat is not a first row
    expect(index.hasKey(0, hashOf('T1', 0, 2), 'T1', 0, 2)).toBe(true);
  });

  it('compares raw lines whole', () => {
    const { index } = indexOf(['T1,a,1.00', 'T2,b,2.00']);
    expect(index.rowIs(0, 'xT1,a,1.00', 1, 10)).toBe(true);
    expect(index.rowIs(0, 'T1,a,1.0', 0, 8)).toBe(false);
    expect(index.rowIs(1, 'T1,a,1.00', 0, 9)).toBe(false);
  });

  it('records what the target matched: the same line, a different one, then duplicates', () => {
    // Prepare
    const { index } = indexOf(['T1,a', 'T2,b']);
    // Act
    index.matchTarget(0, true, 'T1,a', 0, 4, 2);
    index.matchTarget(1, false, '..T2,z', 2, 6, 3);
    index.matchTarget(1, false, 'T2,y', 0, 4, 7);
    index.matchTarget(1, false, ['T2', 'x'], 0, 0, 9);
    // Assess
    expect(index.flags(0)).toBe(TARGET_SEEN | TARGET_SAME_TEXT);
    expect(index.targetEntry(0, index.sourceEntry(0))).toEqual({ line: 2, text: 'T1,a' });
    expect(index.flags(1)).toBe(TARGET_SEEN | TARGET_DUPLICATED);
    expect(index.targetEntry(1, index.sourceEntry(1))).toEqual({ line: 3, text: 'T2,z' });
    expect(index.targetRepeats(1)).toEqual([7, 9]);
    expect(index.targetRepeats(0)).toBeUndefined();
  });

  it('keeps a quoted row as its fields', () => {
    const index = new SourceIndex();
    const key = index.ownHolder('T1');
    index.append(hashOf('T1', 0, 2), key, 0, 2, -1, 0, 0, ['T1', 'a, b'], 5);
    index.build();
    expect(index.sourceEntry(0)).toEqual({ line: 5, text: ['T1', 'a, b'] });
    expect(index.rowIs(0, 'T1,a, b', 0, 7)).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import { storingText } from '../../web/src/run-progress.ts';

describe("the run view's storing progress", () => {
  it('counts stored chunks against the total once recon has queued them all', () => {
    expect(storingText({ status: 'STORING', chunks_total: 12, chunks_stored: 3 })).toBe('storing 3 of 12 chunks');
    expect(storingText({ status: 'STORING', chunks_total: 1 })).toBe('storing 0 of 1 chunk');
  });

  it('says what is stored while recon is still finding (the total is not known yet)', () => {
    expect(storingText({ status: 'RUNNING' })).toBe('reconciling');
    expect(storingText({ status: 'RUNNING', chunks_stored: 2 })).toBe('reconciling; 2 chunks stored so far');
  });

  it('says nothing of chunks once the run is over', () => {
    expect(storingText({ status: 'COMPLETED', chunks_total: 3, chunks_stored: 3 })).toBeNull();
    expect(storingText({ status: 'FAILED' })).toBeNull();
  });
});

/** The first bad byte of a chunk that failed UTF-8 validation, held to the WHATWG decoder. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, invalidUtf8Position, notUtf8Reason } from '../../functions/shared/formats/utf8.ts';

/** Whether `bytes` decode as the start of a UTF-8 stream (an unfinished last sequence allowed). */
function decodesAsStart(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

describe('firstInvalidUtf8', () => {
  it('agrees with TextDecoder: everything before it decodes, and the sequence it starts does not', () => {
    const byte = fc.oneof(
      fc.integer({ min: 0, max: 0x7f }),
      fc.integer({ min: 0x80, max: 0xbf }),
      fc.constantFrom(0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff),
    );
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 24 }), (values) => {
        const bytes = new Uint8Array(values);
        const at = firstInvalidUtf8(bytes);
        expect(decodesAsStart(bytes)).toBe(at === bytes.length);
        expect(decodesAsStart(bytes.subarray(0, at))).toBe(true);
        // The bad byte, or the lead byte of a sequence cut short (at most 4 bytes long).
        if (at < bytes.length) expect(decodesAsStart(bytes.subarray(0, at + 4))).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('counts the lines before the bad byte from the line the chunk starts on', () => {
    const bytes = new Uint8Array([...Buffer.from('a\nb\nc'), 0xe9, ...Buffer.from('\n')]);

    expect(invalidUtf8Position(bytes, 10)).toEqual({ line: 12, byte: 0xe9 });
    expect(notUtf8Reason(12, 0xe9, '')).toBe('file is not valid UTF-8 at line 12 (byte 0xE9); expected UTF-8');
  });
});

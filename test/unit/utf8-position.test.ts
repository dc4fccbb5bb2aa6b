/** The first bad byte of a chunk that failed UTF-8 validation, held to the WHATWG decoder. */
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, invalidUtf8Position, notUtf8Reason } from '../../functions/shared/formats/utf8.ts';
import type { JsonLinesFileError } from '../../functions/shared/formats/jsonl.ts';
import { readJsonLinesInto } from '../../functions/shared/formats/jsonl.ts';

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
    expect(notUtf8Reason(0xe9, '')).toBe('file is not valid UTF-8 (byte 0xE9); expected UTF-8');
  });
});

describe('the JSON Lines reader on a file that is not UTF-8', () => {
  it('names the line and byte whatever the chunks, a character cut in two by a chunk included', async () => {
    // "€" is three bytes (E2 82 AC), right before a lone 0xFF on line 3: some sizes cut the "€"
    // with the 0xFF in the next chunk.
    const bytes = Buffer.concat([
      Buffer.from('{"a":"x"}\n{"a":"y"}\n{"a":"€'),
      Buffer.from([0xff]),
      Buffer.from('"}\n'),
    ]);
    const seen = new Set<string>();
    for (let size = 1; size <= bytes.length; size++) {
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const error = await readJsonLinesInto(Readable.from(chunks), { line: () => undefined }).then(
        () => undefined,
        (e: JsonLinesFileError) => e,
      );
      seen.add(`${error?.line} ${error?.message}`);
    }

    expect([...seen]).toEqual(['3 file is not valid UTF-8 (byte 0xFF); expected UTF-8 (JSON Lines is always UTF-8)']);
  });
});

/**
 * Where UTF-8 goes wrong, for error messages. The readers validate whole chunks at once (simdutf
 * through `isUtf8`, or `TextDecoder`), which says only that a chunk is bad; on that path alone
 * this finds the first bad byte, so the error names its line and the byte itself whatever the
 * chunk sizes (S3's stream and a file read used to report different lines for one file).
 */

/** The smallest second byte of a sequence lead byte `c` starts (no overlong form). */
function secondLow(c: number): number {
  return c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
}

/** The largest second byte of a sequence lead byte `c` starts (no surrogate, nothing past U+10FFFF). */
function secondHigh(c: number): number {
  return c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
}

/**
 * Offset of the first byte of `b` that cannot be part of UTF-8 (a stray continuation byte, a
 * lead byte no sequence starts with, a sequence cut short by another character, an overlong or
 * surrogate form): `b.length` when there is none. A sequence still incomplete at the end of `b`
 * is not an error here (the next bytes may complete it).
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2 || c > 0xf4) return i;
    const need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return n;
      const d = b[i + k] as number;
      if (k === 1 ? d < secondLow(c) || d > secondHigh(c) : d < 0x80 || d > 0xbf) return i;
    }
    i += need + 1;
  }
  return n;
}

/** How many line feeds `b` holds before `end`. */
export function newlinesBefore(b: Uint8Array, end: number): number {
  let count = 0;
  for (let i = 0; i < end; i++) if (b[i] === 0x0a) count++;
  return count;
}

/**
 * Where bytes that failed validation go wrong: the line of the first bad byte (`line` is the line
 * the first of `bytes` is on) and that byte. `bytes` must start where a character starts (a
 * chunk with the unfinished character the chunk before ended with in front of it); with no bad
 * byte found, the line they start on and no byte.
 */
export function invalidUtf8Position(bytes: Uint8Array, line: number): { line: number; byte: number | undefined } {
  const at = firstInvalidUtf8(bytes);
  if (at >= bytes.length) return { line, byte: undefined };
  return { line: line + newlinesBefore(bytes, at), byte: bytes[at] };
}

/** The reason a file that is not UTF-8 gives: the byte and what to do about it (the error carries the line). */
export function notUtf8Reason(byte: number | undefined, hint: string): string {
  const shown = byte === undefined ? '' : ` (byte 0x${byte.toString(16).toUpperCase().padStart(2, '0')})`;
  return `file is not valid UTF-8${shown}; expected UTF-8${hint}`;
}

/**
 * How many bytes at the end of `b` are the valid start of a UTF-8 sequence that is not complete
 * yet (0 to 3). Anything invalid is left in place so that validation rejects it at once, as the
 * WHATWG decoder would.
 */
export function incompleteTail(b: Uint8Array): number {
  const n = b.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const c = b[n - k] as number;
    if (c < 0x80) return 0;
    if (c < 0xc0) continue; // continuation byte: look further back for the lead byte
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (need <= k) return 0;
    // The lead byte and the continuation bytes after it must be a prefix of a valid sequence.
    if (c < 0xc2 || c > 0xf4) return 0;
    if (k >= 2) {
      const c1 = b[n - k + 1] as number;
      if (c1 < secondLow(c) || c1 > secondHigh(c)) return 0;
    }
    return k;
  }
  return 0;
}

/**
 * How many characters (code points) `text` holds: a character beyond U+FFFF is one, not its two
 * UTF-16 units. The SQL engines count characters so (`length`, `substr`); a limit or a cut that
 * both recon engines apply counts this way.
 */
export function characterCount(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++, count++) if (isPairAt(text, i)) i++;
  return count;
}

/** `text` cut to its first `max` characters (code points, as {@link characterCount} counts). */
export function firstCharacters(text: string, max: number): string {
  let i = 0;
  for (let count = 0; i < text.length && count < max; i++, count++) if (isPairAt(text, i)) i++;
  return text.slice(0, i);
}

/** A surrogate pair starts at `i`. */
function isPairAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0xd800 || c > 0xdbff) return false;
  const next = text.charCodeAt(i + 1);
  return next >= 0xdc00 && next <= 0xdfff;
}

/** No lone surrogate (String.prototype.isWellFormed, ES2024; the project's lib is ES2023). */
export const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

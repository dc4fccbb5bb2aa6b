/**
 * JSON Lines: one JSON object per line, UTF-8. Blank lines are skipped (and counted, so line
 * numbers are the file's). Numbers are taken from their source text — `1250.10` stays 1250.10 —
 * through `JSON.parse`'s reviver context (`context.source`, the JSON.parse source text access
 * proposal, in V8 since Node 21), so no amount ever passes through a binary float. A line that is
 * not a JSON object is the caller's invalid record; bytes that are not UTF-8 or a line longer than
 * the limit fail the file with its line.
 */
import type { Chunk } from './gzip.ts';
import { plainNumberText } from './number-text.ts';
import { incompleteTail, invalidUtf8Position, isWellFormed, notUtf8Reason } from './utf8.ts';

export type JsonLinesErrorCode = 'ENCODING' | 'RECORD_TOO_LARGE';

export class JsonLinesFileError extends Error {
  readonly code: JsonLinesErrorCode;
  readonly line: number;
  constructor(code: JsonLinesErrorCode, message: string, line: number) {
    super(message);
    this.name = 'JsonLinesFileError';
    this.code = code;
    this.line = line;
  }
}

export interface JsonLinesSink {
  /** A non-blank line: `buf` from `start` to `end` (line break and a trailing CR excluded). */
  line(buf: string, start: number, end: number, line: number): void;
}

const DEFAULT_MAX_LINE_CHARS = 16 * 1024 * 1024;
const NO_BYTES = new Uint8Array(0);

export async function readJsonLinesInto(
  input: AsyncIterable<Chunk>,
  sink: JsonLinesSink,
  options: { readonly maxLineChars?: number } = {},
): Promise<void> {
  const maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let pending = '';
  let line = 1;
  const scan = (text: string, final: boolean): void => {
    let pos = 0;
    for (;;) {
      const nl = text.indexOf('\n', pos);
      if (nl === -1 && !final) break;
      const end = nl === -1 ? text.length : nl;
      let lineEnd = end;
      if (lineEnd > pos && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
      if (!isBlank(text, pos, lineEnd)) sink.line(text, pos, lineEnd, line);
      line++;
      if (nl === -1) {
        pos = text.length;
        break;
      }
      pos = nl + 1;
    }
    pending = pos < text.length ? text.slice(pos) : '';
    if (pending.length > maxLineChars)
      throw new JsonLinesFileError('RECORD_TOO_LARGE', `line exceeds ${maxLineChars} characters`, line);
  };
  /** The unfinished character the last chunk ended with (the decoder holds it too): where a bad byte is counted from. */
  let tail = NO_BYTES;
  const decode = (bytes: Uint8Array | undefined): string => {
    try {
      const text = bytes === undefined ? decoder.decode() : decoder.decode(bytes, { stream: true });
      if (bytes !== undefined) {
        // The unfinished character is in the last 3 bytes: the chunk's own, unless it is shorter.
        const whole = tail.length === 0 || bytes.length >= 3 ? bytes : Buffer.concat([tail, bytes]);
        const unfinished = incompleteTail(whole);
        // A copy: a view would keep the whole chunk alive.
        tail = unfinished === 0 ? NO_BYTES : new Uint8Array(whole.subarray(whole.length - unfinished));
      }
      return text;
    } catch {
      // `pending` (the text after the last line break) and `tail` hold no line break: `line` is
      // where these bytes begin.
      const at =
        bytes === undefined
          ? { line, byte: tail[0] }
          : invalidUtf8Position(tail.length === 0 ? bytes : Buffer.concat([tail, bytes]), line);
      throw new JsonLinesFileError('ENCODING', notUtf8Reason(at.byte, ' (JSON Lines is always UTF-8)'), at.line);
    }
  };
  for await (const chunk of input) {
    const text = typeof chunk === 'string' ? chunk : decode(chunk);
    if (text.length > 0) scan(pending + text, false);
  }
  scan(pending + decode(undefined), true);
}

function isBlank(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * Numbers become their exact decimal text; everything else is left as parsed. A string or key
 * escaping half a surrogate pair (`"\ud800"`) is refused: it is no character, UTF-8 cannot carry
 * it, and the SQL engine's JSON reader refuses the line.
 */
const keepNumberText: Reviver = (key, value, context) => {
  if (!isWellFormed(key) || (typeof value === 'string' && !isWellFormed(value)))
    throw new Error('a string escapes half of a surrogate pair (a lone \\uD800-\\uDFFF), which is no character');
  if (typeof value !== 'number') return value;
  const source = context?.source;
  if (source === undefined) throw new Error('JSON.parse source text access is not available (Node 22 needed)');
  return plainNumberText(source) ?? source;
};

export type JsonObjectResult =
  | {
      readonly ok: true;
      readonly values: Map<string, string | null>;
      /**
       * Read by the flat reader: no nested object or array, and no key written twice (the case
       * where {@link jsonRowProblem} has nothing to look for beyond a key repeated in another case).
       */
      readonly simple: boolean;
      /** The object's own members as written, when reading it needed them (a nested value). */
      readonly members?: OwnMembers;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * One line as a flat object of text values: strings as they are, numbers by their source text,
 * booleans as `true`/`false`, null as null, nested arrays and objects as their JSON text.
 */
export function parseJsonObject(text: string): JsonObjectResult {
  // Most lines are flat objects of strings, numbers, booleans and nulls: read those directly
  // (several times faster than JSON.parse with a reviver); anything else, including every
  // syntax error, goes through JSON.parse, which has the last word and the error messages.
  const flat = parseFlatObject(text);
  if (flat !== undefined) return { ok: true, values: flat, simple: true };
  return parseJsonObjectWithJsonParse(text);
}

/** {@link parseJsonObject} through JSON.parse alone: the oracle the fast reader is fuzzed against. */
export function parseJsonObjectWithJsonParse(text: string): JsonObjectResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, keepNumberText as Parameters<typeof JSON.parse>[1]);
  } catch (error) {
    return { ok: false, reason: `line is not valid JSON (${(error as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { ok: false, reason: 'line is not a JSON object; expected one object per line' };
  const values = new Map<string, string | null>();
  let members: OwnMembers | undefined;
  for (const [k, v] of Object.entries(parsed)) {
    if (v === null || typeof v === 'string') values.set(k, v);
    else if (typeof v === 'boolean') values.set(k, v ? 'true' : 'false');
    else {
      // A nested object or array as it is written (as the SQL engine reads it), not re-serialised.
      members ??= ownMembers(text);
      values.set(k, members.nested.get(k) ?? JSON.stringify(v));
    }
  }
  return { ok: true, values, simple: false, ...(members ? { members } : {}) };
}

/**
 * How deep a JSON Lines object may nest objects and arrays, the object itself being level 1. A
 * deeper line is an invalid record: the SQL engine finds an object's own members with patterns
 * that skip nested values up to this depth (compile.ts), and both engines must read alike.
 */
export const JSON_MAX_DEPTH = 16;

/**
 * Why a line read as an object (`parsed`) is not a row whose columns are `columns` (trimmed,
 * lower-case names), or undefined. Two reasons, the same in both engines: nesting deeper than
 * {@link JSON_MAX_DEPTH}, and a column's name among the object's own keys more than once (in any
 * letter case), where JSON.parse would keep the last value and a reader of the text the first —
 * the row is refused rather than either guessed. Keys of nested objects are not the row's.
 */
export function jsonRowProblem(
  text: string,
  parsed: { readonly values: Map<string, string | null>; readonly simple: boolean; readonly members?: OwnMembers },
  distinctNames: number,
  columns: readonly string[],
): string | undefined {
  // The flat reader saw every key once; only a repeat in another letter case is left to find.
  if (parsed.simple && distinctNames === parsed.values.size) return undefined;
  const { keys, depth } = parsed.members ?? ownMembers(text);
  if (depth > JSON_MAX_DEPTH) return TOO_DEEP_REASON;
  const seen = new Map<string, number>();
  for (const key of keys) {
    const name = columnName(key);
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }
  const twice = columns.find((c) => (seen.get(c) ?? 0) > 1);
  return twice === undefined ? undefined : repeatedFieldReason(twice);
}

/** The reason a line nesting too deep is refused (the SQL engine writes the same text). */
export const TOO_DEEP_REASON = `line nests objects or arrays more than ${JSON_MAX_DEPTH} levels deep; expected at most ${JSON_MAX_DEPTH}`;

/** The reason a row that names `column` twice is refused (the SQL engine writes the same text). */
export function repeatedFieldReason(column: string): string {
  return `field "${column}" appears more than once in the object; expected each field once`;
}

/**
 * The column a JSON Lines key (escapes decoded) names: without the white space `trim` removes
 * around it, in lower case. The SQL engine's key patterns read keys alike (compile.ts).
 */
export function columnName(key: string): string {
  return key.trim().toLowerCase();
}

/**
 * A valid JSON object text's own keys (escapes decoded, as JSON.parse names them), how deep it
 * nests (the object itself is 1), and the text of each nested object or array among its own
 * values by key (the last wins).
 */
interface OwnMembers {
  readonly keys: string[];
  readonly depth: number;
  readonly nested: Map<string, string>;
}

/** The {@link OwnMembers} of a valid JSON object text, in one pass. */
function ownMembers(text: string): OwnMembers {
  const keys: string[] = [];
  const nested = new Map<string, string>();
  let depth = 0;
  let deepest = 0;
  let key = '';
  let valueStart = -1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 34) j += text.charCodeAt(j) === 92 /* \\ */ ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (k < n && WS(text.charCodeAt(k))) k++;
        if (text.charCodeAt(k) === 58 /* : */) {
          const written = text.slice(i + 1, j);
          key = written.includes('\\') ? (JSON.parse(`"${written}"`) as string) : written;
          keys.push(key);
        }
      }
      i = j;
    } else if (c === 123 || c === 91 /* { [ */) {
      if (depth === 1) valueStart = i;
      if (++depth > deepest) deepest = depth;
    } else if (c === 125 || c === 93 /* } ] */) {
      if (--depth === 1 && valueStart >= 0) {
        nested.set(key, text.slice(valueStart, i + 1));
        valueStart = -1;
      }
    }
  }
  return { keys, depth: deepest, nested };
}

const WS = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13;
/** JSON's number grammar. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * A flat JSON object's values (as {@link parseJsonObject} gives them), or undefined when `text`
 * is anything else: a nested value, a key written twice, an escape this reader leaves to
 * JSON.parse, or invalid JSON.
 * Exported for the fuzz test that holds it to JSON.parse.
 */
export function parseFlatObject(text: string): Map<string, string | null> | undefined {
  const n = text.length;
  let i = 0;
  while (i < n && WS(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) !== 123 /* { */) return undefined;
  i++;
  const values = new Map<string, string | null>();
  let members = 0;
  while (i < n && WS(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) === 125 /* } */) {
    i++;
  } else {
    for (;;) {
      const key = readString(text, i);
      if (key === undefined) return undefined;
      members++;
      i = key.next;
      while (i < n && WS(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) !== 58 /* : */) return undefined;
      i++;
      while (i < n && WS(text.charCodeAt(i))) i++;
      const c = text.charCodeAt(i);
      if (c === 34 /* " */) {
        const value = readString(text, i);
        if (value === undefined) return undefined;
        values.set(key.value, value.value);
        i = value.next;
      } else if (c === 45 || (c >= 48 && c <= 57)) {
        let j = i + 1;
        for (; j < n; j++) {
          const d = text.charCodeAt(j);
          if (!((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45)) break;
        }
        const lexeme = text.slice(i, j);
        if (!JSON_NUMBER.test(lexeme)) return undefined;
        const plain = plainNumberText(lexeme);
        if (plain === undefined) return undefined;
        values.set(key.value, plain);
        i = j;
      } else if (text.startsWith('true', i)) {
        values.set(key.value, 'true');
        i += 4;
      } else if (text.startsWith('false', i)) {
        values.set(key.value, 'false');
        i += 5;
      } else if (text.startsWith('null', i)) {
        values.set(key.value, null);
        i += 4;
      } else return undefined;
      while (i < n && WS(text.charCodeAt(i))) i++;
      const sep = text.charCodeAt(i);
      i++;
      if (sep === 44 /* , */) {
        while (i < n && WS(text.charCodeAt(i))) i++;
        continue;
      }
      if (sep === 125 /* } */) break;
      return undefined;
    }
  }
  while (i < n && WS(text.charCodeAt(i))) i++;
  return i === n && members === values.size ? values : undefined;
}

/** A string starting at `at` (a quote) without escapes or control characters, or undefined. */
function readString(text: string, at: number): { value: string; next: number } | undefined {
  if (text.charCodeAt(at) !== 34) return undefined;
  const end = text.indexOf('"', at + 1);
  if (end < 0) return undefined;
  for (let j = at + 1; j < end; j++) {
    const c = text.charCodeAt(j);
    if (c === 92 /* \\ */ || c < 32) return undefined;
  }
  return { value: text.slice(at + 1, end), next: end + 1 };
}

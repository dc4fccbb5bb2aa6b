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
      throw new JsonLinesFileError('RECORD_TOO_LARGE', `line ${line} exceeds ${maxLineChars} characters`, line);
  };
  const decode = (bytes: Uint8Array | undefined): string => {
    try {
      return bytes === undefined ? decoder.decode() : decoder.decode(bytes, { stream: true });
    } catch {
      throw new JsonLinesFileError(
        'ENCODING',
        `file is not valid UTF-8 (at or after line ${line}); expected UTF-8`,
        line,
      );
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

/** Numbers become their exact decimal text; everything else is left as parsed. */
const keepNumberText: Reviver = (_key, value, context) => {
  if (typeof value !== 'number') return value;
  const source = context?.source;
  if (source === undefined) throw new Error('JSON.parse source text access is not available (Node 22 needed)');
  return plainNumberText(source) ?? source;
};

export type JsonObjectResult =
  { readonly ok: true; readonly values: Map<string, string | null> } | { readonly ok: false; readonly reason: string };

/**
 * One line as a flat object of text values: strings as they are, numbers by their source text,
 * booleans as `true`/`false`, null as null, nested arrays and objects as their JSON text.
 */
export function parseJsonObject(text: string): JsonObjectResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, keepNumberText as Parameters<typeof JSON.parse>[1]);
  } catch (error) {
    return { ok: false, reason: `line is not valid JSON (${(error as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { ok: false, reason: 'line is not a JSON object; expected one object per line' };
  const values = new Map<string, string | null>();
  for (const [k, v] of Object.entries(parsed)) {
    if (v === null || typeof v === 'string') values.set(k, v);
    else if (typeof v === 'boolean') values.set(k, v ? 'true' : 'false');
    else values.set(k, JSON.stringify(v));
  }
  return { ok: true, values };
}

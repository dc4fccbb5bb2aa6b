/**
 * Sensitive values out of prompts, embeddings and the search index.
 *
 * A dataset's policy names its `sensitive_fields` (client accounts, names, ...). Wherever an
 * exception leaves the table for a model or an index, the values of those fields are replaced by
 * a keyed hash: `⟦h:3f9a0c1d2e4b⟧` (HMAC-SHA256 under a per-deployment secret, first 12 hex). The
 * stored exception keeps the values (encrypted at rest); the API returns them.
 *
 * Why keyed and stable: the same value gives the same token everywhere, so a model still sees
 * that two rows share an account, a pattern's segment still reads "97% have account=⟦h:…⟧",
 * and the search route can hash a query's words under the same key to find the exceptions of an
 * exact account — while without the secret a token cannot be reversed by hashing guesses (an
 * unkeyed hash of a 10-digit account number can).
 *
 * The field name is not part of the hash: a value is the same token whichever column holds it
 * (the source's `acct` and the target's `account_no`), which is what matching needs.
 */
import { createHmac } from 'node:crypto';
import type { Diff, ExceptionRecord, Row } from './types.ts';

export const MASK_PREFIX = '⟦h:';

/** Locally the tokens need only be stable, not secret (triage and the query API default to it). */
export const LOCAL_MASKING_SECRET = 'tally-local-masking-secret';
const MASK_PATTERN = /^⟦h:[0-9a-f]{12}⟧$/;

export interface Masker {
  /** True when some field is sensitive (a masker with none returns its input unchanged). */
  readonly active: boolean;
  /** Whether a column or field name is sensitive (case-insensitive). */
  isSensitive(name: string): boolean;
  /** The token for one value. */
  token(value: string): string;
  row(row: Row): Row;
  row(row: Row | null): Row | null;
  /** The exception as models and indexes may see it: sensitive values tokenised, nothing else changed. */
  exception<T extends Pick<ExceptionRecord, 'key' | 'source' | 'target' | 'diffs'> & { reason?: string }>(
    exception: T,
  ): T;
  /** A query's words plus the token of each (so an exact sensitive value still finds its exceptions). */
  queryTerms(query: string): string[];
  /** A model's text about this exception with its tokens turned back into the exception's own values. */
  unmask(text: string, exception: Pick<ExceptionRecord, 'key' | 'source' | 'target'>): string;
}

export function isMaskToken(value: string): boolean {
  return MASK_PATTERN.test(value);
}

/**
 * `names` are the policy's sensitive field names and each side's column for them (lower-cased
 * here); `secret` is the deployment's masking key (at least 16 characters).
 */
export function createMasker(names: Iterable<string>, secret: string | undefined): Masker {
  const sensitive = new Set([...names].map((n) => n.trim().toLowerCase()).filter(Boolean));
  if (sensitive.size > 0 && (secret === undefined || secret.length < 16))
    throw new Error(
      `the policy names sensitive fields (${[...sensitive].join(', ')}) but no masking secret of at least 16 characters is configured`,
    );
  const key = secret ?? '';
  const token = (value: string): string => {
    if (isMaskToken(value)) return value;
    return `${MASK_PREFIX}${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 12)}⟧`;
  };
  const isSensitive = (name: string) => sensitive.has(name.trim().toLowerCase());
  function row(r: Row): Row;
  function row(r: Row | null): Row | null;
  function row(r: Row | null): Row | null {
    if (r === null || sensitive.size === 0) return r;
    let out: Row | undefined;
    for (const [name, value] of Object.entries(r)) {
      if (!isSensitive(name) || value === '') continue;
      out ??= { ...r };
      out[name] = token(value);
    }
    return out ?? r;
  }
  const diff = (d: Diff): Diff => {
    if (!isSensitive(d.field)) return d;
    // A sensitive amount's difference tells its size: it goes too.
    const { delta: _delta, ...rest } = d;
    return { ...rest, source: d.source === '' ? '' : token(d.source), target: d.target === '' ? '' : token(d.target) };
  };
  const sensitiveValues = (e: Pick<ExceptionRecord, 'key' | 'source' | 'target'>): string[] => {
    const values = new Set<string>();
    for (const r of [e.key, e.source, e.target])
      for (const [name, value] of Object.entries(r ?? {}))
        if (isSensitive(name) && value.trim() !== '') values.add(value);
    // Longest first, so a value containing another is replaced whole.
    return [...values].sort((a, b) => b.length - a.length);
  };
  const maskText = (text: string, values: readonly string[]): string =>
    values.reduce((t, v) => t.split(v).join(token(v)), text);
  return {
    active: sensitive.size > 0,
    isSensitive,
    token,
    row,
    exception(e) {
      if (sensitive.size === 0) return e;
      const masked = { ...e, key: row(e.key), source: row(e.source), target: row(e.target), diffs: e.diffs.map(diff) };
      const values = sensitiveValues(e);
      // A rejected row's reason may quote the value it could not read; a summary may name a value.
      if (typeof e.reason === 'string') masked.reason = maskText(e.reason, values);
      const triage = (e as { triage?: { summary: string } }).triage;
      if (triage) Object.assign(masked, { triage: { ...triage, summary: maskText(triage.summary, values) } });
      return masked;
    },
    unmask(text, e) {
      if (sensitive.size === 0) return text;
      return sensitiveValues(e).reduce((t, v) => t.split(token(v)).join(v), text);
    },
    queryTerms(query) {
      const words = query.split(/\s+/).filter(Boolean);
      if (sensitive.size === 0) return words;
      return [...words, ...words.map(token)];
    },
  };
}

/**
 * The search route's query: its words plus each word's token under the deployment's key, so an
 * exact account or name finds exceptions whose index entry holds only its token. It needs no
 * policy (the token does not depend on the field).
 */
export function queryWithTokens(query: string, secret: string | undefined): string {
  if (secret === undefined || secret.length < 16) return query;
  const words = query.split(/\s+/).filter(Boolean);
  return [...words, ...words.map((word) => queryToken(word, secret))].join(' ');
}

/**
 * A query word's token, remembered for the instance's recent words: an HMAC per word per search
 * was ~2.6% of the query-api thread's CPU under bench:api's searches at 100k (RESULTS.md,
 * session 27). Bounded as the semantic embedder's query vectors are (oldest word out past
 * QUERY_TOKENS_KEPT), and forgotten when the key changes.
 */
function queryToken(word: string, secret: string): string {
  if (queryTokens?.secret !== secret) queryTokens = { secret, masker: createMasker(['*'], secret), byWord: new Map() };
  const { masker, byWord } = queryTokens;
  let token = byWord.get(word);
  if (token === undefined) {
    token = masker.token(word);
    if (byWord.size >= QUERY_TOKENS_KEPT) byWord.delete(byWord.keys().next().value as string);
    byWord.set(word, token);
  }
  return token;
}
const QUERY_TOKENS_KEPT = 10_000;
let queryTokens: { secret: string; masker: Masker; byWord: Map<string, string> } | undefined;

/** No field is sensitive: what a dataset whose policy names none gets. */
export const NO_MASKING: Masker = createMasker([], undefined);

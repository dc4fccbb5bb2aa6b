/**
 * One paged listing of the API (GET /exceptions, GET /files...): the current page for the filters,
 * the stack of page tokens behind "Previous" and "Next", and a reset when the filters change.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Page } from './api.ts';

export interface PagedListing<T> {
  readonly page: Page<T> | null;
  readonly error: unknown;
  /** 1 on the first page. */
  readonly pageNumber: number;
  readonly previous: (() => void) | undefined;
  readonly next: (() => void) | undefined;
  /**
   * Empty pages read past on the way to this one. The API bounds each request's reads, so with a
   * sparse filter (an assignee, a team) a page can come back empty with more behind it: that is
   * not "nothing matches", so the listing reads on by itself, in place of the empty page (Previous
   * never lands on one), and says how far it has looked meanwhile.
   */
  readonly skipped: number;
}

export function usePagedListing<T>(
  path: string,
  filters: Record<string, string | undefined>,
  pageSize: number,
  /** Changing it reads the current page again (after a change to its rows). */
  reloadKey = 0,
): PagedListing<T> {
  const filterKey = JSON.stringify(filters);
  const [tokens, setTokens] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<Page<T> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [skipped, setSkipped] = useState(0);
  const token = tokens[tokens.length - 1];

  useEffect(() => {
    setTokens([undefined]);
    setSkipped(0);
  }, [filterKey]);
  useEffect(() => {
    let live = true;
    setPage(null);
    setError(null);
    api<Page<T>>(path, { query: { ...filters, limit: String(pageSize), next_token: token } })
      .then((p) => {
        if (!live) return;
        const further = p.items.length === 0 ? p.next_token : null;
        if (!further) {
          setPage(p);
          // Counted afresh for the next page asked for.
          return setSkipped(0);
        }
        setSkipped((n) => n + 1);
        setTokens((stack) => [...stack.slice(0, -1), further]);
      })
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [path, filterKey, token, reloadKey]);

  const nextToken = page?.next_token;
  return {
    page,
    error,
    pageNumber: tokens.length,
    previous: tokens.length > 1 ? () => setTokens(tokens.slice(0, -1)) : undefined,
    next: nextToken ? () => setTokens([...tokens, nextToken]) : undefined,
    skipped,
  };
}

/** The query API, as the dashboard uses it: same origin locally, a configured URL on AWS. */
import { accessToken } from './auth.ts';
import { siteConfig } from './site-config.ts';
import {
  EXCEPTION_STATUSES,
  PATTERN_ACTION_NAMES,
  PATTERN_ACTIONS,
  TRANSITION_VERBS,
  allowedTransitions,
} from '../../functions/shared/exception-lifecycle.ts';
import type {
  ApiException,
  ApiFile,
  ApiPattern,
  PatternActionResponse,
  PatternsResponse,
  ApiRun,
  ExceptionCounts,
  LatestUpload,
  Page,
  QueueDepth,
  QueuesReport,
  SearchResponse,
  UploadTicket,
  UsageReport,
} from '../../functions/shared/api-types.ts';
import type { HistoryEntry, PolicyCitation, Row, SearchItem } from '../../functions/shared/types.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; query?: Record<string, string | undefined> } = {},
): Promise<T> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== '') params.set(k, v);
  const qs = params.toString();
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const token = await accessToken();
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${siteConfig().apiUrl}${path}${qs ? `?${qs}` : ''}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const error = (body as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null)
      ?.error;
    throw new ApiError(
      res.status,
      error?.code ?? `HTTP_${res.status}`,
      error?.message ?? `the API answered ${res.status}`,
      error?.details ?? {},
    );
  }
  return body as T;
}

/** Where a run's report is served (GET /runs/{run_id}/report). */
export function reportUrl(runId: string, format: 'html' | 'md' = 'html'): string {
  return `${siteConfig().apiUrl}/runs/${encodeURIComponent(runId)}/report?format=${format}`;
}

/** The run's report, fetched with the same credentials as every API call (a plain link carries none on AWS). */
export async function fetchReport(runId: string, format: 'html' | 'md' = 'html'): Promise<Blob> {
  const token = await accessToken();
  const res = await fetch(reportUrl(runId, format), token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (!res.ok)
    throw new ApiError(res.status, `HTTP_${res.status}`, `the report could not be fetched (HTTP ${res.status})`);
  return res.blob();
}

/** PUT a file to a pre-signed URL with progress (fetch has no upload progress). */
/** Resolves with the object's ETag (quotes removed) when the storage exposes it, else null. */
export function putWithProgress(
  url: string,
  file: Blob,
  headers: Record<string, string>,
  onProgress: (fraction: number) => void,
): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    // content-length is set by the browser itself (and may not be set by script).
    for (const [name, value] of Object.entries(headers))
      if (name.toLowerCase() !== 'content-length') xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(xhr.getResponseHeader('etag')?.replaceAll('"', '') ?? null);
      } else reject(new Error(`the upload was refused (HTTP ${xhr.status})`));
    };
    xhr.onerror = () =>
      reject(
        new Error(
          'the upload failed: network error (is the storage endpoint reachable, and does its CORS rule allow this page?)',
        ),
      );
    xhr.send(file);
  });
}

// --- The API's contract and the exception lifecycle, as the functions define them -----------

export { EXCEPTION_TYPES, SEVERITIES, SIDES } from '../../functions/shared/types.ts';
export { FILE_STATUSES, fileErrorText } from '../../functions/shared/tables/files.ts';
export { formatUsd } from '../../functions/shared/tables/usage.ts';
export { storedText, triagesPlanned } from '../../functions/shared/tables/runs.ts';
export { DUE_SORT_CAP } from '../../functions/shared/deadlines.ts';
export type { Side } from '../../functions/shared/types.ts';
export type {
  ExceptionCounts,
  HistoryEntry,
  LatestUpload,
  Page,
  QueueDepth,
  QueuesReport,
  Row,
  SearchResponse,
  UploadTicket,
  UsageReport,
};
export type FileItem = ApiFile;
export type ExceptionItem = ApiException;
export type Run = ApiRun;
export type Citation = PolicyCitation;
export type SearchHit = SearchItem;
export type Pattern = ApiPattern;
export type PatternsListing = PatternsResponse;
export type PatternActionResult = PatternActionResponse;
export { MATCH_REASON_CODES, isMatchable } from '../../functions/shared/manual-match.ts';
export type {
  ApprovalResponse,
  BulkItemResult,
  BulkResponse,
  MatchSuggestion,
  RetriageAccepted,
  SuggestionsResponse,
} from '../../functions/shared/api-types.ts';

export const STATUSES = EXCEPTION_STATUSES;

/** The buttons an exception in `status` offers: the moves the workflow allows from there. */
export function transitionsFrom(status: string): { to: string; label: string }[] {
  return allowedTransitions(status).map((to) => ({ to, label: TRANSITION_VERBS[to].label }));
}

/** The buttons a pattern offers: each pattern action with the lifecycle's label for its status. */
export function patternActions(): { action: string; label: string }[] {
  return PATTERN_ACTION_NAMES.map((action) => ({ action, label: TRANSITION_VERBS[PATTERN_ACTIONS[action]].label }));
}

export function keyText(key: unknown): string {
  if (key && typeof key === 'object') return Object.values(key as Record<string, unknown>).join(' / ');
  return String(key ?? '');
}

export function humanize(value: string): string {
  return value
    .toLowerCase()
    .replaceAll('_', ' ')
    .replace(/^./, (c) => c.toUpperCase());
}

/** The query API, as the dashboard uses it: same origin locally, a configured URL on AWS. */
import { accessToken } from './auth.ts';

export interface SiteConfig {
  /** Base URL of the query API; empty means this page's origin (local mode). */
  readonly apiUrl: string;
  /** OIDC sign-in (AWS); absent locally, where the API needs no token. */
  readonly auth?: {
    readonly issuer: string;
    readonly clientId: string;
    readonly scope?: string;
    readonly audience?: string;
  };
}

let config: SiteConfig = { apiUrl: '' };

export function setConfig(next: SiteConfig): void {
  config = next;
}

export function siteConfig(): SiteConfig {
  return config;
}

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
  const res = await fetch(`${config.apiUrl}${path}${qs ? `?${qs}` : ''}`, {
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

// --- API shapes the dashboard reads -------------------------------------------------------

// The API's own contract types: one definition for the functions, the CLI and the page.
import type { HistoryEntry, PolicyCitation, Row, SearchItem } from '../../functions/shared/types.ts';

export type { HistoryEntry, Row };
export type Citation = PolicyCitation;
export type SearchHit = SearchItem;

export interface Triage {
  readonly severity: string;
  readonly summary: string;
  readonly recommended_actions: string[];
  readonly root_cause_hypotheses: string[];
  readonly policy_citations: Citation[];
  readonly provider: string;
  readonly model: string;
  readonly triaged_at: string;
  readonly degraded: boolean;
}

export interface ExceptionItem {
  readonly exception_id: string;
  readonly run_id: string;
  readonly dataset: string;
  readonly business_date: string;
  readonly exception_type: string;
  readonly key: Row;
  readonly source: Row | null;
  readonly target: Row | null;
  readonly diffs: { field: string; source: string; target: string; delta?: string }[];
  readonly lines?: { source: number[]; target: number[] };
  readonly reason?: string;
  readonly policy_severity: string;
  readonly severity?: string;
  readonly status: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly version: number;
  readonly history: HistoryEntry[];
  readonly triage?: Triage;
  readonly assignee?: string;
}

export interface Page<T> {
  readonly items: T[];
  readonly count: number;
  readonly next_token: string | null;
}

export interface Run {
  readonly run_id: string;
  readonly source: { readonly key: string; readonly etag: string };
  readonly target: { readonly key: string; readonly etag: string };
  readonly dataset: string;
  readonly business_date: string;
  readonly status: string;
  readonly requested_at: string;
  readonly completed_at?: string;
  readonly summary?: {
    rows: { source: number; target: number };
    matched: number;
    exceptions: Record<string, number>;
    rejected: { source: number; target: number };
    duration_ms: number;
    new: number;
    changed: number;
    unchanged: number;
    resolved: number;
  };
  readonly error?: { code: string; message: string; line?: number; file?: string };
}

export interface QueueDepth {
  readonly visible: number;
  readonly in_flight: number;
  readonly delayed: number;
  readonly oldest_age_seconds: number | null;
}

export interface QueuesReport {
  readonly queues: { queue: string; main: QueueDepth; dlq: QueueDepth }[];
  readonly runbook: string;
}

export const EXCEPTION_TYPES = [
  'MISSING_IN_TARGET',
  'MISSING_IN_SOURCE',
  'AMOUNT_MISMATCH',
  'FIELD_MISMATCH',
  'DUPLICATE_IN_SOURCE',
  'DUPLICATE_IN_TARGET',
  'INVALID_RECORD',
];
export const STATUSES = ['OPEN', 'ACKNOWLEDGED', 'RESOLVED', 'FALSE_POSITIVE'];
export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

/** The API's workflow (functions/query-api/workflow.ts): which buttons an exception offers. */
export const TRANSITIONS: Record<string, { to: string; label: string }[]> = {
  OPEN: [
    { to: 'ACKNOWLEDGED', label: 'Acknowledge' },
    { to: 'FALSE_POSITIVE', label: 'Mark false positive' },
  ],
  ACKNOWLEDGED: [
    { to: 'RESOLVED', label: 'Resolve' },
    { to: 'FALSE_POSITIVE', label: 'Mark false positive' },
  ],
  RESOLVED: [{ to: 'OPEN', label: 'Reopen' }],
  FALSE_POSITIVE: [{ to: 'OPEN', label: 'Reopen' }],
};

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

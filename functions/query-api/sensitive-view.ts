/**
 * Sensitive values (a dataset policy's `sensitive_fields`) as the API shows them: in the clear to
 * callers who work exceptions (analyst, approver, admin), as their keyed tokens (shared/masking.ts,
 * the same ones prompts and the search index carry) to everyone else — a viewer reads the break,
 * not the client's account. Stored exceptions keep the values; this is a view of a record.
 *
 * A triage's text was written about the tokens and turned back into values for the people who
 * work it; for a viewer each sensitive value of the exception is replaced by its token there too.
 * Notes in the history are people's free text and are shown as written.
 */
import type { Masker } from '../shared/masking.ts';
import type { ExceptionRecord, Row, RunSummary } from '../shared/types.ts';
import { rolesSatisfying, type Caller } from './access.ts';
import type { QueryApiDeps } from './ports.ts';

/** Whether the caller sees sensitive values in the clear. */
export function seesSensitiveValues(caller: Caller): boolean {
  return rolesSatisfying(['analyst']).some((role) => caller.roles.has(role));
}

type ApiRecord = Record<string, unknown>;

/** Shorter values (a currency, a flag) would be replaced inside unrelated words of the text. */
const MIN_TEXT_VALUE_LENGTH = 4;

/**
 * A function that shows a record as this caller may see it, with each dataset's masker from
 * triage's cached policy view (functions/triage/dataset-policy.ts). Without it (tests of other
 * routes) records pass unchanged.
 */
export function sensitiveViewFor(
  caller: Caller,
  deps: Pick<QueryApiDeps, 'datasetPolicies'>,
): (record: ApiRecord) => Promise<ApiRecord> {
  const policies = deps.datasetPolicies;
  if (seesSensitiveValues(caller) || !policies) return async (record) => record;
  return async (record) => {
    const { masker } = await policies.forDataset(String(record.dataset));
    return masker.active ? masked(record, masker) : record;
  };
}

/**
 * A run as this caller may see it. Its summary carries values of the extracts too: a control
 * total's group (grouped by a sensitive column, one group per account), and a sensitive field's
 * sums, largest difference and (the amount field) totals and net difference. For a viewer each becomes its token,
 * as in an exception's rows; the counts stay.
 */
export function sensitiveRunViewFor(
  caller: Caller,
  deps: Pick<QueryApiDeps, 'datasetPolicies'>,
): <R extends { readonly dataset: string; readonly summary?: RunSummary }>(run: R) => Promise<R> {
  const policies = deps.datasetPolicies;
  if (seesSensitiveValues(caller) || !policies) return async (run) => run;
  return async (run) => {
    if (run.summary === undefined) return run;
    const { masker, policy } = await policies.forDataset(run.dataset);
    if (!masker.active) return run;
    return { ...run, summary: maskedSummary(run.summary, masker, policy?.amountField) };
  };
}

function maskedSummary<S extends RunSummary>(summary: S, masker: Masker, amountField: string | undefined): S {
  const hide = (values: Record<string, string>): Record<string, string> =>
    Object.fromEntries(
      Object.entries(values).map(([name, value]) => [name, masker.isSensitive(name) ? masker.token(value) : value]),
    );
  const out: S = { ...summary };
  if (summary.fields)
    out.fields = Object.fromEntries(
      Object.entries(summary.fields).map(([name, stats]) => [
        name,
        masker.isSensitive(name) && stats.largest_difference !== undefined
          ? { ...stats, largest_difference: masker.token(stats.largest_difference) }
          : stats,
      ]),
    );
  if (amountField !== undefined && masker.isSensitive(amountField)) {
    if (summary.amount_totals) {
      const { source, target, net_difference } = summary.amount_totals;
      out.amount_totals = {
        source: masker.token(source),
        target: masker.token(target),
        net_difference: masker.token(net_difference),
      };
    }
    // The threshold on the net difference quotes it.
    if (summary.thresholds_crossed)
      out.thresholds_crossed = summary.thresholds_crossed.map((crossed) =>
        crossed.condition === 'net_amount_difference' ? { ...crossed, actual: masker.token(crossed.actual) } : crossed,
      );
  }
  if (summary.control_totals)
    out.control_totals = summary.control_totals.map((group) => ({
      group: hide(group.group),
      source: { ...group.source, sums: hide(group.source.sums) },
      target: { ...group.target, sums: hide(group.target.sums) },
      difference: { ...group.difference, sums: hide(group.difference.sums) },
    }));
  return out;
}

function masked(record: ApiRecord, masker: Masker): ApiRecord {
  const rows = record as unknown as Pick<ExceptionRecord, 'key' | 'source' | 'target' | 'diffs'> & {
    reason?: string;
  };
  const hidden = masker.exception({
    key: rows.key ?? {},
    source: rows.source ?? null,
    target: rows.target ?? null,
    diffs: rows.diffs ?? [],
    ...(rows.reason !== undefined ? { reason: rows.reason } : {}),
  });
  const out: ApiRecord = {
    ...record,
    key: hidden.key,
    source: hidden.source,
    target: hidden.target,
    diffs: hidden.diffs,
  };
  if (hidden.reason !== undefined) out.reason = hidden.reason;
  const triage = record.triage as Record<string, unknown> | undefined;
  if (triage) {
    const values = sensitiveValues([rows.key, rows.source, rows.target], masker);
    const hide = (text: unknown) =>
      typeof text === 'string' ? values.reduce((t, v) => t.split(v).join(masker.token(v)), text) : text;
    out.triage = {
      ...triage,
      summary: hide(triage.summary),
      ...(Array.isArray(triage.recommended_actions)
        ? { recommended_actions: triage.recommended_actions.map(hide) }
        : {}),
      ...(Array.isArray(triage.root_cause_hypotheses)
        ? { root_cause_hypotheses: triage.root_cause_hypotheses.map(hide) }
        : {}),
    };
  }
  return out;
}

/** The exception's own sensitive values, longest first (a value containing another goes first). */
function sensitiveValues(rows: readonly (Row | Record<string, string> | null | undefined)[], masker: Masker): string[] {
  const values = new Set<string>();
  for (const row of rows)
    for (const [name, value] of Object.entries(row ?? {}))
      if (masker.isSensitive(name) && typeof value === 'string' && value.length >= MIN_TEXT_VALUE_LENGTH)
        values.add(value);
  return [...values].sort((a, b) => b.length - a.length);
}

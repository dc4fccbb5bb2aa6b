/**
 * What an assistant can read without a tool call: the policy documents (`tally://policies/{name}`
 * for a governance document, `tally://policies/datasets/{dataset}` for a dataset's policy in force,
 * each listed) and any run's report (`tally://runs/{id}/report`, Markdown; ids from list_runs).
 * And the `triage_review` prompt, which walks an assistant through a run's open breaks.
 */
import { McpError, ErrorCode, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { segment, TallyApiError, type TallyApi } from './api.ts';
import { structuredError } from './errors.ts';

export const POLICY_URI_PREFIX = 'tally://policies/';

interface PolicyInfo {
  readonly name: string;
  readonly document: string;
  readonly kind: string;
  readonly etag: string;
  readonly size: number;
  readonly last_modified: string | null;
}

/** The resource a triage citation's document (`recon-policy.md`, `datasets/payments.md`) comes from. */
export function policyUriOfDocument(document: string): string {
  return `${POLICY_URI_PREFIX}${document.replace(/\.md$/, '')}`;
}

/** The policy listing, for resources/list and for noticing a change (names and ETags). */
export async function listPolicies(api: TallyApi): Promise<PolicyInfo[]> {
  return (await api.request<{ items: PolicyInfo[] }>('GET', '/policies')).items;
}

/** An API refusal while reading a resource, as a protocol error with its code and what to do. */
function resourceError(error: unknown): never {
  const structured = structuredError(error);
  if (structured === undefined) throw new McpError(ErrorCode.InternalError, 'reading the resource failed unexpectedly');
  const missing = error instanceof TallyApiError && error.status === 404;
  const what = missing
    ? { ...structured, what_to_do: 'resources/list gives the policy documents; list_runs gives run ids.' }
    : structured;
  throw new McpError(
    missing ? ErrorCode.InvalidParams : ErrorCode.InternalError,
    `${what.code}: ${what.message}. ${what.what_to_do}`,
    what,
  );
}

async function readPolicy(api: TallyApi, uri: URL, path: string): Promise<ReadResourceResult> {
  try {
    const doc = await api.request<PolicyInfo & { text: string }>('GET', path);
    return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text: doc.text }] };
  } catch (error) {
    return resourceError(error);
  }
}

const variable = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(',') : (value ?? ''));

export function registerResources(server: McpServer, api: TallyApi): void {
  server.registerResource(
    'policy',
    new ResourceTemplate(`${POLICY_URI_PREFIX}{name}`, {
      // Lists every policy document, the dataset policies (read through the template below) too.
      list: async () => {
        try {
          const items = await listPolicies(api);
          return {
            resources: items.map((p) => ({
              uri: policyUriOfDocument(p.document),
              name: p.name,
              title: p.kind === 'dataset' ? `Policy of dataset ${p.name.slice('datasets/'.length)}` : p.document,
              description:
                p.kind === 'dataset'
                  ? 'The policy in force for this dataset: its settings and the prose triage cites'
                  : 'A governance document triage cites',
              mimeType: 'text/markdown',
              size: p.size,
              ...(p.last_modified ? { annotations: { lastModified: p.last_modified } } : {}),
            })),
          };
        } catch (error) {
          return resourceError(error);
        }
      },
    }),
    {
      title: 'Policy document',
      description: 'A governance document triage cites (recon policy, data-quality rules, the runbook)',
      mimeType: 'text/markdown',
    },
    (uri, vars) => readPolicy(api, uri, `/policies/${segment(variable(vars.name))}`),
  );

  server.registerResource(
    'dataset-policy',
    new ResourceTemplate(`${POLICY_URI_PREFIX}datasets/{dataset}`, { list: undefined }),
    {
      title: "A dataset's policy",
      description: 'The policy in force for a dataset: the settings runs apply and the prose triage cites',
      mimeType: 'text/markdown',
    },
    (uri, vars) => readPolicy(api, uri, `/policies/datasets/${segment(variable(vars.dataset))}`),
  );

  server.registerResource(
    'run-report',
    // Not listed: there is one per run, and list_runs pages through them.
    new ResourceTemplate('tally://runs/{id}/report', { list: undefined }),
    {
      title: 'Run report',
      description: "A reconciliation run's report in Markdown (run ids from list_runs)",
      mimeType: 'text/markdown',
    },
    async (uri, vars) => {
      try {
        const text = await api.request<string>('GET', `/runs/${segment(variable(vars.id))}/report`, {
          query: { format: 'md' },
          as: 'text',
        });
        return { contents: [{ uri: uri.href, mimeType: 'text/markdown', text }] };
      } catch (error) {
        return resourceError(error);
      }
    },
  );
}

export function registerPrompts(server: McpServer, api: TallyApi): void {
  server.registerPrompt(
    'triage_review',
    {
      title: "Review a run's open breaks",
      description:
        "Walks through a reconciliation run's open exceptions: what broke, why (triage and policy), what to do, and " +
        'which to change — proposing changes for a person to confirm.',
      argsSchema: { run_id: z.string().min(1).max(256).describe('The run to review (from list_runs)') },
    },
    async ({ run_id }) => {
      // The run as it is now, when the API answers; the steps work without it.
      let state: string;
      try {
        const run = await api.request<{
          dataset: string;
          business_date: string;
          status: string;
          summary?: { outcome?: string; exceptions?: Record<string, number> };
        }>('GET', `/runs/${segment(run_id)}`);
        const byType = Object.entries(run.summary?.exceptions ?? {})
          .map(([t, n]) => `${t} ${n}`)
          .join(', ');
        state = `\nRun ${run_id} is ${run.dataset} ${run.business_date}, ${run.status}${run.summary?.outcome ? `, outcome ${run.summary.outcome}` : ''}${byType ? `; exceptions: ${byType}` : ''}.\n`;
      } catch {
        state = `\n(The run could not be read just now; start with get_run and report what it says.)\n`;
      }
      const text = `You are reviewing reconciliation run ${run_id} in Tally with an operations analyst.
${state}
Work through it in this order, using the Tally tools:
1. get_run with run_id "${run_id}": say the outcome, the exception counts by type, any threshold crossed, and the break patterns (one cause behind many breaks).
2. list_exceptions with run_id "${run_id}" and status OPEN, then ACKNOWLEDGED and IN_PROGRESS. Follow every next_token until it is null: review all of them, not the first page only. Say how many there are by severity.
3. For each CRITICAL or HIGH exception, and one representative of each pattern, call explain_exception: give the likely cause, the policy passage it rests on (document and section, quoting the passage), and any resolved precedent.
4. Group what you found: breaks with one cause (a booking delay, a rounding rule, a missing feed), and breaks that need a person to look.
5. Propose changes — acknowledge, assign, resolve with a note saying why, or mark false positive (which needs an approver) — as a list for the analyst to confirm. Do not call update_exception until they confirm. When you do, send the version you read; if the answer is a CONFLICT, read the exception again and ask before retrying.
6. If queue_health shows messages in a dead-letter queue, say so: some data may not have been reconciled yet.

Finish with a short summary: what broke, why, what was changed (with versions) and what is left open.`;
      return {
        description: `Review of run ${run_id}'s open breaks`,
        messages: [{ role: 'user', content: { type: 'text', text } }],
      };
    },
  );
}

/**
 * The exception filters `tally exceptions list` and `tally search` share: their options, their
 * help lines and how they become the API's query parameters (the API's names differ: --type is
 * exception_type, --date business_date, --run run_id).
 */
import { EXCEPTION_STATUSES } from '../../functions/shared/exception-lifecycle.ts';
import { EXCEPTION_TYPES, SEVERITIES } from '../../functions/shared/types.ts';
import { oneOf } from './api-client.ts';
import { UsageError } from './usage.ts';

export const filterParseOptions = {
  status: { type: 'string' },
  type: { type: 'string' },
  severity: { type: 'string' },
  dataset: { type: 'string' },
  date: { type: 'string' },
  run: { type: 'string' },
  field: { type: 'string' },
  value: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
} as const;

/** Help lines for the filter options; `/exceptions` indexes a date only together with its dataset. */
export function filterOptionsHelp(options: { dateNeedsDataset: boolean }): string {
  return `  --status S              ${EXCEPTION_STATUSES.join(', ')}
  --type T                ${EXCEPTION_TYPES.join(', ')}
  --severity S            ${SEVERITIES.join(', ')} (set by triage)
  --dataset NAME          e.g. trades
  --date YYYY-MM-DD       business date${options.dateNeedsDataset ? ' (needs --dataset)' : ''}
  --run RUN_ID            exceptions of one reconciliation run
  --field NAME --value V  a key or compared field equal to V on either side, e.g.
                          --field account_id --value ACCT1002
  --from YYYY-MM-DD       business dates from this day (inclusive)
  --to YYYY-MM-DD         business dates up to this day (inclusive)`;
}

export interface FilterQuery {
  readonly status: string | undefined;
  readonly exception_type: string | undefined;
  readonly severity: string | undefined;
  readonly dataset: string | undefined;
  readonly business_date: string | undefined;
  readonly run_id: string | undefined;
  readonly field: string | undefined;
  readonly value: string | undefined;
  readonly date_from: string | undefined;
  readonly date_to: string | undefined;
}

type FilterValues = { readonly [K in keyof typeof filterParseOptions]?: string | undefined };

/**
 * The API query for the filter options given. Names outside their list fail here, with the
 * command's help; the API checks the rest (a calendar date, a dataset name).
 */
export function filterQuery(values: FilterValues, help: string, options: { dateNeedsDataset: boolean }): FilterQuery {
  const query = {
    status: oneOf('status', values.status, EXCEPTION_STATUSES, help),
    exception_type: oneOf('type', values.type, EXCEPTION_TYPES, help),
    severity: oneOf('severity', values.severity, SEVERITIES, help),
    dataset: values.dataset,
    business_date: values.date,
    run_id: values.run,
    field: values.field,
    value: values.value,
    date_from: values.from,
    date_to: values.to,
  };
  if ((values.field === undefined) !== (values.value === undefined))
    throw new UsageError('--field and --value go together, e.g. --field account_id --value ACCT1002', help);
  if (options.dateNeedsDataset && query.business_date !== undefined && query.dataset === undefined)
    throw new UsageError('--date needs --dataset as well', help);
  return query;
}

/** `tally files`: the intake view — each side's current file, accepted or rejected, and why. */
import { parseArgs } from 'node:util';
import type { ApiFile } from '../../functions/shared/api-types.ts';
import { FILE_STATUSES, fileErrorText } from '../../functions/shared/tables/files.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  intOption,
  oneOf,
  processIo,
  readPages,
  reportApiError,
  table,
  type CliIo,
} from './api-client.ts';
import { filterParseOptions } from './filters.ts';
import { UsageError } from './usage.ts';

export const filesHelp = `Usage: tally files [options]

List uploaded extracts, newest ingest first: the current file of each side of each dataset and
business date, accepted (with its rows) or rejected (with the reason: code, message, line).

Options:
  --dataset NAME          e.g. trades
  --date YYYY-MM-DD       business date (alone: every dataset's files for that day)
  --status S              ${FILE_STATUSES.join(', ')}
  --limit N               1-100 per page                                  [default: 25]
  --next-token TOKEN      the next page, as printed after the previous one
  --all                   follow every page

Common options:
${apiOptionsHelp}

Examples:
  npx tally files --status REJECTED
  npx tally files --dataset trades --date 2025-12-10 --json
`;

export async function filesCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...apiParseOptions,
      dataset: filterParseOptions.dataset,
      date: filterParseOptions.date,
      status: { type: 'string' },
      limit: { type: 'string' },
      'next-token': { type: 'string' },
      all: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(filesHelp);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`files takes no arguments, got "${positionals.join(' ')}"`, filesHelp);
  const query = {
    dataset: values.dataset,
    business_date: values.date,
    status: oneOf('status', values.status, FILE_STATUSES, filesHelp),
    limit: intOption('limit', values.limit, 1, 100, filesHelp)?.toString(),
  };
  const api = clientFor(values, io, filesHelp);
  try {
    const { items, next } = await readPages<ApiFile>(api, '/files', query, {
      token: values['next-token'],
      all: values.all,
    });

    if (values.json) {
      io.stdout.write(`${JSON.stringify({ items, count: items.length, next_token: next })}\n`);
      return 0;
    }
    if (items.length === 0) io.stdout.write('No files match.\n');
    else
      io.stdout.write(
        table(
          ['DATASET', 'DATE', 'SIDE', 'STATUS', 'ROWS', 'UPLOADED', 'INGESTED', 'REASON'],
          items.map((f) => [
            f.dataset,
            f.business_date,
            f.side,
            f.status,
            f.status === 'ACCEPTED' ? String(f.rows) : '-',
            f.uploaded_at ?? '-',
            f.ingested_at,
            f.error ? fileErrorText(f.error) : '-',
          ]),
        ),
      );
    const more = next ? `; more: --next-token ${next}` : '';
    io.stderr.write(`${items.length} file(s)${more}\n`);
    return 0;
  } catch (error) {
    return reportApiError('files', io, error);
  }
}

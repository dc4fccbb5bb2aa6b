/** `tally search "QUERY"`: hybrid (meaning and exact words) search over triaged exceptions through the API. */
import { parseArgs } from 'node:util';
import { SEARCH_K } from '../../functions/query-api/schemas.ts';
import type { SearchItem } from '../../functions/shared/types.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  intOption,
  keyText,
  processIo,
  reportApiError,
  table,
  type CliIo,
} from './api-client.ts';
import { filterOptionsHelp, filterParseOptions, filterQuery } from './filters.ts';
import { UsageError } from './usage.ts';

export const searchHelp = `Usage: tally search "QUERY" [options]

Finds the exceptions closest to QUERY, best first: by meaning (a paraphrase finds its exception)
and by exact words (a trade id or an account ranks first), the two rankings fused.

Options:
  -k N                    how many results, ${SEARCH_K.min}-${SEARCH_K.max}                          [default: ${SEARCH_K.default}]
${filterOptionsHelp({ dateNeedsDataset: false })}
  --pattern PATTERN_ID    exceptions of one pattern
${apiOptionsHelp}

Example:
  npx tally search "amount differs after a late amendment" --status OPEN -k 5
  npx tally search "risk of paying twice" --field account_id --value ACCT1002 --from 2025-12-01
`;

export async function searchCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...apiParseOptions,
      k: { type: 'string', short: 'k' },
      ...filterParseOptions,
      pattern: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(searchHelp);
    return 0;
  }
  const q = positionals.join(' ').trim();
  if (q.length === 0) throw new UsageError('say what to look for: tally search "QUERY"', searchHelp);
  const query = {
    q,
    // Declared as `k` (so `--k` parses too), documented and named as `-k`.
    k: intOption('-k', values.k, SEARCH_K.min, SEARCH_K.max, searchHelp)?.toString(),
    ...filterQuery(values, searchHelp, { dateNeedsDataset: false }),
    pattern_id: values.pattern,
  };
  const api = clientFor(values, io, searchHelp);
  try {
    const result = await api.request<{ items: SearchItem[] }>('GET', '/search', { query });
    if (values.json) {
      io.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    if (result.items.length === 0) {
      io.stdout.write('No matching exceptions (only triaged exceptions are searchable).\n');
      return 0;
    }
    io.stdout.write(
      table(
        ['SCORE', 'ID', 'TYPE', 'STATUS', 'SEVERITY', 'KEY', 'SUMMARY'],
        result.items.map((i) => [
          i.score.toFixed(3),
          i.exception_id,
          i.exception_type ?? '-',
          i.status ?? '-',
          i.severity ?? '-',
          keyText(i.key),
          i.summary,
        ]),
        { 5: 30, 6: 80 },
      ),
    );
    return 0;
  } catch (error) {
    return reportApiError('search', io, error);
  }
}

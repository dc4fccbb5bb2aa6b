/** `tally whoami`: who the API takes the caller for (GET /me): id, roles, datasets. */
import { parseArgs } from 'node:util';
import { apiOptionsHelp, apiParseOptions, clientFor, processIo, reportApiError, type CliIo } from './api-client.ts';
import { UsageError } from './usage.ts';

const help = `Usage: tally whoami [options]

Shows who the API takes you for: your id (the token's e-mail, or the local identity without
sign-in), your roles (implied ones included) and the datasets you are entitled to.

Options:
${apiOptionsHelp}
`;

interface Me {
  readonly id: string;
  readonly roles: string[];
  readonly datasets: string[] | '*';
}

export async function whoamiCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: apiParseOptions, allowPositionals: true });
  if (values.help) {
    io.stdout.write(help);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`, help);
  try {
    const me = await clientFor(values, io, help).request<Me>('GET', '/me');
    if (values.json) io.stdout.write(`${JSON.stringify(me)}\n`);
    else
      io.stdout.write(
        `${me.id}\n  roles     ${me.roles.join(', ') || '(none)'}\n  datasets  ${me.datasets === '*' ? 'all' : me.datasets.join(', ') || '(none)'}\n`,
      );
    return 0;
  } catch (error) {
    return reportApiError('whoami', io, error);
  }
}

/** Bad command-line usage: reported by usageErrorText (the error, the synopsis, where the help is), exit status 2. */
export class UsageError extends Error {
  readonly help: string;
  constructor(message: string, help: string) {
    super(message);
    this.name = 'UsageError';
    this.help = help;
  }
}

/** Bad usage: a UsageError, or an option parseArgs refused (unknown, or missing its value). */
export function isUsageError(error: unknown): error is Error {
  return (
    error instanceof UsageError || Boolean((error as { code?: string } | null)?.code?.startsWith('ERR_PARSE_ARGS'))
  );
}

/** A help text's synopsis: its "Usage:" line and the lines that continue it, up to the first blank line. */
export function synopsis(help: string): string {
  const start = help.indexOf('Usage:');
  if (start < 0) return '';
  const end = help.indexOf('\n\n', start);
  return `${help.slice(start, end < 0 ? undefined : end).trimEnd()}\n`;
}

/**
 * How every command reports bad usage: the one-line error, the command's synopsis when known, and
 * where its full help is (not the whole help: the error would scroll out of sight).
 */
export function usageErrorText(command: string, error: Error): string {
  const usage = error instanceof UsageError ? synopsis(error.help) : '';
  return `tally ${command}: ${error.message}\n${usage}See \`npx tally ${command} --help\` for every option.\n`;
}

/**
 * An npm script's options: `parse` (node:util's parseArgs over the script's options, one of them
 * `help`). --help prints `usage` and gives exit status 0; an option parseArgs refuses prints the
 * error and `usage` to stderr and gives 2; otherwise the values.
 */
export function scriptOptions<V extends { help?: boolean }>(parse: () => { values: V }, usage: string): V | number {
  let values: V;
  try {
    ({ values } = parse());
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage);
    return 0;
  }
  return values;
}

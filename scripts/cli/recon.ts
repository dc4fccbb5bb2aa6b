import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { extname } from 'node:path';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { reconcileInto, ReconInputError, type Finding } from '../../functions/recon/engine.ts';
import { renderReport, type ReportFormat } from '../../functions/recon/report.ts';
import { parseReconPolicy, PolicyError, usesSqlEngine } from '../../functions/shared/policy.ts';
import { toExceptionRecord } from '../../functions/recon/exception-record.ts';
import { validateExtract } from '../../functions/shared/extract.ts';
import { fileErrorText } from '../../functions/shared/tables/files.ts';
import { DEFAULT_POLICY_PATH } from '../../functions/shared/paths.ts';
import { isCalendarDate } from '../../functions/shared/keys.ts';
import { UsageError } from './usage.ts';

export const reconHelp = `Usage: tally recon --source FILE --target FILE [--policy FILE] [options]

Reconcile two extracts offline under a recon policy and write one exception per line as JSON.
Each side is read in the format its policy gives (CSV with its delimiter, decimal separator and
encoding, JSON Lines, or Parquet); gzip-compressed files are recognised by their bytes. The run
summary, with its outcome (PASS, WARN or FAIL under the policy's thresholds), goes to stderr.

Options:
  --policy FILE     recon policy markdown        [default: policies/recon-policy.md]
  --source FILE     source system extract                                [required]
  --target FILE     target system extract                                [required]
  --out FILE        write exceptions here instead of stdout (JSON Lines)
  --report FILE     write a run report: Markdown (.md) or self-contained HTML (.html)
  --dataset NAME    dataset name used in exception ids     [default: the policy's, or adhoc]
  --date DATE       business date (YYYY-MM-DD) used in exception ids    [default: today, UTC]
  --engine ENGINE   memory: the in-memory engine; sql: the policy compiled to SQL on embedded
                    DuckDB (no line numbers: rows are identified by key); auto: sql when both
                    files together exceed the policy's engine.large_above_bytes  [default: memory]
  -h, --help        show this help

Exit status: 0 when the run's outcome is PASS or WARN; 1 when it is FAIL (with no thresholds in
the policy, any exception fails the run); 2 on bad usage, an unreadable or invalid input file, or
an invalid policy.

Example:
  npx tally recon --policy policies/datasets/payments.md \\
    --source scripts/local/sample/payments/source.csv --target scripts/local/sample/payments/target.jsonl \\
    --report report.html
`;

const ENGINES = ['memory', 'sql', 'auto'] as const;

/** A file's size; 0 when it cannot be read (the engine then says why). */
function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

const REPORT_FORMATS: Record<string, ReportFormat> = { '.md': 'md', '.html': 'html', '.htm': 'html' };

export async function reconCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      source: { type: 'string' },
      target: { type: 'string' },
      policy: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
      dataset: { type: 'string' },
      date: { type: 'string' },
      engine: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(reconHelp);
    return 0;
  }
  if (!values.source || !values.target) throw new UsageError('--source and --target are both required', reconHelp);
  const businessDate = values.date ?? new Date().toISOString().slice(0, 10);
  if (!isCalendarDate(businessDate))
    throw new UsageError(`--date must be a calendar date YYYY-MM-DD, got "${businessDate}"`, reconHelp);
  const reportFormat = values.report === undefined ? undefined : REPORT_FORMATS[extname(values.report).toLowerCase()];
  if (values.report !== undefined && reportFormat === undefined)
    throw new UsageError(`--report must name a .md or .html file, got "${values.report}"`, reconHelp);

  const engineName = values.engine ?? 'memory';
  if (!ENGINES.includes(engineName as (typeof ENGINES)[number]))
    throw new UsageError(`--engine must be one of ${ENGINES.join(', ')}, got "${engineName}"`, reconHelp);

  const policyPath = values.policy ?? DEFAULT_POLICY_PATH;
  let policyText: string;
  try {
    policyText = await readFile(policyPath, 'utf8');
  } catch (error) {
    process.stderr.write(`tally recon: cannot read policy ${policyPath}: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const policy = parseReconPolicy(policyText, policyPath);
    const sql =
      engineName === 'sql' ||
      (engineName === 'auto' && usesSqlEngine(policy, sizeOf(values.source), sizeOf(values.target)));
    const ctx = {
      runId: 'cli',
      dataset: values.dataset ?? policy.dataset ?? 'adhoc',
      businessDate,
      now: new Date().toISOString(),
    };
    // Written as the engine finds them, so a run with millions of exceptions never holds them all
    // (only a report needs them together). Findings come once both files are read: an unreadable
    // input still leaves no --out file.
    let out: Writable | undefined;
    const records: ReturnType<typeof toExceptionRecord>[] = [];
    const sink = async (finding: Finding) => {
      const record = toExceptionRecord(finding, ctx);
      if (reportFormat !== undefined) records.push(record);
      out ??= values.out ? createWriteStream(values.out) : process.stdout;
      if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
    };
    const summary = sql
      ? await (
          await import('../../functions/recon/sql/duckdb.ts')
        ).reconcileSqlInto(
          { name: values.source, path: values.source },
          { name: values.target, path: values.target },
          policy,
          sink,
          {
            note: (message, details) =>
              process.stderr.write(`tally recon: note: ${message}: ${details.file}: ${details.why}\n`),
          },
        )
      : await reconcileInto(
          { name: values.source, stream: createReadStream(values.source) },
          { name: values.target, stream: createReadStream(values.target) },
          policy,
          sink,
        );
    const written = out ?? (values.out ? createWriteStream(values.out) : process.stdout);
    if (values.out)
      await new Promise<void>((resolve, reject) =>
        written.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    if (values.report !== undefined && reportFormat !== undefined) {
      const report = renderReport(
        {
          title: `Reconciliation ${ctx.dataset} ${businessDate}`,
          source: values.source,
          target: values.target,
          policyVersion: policy.policyVersion,
          policyHash: policy.hash,
          summary,
          exceptions: records,
          columns: [...policy.keys, ...policy.fields],
        },
        reportFormat,
      );
      await writeFile(values.report, report);
    }
    // Reconciled here as asked, but the pipeline would refuse it: say so, so a file tried here is not
    // a surprise at ingest. Ingest's own check (validateExtract) of what the engine reads without
    // complaint: a side with no rows, a JSON Lines file with no key field (or no object at all).
    for (const [side, file] of [
      ['source', values.source],
      ['target', values.target],
    ] as const) {
      if (summary.rows[side] > 0 && policy.sides[side].format !== 'jsonl') continue;
      // The engine has read the file whole: a JSON Lines side needs reading only to its sample.
      const intake = await validateExtract(createReadStream(file), file, policy, side, { jsonlSampleOnly: true });
      if (!intake.ok)
        process.stderr.write(`tally recon: warning: ingest would reject ${file}: ${fileErrorText(intake)}\n`);
    }
    process.stderr.write(
      `${JSON.stringify({ summary: { ...summary, policy_version: policy.policyVersion, policy_hash: policy.hash } })}\n`,
    );
    return summary.outcome === 'FAIL' ? 1 : 0;
  } catch (error) {
    if (error instanceof ReconInputError || error instanceof PolicyError) {
      process.stderr.write(`tally recon: ${error.code}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/**
 * A side's header, read with the in-memory engine's own readers before the SQL runs: the SQL
 * engine needs the column layout to compile, and a file the engine would refuse (no header,
 * missing or duplicate columns, a damaged header row) is refused with the same error. Reads only
 * up to the first record (about one block of the file), then stops.
 */
import { CsvFileError, readCsvInto, splitPlain, type CsvRecord, type CsvSink } from '../../shared/csv.ts';
import { checkHeader, columnsOfEmptyFile, ReconInputError } from '../../shared/extract.ts';
import { gunzipIfCompressed, GzipError } from '../../shared/formats/gzip.ts';
import {
  columnName,
  JsonLinesFileError,
  parseJsonObject,
  readJsonLinesInto,
  type JsonLinesSink,
} from '../../shared/formats/jsonl.ts';
import { requiredColumns, type ReconPolicy } from '../../shared/policy.ts';
import type { Side } from '../../shared/types.ts';

class Found extends Error {}

/** The header of a CSV or JSON Lines side (Parquet columns come from the file's schema). */
export async function probeHeader(
  stream: AsyncIterable<Uint8Array | string>,
  name: string,
  policy: ReconPolicy,
  side: Side,
): Promise<string[]> {
  return (await probeHeaderLine(stream, name, policy, side)).header;
}

/** As `probeHeader`, with the line the header is on (after any blank lines; 0 for an empty side). */
export async function probeHeaderLine(
  stream: AsyncIterable<Uint8Array | string>,
  name: string,
  policy: ReconPolicy,
  side: Side,
): Promise<{ header: string[]; line: number }> {
  const options = policy.sides[side];
  let header: string[] | undefined;
  let line = 0;
  const input = gunzipIfCompressed(stream);
  try {
    if (options.format === 'jsonl') {
      const sink: JsonLinesSink = {
        line(buf, start, end, at) {
          // As the engine: the policy's columns, then the first object's other keys.
          const parsed = parseJsonObject(buf.slice(start, end));
          const required = requiredColumns(policy, side);
          const extra = parsed.ok ? [...parsed.values.keys()].map(columnName).filter((k) => !required.includes(k)) : [];
          header = [...required, ...new Set(extra)];
          line = at;
          throw new Found();
        },
      };
      await readJsonLinesInto(input, sink);
    } else {
      const onRecord = (record: CsvRecord) => {
        header = checkHeader(record, name, policy, side);
        line = record.line;
        throw new Found();
      };
      const sink: CsvSink = {
        plain: (buf, start, end, line) =>
          onRecord({ line, fields: splitFields(buf.slice(start, end), options.delimiter) }),
        record: (record) =>
          onRecord(
            record.fields === undefined
              ? {
                  line: record.line,
                  fields: splitFields(record.plain, options.delimiter),
                  ...(record.error ? { error: record.error } : {}),
                }
              : record,
          ),
      };
      await readCsvInto(input, sink, { delimiter: options.delimiter, encoding: options.encoding });
    }
  } catch (error) {
    if (error instanceof Found) return { header: header as string[], line };
    throw readerError(error, name);
  }
  return { header: columnsOfEmptyFile(policy, side, name), line: 0 };
}

/** An error of the engine's readers as the engine reports it (a ReconInputError naming the file). */
export function readerError(error: unknown, name: string): ReconInputError {
  if (error instanceof ReconInputError) return error;
  if (error instanceof CsvFileError || error instanceof JsonLinesFileError)
    return new ReconInputError(error.code, name, error.message, error.line);
  if (error instanceof GzipError) return new ReconInputError('FILE_UNREADABLE', name, error.message);
  return new ReconInputError('FILE_UNREADABLE', name, `cannot read file: ${(error as Error).message}`);
}

function splitFields(text: string, delimiter: string): string[] {
  return splitPlain(text, 0, text.length, delimiter);
}

/** Parquet: the file's columns (lower case), checked as the engine checks them. */
export function checkParquetColumns(names: readonly string[], name: string, policy: ReconPolicy, side: Side): string[] {
  const header = names.map((n) => n.trim().toLowerCase());
  const missing = requiredColumns(policy, side).filter((c) => !header.includes(c));
  if (missing.length > 0)
    throw new ReconInputError(
      'MISSING_COLUMNS',
      name,
      `missing required column(s) ${missing.join(', ')}; expected columns ${requiredColumns(policy, side).join(', ')}, found ${header.join(', ')}`,
    );
  return header;
}

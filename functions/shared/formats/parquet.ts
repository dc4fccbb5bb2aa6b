/**
 * Parquet through hyparquet (pure JavaScript, no native code: it bundles into a Lambda as is, and
 * reads snappy-compressed files, the common default, without extra codecs). A Parquet file keeps
 * its index at the end, so the bytes are gathered first (compressed, as stored); rows are then
 * decoded one row group at a time, so only one group's values are ever expanded in memory.
 *
 * Values become text the way the rest of Tally reads them: DECIMAL columns exactly (hyparquet's
 * own conversion goes through a double, so decimal columns are read as their stored integers and
 * scaled here), DATE columns as YYYY-MM-DD, timestamps as ISO 8601, doubles and floats as the
 * shortest decimal text that reads back as the same value, 64-bit integers digit for digit, null
 * as an empty value. Row numbers start at 1, the way line numbers do.
 */
import { Buffer } from 'node:buffer';
import { parquetMetadata, parquetRead, parquetSchema, type FileMetaData, type SchemaElement } from 'hyparquet';
import { formatDecimal } from '../decimal.ts';
import type { Chunk } from './gzip.ts';
import { doubleText } from './number-text.ts';

export class ParquetFileError extends Error {
  readonly code = 'PARQUET_INVALID';
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.name = 'ParquetFileError';
    this.line = line;
  }
}

export interface ParquetSink {
  /** The top-level column names, before any row. */
  parquetColumns(names: string[]): void;
  /** One row's values as text, in header order; `row` counts from 1. */
  parquetRow(fields: string[], row: number): void;
}

const MAGIC = 'PAR1';

interface Column {
  readonly name: string;
  /** The DECIMAL scale, when the column is one. */
  readonly scale: number | undefined;
  readonly float: boolean;
}

export async function readParquetInto(input: AsyncIterable<Chunk>, sink: ParquetSink): Promise<void> {
  const parts: Buffer[] = [];
  for await (const chunk of input)
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : Buffer.from(chunk));
  const bytes = Buffer.concat(parts);
  if (bytes.length === 0) throw new ParquetFileError('file is empty; expected a Parquet file');
  if (
    bytes.length < 12 ||
    bytes.toString('latin1', 0, 4) !== MAGIC ||
    bytes.toString('latin1', bytes.length - 4) !== MAGIC
  )
    throw new ParquetFileError('file is not Parquet (no PAR1 magic at its start and end)');
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let metadata: FileMetaData;
  let names: string[];
  try {
    metadata = parquetMetadata(file);
    names = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (error) {
    throw new ParquetFileError(`cannot read the Parquet footer: ${(error as Error).message}`);
  }
  const { metadata: plain, columns } = withRawDecimals(metadata, names);
  sink.parquetColumns(names);
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: unknown[][] = [];
    try {
      await parquetRead({
        file,
        metadata: plain,
        rowStart,
        rowEnd,
        utf8: false,
        parsers: {
          dateFromDays: (days: number) => new Date(days * 86_400_000).toISOString().slice(0, 10),
          timestampFromMilliseconds: (ms: bigint | number) => new Date(Number(ms)).toISOString(),
          timestampFromMicroseconds: (us: bigint | number) => new Date(Number(BigInt(us) / 1000n)).toISOString(),
          timestampFromNanoseconds: (ns: bigint | number) => new Date(Number(BigInt(ns) / 1_000_000n)).toISOString(),
        } as never,
        onComplete: (r: unknown[][]) => {
          rows = r;
        },
      });
    } catch (error) {
      throw new ParquetFileError(
        `cannot read rows ${rowStart + 1}-${rowEnd}: ${(error as Error).message}`,
        rowStart + 1,
      );
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as unknown[];
      const fields = new Array<string>(columns.length);
      for (let c = 0; c < columns.length; c++) fields[c] = textOf(row[c], columns[c] as Column);
      sink.parquetRow(fields, rowStart + i + 1);
    }
    rowStart = rowEnd;
  }
}

/** The metadata with DECIMAL annotations removed (their scale kept per column), so values come raw. */
function withRawDecimals(metadata: FileMetaData, names: string[]): { metadata: FileMetaData; columns: Column[] } {
  const scales = new Map<string, number>();
  const floats = new Set<string>();
  const top = new Set(names);
  const schema: SchemaElement[] = metadata.schema.map((el) => {
    if (top.has(el.name) && el.type === 'FLOAT') floats.add(el.name);
    const isDecimal = el.converted_type === 'DECIMAL' || el.logical_type?.type === 'DECIMAL';
    if (!isDecimal) return el;
    if (top.has(el.name)) scales.set(el.name, el.scale ?? 0);
    const { converted_type: _c, logical_type: _l, ...rest } = el;
    return rest;
  });
  return {
    metadata: { ...metadata, schema },
    columns: names.map((name) => ({ name, scale: scales.get(name), float: floats.has(name) })),
  };
}

const utf8 = new TextDecoder();

function textOf(value: unknown, column: Column): string {
  if (value === null || value === undefined) return '';
  if (column.scale !== undefined) {
    let units: bigint;
    if (value instanceof Uint8Array) units = signedBigInt(value);
    else if (typeof value === 'bigint') units = value;
    else units = BigInt(value as number);
    return formatDecimal({ units, scale: column.scale }, column.scale);
  }
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return column.float ? floatText(value) : doubleText(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return utf8.decode(value);
      return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/** Big-endian two's complement bytes (Parquet's FIXED_LEN_BYTE_ARRAY decimals). */
function signedBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  const bits = BigInt(bytes.length * 8);
  return bytes.length > 0 && (bytes[0] as number) & 0x80 ? v - (1n << bits) : v;
}

/** A 32-bit float by the shortest text that reads back as the same float. */
function floatText(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  for (let p = 1; p <= 9; p++) {
    const candidate = Number(value.toPrecision(p));
    if (Math.fround(candidate) === value) return doubleText(candidate);
  }
  return doubleText(value);
}

/** The files table: the current file per (dataset, business date) and side, accepted or rejected. */
import type { ObjectRef } from '../ports.ts';
import type { Side } from '../types.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';

export type FileStatus = 'ACCEPTED' | 'REJECTED';
export const FILE_STATUSES = ['ACCEPTED', 'REJECTED'] as const satisfies readonly FileStatus[];

export interface FileRecord extends ObjectRef {
  readonly dataset: string;
  readonly business_date: string;
  readonly side: Side;
  readonly sequencer: string;
  readonly size: number;
  /** Data rows (header excluded); 0 when rejected before counting. */
  readonly rows: number;
  readonly status: FileStatus;
  readonly error?: { code: string; message: string; line?: number };
  /** When the object was written (the S3 event's time); absent on records from before it was kept. */
  readonly uploaded_at?: string;
  readonly ingested_at: string;
  /** Increases each time this side's current file changes; part of the run id. */
  readonly generation: number;
}

/**
 * `CODE at line N: message`: how the CLI and the dashboard state why a file was rejected. Ingest
 * stores the message without the file and line (the record has both: validateExtract), so the
 * line is said here, once.
 */
export function fileErrorText(error: FileRecord['error']): string {
  if (!error) return '';
  return `${error.code}${error.line === undefined ? '' : ` at line ${error.line}`}: ${error.message}`;
}

export interface FileStore {
  get(dataset: string, businessDate: string, side: Side): Promise<FileRecord | undefined>;
  /**
   * Records `file` as the current one for its side unless a newer upload (greater sequencer) is
   * already recorded. Returns false when the write lost to a newer upload.
   */
  putIfNewer(file: FileRecord): Promise<boolean>;
}

/** What the query API reads of files. */
export interface FileQueries {
  /** One page of a files-table GSI query, newest ingest first. */
  queryFiles(query: IndexQuery): Promise<IndexPage>;
  /** The current file of each side of (dataset, date) that has one. */
  currentFiles(dataset: string, businessDate: string): Promise<FileRecord[]>;
}

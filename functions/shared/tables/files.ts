/** The files table: the current file per (dataset, business date) and side, accepted or rejected. */
import type { ObjectRef } from '../ports.ts';
import type { Side } from '../types.ts';

export type FileStatus = 'ACCEPTED' | 'REJECTED';

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
  readonly ingested_at: string;
  /** Increases each time this side's current file changes; part of the run id. */
  readonly generation: number;
}

export interface FileStore {
  get(dataset: string, businessDate: string, side: Side): Promise<FileRecord | undefined>;
  /**
   * Records `file` as the current one for its side unless a newer upload (greater sequencer) is
   * already recorded. Returns false when the write lost to a newer upload.
   */
  putIfNewer(file: FileRecord): Promise<boolean>;
}

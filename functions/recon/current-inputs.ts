import type { FileRecord, FileStore } from '../shared/tables/files.ts';
import type { ObjectRef } from '../shared/ports.ts';

/**
 * Whether a run's two files are still the accepted current ones of its dataset-day: a newer upload
 * of either side makes the run moot (its own run follows). Recon asks before reconciling, the
 * store consumer before completing (resolving what the run did not find is the newer run's call).
 */
export async function inputsAreCurrent(
  run: { dataset: string; business_date: string; source: ObjectRef; target: ObjectRef },
  files: Pick<FileStore, 'get'>,
): Promise<boolean> {
  return (await currentInputs(run, files)) !== undefined;
}

/** As `inputsAreCurrent`, giving the two file records (their recorded sizes choose the engine). */
export async function currentInputs(
  run: { dataset: string; business_date: string; source: ObjectRef; target: ObjectRef },
  files: Pick<FileStore, 'get'>,
): Promise<{ source: FileRecord; target: FileRecord } | undefined> {
  const [source, target] = await Promise.all([
    files.get(run.dataset, run.business_date, 'source'),
    files.get(run.dataset, run.business_date, 'target'),
  ]);
  const current =
    source?.etag === run.source.etag &&
    target?.etag === run.target.etag &&
    source.status === 'ACCEPTED' &&
    target.status === 'ACCEPTED';
  return current ? { source, target } : undefined;
}

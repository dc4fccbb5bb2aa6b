/**
 * Keys and identifiers: how a record's partition values, object keys and ids are built and
 * parsed. Every place that builds or reads one imports it from here.
 */

/** Partition value shared by the files table and the `by_dataset_date` indexes of exceptions and runs. */
export function datasetDateKey(dataset: string, businessDate: string): string {
  return `${dataset}#${businessDate}`;
}

import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { TestDynamo } from './dynamo.ts';
import type { mockS3Objects } from './s3-objects.ts';

/**
 * Stores a trades pair as ingest would have: both files in the bucket, their ACCEPTED file
 * records and a REQUESTED run. Returns the recon request for it.
 */
export async function recordRunInputs(
  dynamo: TestDynamo,
  objects: ReturnType<typeof mockS3Objects>,
  input: { runId: string; date: string; source: string; target: string; size?: number },
) {
  const { runId, date } = input;
  const ref = (side: 'source' | 'target') => ({
    bucket: 'tally-data',
    key: `incoming/trades/${date}/${side}.csv`,
    etag: objects.put(`incoming/trades/${date}/${side}.csv`, input[side]),
  });
  const refs = { source: ref('source'), target: ref('target') };
  for (const side of ['source', 'target'] as const)
    await dynamo.doc.send(
      new PutCommand({
        TableName: dynamo.names.tables.files,
        Item: {
          dataset_date: `trades#${date}`,
          side,
          dataset: 'trades',
          business_date: date,
          ...refs[side],
          status: 'ACCEPTED',
          rows: 20,
          ...(input.size === undefined ? {} : { size: input.size }),
          sequencer: '1',
          generation: 1,
        },
      }),
    );
  await dynamo.doc.send(
    new PutCommand({
      TableName: dynamo.names.tables.runs,
      Item: {
        run_id: runId,
        dataset_date: `trades#${date}`,
        dataset: 'trades',
        business_date: date,
        ...refs,
        status: 'REQUESTED',
        requested_at: new Date().toISOString(),
        requested_by: 'test',
      },
    }),
  );
  return { run_id: runId, dataset: 'trades', business_date: date, ...refs };
}

/** The files table on DynamoDB: partition `dataset#date`, sort key the side. */
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { datasetDateKey, sequencerSortKey } from '../keys.ts';
import type { Side } from '../types.ts';
import { applied } from './dynamo-expressions.ts';
import type { FileRecord, FileStore } from './files.ts';

export class DynamoFileStore implements FileStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async get(dataset: string, businessDate: string, side: Side): Promise<FileRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { dataset_date: datasetDateKey(dataset, businessDate), side },
        ConsistentRead: true,
      }),
    );
    return out.Item as FileRecord | undefined;
  }

  async putIfNewer(file: FileRecord): Promise<boolean> {
    return applied(
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...file,
            dataset_date: datasetDateKey(file.dataset, file.business_date),
            sequencer_key: sequencerSortKey(file.sequencer),
          },
          ConditionExpression: 'attribute_not_exists(dataset_date) OR sequencer_key <= :seq',
          ExpressionAttributeValues: { ':seq': sequencerSortKey(file.sequencer) },
        }),
      ),
    );
  }
}

/** The files table on DynamoDB: partition `dataset#date`, sort key the side. */
import { GetCommand, PutCommand, QueryCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { datasetDateKey, sequencerSortKey } from '../keys.ts';
import { FILE_RECORD_TYPE } from '../resources.ts';
import type { Side } from '../types.ts';
import { applied } from './dynamo-expressions.ts';
import type { FileQueries, FileRecord, FileStore } from './files.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';
import { queryIndexPage } from './index-query-dynamo.ts';

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
            // The constant partition of by_ingested (every file, newest first).
            record_type: FILE_RECORD_TYPE,
          },
          // keys.ts isLaterUpload: sequencers compared only for the same key in the same bucket;
          // for another key of the side or the other region's bucket, the event time (an upload
          // with no time, or a record without one, wins).
          ConditionExpression:
            'attribute_not_exists(dataset_date) OR (#bucket = :bucket AND #key = :key AND sequencer_key <= :seq)' +
            (file.uploaded_at === undefined
              ? ' OR #bucket <> :bucket OR #key <> :key'
              : ' OR ((#bucket <> :bucket OR #key <> :key) AND (attribute_not_exists(uploaded_at) OR uploaded_at <= :at))'),
          ExpressionAttributeNames: { '#bucket': 'bucket', '#key': 'key' },
          ExpressionAttributeValues: {
            ':seq': sequencerSortKey(file.sequencer),
            ':bucket': file.bucket,
            ':key': file.key,
            ...(file.uploaded_at === undefined ? {} : { ':at': file.uploaded_at }),
          },
        }),
      ),
    );
  }
}

export class DynamoFileQueries implements FileQueries {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async queryFiles(query: IndexQuery): Promise<IndexPage> {
    return queryIndexPage(this.doc, this.table, query);
  }

  async currentFiles(dataset: string, businessDate: string): Promise<FileRecord[]> {
    // One partition, at most two items (one per side).
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'dataset_date = :pk',
        ExpressionAttributeValues: { ':pk': datasetDateKey(dataset, businessDate) },
      }),
    );
    return (out.Items ?? []) as FileRecord[];
  }
}

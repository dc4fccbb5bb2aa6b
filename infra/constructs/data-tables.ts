/**
 * The DynamoDB tables from the shared TABLES definition, as global tables: the primary region's
 * stack creates them with a replica in each other region (same name, that region's replica key),
 * so after failover the secondary reads and writes the same data. Other regions' stacks create
 * nothing and refer to the replicas by name.
 */
import { Construct } from 'constructs';
import { DataAwsDynamodbTable } from '@cdktf/provider-aws/lib/data-aws-dynamodb-table/index.js';
import { DynamodbTable } from '@cdktf/provider-aws/lib/dynamodb-table/index.js';
import {
  indexProjection,
  TABLES,
  type KeyDef,
  type TableDef,
  type TableName,
} from '../../functions/shared/resources.ts';

export interface TableRef {
  readonly name: string;
  readonly arn: string;
}

export interface TableReplica {
  readonly regionName: string;
  readonly kmsKeyArn: string;
}

export interface DataTablesProps {
  readonly names: Readonly<Record<TableName, string>>;
  readonly kmsKeyArn: string;
  /** Present in the stack that owns the global tables; absent where they are replicas. */
  readonly owner?: { readonly replicas: readonly TableReplica[] };
  /** For a replica region's references: arn:<partition>:dynamodb:<region>:<account>. */
  readonly arnPrefix: string;
}

export class DataTables extends Construct {
  readonly tables: Readonly<Record<TableName, TableRef>>;
  private readonly created = new Map<TableName, DynamodbTable>();

  constructor(scope: Construct, id: string, props: DataTablesProps) {
    super(scope, id);
    const tables = {} as Record<TableName, TableRef>;
    for (const [table, def] of Object.entries(TABLES) as [TableName, TableDef][]) {
      const name = props.names[table];
      tables[table] = props.owner
        ? this.createGlobalTable(table as TableName, name, def, props.kmsKeyArn, props.owner.replicas)
        : { name, arn: `${props.arnPrefix}:table/${name}` };
    }
    this.tables = tables;
  }

  /**
   * The ARN of the table's stream in this region: the table's own where it is created, the
   * replica's elsewhere (each replica of a global table has its stream, with the replicated
   * writes on it too). A replica's stream ARN carries a creation label, so it is read from AWS.
   */
  streamArn(table: TableName): string {
    const created = this.created.get(table);
    if (created) return created.streamArn;
    return new DataAwsDynamodbTable(this, `${table}-replica`, { name: this.tables[table].name }).streamArn;
  }

  private createGlobalTable(
    id: TableName,
    name: string,
    def: TableDef,
    kmsKeyArn: string,
    replicas: readonly TableReplica[],
  ): TableRef {
    const attributes = new Map<string, KeyDef>();
    for (const k of [
      def.partitionKey,
      def.sortKey,
      ...Object.values(def.indexes).flatMap((i) => [i.partitionKey, i.sortKey]),
    ]) {
      if (k) attributes.set(k.name, k);
    }
    const table = new DynamodbTable(this, id, {
      name,
      billingMode: 'PAY_PER_REQUEST',
      hashKey: def.partitionKey.name,
      ...(def.sortKey ? { rangeKey: def.sortKey.name } : {}),
      attribute: [...attributes.values()].map((k) => ({ name: k.name, type: k.type })),
      globalSecondaryIndex: Object.entries(def.indexes).map(([indexName, i]) => {
        const projection = indexProjection(i);
        return {
          name: indexName,
          hashKey: i.partitionKey.name,
          ...(i.sortKey ? { rangeKey: i.sortKey.name } : {}),
          projectionType: projection.type,
          ...(projection.type === 'INCLUDE' ? { nonKeyAttributes: projection.nonKeyAttributes } : {}),
        };
      }),
      ...(def.ttlAttribute ? { ttl: { attributeName: def.ttlAttribute, enabled: true } } : {}),
      pointInTimeRecovery: { enabled: true },
      serverSideEncryption: { enabled: true, kmsKeyArn },
      deletionProtectionEnabled: true,
      // Global tables replicate through the table's stream.
      streamEnabled: true,
      streamViewType: 'NEW_AND_OLD_IMAGES',
      replica: replicas.map((r) => ({
        regionName: r.regionName,
        kmsKeyArn: r.kmsKeyArn,
        pointInTimeRecovery: true,
        propagateTags: true,
      })),
    });
    this.created.set(id, table);
    return { name: table.name, arn: table.arn };
  }
}

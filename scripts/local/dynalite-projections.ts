/**
 * dynalite (the local DynamoDB) made to refuse what DynamoDB refuses: a Query or Scan of a global
 * secondary index that asks (ProjectionExpression, AttributesToGet) for an attribute the index
 * does not project. DynamoDB answers `ValidationException: One or more parameter values were
 * invalid: Global secondary index <name> does not project [<attribute>]` (a GSI cannot fetch from
 * the table); dynalite answered with the attribute left out, so code that asked for it worked
 * here and would fail on AWS. Applied at run time like dynalite-atomic.ts, wrapping dynalite's
 * `queryTable` (both actions call it once their own validation has passed); refuses to start if
 * that is not the shape this relies on.
 */
import { createRequire } from 'node:module';

interface IndexDefinition {
  IndexName: string;
  KeySchema: { AttributeName: string }[];
  Projection: { ProjectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE'; NonKeyAttributes?: string[] };
}
interface Table {
  KeySchema: { AttributeName: string }[];
  GlobalSecondaryIndexes?: IndexDefinition[];
}
interface Request {
  IndexName?: string;
  AttributesToGet?: string[];
  _projection?: { paths: (string | number)[][] | string[] };
}
type QueryTable = (
  store: unknown,
  table: Table,
  data: Request,
  opts: unknown,
  isLocal: boolean,
  fetchFromItemDb: boolean,
  startKeyNames: string[],
  cb: (err: Error | null) => void,
) => void;
interface DynaliteDb {
  queryTable: QueryTable;
  validationError(message: string): Error;
  __tallyProjections?: true;
}

const require = createRequire(import.meta.url);

/** The attributes a request asks for that a global index of the table does not project, if any. */
function unprojected(table: Table, data: Request): { index: string; attributes: string[] } | undefined {
  const index = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === data.IndexName);
  if (!index || index.Projection.ProjectionType === 'ALL') return undefined;
  const carried = new Set([
    ...table.KeySchema.map((k) => k.AttributeName),
    ...index.KeySchema.map((k) => k.AttributeName),
    ...(index.Projection.NonKeyAttributes ?? []),
  ]);
  const asked = [
    ...(data._projection?.paths ?? []).map((path) => String(Array.isArray(path) ? path[0] : path)),
    ...(data.AttributesToGet ?? []),
  ];
  const missing = [...new Set(asked.filter((attribute) => !carried.has(attribute)))];
  return missing.length > 0 ? { index: index.IndexName, attributes: missing } : undefined;
}

export function makeDynaliteRefuseUnprojected(): void {
  const db = require('dynalite/db') as DynaliteDb;
  if (db.__tallyProjections) return;
  if (typeof db.queryTable !== 'function' || typeof db.validationError !== 'function')
    throw new Error("dynalite's db.queryTable is not a function: scripts/local/dynalite-projections.ts needs updating");
  const queryTable = db.queryTable;
  db.queryTable = (store, table, data, opts, isLocal, fetchFromItemDb, startKeyNames, cb) => {
    const refused = isLocal ? undefined : unprojected(table, data);
    if (refused)
      return cb(
        db.validationError(
          `One or more parameter values were invalid: Global secondary index ${refused.index} does not project [${refused.attributes.join(', ')}]`,
        ),
      );
    queryTable(store, table, data, opts, isLocal, fetchFromItemDb, startKeyNames, cb);
  };
  db.__tallyProjections = true;
}

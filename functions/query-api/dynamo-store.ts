/**
 * The query API's store on DynamoDB: the exceptions, runs, files and patterns tables' query adapters side by side
 * (each lives with its table in shared/tables/), and the health probe of the exceptions table.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoExceptionQueries } from '../shared/tables/exceptions-dynamo.ts';
import type { ExceptionPatch } from '../shared/tables/exceptions.ts';
import type { IndexQuery, StoredItem } from '../shared/tables/index-query.ts';
import { DynamoFileQueries } from '../shared/tables/files-dynamo.ts';
import { DynamoRunQueries } from '../shared/tables/runs-dynamo.ts';
import { DynamoPatternStore } from '../shared/tables/patterns-dynamo.ts';
import type { HealthCheck, QueryStore } from './ports.ts';

export class DynamoQueryStore implements QueryStore {
  private readonly exceptions: DynamoExceptionQueries;
  private readonly runs: DynamoRunQueries;
  private readonly files: DynamoFileQueries;
  private readonly patterns: DynamoPatternStore;
  constructor(
    doc: DynamoDBDocumentClient,
    tables: { exceptions: string; runs: string; files: string; patterns: string },
  ) {
    this.exceptions = new DynamoExceptionQueries(doc, tables.exceptions);
    this.runs = new DynamoRunQueries(doc, tables.runs);
    this.files = new DynamoFileQueries(doc, tables.files);
    this.patterns = new DynamoPatternStore(doc, tables.patterns);
  }

  listPatterns(runId: string) {
    return this.patterns.list(runId);
  }

  getPattern(runId: string, patternId: string) {
    return this.patterns.get(runId, patternId);
  }

  getException(id: string) {
    return this.exceptions.getException(id);
  }

  queryExceptions(query: IndexQuery) {
    return this.exceptions.queryExceptions(query);
  }

  queryExceptionEntries(query: IndexQuery) {
    return this.exceptions.queryExceptionEntries(query);
  }

  wholeExceptions(entries: readonly StoredItem[], attributes?: readonly string[]) {
    return this.exceptions.wholeExceptions(entries, attributes);
  }

  soonestDue(statuses: readonly string[], dueAtMost: string, limit: number) {
    return this.exceptions.soonestDue(statuses, dueAtMost, limit);
  }

  patchException(patch: ExceptionPatch) {
    return this.exceptions.patchException(patch);
  }

  getRun(runId: string) {
    return this.runs.getRun(runId);
  }

  queryRuns(query: IndexQuery) {
    return this.runs.queryRuns(query);
  }

  queryFiles(query: IndexQuery) {
    return this.files.queryFiles(query);
  }

  currentFiles(dataset: string, businessDate: string) {
    return this.files.currentFiles(dataset, businessDate);
  }

  healthCheck(): HealthCheck {
    return { name: 'dynamodb', check: () => this.exceptions.probe() };
  }
}

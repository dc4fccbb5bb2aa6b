/**
 * A page of a GSI query, newest first: what the query API's listings (exceptions and runs) ask
 * of a table. No AWS SDK here.
 */

/** A table item as stored, index and bookkeeping attributes included. */
export type StoredItem = Readonly<Record<string, unknown>>;

export interface IndexQuery {
  readonly index: string;
  readonly partition: { readonly attribute: string; readonly value: string };
  /** Equality conditions on other attributes, applied as a FilterExpression. */
  readonly filters: readonly { readonly attribute: string; readonly value: string }[];
  /** Items DynamoDB evaluates (before the filter) in this call. */
  readonly limit: number;
  readonly startKey?: Readonly<Record<string, unknown>>;
}

export interface IndexPage {
  readonly items: StoredItem[];
  readonly lastKey?: Record<string, unknown>;
}

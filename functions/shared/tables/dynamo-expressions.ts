/**
 * The two things every DynamoDB adapter here repeats: building an UpdateExpression from plain
 * values, and telling a failed condition (an expected outcome: lost race, stale version) from a
 * real error.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

export interface UpdateSpec {
  /** attribute = value; undefined values are skipped. */
  readonly set?: Readonly<Record<string, unknown>>;
  /** attribute = list_append(if_not_exists(attribute, []), values); skipped when empty. */
  readonly append?: Readonly<Record<string, readonly unknown[]>>;
  /** attribute = attribute + n. */
  readonly increment?: Readonly<Record<string, number>>;
  readonly remove?: readonly string[];
}

export interface UpdateParts {
  readonly UpdateExpression: string;
  readonly ExpressionAttributeNames: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
}

/**
 * Every attribute goes through a name placeholder (#u0, #u1, ...) and every value through a
 * value placeholder (:u0, ...), so reserved words (status, version) need no special care and a
 * caller's own condition placeholders (any other name) cannot collide.
 */
export function updateExpression(spec: UpdateSpec): UpdateParts {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = (attribute: string) => {
    const placeholder = `#u${Object.keys(names).length}`;
    names[placeholder] = attribute;
    return placeholder;
  };
  const value = (v: unknown) => {
    const placeholder = `:u${Object.keys(values).length}`;
    values[placeholder] = v;
    return placeholder;
  };

  const sets: string[] = [];
  for (const [attribute, v] of Object.entries(spec.set ?? {}))
    if (v !== undefined) sets.push(`${name(attribute)} = ${value(v)}`);
  for (const [attribute, items] of Object.entries(spec.append ?? {})) {
    if (items.length === 0) continue;
    const n = name(attribute);
    sets.push(`${n} = list_append(if_not_exists(${n}, ${value([])}), ${value(items)})`);
  }
  for (const [attribute, by] of Object.entries(spec.increment ?? {})) {
    const n = name(attribute);
    sets.push(`${n} = ${n} + ${value(by)}`);
  }
  const removes = (spec.remove ?? []).map(name);

  const clauses = [
    ...(sets.length > 0 ? [`SET ${sets.join(', ')}`] : []),
    ...(removes.length > 0 ? [`REMOVE ${removes.join(', ')}`] : []),
  ];
  if (clauses.length === 0) throw new Error('internal: an update with nothing to set or remove');
  return {
    UpdateExpression: clauses.join(' '),
    ExpressionAttributeNames: names,
    // DynamoDB rejects an empty ExpressionAttributeValues.
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  };
}

export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as Error | undefined)?.name === 'ConditionalCheckFailedException'
  );
}

/**
 * Runs a conditional write: its output when it was applied, undefined when its condition failed
 * (any other error is thrown).
 */
export async function conditionalWrite<T>(write: Promise<T>): Promise<T | undefined> {
  try {
    return await write;
  } catch (error) {
    if (isConditionFailure(error)) return undefined;
    throw error;
  }
}

/** Runs a conditional write: true when it was applied, false when its condition failed. */
export async function applied(write: Promise<unknown>): Promise<boolean> {
  return (await conditionalWrite(write.then(() => true))) === true;
}

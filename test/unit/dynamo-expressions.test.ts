import { describe, expect, it } from 'vitest';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { applied, isConditionFailure, updateExpression } from '../../functions/shared/tables/dynamo-expressions.ts';

describe('updateExpression', () => {
  it('sets every defined value through placeholders, skipping undefined ones', () => {
    const parts = updateExpression({ set: { status: 'COMPLETED', error: undefined, lease_until: 0 } });

    expect(parts).toEqual({
      UpdateExpression: 'SET #u0 = :u0, #u1 = :u1',
      ExpressionAttributeNames: { '#u0': 'status', '#u1': 'lease_until' },
      ExpressionAttributeValues: { ':u0': 'COMPLETED', ':u1': 0 },
    });
  });

  it('appends to a list that may not exist yet, increments, and removes', () => {
    const entry = { at: 't', by: 'ana', action: 'NOTE' };
    const parts = updateExpression({
      set: { updated_at: 't' },
      append: { history: [entry] },
      increment: { version: 1 },
      remove: ['assignee'],
    });

    expect(parts).toEqual({
      UpdateExpression: 'SET #u0 = :u0, #u1 = list_append(if_not_exists(#u1, :u1), :u2), #u2 = #u2 + :u3 REMOVE #u3',
      ExpressionAttributeNames: { '#u0': 'updated_at', '#u1': 'history', '#u2': 'version', '#u3': 'assignee' },
      ExpressionAttributeValues: { ':u0': 't', ':u1': [], ':u2': [entry], ':u3': 1 },
    });
  });

  it('leaves out an empty append and an empty value map', () => {
    const parts = updateExpression({ append: { history: [] }, remove: ['opened_until'] });

    expect(parts).toEqual({ UpdateExpression: 'REMOVE #u0', ExpressionAttributeNames: { '#u0': 'opened_until' } });
  });

  it('refuses an update that changes nothing', () => {
    expect(() => updateExpression({ set: { a: undefined } })).toThrow(/nothing to set/);
  });
});

describe('conditional writes', () => {
  const conditionFailed = () =>
    new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

  it('tells a failed condition from other errors, by class or by name', () => {
    expect(isConditionFailure(conditionFailed())).toBe(true);
    expect(isConditionFailure(Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException' }))).toBe(true);
    expect(isConditionFailure(new Error('ResourceNotFoundException'))).toBe(false);
    expect(isConditionFailure(undefined)).toBe(false);
  });

  it('applied() is true when written, false when the condition failed, and rethrows anything else', async () => {
    expect(await applied(Promise.resolve({}))).toBe(true);
    expect(await applied(Promise.reject(conditionFailed()))).toBe(false);
    await expect(applied(Promise.reject(new Error('throttled')))).rejects.toThrow('throttled');
  });
});

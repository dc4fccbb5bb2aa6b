import { describe, expect, it } from 'vitest';
import {
  callerFromClaims,
  claimValues,
  datasetScope,
  DEFAULT_ACCESS,
  localAdmin,
  requireRole,
  rolesGranting,
  rolesSatisfying,
} from '../../functions/query-api/access.ts';

describe('claimValues', () => {
  it.each([
    ['[admin analyst]', ['admin', 'analyst']],
    ['openid email tally/viewer', ['openid', 'email', 'tally/viewer']],
    ['payments, trades', ['payments', 'trades']],
    [
      ['a', 'b c'],
      ['a', 'b', 'c'],
    ],
    ['[]', []],
    ['', []],
    [undefined, []],
    [42, []],
  ])('%j → %j', (value, expected) => {
    expect(claimValues(value)).toEqual(expected);
  });
});

describe('callerFromClaims', () => {
  it('takes the email as id, expands implied roles and reads the datasets', () => {
    const caller = callerFromClaims({
      sub: 'u1',
      email: 'ana@bank.example',
      'cognito:groups': '[approver]',
      'tally:datasets': 'payments trades',
    });
    expect(caller.id).toBe('ana@bank.example');
    expect([...caller.roles].sort()).toEqual(['analyst', 'approver', 'viewer']);
    expect(caller.datasets).toEqual(new Set(['payments', 'trades']));
  });

  it('an admin has every dataset; `*` gives every dataset; no claim gives none', () => {
    expect(callerFromClaims({ sub: 'a', 'cognito:groups': '[admin]' }).datasets).toBe('all');
    expect(callerFromClaims({ sub: 'v', 'cognito:groups': 'viewer', 'tally:datasets': '*' }).datasets).toBe('all');
    expect(callerFromClaims({ sub: 'v', 'cognito:groups': 'viewer' }).datasets).toEqual(new Set());
  });

  it('ignores unknown roles and values without the configured prefix', () => {
    const caller = callerFromClaims(
      { sub: 's', scope: 'openid admin tally/uploader tally/root' },
      { ...DEFAULT_ACCESS, roleClaim: 'scope', rolePrefix: 'tally/' },
    );
    expect([...caller.roles].sort()).toEqual(['uploader', 'viewer']);
  });

  it('refuses claims without an identity with 401', () => {
    expect(() => callerFromClaims({ 'cognito:groups': '[admin]' })).toThrow(
      expect.objectContaining({ statusCode: 401 }),
    );
  });
});

describe('role rules', () => {
  it('says which roles grant a role (what API Gateway scopes list)', () => {
    expect(rolesGranting('viewer')).toEqual(['viewer', 'analyst', 'uploader', 'approver', 'admin']);
    expect(rolesGranting('analyst')).toEqual(['analyst', 'approver', 'admin']);
    expect(rolesGranting('admin')).toEqual(['admin']);
    expect(rolesSatisfying(['uploader', 'analyst'])).toEqual(['analyst', 'uploader', 'approver', 'admin']);
  });

  it('refuses a caller without the role with 403 FORBIDDEN naming it', () => {
    const viewer = callerFromClaims({ sub: 'v', 'cognito:groups': 'viewer' });
    expect(() => requireRole(viewer, ['analyst'], 'PATCH /exceptions/{id}')).toThrow(
      /PATCH \/exceptions\/\{id\} needs the analyst role; v has viewer/,
    );
    expect(() => requireRole(viewer, [], 'GET /me')).not.toThrow();
    expect(() => requireRole(localAdmin('me'), ['admin'], 'POST /policies')).not.toThrow();
  });

  it('scopes a listing: all, the entitled list, or 403 for a dataset outside it', () => {
    const analyst = callerFromClaims({ sub: 'a', 'cognito:groups': 'analyst', 'tally:datasets': 'trades,fx' });
    expect(datasetScope(analyst, undefined)).toEqual(['fx', 'trades']);
    expect(datasetScope(analyst, 'fx')).toBe('all');
    expect(() => datasetScope(analyst, 'payments')).toThrow(expect.objectContaining({ code: 'FORBIDDEN_DATASET' }));
    expect(datasetScope(localAdmin('me'), undefined)).toBe('all');
  });
});

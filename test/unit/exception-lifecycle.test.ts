import { describe, expect, it } from 'vitest';
import {
  ACTION_FOR,
  allowedTransitions,
  ANALYST_TRANSITIONS,
  canTransition,
  EXCEPTION_STATUSES,
  HISTORY_ACTIONS,
  isOpen,
  OPEN_STATUSES,
  reconReopens,
  reconResolves,
  TRANSITION_VERBS,
  transitionSources,
} from '../../functions/shared/exception-lifecycle.ts';

describe('the exception lifecycle', () => {
  it("has the brief's four statuses and the workflow's three (late arrivals, work, approval)", () => {
    expect(EXCEPTION_STATUSES).toEqual([
      'PENDING',
      'OPEN',
      'ACKNOWLEDGED',
      'IN_PROGRESS',
      'AWAITING_APPROVAL',
      'RESOLVED',
      'FALSE_POSITIVE',
    ]);
  });

  it('lets an analyst make exactly these moves', () => {
    const moves = EXCEPTION_STATUSES.flatMap((from) =>
      EXCEPTION_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from} -> ${to}`),
    );

    expect(moves).toEqual([
      'PENDING -> OPEN',
      'OPEN -> ACKNOWLEDGED',
      'OPEN -> IN_PROGRESS',
      'OPEN -> FALSE_POSITIVE',
      'ACKNOWLEDGED -> IN_PROGRESS',
      'ACKNOWLEDGED -> RESOLVED',
      'ACKNOWLEDGED -> FALSE_POSITIVE',
      'IN_PROGRESS -> ACKNOWLEDGED',
      'IN_PROGRESS -> RESOLVED',
      'IN_PROGRESS -> FALSE_POSITIVE',
      'RESOLVED -> OPEN',
      'FALSE_POSITIVE -> OPEN',
    ]);
  });

  it('never offers a move to the same status, and none from an unknown one', () => {
    for (const status of EXCEPTION_STATUSES) expect(canTransition(status, status)).toBe(false);
    expect(allowedTransitions('STATUS')).toEqual([]);
    expect(allowedTransitions('open')).toEqual([]);
    expect(canTransition('OPEN', 'CLOSED')).toBe(false);
  });

  it('lists the sources of each move as the inverse of the transitions', () => {
    expect(transitionSources('FALSE_POSITIVE')).toEqual(['OPEN', 'ACKNOWLEDGED', 'IN_PROGRESS']);
    expect(transitionSources('OPEN')).toEqual(['PENDING', 'RESOLVED', 'FALSE_POSITIVE']);
    expect(transitionSources('AWAITING_APPROVAL')).toEqual([]);
    for (const to of EXCEPTION_STATUSES)
      for (const from of transitionSources(to)) expect(ANALYST_TRANSITIONS[from]).toContain(to);
  });

  it('counts every status but RESOLVED and FALSE_POSITIVE as open', () => {
    const open = ['PENDING', 'OPEN', 'ACKNOWLEDGED', 'IN_PROGRESS', 'AWAITING_APPROVAL'];
    expect(OPEN_STATUSES).toEqual(open);
    expect(EXCEPTION_STATUSES.filter(isOpen)).toEqual(open);
    expect(isOpen('UNKNOWN')).toBe(false);
  });
});

describe("recon's rule", () => {
  it.each([
    ['OPEN', false, false],
    ['OPEN', true, false],
    ['ACKNOWLEDGED', false, false],
    ['ACKNOWLEDGED', true, false],
    ['RESOLVED', false, true],
    ['RESOLVED', true, true],
    ['FALSE_POSITIVE', false, false],
    ['FALSE_POSITIVE', true, true],
  ] as const)('found again, %s with changed content %s: reopens %s', (status, contentChanged, reopens) => {
    expect(reconReopens(status, contentChanged)).toBe(reopens);
  });

  it.each([
    ['RESOLVED', false, false],
    ['RESOLVED', true, true],
    ['FALSE_POSITIVE', false, false],
    ['OPEN', true, false],
  ] as const)('found again manually matched, %s with changed content %s: reopens %s', (status, changed, reopens) => {
    expect(reconReopens(status, changed, true)).toBe(reopens);
  });

  it.each([
    ['PENDING', true],
    ['OPEN', true],
    ['ACKNOWLEDGED', true],
    ['IN_PROGRESS', true],
    ['AWAITING_APPROVAL', true],
    ['RESOLVED', false],
    ['FALSE_POSITIVE', false],
  ] as const)('no longer found, %s: resolves %s', (status, resolves) => {
    expect(reconResolves(status)).toBe(resolves);
  });
});

describe('history actions and verbs', () => {
  it('names each move in the history with an action of the union', () => {
    expect(ACTION_FOR).toEqual({
      PENDING: 'CREATED',
      OPEN: 'REOPENED',
      IN_PROGRESS: 'IN_PROGRESS',
      AWAITING_APPROVAL: 'APPROVAL_REQUESTED',
      ACKNOWLEDGED: 'ACKNOWLEDGED',
      RESOLVED: 'RESOLVED',
      FALSE_POSITIVE: 'FALSE_POSITIVE',
    });
    for (const action of Object.values(ACTION_FOR)) expect(HISTORY_ACTIONS).toContain(action);
  });

  it('gives every status a distinct CLI command and a button label', () => {
    const commands = EXCEPTION_STATUSES.map((s) => TRANSITION_VERBS[s].command);

    expect(commands).toEqual(['pending', 'reopen', 'ack', 'start', 'request-approval', 'resolve', 'false-positive']);
    expect(new Set(EXCEPTION_STATUSES.map((s) => TRANSITION_VERBS[s].label)).size).toBe(EXCEPTION_STATUSES.length);
  });
});

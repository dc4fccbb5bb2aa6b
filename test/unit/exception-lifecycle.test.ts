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
  it('has the four statuses of the brief, OPEN first', () => {
    expect(EXCEPTION_STATUSES).toEqual(['OPEN', 'ACKNOWLEDGED', 'RESOLVED', 'FALSE_POSITIVE']);
  });

  it('lets an analyst make exactly these moves', () => {
    const moves = EXCEPTION_STATUSES.flatMap((from) =>
      EXCEPTION_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from} -> ${to}`),
    );

    expect(moves).toEqual([
      'OPEN -> ACKNOWLEDGED',
      'OPEN -> FALSE_POSITIVE',
      'ACKNOWLEDGED -> RESOLVED',
      'ACKNOWLEDGED -> FALSE_POSITIVE',
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
    expect(transitionSources('FALSE_POSITIVE')).toEqual(['OPEN', 'ACKNOWLEDGED']);
    expect(transitionSources('OPEN')).toEqual(['RESOLVED', 'FALSE_POSITIVE']);
    for (const to of EXCEPTION_STATUSES)
      for (const from of transitionSources(to)) expect(ANALYST_TRANSITIONS[from]).toContain(to);
  });

  it('counts OPEN and ACKNOWLEDGED as open, the closed statuses not', () => {
    expect(OPEN_STATUSES).toEqual(['OPEN', 'ACKNOWLEDGED']);
    expect(EXCEPTION_STATUSES.filter(isOpen)).toEqual(['OPEN', 'ACKNOWLEDGED']);
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
    ['OPEN', true],
    ['ACKNOWLEDGED', true],
    ['RESOLVED', false],
    ['FALSE_POSITIVE', false],
  ] as const)('no longer found, %s: resolves %s', (status, resolves) => {
    expect(reconResolves(status)).toBe(resolves);
  });
});

describe('history actions and verbs', () => {
  it('names each move in the history with an action of the union', () => {
    expect(ACTION_FOR).toEqual({
      OPEN: 'REOPENED',
      ACKNOWLEDGED: 'ACKNOWLEDGED',
      RESOLVED: 'RESOLVED',
      FALSE_POSITIVE: 'FALSE_POSITIVE',
    });
    for (const action of Object.values(ACTION_FOR)) expect(HISTORY_ACTIONS).toContain(action);
  });

  it('gives every status a distinct CLI command and a button label', () => {
    const commands = EXCEPTION_STATUSES.map((s) => TRANSITION_VERBS[s].command);

    expect(commands).toEqual(['reopen', 'ack', 'resolve', 'false-positive']);
    expect(new Set(EXCEPTION_STATUSES.map((s) => TRANSITION_VERBS[s].label)).size).toBe(EXCEPTION_STATUSES.length);
  });
});

import { describe, expect, it } from 'vitest';
import type { ItemState, ItemStatus } from '../../src/engine/types.js';
import { planCheckWrites, unsettledItems, type CheckPlanInput, type ShownChecks } from '../../src/github/check-plan.js';

const NOW = 1_000_000;

function item(id: string, status: ItemStatus, extra: Partial<ItemState> = {}): ItemState {
  return { id, status, attempts: status === 'pending' || status === 'ready' ? 0 : 1, failures: status === 'failed' ? 1 : 0, ...extra };
}

function shown(checks: Record<string, number> = {}, statuses: Record<string, ItemStatus> = {}): ShownChecks {
  return { ids: new Map(Object.entries(checks)), statuses: new Map(Object.entries(statuses)) };
}

function input(items: ItemState[], over: Partial<CheckPlanInput> = {}): CheckPlanInput {
  return { seq: 5, reportedSeq: 4, items, now: NOW, progressDelayMs: 1000, pendingOutcome: () => false, ...over };
}

describe('planCheckWrites', () => {
  it('creates running items in progress and waiting ones queued on the first report', () => {
    const plan = planCheckWrites(shown(), input([item('a', 'running', { startedAt: NOW }), item('b', 'pending'), item('c', 'ready')]));
    expect(plan).toEqual({
      report: true,
      writes: [
        { kind: 'create', itemId: 'a', why: 'first', status: 'in_progress', shows: 'running' },
        { kind: 'create', itemId: 'b', why: 'first', status: 'queued', shows: undefined },
        { kind: 'create', itemId: 'c', why: 'first', status: 'queued', shows: undefined },
      ],
    });
  });

  it('creates an item that is already terminal queued, then completes it (a cancel came before the first report)', () => {
    const plan = planCheckWrites(shown(), input([item('a', 'cancelled')]));
    expect(plan.writes).toEqual([
      { kind: 'create', itemId: 'a', why: 'first', status: 'queued', shows: undefined },
      { kind: 'complete', itemId: 'a', status: 'cancelled', conclusion: 'cancelled', retry: false },
    ]);
  });

  it('shows a queued item in progress only once it has run for the progress delay, and asks to look again when it will have', () => {
    const young = planCheckWrites(shown({ a: 1 }), input([item('a', 'running', { startedAt: NOW - 300 })]));
    expect(young).toEqual({ report: true, writes: [], laterMs: 700 });
    const old = planCheckWrites(shown({ a: 1 }), input([item('a', 'running', { startedAt: NOW - 1000 })]));
    expect(old).toEqual({ report: true, writes: [{ kind: 'progress', itemId: 'a' }] });
  });

  it('asks to look again when the first young item is due (one timer per run: later items wait for the same look)', () => {
    const plan = planCheckWrites(shown({ a: 1, b: 2 }), input([item('a', 'running', { startedAt: NOW - 100 }), item('b', 'running', { startedAt: NOW - 800 })]));
    expect(plan.laterMs).toBe(900);
    expect(plan.writes).toEqual([]);
  });

  it('skips the in-progress write of an item whose attempt already ended here (the next report completes it in one write)', () => {
    const plan = planCheckWrites(shown({ a: 1 }), input([item('a', 'running', { startedAt: NOW - 5000 })], { pendingOutcome: (id) => id === 'a' }));
    expect(plan.writes).toEqual([]);
  });

  it('writes nothing for an item whose check already shows its status', () => {
    const plan = planCheckWrites(shown({ a: 1, b: 2 }, { a: 'running', b: 'done' }), input([item('a', 'running', { startedAt: 0 }), item('b', 'done')]));
    expect(plan.writes).toEqual([]);
  });

  it('completes terminal items, a failed one with Retry', () => {
    const plan = planCheckWrites(shown({ a: 1, b: 2, c: 3 }, { a: 'running' }), input([item('a', 'done'), item('b', 'failed'), item('c', 'skipped')]));
    expect(plan.writes).toEqual([
      { kind: 'complete', itemId: 'a', status: 'done', conclusion: 'success', retry: false },
      { kind: 'complete', itemId: 'b', status: 'failed', conclusion: 'failure', retry: true },
      { kind: 'complete', itemId: 'c', status: 'skipped', conclusion: 'skipped', retry: false },
    ]);
  });

  it('gives a reopened item (Retry) a new check run, in progress when it already runs', () => {
    const plan = planCheckWrites(shown({ a: 1, b: 2 }, { a: 'failed', b: 'failed' }), input([item('a', 'ready'), item('b', 'running', { startedAt: NOW })]));
    expect(plan.writes).toEqual([
      { kind: 'create', itemId: 'a', why: 'reopened', status: 'queued', shows: undefined },
      { kind: 'create', itemId: 'b', why: 'reopened', status: 'in_progress', shows: 'running' },
    ]);
  });

  it('reports nothing from a state older than one already reported, and reports the same seq again', () => {
    expect(planCheckWrites(shown(), input([item('a', 'pending')], { seq: 3, reportedSeq: 4 }))).toEqual({ report: false, writes: [] });
    expect(planCheckWrites(shown(), input([item('a', 'pending')], { seq: 4, reportedSeq: 4 })).writes).toHaveLength(1);
  });

  it('leaves pending and ready items with a check alone', () => {
    expect(planCheckWrites(shown({ a: 1, b: 2 }), input([item('a', 'pending'), item('b', 'ready')])).writes).toEqual([]);
  });
});

describe('unsettledItems', () => {
  it('lists the terminal items whose checks do not show their final status', () => {
    const items = [item('a', 'done'), item('b', 'failed'), item('c', 'running'), item('d', 'cancelled')];
    expect(unsettledItems(shown({}, { a: 'done', b: 'running' }), items).map((i) => i.id)).toEqual(['b', 'd']);
  });
});

import { describe, expect, it } from 'vitest';
import type { ItemState, ItemStatus } from '../../src/engine/types.js';
import { planCheckWrites, progressDue, unsettledItems, type CheckPlanInput, type ShownChecks } from '../../src/github/check-plan.js';

const NOW = 1_000_000;

function item(id: string, status: ItemStatus, extra: Partial<ItemState> = {}): ItemState {
  return { id, status, attempts: status === 'pending' || status === 'ready' ? 0 : 1, failures: status === 'failed' ? 1 : 0, ...extra };
}

function shown(checks: Record<string, number> = {}, statuses: Record<string, ItemStatus> = {}): ShownChecks {
  return { ids: new Map(Object.entries(checks)), statuses: new Map(Object.entries(statuses)) };
}

function input(items: ItemState[], over: Partial<CheckPlanInput> = {}): CheckPlanInput {
  return { seq: 5, reportedSeq: 4, items, now: NOW, progressDelayMs: 1000, pendingOutcome: () => false, checksFor: 'each', maxChecks: 250, ...over };
}

describe('planCheckWrites', () => {
  it('creates no check for a waiting item, and one for a running item only once it has run for the progress delay', () => {
    const first = planCheckWrites(shown(), input([item('a', 'running', { startedAt: NOW - 300 }), item('b', 'pending'), item('c', 'ready')]));
    expect(first).toEqual({ report: true, writes: [], laterMs: 700 });
    const later = planCheckWrites(shown(), input([item('a', 'running', { startedAt: NOW - 1000 }), item('b', 'pending'), item('c', 'ready')]));
    expect(later).toEqual({ report: true, writes: [{ kind: 'create', itemId: 'a', why: 'first', status: 'in_progress', shows: 'running' }] });
  });

  it('creates the check of an item that ended before it was shown completed, in one write (a cancel, or an attempt shorter than the delay)', () => {
    const plan = planCheckWrites(shown(), input([item('a', 'cancelled'), item('b', 'done'), item('c', 'failed')]));
    expect(plan.writes).toEqual([
      { kind: 'complete', itemId: 'a', status: 'cancelled', conclusion: 'cancelled', retry: false, create: true },
      { kind: 'complete', itemId: 'b', status: 'done', conclusion: 'success', retry: false, create: true },
      { kind: 'complete', itemId: 'c', status: 'failed', conclusion: 'failure', retry: true, create: true },
    ]);
  });

  it('never plans more than 2 writes for an item, whatever the reports it goes through', () => {
    const seen = shown();
    const ids = seen.ids as Map<string, number>;
    const statuses = seen.statuses as Map<string, ItemStatus>;
    const states: ItemState[] = [
      item('a', 'pending'),
      item('a', 'ready'),
      item('a', 'running', { startedAt: NOW - 10 }),
      item('a', 'running', { startedAt: NOW - 5000 }),
      item('a', 'running', { startedAt: NOW - 9000 }),
      item('a', 'done'),
    ];
    let writes = 0;
    for (const state of states) {
      for (const w of planCheckWrites(seen, input([state])).writes) {
        writes += 1;
        if (w.kind === 'create' || (w.kind === 'complete' && w.create)) ids.set('a', 1);
        statuses.set('a', w.kind === 'complete' ? w.status : 'running');
      }
    }
    expect(writes).toBe(2);
  });

  it('shows an item with a queued check in progress only once it has run for the progress delay, and asks to look again when it will have', () => {
    const young = planCheckWrites(shown({ a: 1 }), input([item('a', 'running', { startedAt: NOW - 300 })]));
    expect(young).toEqual({ report: true, writes: [], laterMs: 700 });
    const old = planCheckWrites(shown({ a: 1 }), input([item('a', 'running', { startedAt: NOW - 1000 })]));
    expect(old).toEqual({ report: true, writes: [{ kind: 'progress', itemId: 'a' }] });
  });

  it('asks to look again when the first young item is due (one timer per run: later items wait for the same look)', () => {
    const plan = planCheckWrites(
      shown({ a: 1, b: 2 }),
      input([item('a', 'running', { startedAt: NOW - 100 }), item('b', 'running', { startedAt: NOW - 800 })]),
    );
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
      { kind: 'complete', itemId: 'a', status: 'done', conclusion: 'success', retry: false, create: false },
      { kind: 'complete', itemId: 'b', status: 'failed', conclusion: 'failure', retry: true, create: false },
      { kind: 'complete', itemId: 'c', status: 'skipped', conclusion: 'skipped', retry: false, create: false },
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
    expect(planCheckWrites(shown(), input([item('a', 'done')], { seq: 3, reportedSeq: 4 }))).toEqual({ report: false, writes: [] });
    expect(planCheckWrites(shown(), input([item('a', 'done')], { seq: 4, reportedSeq: 4 })).writes).toHaveLength(1);
  });

  it('leaves pending and ready items with a check alone', () => {
    expect(planCheckWrites(shown({ a: 1, b: 2 }), input([item('a', 'pending'), item('b', 'ready')])).writes).toEqual([]);
  });
});

describe('unsettledItems', () => {
  it('lists the terminal items whose checks do not show their final status', () => {
    const items = [item('a', 'done'), item('b', 'failed'), item('c', 'running'), item('d', 'cancelled')];
    expect(unsettledItems(shown({ a: 1, b: 2 }, { a: 'done', b: 'running' }), { items, checksFor: 'each', maxChecks: 250 }).map((i) => i.id)).toEqual([
      'b',
      'd',
    ]);
  });
  it('in a large run, lists only the failures that get a check, and retried items whose check is behind', () => {
    const items = [item('a', 'done'), item('b', 'failed'), item('c', 'failed'), item('d', 'done')];
    const large = { items, checksFor: 'failures' as const, maxChecks: 2 };
    expect(unsettledItems(shown({ d: 7 }, { d: 'failed' }), large).map((i) => i.id)).toEqual(['b', 'd']);
  });
});

describe('planCheckWrites for a run over itemChecksUpTo items', () => {
  const large = { checksFor: 'failures' as const, maxChecks: 2 };
  it('gives no check to items that wait, run or succeed, and one to each failure, completed at once with Retry', () => {
    const items = [item('a', 'running', { startedAt: 0 }), item('b', 'pending'), item('c', 'done'), item('d', 'failed'), item('e', 'skipped')];
    expect(planCheckWrites(shown(), input(items, large)).writes).toEqual([
      { kind: 'complete', itemId: 'd', status: 'failed', conclusion: 'failure', retry: true, create: true },
    ]);
  });
  it('stops creating checks at maxChecks, counting the ones shown', () => {
    const items = [item('a', 'failed'), item('b', 'failed'), item('c', 'failed')];
    const writes = planCheckWrites(shown({ a: 1 }, { a: 'failed' }), input(items, large)).writes;
    expect(writes).toEqual([{ kind: 'complete', itemId: 'b', status: 'failed', conclusion: 'failure', retry: true, create: true }]);
  });
  it('keeps a retried failure on its check while it runs again, and completes that check with the new outcome', () => {
    const before = shown({ a: 1 }, { a: 'failed' });
    expect(planCheckWrites(before, input([item('a', 'running', { attempts: 2, startedAt: 0 })], large)).writes).toEqual([]);
    expect(planCheckWrites(before, input([item('a', 'done', { attempts: 2 })], large)).writes).toEqual([
      { kind: 'complete', itemId: 'a', status: 'done', conclusion: 'success', retry: false, create: false },
    ]);
  });
  it('completes the check again when a retry failed again between two reports (same status, a later attempt)', () => {
    const before = { ...shown({ a: 1 }, { a: 'failed' }), attempts: new Map([['a', 1]]) };
    expect(planCheckWrites(before, input([item('a', 'failed', { attempts: 1 })], large)).writes).toEqual([]);
    expect(planCheckWrites(before, input([item('a', 'failed', { attempts: 2 })], large)).writes).toEqual([
      { kind: 'complete', itemId: 'a', status: 'failed', conclusion: 'failure', retry: true, create: false },
    ]);
  });
});

describe("progressDue (a large run's progress in its `agora` check)", () => {
  const everyMs = 2000;
  it('writes the first title at once, and never the one already shown', () => {
    expect(progressDue(undefined, { title: '1/5000 done', now: NOW, everyMs })).toEqual({ write: true });
    expect(progressDue({ title: '1/5000 done', at: NOW - 60_000 }, { title: '1/5000 done', now: NOW, everyMs })).toEqual({ write: false });
  });
  it('holds back a changed title until the period since the last write is over, and says when to report again', () => {
    const shown = { title: '1/5000 done', at: NOW };
    expect(progressDue(shown, { title: '2/5000 done', now: NOW + 500, everyMs })).toEqual({ write: false, laterMs: 1500 });
    expect(progressDue(shown, { title: '9/5000 done', now: NOW + 1999, everyMs })).toEqual({ write: false, laterMs: 1 });
    expect(progressDue(shown, { title: '9/5000 done', now: NOW + 2000, everyMs })).toEqual({ write: true });
  });
  it('writes at most one title per period over a run whose counts move on every report, and the newest one last', () => {
    let shown: { title: string; at: number } | undefined;
    const written: string[] = [];
    let later: number | undefined;
    // 100 reports 50 ms apart (5 s), then the report the held-back title asked for.
    const reports = Array.from({ length: 100 }, (_, i) => ({ now: NOW + i * 50, title: `${i + 1}/5000 done` }));
    for (const r of reports) {
      const due = progressDue(shown, { ...r, everyMs });
      if (due.laterMs !== undefined) later = r.now + due.laterMs;
      if (due.write) {
        shown = { title: r.title, at: r.now };
        written.push(r.title);
      }
    }
    expect(written).toEqual(['1/5000 done', '41/5000 done', '81/5000 done']);
    const last = progressDue(shown, { title: '100/5000 done', now: later!, everyMs });
    expect(last).toEqual({ write: true });
  });
});

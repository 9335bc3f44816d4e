import { describe, expect, it } from 'vitest';
import { acceptRun, reconcile, step } from '../../src/index.js';
import type { Run, RunEvent } from '../../src/index.js';
import { BASE, item, plan } from './helpers.js';

const T0 = 1_700_000_000_000;

function started(run: Run): string[] {
  return Object.values(run.state.items)
    .filter((i) => i.status === 'running')
    .map((i) => i.id)
    .sort();
}

function succeed(run: Run, id: string, now: number, head = `h-${id}`): Run {
  const attempt = run.state.items[id]!.attempts;
  return step(run, [{ type: 'item-succeeded', itemId: id, attempt, resultRef: `git:${id}`, integrationHead: head }], now).run;
}

describe('engine step', () => {
  it('fans out disjoint items, then runs the join once all its dependencies are done', () => {
    const p = plan([
      item('a', [], ['fixture/alpha.ts']),
      item('b', [], ['fixture/beta.ts']),
      item('c', [], ['fixture/shared.ts']),
      item('verify', ['a', 'b', 'c']),
    ]);
    const first = acceptRun(p, { runId: 'r', base: BASE, concurrency: 4, now: T0 });
    expect(first.actions.map((a) => a.type === 'start' && a.itemId)).toEqual(['a', 'b', 'c']);
    expect(first.actions.every((a) => a.type === 'start' && a.base === BASE)).toBe(true);
    expect(first.transitions[0]).toEqual({ kind: 'run', from: 'submitted', to: 'running', at: T0 });
    let run = first.run;
    run = succeed(run, 'a', T0 + 1, 'h1');
    run = succeed(run, 'b', T0 + 2, 'h2');
    expect(run.state.items.verify!.status).toBe('pending');
    const last = step(run, [{ type: 'item-succeeded', itemId: 'c', attempt: 1, resultRef: 'git:c', integrationHead: 'h3' }], T0 + 3);
    expect(last.actions).toEqual([{ type: 'start', itemId: 'verify', attempt: 1, base: 'h3' }]);
    const end = succeed(last.run, 'verify', T0 + 4, 'h3');
    expect(end.state.status).toBe('done');
    expect(end.state.finishedAt).toBe(T0 + 4);
  });

  it('never runs items with overlapping locks together, even when concurrency allows it', () => {
    const p = plan([item('tree', [], ['src/']), item('file', [], ['src/a.ts']), item('other', [], ['srcx/a.ts'])]);
    const { run, actions } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 8, now: T0 });
    expect(actions.map((a) => a.itemId)).toEqual(['tree', 'other']);
    const next = step(run, [{ type: 'item-succeeded', itemId: 'tree', attempt: 1, resultRef: 'git:t', integrationHead: 'h' }], T0 + 1);
    expect(next.actions).toEqual([{ type: 'start', itemId: 'file', attempt: 1, base: 'h' }]);
  });

  it('respects queue concurrency', () => {
    const p = plan(['a', 'b', 'c', 'd', 'e'].map((id) => item(id)));
    const { run, actions } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 2, now: T0 });
    expect(actions).toHaveLength(2);
    expect(started(run)).toEqual(['a', 'b']);
  });

  it('skips dependents of a failure transitively, naming the failed upstream', () => {
    const p = plan([item('a'), item('b', ['a']), item('c', ['b']), item('d')]);
    let { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 4, now: T0 });
    const r = step(run, [{ type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 2', retryable: true }], T0 + 5);
    run = r.run;
    expect(run.state.items.a).toMatchObject({ status: 'failed', reason: 'exit 2', failures: 1 });
    expect(run.state.items.b).toMatchObject({ status: 'skipped', reason: 'upstream a failed' });
    expect(run.state.items.c).toMatchObject({ status: 'skipped', reason: 'upstream a failed' });
    expect(run.state.status).toBe('running');
    run = succeed(run, 'd', T0 + 6);
    expect(run.state.status).toBe('failed');
    expect(run.state.reason).toBe('1 of 4 items failed (a), 2 skipped');
  });

  it('retries with exponential backoff up to maxAttempts, then fails with the count', () => {
    const p = plan([item('a', [], [], { retry: { maxAttempts: 3, backoff: { initialSeconds: 2, factor: 3, maxSeconds: 60 } } })]);
    let { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const fail = (attempt: number): RunEvent => ({ type: 'item-failed', itemId: 'a', attempt, reason: 'exit 1', retryable: true });

    let r = step(run, [fail(1)], T0 + 1000);
    expect(r.run.state.items.a).toMatchObject({ status: 'ready', notBefore: T0 + 3000, failures: 1 });
    expect(r.run.state.items.a!.reason).toContain('retrying in 2s');
    expect(r.actions).toEqual([]);
    expect(r.wakeAt).toBe(T0 + 3000);
    expect(reconcile(r.run, T0 + 2999).actions).toEqual([]);
    r = reconcile(r.run, T0 + 3000);
    expect(r.actions).toEqual([{ type: 'start', itemId: 'a', attempt: 2, base: BASE }]);

    r = step(r.run, [fail(2)], T0 + 4000);
    expect(r.run.state.items.a!.notBefore).toBe(T0 + 4000 + 6000);
    r = reconcile(r.run, T0 + 10_000);
    r = step(r.run, [fail(3)], T0 + 11_000);
    expect(r.run.state.items.a).toMatchObject({ status: 'failed', reason: 'failed after 3 attempts: exit 1', attempts: 3 });
    run = r.run;
    expect(run.state.status).toBe('failed');
  });

  it('does not retry a failure that a retry cannot fix', () => {
    const p = plan([item('a', [], [], { retry: { maxAttempts: 5 } })]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const r = step(run, [{ type: 'item-failed', itemId: 'a', attempt: 1, reason: 'wrote outside its scope: x', retryable: false }], T0 + 1);
    expect(r.run.state.items.a!.status).toBe('failed');
  });

  it('times out a running item at its deadline: stop action, then failure with the reason', () => {
    const p = plan([item('slow', [], [], { timeoutSeconds: 30 })]);
    const { run, actions } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    expect(actions).toEqual([{ type: 'start', itemId: 'slow', attempt: 1, base: BASE, deadline: T0 + 30_000 }]);
    expect(reconcile(run, T0 + 29_999).actions).toEqual([]);
    const r = reconcile(run, T0 + 30_000);
    expect(r.actions).toEqual([{ type: 'stop', itemId: 'slow', attempt: 1, reason: 'timed out after 30s' }]);
    expect(r.run.state.items.slow).toMatchObject({ status: 'failed', reason: 'timed out after 30s' });
    // The worker's own late report for that attempt changes nothing.
    const late = step(r.run, [{ type: 'item-failed', itemId: 'slow', attempt: 1, reason: 'killed', retryable: true }], T0 + 31_000);
    expect(late.transitions).toEqual([]);
  });

  it('cancels every non-terminal item and stops the running ones', () => {
    const p = plan([item('a'), item('b', ['a']), item('c')]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const r = step(run, [{ type: 'cancel-run', reason: 'requested by alice' }], T0 + 1);
    expect(r.actions).toEqual([{ type: 'stop', itemId: 'a', attempt: 1, reason: 'run cancelled: requested by alice' }]);
    expect(Object.values(r.run.state.items).map((i) => i.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    expect(r.run.state).toMatchObject({ status: 'cancelled', reason: 'cancelled: requested by alice' });
    // Cancelling twice, or reporting the stopped worker, changes nothing.
    const again = step(
      r.run,
      [
        { type: 'cancel-run', reason: 'again' },
        { type: 'item-succeeded', itemId: 'a', attempt: 1, resultRef: 'git:x', integrationHead: 'h' },
      ],
      T0 + 2,
    );
    expect(again.transitions).toEqual([]);
    expect(again.run.state).toEqual(r.run.state);
  });

  it('runs a lost attempt again as a new attempt without counting a failure', () => {
    const p = plan([item('a')]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const r = step(run, [{ type: 'item-lost', itemId: 'a', attempt: 1, reason: 'serve restarted' }], T0 + 1);
    expect(r.actions).toEqual([{ type: 'start', itemId: 'a', attempt: 2, base: BASE }]);
    expect(r.run.state.items.a).toMatchObject({ status: 'running', attempts: 2, failures: 0 });
  });

  it('retry-item reopens a failed item and its skipped dependents, and reopens a finished run', () => {
    const p = plan([item('a'), item('b', ['a'])]);
    let { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    run = step(run, [{ type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 1', retryable: true }], T0 + 1).run;
    expect(run.state.status).toBe('failed');
    const r = step(run, [{ type: 'retry-item', itemId: 'a', reason: 'retry requested by bob' }], T0 + 2);
    expect(r.run.state.status).toBe('running');
    expect(r.run.state.items.b!.status).toBe('pending');
    expect(r.actions).toEqual([{ type: 'start', itemId: 'a', attempt: 2, base: BASE }]);
    expect(r.transitions[0]).toMatchObject({ kind: 'run', from: 'failed', to: 'running' });
  });

  it('an if: always item left ready by a lock does not start while a retry has its dependency running again', () => {
    // a fails; b (always, after a) is ready but waits for the lock c holds; a is retried while c runs.
    const p = plan([item('a'), item('c', [], ['shared/']), item('b', ['a'], ['shared/b.txt'], { if: 'always' })]);
    let { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 3, now: T0 });
    run = step(run, [{ type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 1', retryable: true }], T0 + 1).run;
    expect(run.state.items.b!.status).toBe('ready');
    run = step(run, [{ type: 'retry-item', itemId: 'a', reason: 'retry requested by bob' }], T0 + 2).run;
    expect(run.state.items.a!.status).toBe('running');
    // c ends, freeing the lock: b still waits, for a has not ended again.
    let r = step(run, [{ type: 'item-succeeded', itemId: 'c', attempt: 1, resultRef: 'git:c', integrationHead: 'h' }], T0 + 3);
    expect(r.run.state.items.b!.status).toBe('ready');
    expect(r.actions.filter((a) => a.type === 'start')).toEqual([]);
    r = step(r.run, [{ type: 'item-succeeded', itemId: 'a', attempt: 2, resultRef: 'git:a', integrationHead: 'h2' }], T0 + 4);
    expect(r.actions).toEqual([{ type: 'start', itemId: 'b', attempt: 1, base: 'h2' }]);
  });

  it('retry-failed reopens every failed item (not cancelled or done ones) and their skipped dependents in one step', () => {
    const p = plan([item('a'), item('b'), item('c', ['a', 'b']), item('d')]);
    const accepted = acceptRun(p, { runId: 'r', base: BASE, concurrency: 3, now: T0 }).run;
    const run = step(
      accepted,
      [
        { type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 1', retryable: true },
        { type: 'item-failed', itemId: 'b', attempt: 1, reason: 'exit 1', retryable: true },
        { type: 'item-succeeded', itemId: 'd', attempt: 1, resultRef: 'git:d', integrationHead: 'h' },
      ],
      T0 + 1,
    ).run;
    expect(run.state.status).toBe('failed');
    const r = step(run, [{ type: 'retry-failed', reason: 'retry requested by bob' }], T0 + 2);
    expect(r.run.state.status).toBe('running');
    expect(Object.values(r.run.state.items).map((i) => [i.id, i.status, i.failures])).toEqual([
      ['a', 'running', 0],
      ['b', 'running', 0],
      ['c', 'pending', 0],
      ['d', 'done', 0],
    ]);
    expect(r.transitions.filter((t) => t.kind === 'run')).toHaveLength(1);
    // Nothing failed any more: a second request changes nothing.
    expect(step(r.run, [{ type: 'retry-failed', reason: 'again' }], T0 + 3).transitions).toEqual([]);
    // A run cancelled as a whole is not reopened, though an item failed before the cancel.
    const failedOne: RunEvent = { type: 'item-failed', itemId: 'a', attempt: 1, reason: 'exit 1', retryable: true };
    const cancelled = step(accepted, [failedOne, { type: 'cancel-run', reason: 'x' }], T0 + 1).run;
    expect(cancelled.state.items.a!.status).toBe('failed');
    expect(step(cancelled, [{ type: 'retry-failed', reason: 'y' }], T0 + 3).transitions).toEqual([]);
  });

  it('finishes an empty plan at once', () => {
    const { run, transitions } = acceptRun(plan([]), { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    expect(run.state.status).toBe('done');
    expect(transitions.map((t) => t.kind === 'run' && t.to)).toEqual(['running', 'done']);
  });

  it('never mutates its input', () => {
    const p = plan([item('a'), item('b', ['a'])]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const snapshot = structuredClone(run.state);
    step(
      run,
      [
        { type: 'item-succeeded', itemId: 'a', attempt: 1, resultRef: 'git:a', integrationHead: 'h' },
        { type: 'cancel-run', reason: 'x' },
      ],
      T0 + 1,
    );
    expect(run.state).toEqual(snapshot);
  });

  it('copies the items record only when an item changes, keeping its keys in order, through a chain of steps', () => {
    const p = plan([item('c'), item('a', ['c']), item('b', ['a'])]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const idle = step(run, [], T0 + 1);
    expect(idle.run.state.items).toBe(run.state.items); // nothing changed: nothing copied
    const snapshot = structuredClone(run.state);
    let current = run;
    for (const [id, at] of [
      ['c', 2],
      ['a', 3],
    ] as const) {
      const next = step(current, [{ type: 'item-succeeded', itemId: id, attempt: 1, resultRef: `git:${id}`, integrationHead: id }], T0 + at);
      expect(next.run.state.items).not.toBe(current.state.items);
      expect(Object.keys(next.run.state.items)).toEqual(['c', 'a', 'b']);
      expect(next.run.state.items[id]!.status).toBe('done');
      current = next.run;
    }
    expect(current.state.items.b!.status).toBe('running');
    expect(run.state).toEqual(snapshot);
  });

  it('with startItems false settles the state but starts nothing (a server shutting down)', () => {
    const p = plan([item('a'), item('b')]);
    const { run } = acceptRun(p, { runId: 'r', base: BASE, concurrency: 1, now: T0 });
    const r = step(run, [{ type: 'item-lost', itemId: 'a', attempt: 1, reason: 'serve stopped' }], T0 + 1, { startItems: false });
    expect(r.actions).toEqual([]);
    expect(r.run.state.items.a).toMatchObject({ status: 'ready', attempts: 1 });
    expect(r.run.state.items.b!.status).toBe('ready');
  });
});

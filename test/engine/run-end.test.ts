import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptRun, isTerminal, reconcile, step } from '../../src/index.js';
import type { Run, RunEvent, StepResult } from '../../src/index.js';
import { ALWAYS_GRACE_MS, endedAt, graceEndsAt } from '../../src/engine/deadline.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import type { Plan } from '../../src/plan/schema.js';
import { BASE, item, plan } from './helpers.js';

const T0 = 1_700_000_000_000;

function accept(p: Plan, concurrency = 4): StepResult {
  return acceptRun(p, { runId: 'r', base: BASE, concurrency, now: T0 });
}

function status(run: Run): Record<string, string> {
  return Object.fromEntries(Object.values(run.state.items).map((i) => [i.id, i.status]));
}

function succeed(run: Run, id: string, now: number): StepResult {
  const attempt = run.state.items[id]!.attempts;
  return step(run, [{ type: 'item-succeeded', itemId: id, attempt, resultRef: `git:${id}`, integrationHead: `h-${id}` }], now);
}

function fail(run: Run, id: string, now: number): StepResult {
  const attempt = run.state.items[id]!.attempts;
  return step(run, [{ type: 'item-failed', itemId: id, attempt, reason: 'exit 1', retryable: false }], now);
}

describe('the run deadline (timeoutSeconds of the plan)', () => {
  it('fails running items (stopping them) and cancels pending ones when it passes, and says so in the run status', () => {
    const p: Plan = { ...plan([item('slow'), item('after', ['slow']), item('other', [], ['x'])]), timeoutSeconds: 10 };
    let r = accept(p);
    expect(r.wakeAt).toBe(T0 + 10_000);
    r = succeed(r.run, 'other', T0 + 1000);
    r = reconcile(r.run, T0 + 9_999);
    expect(status(r.run)).toEqual({ slow: 'running', after: 'pending', other: 'done' });
    r = reconcile(r.run, T0 + 10_000);
    expect(r.actions).toEqual([{ type: 'stop', itemId: 'slow', attempt: 1, reason: "the run's deadline passed (timeoutSeconds 10s after it was accepted)" }]);
    expect(status(r.run)).toEqual({ slow: 'failed', after: 'cancelled', other: 'done' });
    expect(r.run.state.items.after!.reason).toBe("the run's deadline passed (timeoutSeconds 10s after it was accepted)");
    expect(r.run.state.status).toBe('failed');
    expect(r.run.state.reason).toBe("the run's deadline passed (timeoutSeconds 10s after it was accepted): 1 failed (slow), 1 cancelled");
    // A late report of the stopped attempt changes nothing.
    expect(succeed(r.run, 'slow', T0 + 10_001).transitions).toEqual([]);
  });

  it('a plan without timeoutSeconds has no deadline', () => {
    const r = reconcile(accept(plan([item('a')])).run, T0 + 7 * 86_400_000);
    expect(r.wakeAt).toBeUndefined();
    expect(status(r.run)).toEqual({ a: 'running' });
  });
});

describe('if: always', () => {
  it('runs once its dependencies end, whatever the state; items depending on a failure are skipped as before', () => {
    const p = plan([item('a'), item('b', ['a']), item('report', ['a', 'b'], [], { if: 'always' })]);
    let r = fail(accept(p).run, 'a', T0 + 1);
    expect(status(r.run)).toEqual({ a: 'failed', b: 'skipped', report: 'running' });
    r = succeed(r.run, 'report', T0 + 2);
    expect(r.run.state.status).toBe('failed');
    expect(r.run.state.reason).toBe('1 of 3 items failed (a), 1 skipped');
  });

  it('runs after a cancel, within the grace period, and the run ends cancelled only after it', () => {
    const p = plan([item('work'), item('cleanup', ['work'], [], { if: 'always' })]);
    const r = step(accept(p).run, [{ type: 'cancel-run', reason: 'stop please' }], T0 + 5);
    expect(r.actions).toEqual([
      { type: 'stop', itemId: 'work', attempt: 1, reason: 'run cancelled: stop please' },
      { type: 'start', itemId: 'cleanup', attempt: 1, base: BASE },
    ]);
    expect(status(r.run)).toEqual({ work: 'cancelled', cleanup: 'running' });
    expect(r.run.state.status).toBe('running');
    expect(r.wakeAt).toBe(T0 + 5 + ALWAYS_GRACE_MS);
    const done = succeed(r.run, 'cleanup', T0 + 6);
    expect(done.run.state.status).toBe('cancelled');
    // If the cleanup outlives the grace period it is stopped and failed, and the run ends.
    const late = reconcile(r.run, T0 + 5 + ALWAYS_GRACE_MS);
    expect(late.actions.map((a) => [a.type, a.itemId])).toEqual([['stop', 'cleanup']]);
    expect(late.run.state.items.cleanup).toMatchObject({
      status: 'failed',
      reason: 'the 60s grace period of "if": "always" items after the run was cancelled is over',
    });
    expect(late.run.state.status).toBe('cancelled');
  });

  it('runs after the run deadline, within the grace period', () => {
    const p: Plan = { ...plan([item('work'), item('cleanup', ['work'], [], { if: 'always' })]), timeoutSeconds: 30 };
    const r = reconcile(accept(p).run, T0 + 30_000);
    expect(status(r.run)).toEqual({ work: 'failed', cleanup: 'running' });
    expect(r.actions.map((a) => [a.type, a.itemId])).toEqual([
      ['stop', 'work'],
      ['start', 'cleanup'],
    ]);
    expect(r.wakeAt).toBe(T0 + 30_000 + ALWAYS_GRACE_MS);
    const end = succeed(r.run, 'cleanup', T0 + 31_000);
    expect(end.run.state.status).toBe('failed');
    expect(end.run.state.reason).toBe("the run's deadline passed (timeoutSeconds 30s after it was accepted): 1 failed (work), 0 cancelled");
  });
});

describe('continue_on_error', () => {
  it('a failure does not skip dependents, and the run is done, naming the allowed failure', () => {
    const p = plan([item('lint', [], [], { continue_on_error: true }), item('build', ['lint'])]);
    let r = fail(accept(p).run, 'lint', T0 + 1);
    expect(status(r.run)).toEqual({ lint: 'failed', build: 'running' });
    r = succeed(r.run, 'build', T0 + 2);
    expect(r.run.state.status).toBe('done');
    expect(r.run.state.reason).toBe('failures allowed by continue_on_error: lint');
  });

  it('beside a failure that is not allowed, the run fails and its reason tells the two apart', () => {
    const p = plan([item('lint', [], [], { continue_on_error: true }), item('test'), item('ship', ['lint', 'test'])]);
    let r = fail(accept(p).run, 'lint', T0 + 1);
    r = fail(r.run, 'test', T0 + 2);
    expect(status(r.run)).toEqual({ lint: 'failed', test: 'failed', ship: 'skipped' });
    expect(r.run.state.reason).toBe('1 of 3 items failed (test), 1 skipped, failures allowed by continue_on_error: lint');
  });
});

describe('run end properties', () => {
  const arbPlan = fc
    .integer({ min: 1, max: 10 })
    .chain((n) =>
      fc.tuple(
        fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
        fc.tuple(
          ...Array.from({ length: n }, (_, i) =>
            fc.record({
              deps: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { maxLength: i === 0 ? 0 : 3 }),
              always: fc.boolean(),
              coe: fc.boolean(),
            }),
          ),
        ),
      ),
    )
    .map(([timeout, specs]): Plan => ({
      ...plan(
        specs.map((s, i) =>
          item(
            `i${i}`,
            s.deps.map((d) => `i${d}`),
            [],
            { ...(s.always ? { if: 'always' as const } : {}), ...(s.coe ? { continue_on_error: true } : {}) },
          ),
        ),
      ),
      ...(timeout === undefined ? {} : { timeoutSeconds: timeout }),
    }));

  it('after a cancel or the deadline only if-always items start, none runs past the grace period, every run ends', () => {
    fc.assert(
      fc.property(
        arbPlan,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 20_000 })), { minLength: 50, maxLength: 50 }),
        (p, choices) => {
          const items = new Map(p.items.map((i) => [i.id, i]));
          let now = T0;
          let r = accept(p, 2);
          for (let k = 0; r.run.state.status === 'running'; k++) {
            expect(k).toBeLessThan(500);
            const [pick, roll, dt] = choices[k % choices.length]!;
            now += dt;
            const running = Object.values(r.run.state.items).filter((i) => i.status === 'running');
            let events: RunEvent[] = [];
            if (roll === 0) events = [{ type: 'cancel-run', reason: 'test' }];
            else if (running.length > 0) {
              const t = running[pick % running.length]!;
              events =
                roll < 12
                  ? [{ type: 'item-succeeded', itemId: t.id, attempt: t.attempts, resultRef: 'git:x', integrationHead: 'h' }]
                  : [{ type: 'item-failed', itemId: t.id, attempt: t.attempts, reason: 'exit 1', retryable: false }];
            } else if (r.wakeAt !== undefined) now = Math.max(now, r.wakeAt);
            const before = r.run;
            r = step(before, events, now);
            const ended = endedAt(p, r.run.state, now);
            const grace = graceEndsAt(p, r.run.state, now);
            for (const a of r.actions) {
              if (a.type !== 'start') continue;
              if (ended !== undefined) expect(items.get(a.itemId)!.if, `${a.itemId} started after the run ended`).toBe('always');
              for (const d of dependenciesOf(items.get(a.itemId)!)) {
                const dep = r.run.state.items[d]!;
                if (items.get(a.itemId)!.if === 'always') expect(isTerminal(dep.status)).toBe(true);
                else expect(dep.status === 'done' || (dep.status === 'failed' && items.get(d)!.continue_on_error)).toBe(true);
              }
            }
            if (grace !== undefined && now >= grace) expect(Object.values(r.run.state.items).filter((i) => !isTerminal(i.status))).toEqual([]);
            const again = reconcile(r.run, now);
            expect(again.transitions).toEqual([]);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptRun, reconcile, step, isTerminal } from '../../src/index.js';
import type { Run, RunEvent, StepResult } from '../../src/index.js';
import { dependenciesOf } from '../../src/plan/dag.js';
import { locksOverlap } from '../../src/plan/locks.js';
import type { WorkItem } from '../../src/plan/schema.js';
import { BASE, item, plan } from './helpers.js';

const LOCK_POOL = ['a', 'a/b', 'a/b/c', 'a/c', 'd', 'd/e', 'f', 'ab'];

/** Random acyclic plans: item i may depend only on items before it. */
const arbPlan = fc
  .integer({ min: 1, max: 18 })
  .chain((n) =>
    fc.tuple(
      ...Array.from({ length: n }, (_, i) =>
        fc.record({
          deps: fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { maxLength: i === 0 ? 0 : 3 }),
          locks: fc.uniqueArray(fc.constantFrom(...LOCK_POOL), { maxLength: 2 }),
          maxAttempts: fc.integer({ min: 1, max: 3 }),
          timeout: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
        }),
      ),
    ),
  )
  .map((specs) =>
    plan(
      specs.map((s, i) =>
        item(
          `i${i}`,
          s.deps.map((d) => `i${d}`),
          s.locks,
          {
            retry: { maxAttempts: s.maxAttempts, backoff: { initialSeconds: 1, factor: 2, maxSeconds: 5 } },
            ...(s.timeout === undefined ? {} : { timeoutSeconds: s.timeout }),
          },
        ),
      ),
    ),
  );

/** Each choice picks a running item and what happens to it; a few cancel the run. */
const arbChoices = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 3000 })), {
  minLength: 200,
  maxLength: 200,
});

function checkInvariants(r: StepResult, items: Map<string, WorkItem>, now: number): void {
  const { state } = r.run;
  const running = Object.values(state.items).filter((i) => i.status === 'running');
  expect(running.length).toBeLessThanOrEqual(state.concurrency);
  for (const x of running) {
    for (const dep of dependenciesOf(items.get(x.id)!)) expect(state.items[dep]!.status).toBe('done');
    for (const y of running) {
      if (x.id >= y.id) continue;
      for (const kx of items.get(x.id)!.resourceLocks)
        for (const ky of items.get(y.id)!.resourceLocks) expect(locksOverlap(kx, ky), `${x.id}:${kx} vs ${y.id}:${ky}`).toBe(false);
    }
  }
  // Idempotent: reconciling the result again at the same instant changes nothing.
  const again = reconcile(r.run, now);
  expect(again.actions).toEqual([]);
  expect(again.transitions).toEqual([]);
  expect(again.run.state).toEqual(state);
}

describe('engine properties', () => {
  it('keeps locks, dependencies and concurrency, is idempotent and deterministic, and always terminates', () => {
    fc.assert(
      fc.property(arbPlan, fc.integer({ min: 1, max: 5 }), arbChoices, (p, concurrency, choices) => {
        const items = new Map(p.items.map((i) => [i.id, i]));
        let now = 1_000_000;
        let r = acceptRun(p, { runId: 'r', base: BASE, concurrency, now });
        checkInvariants(r, items, now);
        let heads = 0;
        let steps = 0;
        let cancelled = false;
        while (r.run.state.status === 'running') {
          steps += 1;
          // Bounded: every item has ≤ 3 failing attempts and lost attempts stop after the choices run out.
          expect(steps).toBeLessThan(2000);
          const choice = choices[steps % choices.length]!;
          const [pick, roll, dt] = choice;
          now += dt;
          const running = Object.values(r.run.state.items).filter((i) => i.status === 'running');
          let events: RunEvent[] = [];
          if (roll === 0 && !cancelled) {
            cancelled = true;
            events = [{ type: 'cancel-run', reason: 'test' }];
          } else if (running.length > 0) {
            const target = running[pick % running.length]!;
            const attempt = target.attempts;
            const lostBudget = steps < choices.length;
            if (roll < 60) {
              heads += 1;
              events = [{ type: 'item-succeeded', itemId: target.id, attempt, resultRef: `git:${heads}`, integrationHead: `h${heads}` }];
            } else if (roll < 85) {
              events = [{ type: 'item-failed', itemId: target.id, attempt, reason: 'exit 1', retryable: roll < 80 }];
            } else if (roll < 92 && lostBudget) {
              events = [{ type: 'item-lost', itemId: target.id, attempt, reason: 'restart' }];
            } else {
              // A stale report for an earlier attempt must change nothing.
              events = [{ type: 'item-failed', itemId: target.id, attempt: attempt - 1, reason: 'stale', retryable: true }];
            }
          } else {
            // Nothing runs: only the clock can make progress, and the engine must say when.
            expect(r.wakeAt, 'a non-terminal run with nothing running must name a wake-up time').toBeDefined();
            now = Math.max(now, r.wakeAt!);
          }
          const a = step(r.run, events, now);
          const b = step(r.run, events, now);
          expect(b).toEqual(a); // deterministic
          r = a;
          checkInvariants(r, items, now);
        }
        for (const i of Object.values(r.run.state.items)) {
          expect(isTerminal(i.status)).toBe(true);
          if (i.status !== 'done') expect(i.reason, `${i.id} ${i.status} needs a reason`).toBeTruthy();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('records every transition exactly once, in an order consistent with the final state', () => {
    fc.assert(
      fc.property(arbPlan, fc.integer({ min: 1, max: 4 }), (p, concurrency) => {
        let now = 0;
        let r: StepResult = acceptRun(p, { runId: 'r', base: BASE, concurrency, now });
        const log = [...r.transitions];
        let n = 0;
        while (r.run.state.status === 'running') {
          now += 1000;
          const running = Object.values(r.run.state.items).filter((i) => i.status === 'running');
          const events: RunEvent[] = running.map((x) => ({
            type: 'item-succeeded',
            itemId: x.id,
            attempt: x.attempts,
            resultRef: `git:${x.id}`,
            integrationHead: `h${++n}`,
          }));
          r = step(r.run, events, now);
          log.push(...r.transitions);
        }
        // Replaying the item transitions reproduces each item's final status.
        const replayed = new Map<string, string>();
        for (const t of log) {
          if (t.kind !== 'item') continue;
          expect(t.from).toBe(replayed.get(t.itemId) ?? 'pending');
          replayed.set(t.itemId, t.to);
        }
        for (const i of Object.values(r.run.state.items)) expect(replayed.get(i.id)).toBe(i.status);
        expect(r.run.state.status).toBe('done');
        expect((r.run as Run).state.integrationHead).toBe(p.items.length ? `h${n}` : BASE);
      }),
      { numRuns: 200 },
    );
  });
});

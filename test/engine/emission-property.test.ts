import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/index.js';
import type { Run, RunEvent } from '../../src/index.js';
import { EMPTY_CLAIMS, nextClaims } from '../../src/engine/cross-run-holdings.js';
import { maxHops, maxItems, planItemCount } from '../../src/engine/emission.js';
import type { Emission } from '../../src/engine/types.js';
import { BASE, item, plan } from './helpers.js';

const ID_POOL = Array.from({ length: 14 }, (_, i) => `e${i}`);

function emission(ids: readonly string[], depsOn: readonly string[]): Emission {
  return {
    file: 'items.json',
    items: ids.map((id, k) => ({ item: item(id, k > 0 && depsOn.length > 0 ? [depsOn[k % depsOn.length]!] : []), digest: `d-${id}` })),
  };
}

function succeed(run: Run, id: string, emitted: Emission | undefined): RunEvent {
  const attempt = run.state.items[id]!.attempts;
  return { type: 'item-succeeded', itemId: id, attempt, resultRef: `git:${'c'.repeat(40)}`, integrationHead: BASE, ...(emitted ? { emitted } : {}) };
}

/** Every emitted item: its parent is done, it is one hop further than the parent and within max_hops; the run within its budget. */
function checkBounds(run: Run): void {
  const { state } = run;
  const limit = maxHops(run.plan);
  const budget = maxItems(run.plan, planItemCount(state));
  expect(Object.keys(state.items).length).toBeLessThanOrEqual(budget);
  expect(run.plan.items.map((i) => i.id)).toEqual(Object.keys(state.items));
  for (const it of Object.values(state.items)) {
    if (it.parent === undefined) {
      expect(it.hops ?? 0).toBe(0);
      continue;
    }
    const parent = state.items[it.parent]!;
    expect(parent.status).toBe('done');
    expect(it.hops).toBe((parent.hops ?? 0) + 1);
    expect(it.hops!).toBeLessThanOrEqual(limit);
  }
}

describe('emission properties', () => {
  it('every emitted item is bounded by hops and budget, and applying an emission twice changes nothing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 2, max: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.uniqueArray(fc.constantFrom(...ID_POOL), { maxLength: 4 }), fc.boolean()), { minLength: 1, maxLength: 30 }),
        (hops, budget, choices) => {
          const p = { ...plan([item('a'), item('b', ['a'])]), max_hops: hops, max_items: budget };
          let run = acceptRun(p, { runId: 'r', base: BASE, concurrency: 4, now: 0 }).run;
          let now = 1;
          for (const [pick, ids, dependent] of choices) {
            const running = Object.values(run.state.items).filter((i) => i.status === 'running');
            if (running.length === 0) break;
            const emitter = running[pick % running.length]!;
            const existing = Object.keys(run.state.items);
            const events = [succeed(run, emitter.id, emission(ids, dependent ? existing : []))];
            const before = Object.keys(run.state.items).length;
            const next = step(run, events, now);
            const added = Object.keys(next.run.state.items).length - before;
            // All of the fragment joins, or none of it (and then the emitter failed, saying why).
            expect(added === 0 || added === ids.length).toBe(true);
            if (added === 0 && ids.length > 0) {
              expect(next.run.state.items[emitter.id]!.status).toBe('failed');
              expect(next.run.state.items[emitter.id]!.reason).toMatch(/max_hops|max_items|already exists/);
            }
            checkBounds(next.run);
            // The same event again (a crash and a replay of the outcome): nothing more joins, nothing moves.
            const again = step(next.run, events, now);
            expect(again.transitions).toEqual([]);
            expect(again.run.state).toEqual(next.run.state);
            expect(again.run.plan.items.length).toBe(next.run.plan.items.length);
            run = next.run;
            now += 1;
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('records parent, hops and an emit transition right after the emitter is done', () => {
    let run = acceptRun(plan([item('a')]), { runId: 'r', base: BASE, concurrency: 2, now: 0 }).run;
    const r = step(run, [succeed(run, 'a', emission(['x', 'y'], ['x']))], 1);
    run = r.run;
    expect(r.transitions.slice(0, 2)).toEqual([
      { kind: 'item', itemId: 'a', from: 'running', to: 'done', attempt: 1, at: 1, resultRef: `git:${'c'.repeat(40)}` },
      {
        kind: 'emit',
        itemId: 'a',
        attempt: 1,
        at: 1,
        hops: 1,
        items: [
          { id: 'x', digest: 'd-x' },
          { id: 'y', digest: 'd-y' },
        ],
      },
    ]);
    expect(run.state.items.y).toMatchObject({ parent: 'a', hops: 1 });
    expect(run.state.items.x!.status).toBe('running');
    expect(run.state.items.y!.status).toBe('pending'); // waits for x
    expect(run.state.emitted).toEqual([{ by: 'a', attempt: 1, hops: 1, items: emission(['x', 'y'], ['x']).items }]);
  });

  it('fails the emitter, adding nothing, past max_hops, past the budget, or with an existing id', () => {
    const start = (extra: object) => acceptRun({ ...plan([item('a'), item('b')]), ...extra }, { runId: 'r', base: BASE, concurrency: 2, now: 0 }).run;
    const cases: Array<[object, string[], RegExp]> = [
      [{ max_hops: 0 }, ['x'], /1 hops away, over the plan's max_hops of 0/],
      [{ max_items: 3 }, ['x', 'y'], /adds 2 items to the run's 2, over its budget of 3 items \(max_items\)/],
      [{}, ['b'], /\$\.items\[0\]\.id: item "b" already exists in the run/],
    ];
    for (const [extra, ids, why] of cases) {
      const run = start(extra);
      const r = step(run, [succeed(run, 'a', emission(ids, []))], 1);
      expect(r.run.state.items.a).toMatchObject({ status: 'failed' });
      expect(r.run.state.items.a!.reason).toMatch(why);
      expect(r.run.state.items.a!.reason).toContain('items.json');
      expect(Object.keys(r.run.state.items)).toEqual(['a', 'b']);
      expect(r.run.state.integrationHead).toBe(BASE);
    }
  });
});

describe('emitted items across runs', () => {
  it('an emitted item the same step starts is claimed with its locks (given the step plan)', () => {
    const run = acceptRun(plan([item('a', [], ['out/'])]), { runId: 'r', base: BASE, concurrency: 2, now: 0 }).run;
    const next = step(run, [succeed(run, 'a', { file: 'items.json', items: [{ item: item('x', [], ['out/x']), digest: 'd' }] })], 1);
    expect(next.run.state.items.x!.status).toBe('running');
    const doc = nextClaims(EMPTY_CLAIMS, next.run.plan, run.state, next.run.state, [], 0);
    // a's claim (running before the step) and x's.
    expect(doc?.claims.map((c) => [c.item, c.locks])).toEqual([
      ['a', ['out']],
      ['x', ['out/x']],
    ]);
    // The plan as stored before the step does not know x: claiming from it would leave x's lock unclaimed.
    expect(nextClaims(EMPTY_CLAIMS, run.plan, run.state, next.run.state, [], 0)?.claims.map((c) => c.item)).toEqual(['a']);
  });
});

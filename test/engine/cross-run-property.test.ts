import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { acceptRun, step } from '../../src/engine/step.js';
import { EMPTY_CLAIMS, holdingsFor, liveEntries, nextClaims, type ClaimsDoc, type RunView } from '../../src/engine/cross-run-holdings.js';
import type { Run, RunEvent, StepResult } from '../../src/engine/types.js';
import { locksOverlap } from '../../src/plan/locks.js';
import type { Plan } from '../../src/plan/schema.js';
import { BASE, item } from './helpers.js';

/**
 * Issue 17, Must-have 1, as properties of the pure rules: several runs of one repository, each driven
 * by its own driver, share one claims document moved by compare-and-swap. A driver reads the document
 * and its run, steps, and later commits: the document first (lost if anyone wrote it meanwhile), then
 * its state; it may crash between the two. Whatever the interleaving, no lock key is held by two running
 * items and no queue runs more than its bound, over all runs; and every run ends.
 */

const LOCKS = ['a', 'a/b', 'c', 'resource:db', 'resource:db/main', 'resource:deploy'];
const QUEUES = { q1: 1, q2: 2 } as const;

interface Driver {
  run: Run;
  seq: number;
  /** A step decided on a read, not committed yet. */
  pending?: { docVersion: number; doc: ClaimsDoc | null; result: StepResult };
}

interface World {
  drivers: Driver[];
  doc: ClaimsDoc;
  docVersion: number;
}

const arbRunPlan = (r: number) =>
  fc
    .record({
      queue: fc.constantFrom<keyof typeof QUEUES>('q1', 'q2'),
      items: fc.array(fc.record({ locks: fc.uniqueArray(fc.constantFrom(...LOCKS), { maxLength: 2 }), dep: fc.boolean() }), {
        minLength: 1,
        maxLength: 5,
      }),
    })
    .map(({ queue, items }): Plan => ({
      id: `run${r}`,
      queue,
      items: items.map((x, i) => item(`i${i}`, x.dep && i > 0 ? [`i${i - 1}`] : [], x.locks)),
    }));

const arbWorld = fc.integer({ min: 2, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, r) => arbRunPlan(r))));

function viewOf(d: Driver): RunView {
  return { seq: d.seq, item: (id) => d.run.state.items[id] };
}

/** A driver reads the document and its own run, and decides a step (finishing some running items). */
function decide(w: World, d: Driver, now: number, finish: (id: string) => boolean): void {
  const byRun = new Map(w.drivers.map((x) => [x.run.state.runId, x]));
  const live = liveEntries(w.doc, (run) => (run === d.run.state.runId ? viewOf(d) : byRun.get(run) ? viewOf(byRun.get(run)!) : null));
  const events: RunEvent[] = Object.values(d.run.state.items)
    .filter((i) => i.status === 'running' && finish(i.id))
    .map((i) => ({ type: 'item-succeeded', itemId: i.id, attempt: i.attempts, resultRef: `git:${i.id}`, integrationHead: 'h' }));
  const { state } = d.run;
  const result = step(d.run, events, now, { others: holdingsFor(live, { runId: state.runId, queue: state.queue, acceptedAt: state.acceptedAt }) });
  d.pending = { docVersion: w.docVersion, doc: nextClaims(live, d.run.plan, state, result.run.state, result.waiting ?? [], d.seq), result };
}

/** Commits a decided step: the document by compare-and-swap, then (unless it crashes) the state. */
function commit(w: World, d: Driver, crash: boolean): void {
  const p = d.pending;
  if (!p) return;
  delete d.pending;
  if (p.doc) {
    if (w.docVersion !== p.docVersion) return; // lost the compare-and-swap: the step is redone later
    w.doc = p.doc;
    w.docVersion += 1;
  }
  if (crash) return; // the claim is written, the state commit never is
  d.run = p.result.run;
  d.seq += p.result.transitions.length;
}

function checkHoldings(w: World): void {
  const running = w.drivers.flatMap((d) =>
    Object.values(d.run.state.items)
      .filter((i) => i.status === 'running')
      .map((i) => ({ who: `${d.run.state.runId}/${i.id}`, queue: d.run.state.queue, locks: d.run.plan.items.find((x) => x.id === i.id)!.resourceLocks })),
  );
  for (const [queue, bound] of Object.entries(QUEUES)) {
    expect(running.filter((r) => r.queue === queue).length, `queue ${queue}`).toBeLessThanOrEqual(bound);
  }
  for (const x of running)
    for (const y of running) {
      if (x.who >= y.who) continue;
      for (const kx of x.locks) for (const ky of y.locks) expect(locksOverlap(kx, ky), `${x.who}:${kx} vs ${y.who}:${ky}`).toBe(false);
    }
}

describe('queues and locks across runs (properties)', () => {
  it('no lock is held twice and no queue bound is exceeded across runs in any interleaving, and every run ends', () => {
    fc.assert(
      fc.property(arbWorld, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 9 }), fc.boolean()), { minLength: 50, maxLength: 150 }), (plans, choices) => {
        let now = 1_000;
        const w: World = {
          drivers: plans.map((p, r) => {
            const accepted = acceptRun(p, { runId: p.id, base: BASE, concurrency: QUEUES[p.queue as keyof typeof QUEUES], now: now + r });
            // Accepting starts items by itself; here every start must go through the document, so begin pending.
            const created = {
              plan: p,
              state: {
                ...accepted.run.state,
                items: Object.fromEntries(p.items.map((i) => [i.id, { id: i.id, status: 'pending' as const, attempts: 0, failures: 0 }])),
              },
            };
            return { run: created, seq: 0 };
          }),
          doc: EMPTY_CLAIMS,
          docVersion: 0,
        };
        for (const [pick, what, flag] of choices) {
          now += 10;
          const d = w.drivers[pick % w.drivers.length]!;
          if (what < 5) decide(w, d, now, () => flag);
          else commit(w, d, what === 9);
          checkHoldings(w);
        }
        // Then every driver in turn, honestly: every run must end (no deadlock, no leaked claim).
        for (let round = 0; round < 200 && w.drivers.some((d) => d.run.state.status === 'running'); round += 1) {
          for (const d of w.drivers) {
            now += 10;
            decide(w, d, now, () => true);
            commit(w, d, false);
            checkHoldings(w);
          }
        }
        for (const d of w.drivers) expect(d.run.state.status, d.run.state.runId).toBe('done');
      }),
      { numRuns: 300 },
    );
  });

  it('is fair, FIFO by acceptance: a lock freed by one run goes to the earliest waiting run, whoever steps first', () => {
    const p = (id: string): Plan => ({ id, queue: 'q2', items: [item('x', [], ['resource:db'])] });
    const now = 1_000;
    const w: World = { drivers: [], doc: EMPTY_CLAIMS, docVersion: 0 };
    const mk = (id: string, at: number): Driver => {
      const s = acceptRun(p(id), { runId: id, base: BASE, concurrency: 2, now: at }).run.state;
      return { run: { plan: p(id), state: { ...s, items: { x: { id: 'x', status: 'pending', attempts: 0, failures: 0 } } } }, seq: 0 };
    };
    const [holder, early, late] = [mk('holder', 1), mk('early', 2), mk('late', 3)];
    w.drivers = [holder, early, late];
    for (const d of w.drivers) {
      decide(w, d, now, () => false);
      commit(w, d, false);
    }
    expect([holder, early, late].map((d) => d.run.state.items.x!.status)).toEqual(['running', 'ready', 'ready']);
    // The holder finishes; the later run steps before the earlier one, and still must not take the lock.
    decide(w, holder, now + 1, () => true);
    commit(w, holder, false);
    decide(w, late, now + 2, () => false);
    commit(w, late, false);
    expect(late.run.state.items.x!.status).toBe('ready');
    decide(w, early, now + 3, () => false);
    commit(w, early, false);
    expect(early.run.state.items.x!.status).toBe('running');
  });

  it('a claim written by a run that crashed before its state commit is void once that run moves on, released by nobody', () => {
    const p = (id: string): Plan => ({ id, queue: 'q2', items: [item('x', [], ['a'])] });
    const mk = (id: string, at: number): Driver => {
      const s = acceptRun(p(id), { runId: id, base: BASE, concurrency: 2, now: at }).run.state;
      return { run: { plan: p(id), state: { ...s, items: { x: { id: 'x', status: 'pending', attempts: 0, failures: 0 } } } }, seq: 0 };
    };
    const [crashed, other] = [mk('crashed', 1), mk('other', 2)];
    const w: World = { drivers: [crashed, other], doc: EMPTY_CLAIMS, docVersion: 0 };
    decide(w, crashed, 10, () => false);
    commit(w, crashed, true); // the claim landed, the state did not
    expect(w.doc.claims.map((c) => c.run)).toEqual(['crashed']);
    decide(w, other, 11, () => false);
    commit(w, other, false);
    expect(other.run.state.items.x!.status).toBe('ready'); // the claim holds while its start may still be recorded
    // The crashed run is cancelled (any state commit past the claim voids it): the lock is free.
    crashed.run = step(crashed.run, [{ type: 'cancel-run', reason: 'gone' }], 12).run;
    crashed.seq += 2;
    decide(w, other, 13, () => false);
    commit(w, other, false);
    expect(other.run.state.items.x!.status).toBe('running');
    expect(w.doc.claims.map((c) => c.run)).toEqual(['other']);
  });
});

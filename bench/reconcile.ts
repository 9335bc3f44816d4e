/**
 * bench/reconcile: one reconcile tick on a 10,000-item DAG with 1,000 lock keys, mid-run.
 * Target (issue 2): ≤ 20 ms. Reported beside a reference measured in the same process: one
 * structuredClone of the run state, the floor of any step that returns a new state.
 */
import { acceptRun, reconcile, step } from '../src/index.js';
import type { Run, RunEvent } from '../src/index.js';
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { median, report, timeIt } from './lib.js';

export function bigPlan(items = 10_000, keys = 1_000): Plan {
  const out: WorkItem[] = [];
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < items; i += 1) {
    const deps = i === 0 ? [] : [...new Set([Math.floor(rand() * i), Math.floor(rand() * i)])].map((d) => `i${d}`);
    const key = Math.floor(rand() * keys);
    // Nested keys so prefix overlaps are exercised: dir<k % 100>/file<k>.
    const lock = rand() < 0.1 ? `dir${key % 100}/` : `dir${key % 100}/file${key}.ts`;
    out.push({ id: `i${i}`, executor: 'command', inputs: { run: 'true' }, depends_on: rand() < 0.3 ? [] : deps, resourceLocks: [lock] });
  }
  return { id: 'big', queue: 'default', items: out };
}

export async function benchReconcile() {
  const plan = bigPlan();
  let now = 1_000_000;
  const cold = timeIt(() => acceptRun(plan, { runId: 'big-1', base: 'b'.repeat(40), concurrency: 16, now }));
  let run: Run = cold.value.run;
  // Advance to mid-run: complete running items until a third of the DAG is done.
  let heads = 0;
  while (Object.values(run.state.items).filter((i) => i.status === 'done').length < 3_300) {
    now += 1000;
    const events: RunEvent[] = Object.values(run.state.items)
      .filter((i) => i.status === 'running')
      .map((i) => ({ type: 'item-succeeded', itemId: i.id, attempt: i.attempts, resultRef: `git:${++heads}`, integrationHead: `h${heads}` }));
    run = step(run, events, now).run;
  }
  const ticks: number[] = [];
  const refs: number[] = [];
  for (let k = 0; k < 30; k += 1) {
    ticks.push(timeIt(() => reconcile(run, now)).ms);
    refs.push(timeIt(() => structuredClone(run.state)).ms);
  }
  const completion: number[] = [];
  for (let k = 0; k < 30; k += 1) {
    const running = Object.values(run.state.items).find((i) => i.status === 'running')!;
    const t = timeIt(() =>
      step(run, [{ type: 'item-succeeded', itemId: running.id, attempt: running.attempts, resultRef: 'git:x', integrationHead: 'h' }], now + 1),
    );
    completion.push(t.ms);
  }
  return report('reconcile', {
    items: plan.items.length,
    lockKeys: 1000,
    firstTickMs: round(cold.ms),
    idleTickMedianMs: round(median(ticks)),
    completionTickMedianMs: round(median(completion)),
    referenceCloneMedianMs: round(median(refs)),
    ratioTickToClone: round(median(completion) / median(refs)),
    targetMs: 20,
    withinTarget: median(completion) <= 20 && median(ticks) <= 20,
  });
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) await benchReconcile();

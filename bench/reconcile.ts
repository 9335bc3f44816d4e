/**
 * bench/reconcile: one reconcile tick on a 10,000-item DAG with 1,000 lock keys, mid-run.
 * Target (issue 2): ≤ 20 ms. Reported beside a reference measured in the same process: one
 * structuredClone of the run state, the floor of any step that returns a new state.
 */
import { acceptRun, reconcile, step } from '../src/index.js';
import type { Run, RunEvent } from '../src/index.js';
import type { Plan, WorkItem } from '../src/plan/schema.js';
import { median, report, timeIt } from './lib.js';
import { EMPTY_CLAIMS, holdingsFor, liveEntries, nextClaims, type ClaimsDoc, type RunView } from '../src/engine/cross-run-holdings.js';

export function bigPlan(items = 10_000, keys = 1_000): Plan {
  const out: WorkItem[] = [];
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
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

/** `runs` plans of `items` items each, every lock drawn from `keys` keys the runs share. */
function sharedPlans(runs: number, items: number, keys: number): Plan[] {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return Array.from({ length: runs }, (_, r) => ({
    id: `run${r}`,
    queue: 'default',
    items: Array.from({ length: items }, (_, i): WorkItem => {
      const key = Math.floor(rand() * keys);
      const lock = key % 2 === 0 ? `resource:k${key % 10}/r${key}` : `dir${key % 10}/file${key}.ts`;
      return {
        id: `i${i}`,
        executor: 'command',
        inputs: { run: 'true' },
        depends_on: i > 0 && rand() < 0.5 ? [`i${Math.floor(rand() * i)}`] : [],
        resourceLocks: [lock],
      };
    }),
  }));
}

/**
 * Issue 17: queues and locks across runs. Ten runs of 1,000 items sharing 100 lock keys, mid-run, one
 * claims document between them. One tick of one run as a driver does it (judge the document's entries
 * against every run's state, the others' holdings, the step finishing one item, the next document)
 * against a structuredClone of the ten runs' states in the same process. Target: ≤ 0.5×.
 */
export async function benchCrossRun() {
  const plans = sharedPlans(10, 1_000, 100);
  let now = 1_000_000;
  const runs: Array<{ run: Run; seq: number }> = plans.map((p, r) => ({
    run: { plan: p, state: { ...acceptRun(p, { runId: p.id, base: 'b'.repeat(40), concurrency: 8, now: now + r }).run.state } },
    seq: 0,
  }));
  for (const x of runs) {
    x.run = {
      plan: x.run.plan,
      state: {
        ...x.run.state,
        items: Object.fromEntries(x.run.plan.items.map((i) => [i.id, { id: i.id, status: 'pending' as const, attempts: 0, failures: 0 }])),
      },
    };
  }
  let doc: ClaimsDoc = EMPTY_CLAIMS;
  const views = new Map<string, RunView>();
  const viewOf = (x: { run: Run; seq: number }): RunView => ({ seq: x.seq, item: (id) => x.run.state.items[id] });
  const tick = (x: { run: Run; seq: number }, finish: 'none' | 'one' | 'all') => {
    for (const y of runs) views.set(y.run.state.runId, viewOf(y));
    const live = liveEntries(doc, (id) => views.get(id) ?? null);
    const { state } = x.run;
    const running = finish === 'none' ? [] : Object.values(state.items).filter((i) => i.status === 'running');
    const events: RunEvent[] = (finish === 'one' ? running.slice(0, 1) : running).map((i) => ({
      type: 'item-succeeded',
      itemId: i.id,
      attempt: i.attempts,
      resultRef: 'git:x',
      integrationHead: 'h',
    }));
    const result = step(x.run, events, now, { others: holdingsFor(live, { runId: state.runId, queue: state.queue, acceptedAt: state.acceptedAt }) });
    return { result, next: nextClaims(live, x.run.plan, state, result.run.state, result.waiting ?? [], x.seq) };
  };
  // Advance to mid-run: every run in turn finishes its running items and starts what it may, until a third is done.
  const done = () => runs.reduce((n, x) => n + Object.values(x.run.state.items).filter((i) => i.status === 'done').length, 0);
  while (done() < 3_300) {
    for (const x of runs) {
      now += 100;
      const { result, next } = tick(x, 'all');
      if (next) doc = next;
      x.run = result.run;
      x.seq += result.transitions.length;
    }
  }
  const ticks: number[] = [];
  const clones: number[] = [];
  for (let k = 0; k < 30; k += 1) {
    const x = runs[k % runs.length]!;
    ticks.push(timeIt(() => tick(x, 'one')).ms);
    clones.push(timeIt(() => structuredClone(runs.map((y) => y.run.state))).ms);
  }
  return report('reconcile-across-runs', {
    runs: runs.length,
    itemsPerRun: 1_000,
    sharedLockKeys: 100,
    claims: doc.claims.length,
    waits: doc.waits.length,
    tickMedianMs: round(median(ticks)),
    referenceCloneOfTenStatesMedianMs: round(median(clones)),
    ratioTickToClone: round(median(ticks) / median(clones)),
    target: 0.5,
    withinTarget: median(ticks) / median(clones) <= 0.5,
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await benchReconcile();
  await benchCrossRun();
}

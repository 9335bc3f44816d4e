import type { Plan, WorkItem } from '../plan/schema.js';
import { dependenciesOf, topologicalOrder } from '../plan/dag.js';
import { normalizeLockKey } from '../plan/locks.js';

/** What the engine derives once from a (validated, acyclic) plan. */
export interface PlanIndex {
  /** Item ids in a stable topological order (plan order among independent items). */
  order: readonly string[];
  items: ReadonlyMap<string, WorkItem>;
  deps: ReadonlyMap<string, readonly string[]>;
  dependents: ReadonlyMap<string, readonly string[]>;
  /** Normalised lock keys per item. */
  locks: ReadonlyMap<string, readonly string[]>;
}

const cache = new WeakMap<Plan, PlanIndex>();

/** Memoised per plan object: the plan is immutable for the life of a run. */
export function indexPlan(plan: Plan): PlanIndex {
  const hit = cache.get(plan);
  if (hit) return hit;
  const items = new Map<string, WorkItem>();
  const deps = new Map<string, string[]>();
  const dependents = new Map<string, string[]>();
  const locks = new Map<string, string[]>();
  for (const item of plan.items) {
    items.set(item.id, item);
    dependents.set(item.id, []);
  }
  for (const item of plan.items) {
    const ds = dependenciesOf(item);
    deps.set(item.id, ds);
    for (const d of ds) dependents.get(d)?.push(item.id);
    locks.set(item.id, [...new Set(item.resourceLocks.map(normalizeLockKey))]);
  }
  const index: PlanIndex = { order: topologicalOrder(plan.items), items, deps, dependents, locks };
  cache.set(plan, index);
  return index;
}

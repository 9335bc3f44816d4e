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
  /** Each id's position in `order`; the arrays below are indexed by it, so a tick's walks need no lookups by id. */
  position: ReadonlyMap<string, number>;
  /** The item at each position of `order`. */
  itemAt: readonly WorkItem[];
  /** The positions of each item's dependencies. */
  depsAt: readonly (readonly number[])[];
  /** Each item's normalised lock keys, by position. */
  locksAt: readonly (readonly string[])[];
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
  const order = topologicalOrder(plan.items);
  const position = new Map(order.map((id, i) => [id, i] as const));
  const itemAt = order.map((id) => items.get(id)!);
  const depsAt = order.map((id) => deps.get(id)!.map((d) => position.get(d)!));
  const locksAt = order.map((id) => locks.get(id)!);
  const index: PlanIndex = { order, items, deps, dependents, locks, position, itemAt, depsAt, locksAt };
  cache.set(plan, index);
  return index;
}

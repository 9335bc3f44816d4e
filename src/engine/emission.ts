/**
 * Items created by other items at run time, and the one rule that bounds them. An item may emit a plan
 * fragment (`$AGORA_EMIT/items.json`); its items join the run with the emitter as their parent. Every
 * item created by another item (emitted here; the agents' calls too) is `hops` creations away from the
 * plan, at most the plan's `max_hops`, and the run holds at most `max_items` items in all. Pure: the
 * adapter validates the fragment's shape, this decides, against the state at hand, whether it may join.
 */
import type { Plan, WorkItem } from '../plan/schema.js';
import type { Emission, EmittedBatch, ItemState, RunState, Transition } from './types.js';

/** Default of the plan's `max_hops`. */
export const DEFAULT_MAX_HOPS = 3;
/** Default of the plan's `max_items` (or the plan's own item count, when that is larger). */
export const DEFAULT_MAX_ITEMS = 1_000;

/** The hop depth of an item created by `creator` (0 for the plan's own items). */
export function createdHops(creator: Pick<ItemState, 'hops'>): number {
  return (creator.hops ?? 0) + 1;
}

/** The plan's bound on hops. */
export function maxHops(plan: Pick<Plan, 'max_hops'>): number {
  return plan.max_hops ?? DEFAULT_MAX_HOPS;
}

/** The run's item budget; `planItems` is how many items the plan itself holds (after matrix expansion). */
export function maxItems(plan: Pick<Plan, 'max_items'>, planItems: number): number {
  return plan.max_items ?? Math.max(DEFAULT_MAX_ITEMS, planItems);
}

/**
 * Why an item `creator` may not create another at hop depth `createdHops(creator)`, or undefined when it
 * may. The one hop rule for every kind of creation.
 */
export function hopsProblem(plan: Pick<Plan, 'max_hops'>, creatorId: string, creator: Pick<ItemState, 'hops'>): string | undefined {
  const hops = createdHops(creator);
  const limit = maxHops(plan);
  if (hops <= limit) return undefined;
  return `item ${creatorId} is ${hops - 1} hop${hops - 1 === 1 ? '' : 's'} from the plan, so what it creates would be ${hops} hops away, over the plan's max_hops of ${limit}: raise "max_hops" in the plan or create the items in the plan or nearer to it`;
}

/** How many of the run's items came with the plan (the others were emitted). */
export function planItemCount(state: Pick<RunState, 'items' | 'emitted'>): number {
  let emitted = 0;
  for (const batch of state.emitted ?? []) emitted += batch.items.length;
  return Object.keys(state.items).length - emitted;
}

/**
 * Why `emission` by `emitterId` may not join the run as it now is, or undefined when it may: the hop
 * bound, the item budget, and ids that already exist. (Shape, dependencies and scope were checked by the
 * adapter that read the fragment; what depends on the state is decided here, at the moment it joins.)
 */
export function emissionProblem(plan: Plan, state: RunState, emitterId: string, emission: Emission): string | undefined {
  const emitter = state.items[emitterId];
  if (!emitter) return `item ${emitterId} is not in the run`;
  const hops = hopsProblem(plan, emitterId, emitter);
  if (hops) return `${emission.file}: ${hops}`;
  const have = Object.keys(state.items).length;
  const budget = maxItems(plan, planItemCount(state));
  if (have + emission.items.length > budget) {
    return `${emission.file}: $.items adds ${emission.items.length} items to the run's ${have}, over its budget of ${budget} items (max_items): emit fewer items, or raise "max_items" in the plan`;
  }
  for (const [k, { item }] of emission.items.entries()) {
    if (state.items[item.id]) {
      return `${emission.file}: $.items[${k}].id: item ${JSON.stringify(item.id)} already exists in the run: give the emitted item an id no item of the run has`;
    }
  }
  return undefined;
}

/** The plan the engine runs: plan.json (expanded) followed by every emitted item, in the order they joined. */
export function planWithEmitted(plan: Plan, emitted: readonly EmittedBatch[] | undefined): Plan {
  if (!emitted || emitted.length === 0) return plan;
  return { ...plan, items: [...plan.items, ...emitted.flatMap((b) => b.items.map((e) => e.item))] };
}

/**
 * `emission` joined to the run (checked by {@link emissionProblem} first): the plan with its items, the
 * state with each one pending with its parent and hop depth, the batch recorded, and the `emit` transition.
 * Pure; copies what it changes.
 */
export function addEmission(
  plan: Plan,
  state: RunState,
  emitterId: string,
  attempt: number,
  emission: Emission,
  at: number,
): { plan: Plan; state: RunState; transition: Transition } {
  const hops = createdHops(state.items[emitterId] ?? {});
  const items: WorkItem[] = emission.items.map((e) => e.item);
  const nextItems = { ...state.items };
  for (const item of items) nextItems[item.id] = { id: item.id, status: 'pending', attempts: 0, failures: 0, parent: emitterId, hops };
  const batch: EmittedBatch = { by: emitterId, attempt, hops, items: emission.items };
  return {
    plan: { ...plan, items: [...plan.items, ...items] },
    state: { ...state, items: nextItems, emitted: [...(state.emitted ?? []), batch] },
    transition: {
      kind: 'emit',
      itemId: emitterId,
      attempt,
      at,
      hops,
      items: emission.items.map((e) => ({ id: e.item.id, digest: e.digest })),
    },
  };
}

import type { PlanIndex } from './plan-index.js';
import type { ItemState, ItemStatus, RunState, Transition } from './types.js';

/** The fields a move sets on an item; a field given as undefined is removed. */
export type ItemFields = { [K in keyof ItemState]?: ItemState[K] | undefined };

/**
 * The keys of each items record a step made or was given, in their order: a step's copy has the same
 * keys as its input, so the next step copies without asking V8 for them again (one `Object.keys` of
 * 10,000 keys is a third of the copy).
 */
const itemKeys = new WeakMap<Record<string, ItemState>, readonly string[]>();

/** A shallow copy of an items record, keys in the same order (a loop over known keys: V8's fastest copy of a large record). */
function copyItems(from: Record<string, ItemState>): Record<string, ItemState> {
  let keys = itemKeys.get(from);
  if (!keys) {
    keys = Object.keys(from);
    itemKeys.set(from, keys);
  }
  const items: Record<string, ItemState> = {};
  for (let i = 0; i < keys.length; i += 1) items[keys[i]!] = from[keys[i]!]!;
  itemKeys.set(items, keys);
  return items;
}

/**
 * A step's working copy of the items' states, copied on write so the run a step was given is never
 * mutated: the items record is copied on the first write (a step that changes nothing copies nothing),
 * each item on its own first write. Every change goes through {@link move}, which records its transition.
 */
export class WorkingItems {
  /** The items' states by position in the plan index's order (kept in step with `state.items`). */
  private states: (ItemState | undefined)[];
  /** Whether `state.items` is this step's own record yet. */
  private itemsCopied = false;
  private readonly copied = new Set<string>();

  constructor(
    /** The step's own copy of the run state (its `items` field is replaced on the first write). */
    private readonly state: RunState,
    private index: PlanIndex,
    private readonly now: number,
    private readonly transitions: Transition[],
  ) {
    this.states = index.order.map((id) => state.items[id]);
  }

  /** The current state of an item (read only: writes go through `move`). */
  byId(id: string): ItemState {
    const current = this.state.items[id];
    if (!current) throw new Error(`engine: item ${id} has no state (plan and state disagree)`);
    return current;
  }

  /** The current state of the item at position `i` of the plan index's order. */
  at(i: number): ItemState {
    const current = this.states[i];
    if (!current) throw new Error(`engine: item ${this.index.order[i]} has no state (plan and state disagree)`);
    return current;
  }

  /** The states in the plan index's order, for a read-only walk that tolerates gaps. */
  all(): readonly (ItemState | undefined)[] {
    return this.states;
  }

  /** The item when attempt `attempt` of it is the one running; undefined for a stale or unknown attempt. */
  runningAttempt(id: string, attempt: number): ItemState | undefined {
    const item = this.state.items[id];
    return item && item.status === 'running' && item.attempts === attempt ? item : undefined;
  }

  /**
   * After an emission joined: the plan grew, and the state's items record (which the emission's join
   * copied, so it is this step's own) holds the new items, which are this step's own too.
   */
  joined(index: PlanIndex, newIds: readonly string[]): void {
    this.index = index;
    this.itemsCopied = true;
    this.states = index.order.map((id) => this.state.items[id]);
    for (const id of newIds) this.copied.add(id);
  }

  /** Moves an item to `to` with `fields` set, and records the transition (`extra`: what a start records). */
  move(current: ItemState, to: ItemStatus, fields: ItemFields, extra: { locks?: string[]; base?: string } = {}): void {
    const item = this.writable(current.id);
    const from = item.status;
    item.status = to;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) delete (item as unknown as Record<string, unknown>)[k];
      else (item as unknown as Record<string, unknown>)[k] = v;
    }
    const t: Transition = { kind: 'item', itemId: item.id, from, to, attempt: item.attempts, at: this.now };
    if (item.reason !== undefined && to !== 'running' && to !== 'done') t.reason = item.reason;
    if (to === 'done' && item.resultRef) t.resultRef = item.resultRef;
    if (extra.locks) t.locks = extra.locks;
    if (extra.base) t.base = extra.base;
    this.transitions.push(t);
  }

  /** The writable copy of an item: copied on its first write, the items record on the step's first. */
  private writable(id: string): ItemState {
    const current = this.byId(id);
    if (this.copied.has(id)) return current;
    if (!this.itemsCopied) {
      this.state.items = copyItems(this.state.items);
      this.itemsCopied = true;
    }
    const copy = { ...current };
    this.state.items[id] = copy;
    const i = this.index.position.get(id);
    if (i !== undefined) this.states[i] = copy;
    this.copied.add(id);
    return copy;
  }
}

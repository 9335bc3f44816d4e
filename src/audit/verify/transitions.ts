import type { ItemStatus, RunStatus } from '../../engine/types.js';

/**
 * The transitions Agora writes (docs/audit.md §4, the two tables): the only ones a log may hold. Every
 * `move` of the engine (src/engine/tick.ts) is one of them, in every version Agora has written; the replay
 * refuses any other (failure `state`), and any state that is not one of §4's.
 */

/** For each item state, the states Agora moves an item to from it. */
const ITEM_MOVES: Readonly<Record<ItemStatus, readonly ItemStatus[]>> = {
  // every dependency let it start; a dependency cannot; the run was cancelled or passed its deadline
  pending: ['ready', 'skipped', 'cancelled'],
  // started; a dependency cannot; the run was cancelled or passed its deadline
  ready: ['running', 'skipped', 'cancelled'],
  // succeeded; failed for good (or stopped at the run's deadline); lost, or failed with a retry left; cancelled
  running: ['done', 'failed', 'ready', 'cancelled'],
  done: [],
  // a retry (the item's own, or, for a skipped one, of an item it waited for)
  failed: ['pending'],
  skipped: ['pending'],
  cancelled: ['pending'],
};

/** For each run state (and `submitted`, before entry 0), the states Agora moves the run to from it. */
const RUN_MOVES: Readonly<Record<RunStatus | 'submitted', readonly RunStatus[]>> = {
  submitted: ['running'],
  running: ['done', 'failed', 'cancelled'],
  done: ['running'],
  failed: ['running'],
  cancelled: ['running'],
};

export function isItemStatus(value: unknown): value is ItemStatus {
  return typeof value === 'string' && Object.hasOwn(ITEM_MOVES, value);
}

export function isRunStatus(value: unknown): value is RunStatus {
  return typeof value === 'string' && value !== 'submitted' && Object.hasOwn(RUN_MOVES, value);
}

/** Whether §4's item table has `from → to`. */
export function itemMoveAllowed(from: ItemStatus, to: ItemStatus): boolean {
  return ITEM_MOVES[from].includes(to);
}

/** Whether §4's run table has `from → to`. */
export function runMoveAllowed(from: RunStatus | 'submitted', to: RunStatus): boolean {
  return RUN_MOVES[from].includes(to);
}

import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import type { RunState } from '../engine/types.js';
import type { GitStore, Oid, RefSwap } from '../git/types.js';
import { patchCommitOf } from '../log/result-ref.js';
import type { RunRefs } from './refs.js';

/**
 * The refs that follow a run's state: its integration ref and the patch refs of its done items. The state
 * commit is the source of truth; these move with it, in the transaction of the state commit that records
 * them, or are brought up to it after a restart.
 */

/** The moves that bring the integration ref and the patch refs of `itemIds` (those done) to `state`. */
export async function derivedSwaps(store: GitStore, refs: RunRefs, runId: string, state: RunState, itemIds: readonly string[]): Promise<RefSwap[]> {
  const targets: Array<[string, Oid]> = [[refs.integration(runId), state.integrationHead]];
  for (const id of itemIds) {
    const item = state.items[id];
    const patch = item?.status === 'done' ? patchCommitOf(item.resultRef) : null;
    if (patch) targets.push([refs.patch(runId, id), patch]);
  }
  const swaps: RefSwap[] = [];
  for (const [ref, next] of targets) {
    const expected = await store.resolveRef(ref);
    if (expected !== next) swaps.push({ ref, next, expected });
  }
  return swaps;
}

/**
 * After a restart: a run written before its patch and integration refs moved with the state (or by a
 * crash between a transaction's renames) may have them behind. Brings every one of them to `state` in
 * one transaction.
 */
export async function syncDerivedRefs(store: GitStore, refs: RunRefs, runId: string, state: RunState): Promise<void> {
  await retryOnConflict(`the integration and patch refs of run ${runId}`, 20, async () => {
    const swaps = await derivedSwaps(store, refs, runId, state, Object.keys(state.items));
    return swaps.length === 0 || (await store.casRefs(swaps)) ? undefined : LOST_RACE;
  });
}

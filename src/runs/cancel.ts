import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from './refs.js';
import { recordRequest } from './requests.js';

export type CancelOutcome =
  { kind: 'cancelled'; runningStopped: number } | { kind: 'already-terminal'; status: string } | { kind: 'withdrawn'; submission: Oid } | { kind: 'not-found' };

/**
 * Cancels a run: every item not yet finished ends `cancelled` with the reason, and the server driving
 * the run stops its workers. A submission not yet accepted is withdrawn from the inbox instead: its
 * commit is returned, so that the caller can remove what this host keeps for it (its secret parameters).
 */
export async function cancelRun(store: GitStore, refs: RunRefs, runId: string, reason: string, clock: () => number): Promise<CancelOutcome> {
  return retryOnConflict(`run ${runId} (between its inbox and its state)`, 50, async (): Promise<CancelOutcome | typeof LOST_RACE> => {
    const outcome = await recordRequest(store, refs, runId, { type: 'cancel-run', reason }, clock);
    if (outcome.kind === 'recorded') return { kind: 'cancelled', runningStopped: outcome.stopped };
    if (outcome.kind === 'no-change') return { kind: 'already-terminal', status: outcome.run.state.status };
    const inbox = await store.resolveRef(refs.inbox(runId));
    if (!inbox) return { kind: 'not-found' };
    if (await store.deleteRef(refs.inbox(runId), inbox)) return { kind: 'withdrawn', submission: inbox };
    return LOST_RACE; // accepted meanwhile: cancel the run instead
  });
}

import { appendEntries } from '../audit/entry.js';
import { step } from '../engine/step.js';
import type { GitStore } from '../git/types.js';
import type { RunRefs } from './refs.js';
import { readRun, writeRun } from './state-store.js';

export type CancelOutcome =
  | { kind: 'cancelled'; runningStopped: number }
  | { kind: 'already-terminal'; status: string }
  | { kind: 'withdrawn' }
  | { kind: 'not-found' };

/**
 * Cancels a run by recording `cancel-run` in its state (compare-and-swap: a concurrent update is never
 * overwritten; on conflict the run is re-read and the cancel applied again). The server driving the run
 * sees the new state and stops its workers. A submission not yet accepted is withdrawn from the inbox.
 */
export async function cancelRun(
  store: GitStore,
  refs: RunRefs,
  runId: string,
  reason: string,
  clock: () => number,
): Promise<CancelOutcome> {
  for (let tries = 0; tries < 50; tries += 1) {
    const run = await readRun(store, refs, runId);
    if (!run) {
      const inbox = await store.resolveRef(refs.inbox(runId));
      if (!inbox) return { kind: 'not-found' };
      if (await store.deleteRef(refs.inbox(runId), inbox)) return { kind: 'withdrawn' };
      continue; // accepted meanwhile: cancel the run instead
    }
    if (run.state.status !== 'running') return { kind: 'already-terminal', status: run.state.status };
    const now = clock();
    const r = step({ plan: run.plan, state: run.state }, [{ type: 'cancel-run', reason }], now);
    const next = await writeRun(store, refs, {
      runId,
      prev: run,
      state: r.run.state,
      entries: appendEntries(run.last, runId, r.transitions),
      transitions: r.transitions,
      now,
    });
    if (next) return { kind: 'cancelled', runningStopped: r.actions.filter((a) => a.type === 'stop').length };
  }
  throw new Error(`could not cancel ${runId}: its state kept changing (50 conflicts in a row)`);
}

import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { appendEntries } from '../log/entry.js';
import { step } from '../engine/step.js';
import type { RunEvent, Transition } from '../engine/types.js';
import type { GitStore } from '../git/types.js';
import type { RunRefs } from './refs.js';
import { readRun, writeRun, type StoredRun } from './state-store.js';

/**
 * Requests from outside the serving process (`cancel`, `retry`, a check-run button): the event is
 * recorded in the run's state with compare-and-swap — a concurrent update is never overwritten; on
 * conflict the run is re-read and the event applied again — and the server driving the run acts on the
 * new state (stops workers, starts the reopened item).
 */

export type RequestOutcome =
  { kind: 'recorded'; run: StoredRun; transitions: Transition[]; stopped: number } | { kind: 'no-change'; run: StoredRun } | { kind: 'not-found' };

export async function recordRequest(store: GitStore, refs: RunRefs, runId: string, event: RunEvent, clock: () => number): Promise<RequestOutcome> {
  return retryOnConflict(`the state of run ${runId}`, 50, async (): Promise<RequestOutcome | typeof LOST_RACE> => {
    const run = await readRun(store, refs, runId);
    if (!run) return { kind: 'not-found' };
    const now = clock();
    // Settle the state only: starting items is the serving process's job.
    const r = step({ plan: run.plan, state: run.state }, [event], now, { startItems: false });
    if (r.transitions.length === 0) return { kind: 'no-change', run };
    // A request that changes nothing by itself is not recorded: what the step would settle anyway (a
    // deadline passed, a cancel already asked for still taking effect) is the driving process's to write,
    // not every replica's that receives the same webhook.
    const settled = step({ plan: run.plan, state: run.state }, [], now, { startItems: false });
    if (sameState(settled.run.state, r.run.state)) return { kind: 'no-change', run };
    const next = await writeRun(store, refs, {
      runId,
      prev: run,
      state: r.run.state,
      entries: appendEntries(run.last, runId, r.transitions),
      transitions: r.transitions,
      now,
    });
    if (!next) return LOST_RACE;
    return { kind: 'recorded', run: next, transitions: r.transitions, stopped: r.actions.filter((a) => a.type === 'stop').length };
  });
}

function sameState(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

import { errorMessage } from '../errors.js';
import type { Action, ItemState, RunEvent, RunState } from '../engine/types.js';
import { TargetUnreachable } from '../executors/target-unreachable.js';
import type { WorkerTarget } from '../executors/types.js';

/**
 * Recovery after a restart or a takeover: the attempts a run's state says are running have no worker in
 * this process. Each is re-attached where its target can (a container that outlived us, a job another
 * process handed over), or recorded lost, to run again; and the worker of an attempt that ended while no
 * process watched it is stopped where it may still run.
 */

/** What recovery reads and acts through: the driver of the run, before its first tick. */
export interface RecoveringRun {
  readonly state: RunState;
  /** Whether a worker of the item runs in this process already. */
  hasWorker(itemId: string): boolean;
  /** The target the item's workers run on (none when the plan has no such item, or the config no such target). */
  targetFor(itemId: string): WorkerTarget | undefined;
  /** Starts the running attempt again as the same attempt: its target re-attaches to the worker. */
  reattach(start: Extract<Action, { type: 'start' }>): void;
  /** Records the event at the next tick (an attempt lost). */
  record(event: RunEvent): void;
  warn(message: string): void;
}

/** Which attempt of which run: what orphan reaping is told to spare. */
export function attemptKey(runId: string, itemId: string, attempt: number): string {
  return `${runId}\u0000${itemId}\u0000${attempt}`;
}

/**
 * Every target is asked (`canResume`) before anything is acted on: when one cannot answer (throws),
 * nothing was started or recorded, and recovering again later is harmless. A target that is unreachable
 * counts as an answer: the attempt is lost. Then a worker of an attempt that ended cancelled or failed
 * (a cancel recorded after its process handed it over, or died) is stopped (`stopElsewhere`). Returns the
 * attempts re-attached, by {@link attemptKey}.
 */
export async function recoverAttempts(run: RecoveringRun): Promise<Set<string>> {
  const live = new Set<string>();
  const { state } = run;
  const decided: Array<{ item: ItemState; resumable: boolean; lost: string }> = [];
  for (const item of Object.values(state.items)) {
    if (item.status !== 'running' || run.hasWorker(item.id)) continue;
    const target = run.targetFor(item.id);
    let resumable = false;
    let lost = 'the worker did not survive a restart of agora serve';
    try {
      resumable = (await target?.canResume?.(state.runId, item.id, item.attempts)) ?? false;
    } catch (e) {
      // An engine that is down cannot say whether the worker outlived us: the attempt counts as lost
      // (what it left there is removed by a serve that starts with the engine back).
      if (!(e instanceof TargetUnreachable)) throw e;
      lost = `the worker could not be looked for after a restart of agora serve: ${e.message}`;
      run.warn(`${item.id}: ${lost}`);
    }
    decided.push({ item, resumable, lost });
  }
  for (const { item, resumable, lost } of decided) {
    if (resumable) {
      live.add(attemptKey(state.runId, item.id, item.attempts));
      run.reattach({ type: 'start', itemId: item.id, attempt: item.attempts, base: item.base ?? state.integrationHead });
    } else {
      run.record({ type: 'item-lost', itemId: item.id, attempt: item.attempts, reason: lost });
    }
  }
  for (const item of Object.values(state.items)) {
    if ((item.status !== 'cancelled' && item.status !== 'failed') || item.attempts === 0 || run.hasWorker(item.id)) continue;
    try {
      await run.targetFor(item.id)?.stopElsewhere?.(state.runId, item.id, item.attempts);
    } catch (e) {
      run.warn(`${item.id}: its attempt ${item.attempts} ended, but its worker could not be stopped: ${errorMessage(e)}`);
    }
  }
  return live;
}

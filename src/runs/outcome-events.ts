import { addEmission, emissionProblem } from '../engine/emission.js';
import type { RunEvent } from '../engine/types.js';
import type { GitStore } from '../git/types.js';
import { resultRefFor } from '../log/result-ref.js';
import type { AttemptOutcome } from './attempt.js';
import { integratePatch } from './patches.js';
import type { StoredRun } from './state-store.js';

/**
 * Finished attempts as the engine's events. A success is integrated first (its patch replayed onto the
 * integration head, each on the one before it) and its event names the new head; a success whose
 * emission the engine would refuse (over the limits) fails instead, its patch not integrated. An
 * outcome of an attempt the state no longer says is running is stale (the engine moved on): no event.
 */
export async function eventsForOutcomes(store: GitStore, run: StoredRun, outcomes: readonly AttemptOutcome[], now: number): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  let head = run.state.integrationHead;
  // What the step will see when it reaches each emission: earlier emissions of this batch joined.
  let joined = { plan: run.plan, state: run.state };
  for (const o of outcomes) {
    const item = run.state.items[o.itemId];
    if (!item || item.status !== 'running' || item.attempts !== o.attempt) continue; // stale: the engine moved on
    if (o.kind === 'succeeded' && o.emitted) {
      // The engine refuses an emission over the limits (and the emitter fails): its patch is not integrated.
      const refused = emissionProblem(joined.plan, joined.state, o.itemId, o.emitted);
      if (refused) {
        events.push({
          type: 'item-failed',
          itemId: o.itemId,
          attempt: o.attempt,
          reason: refused,
          retryable: false,
          ...(o.log ? { log: o.log } : {}),
          exitCode: o.exitCode,
          ...(o.calls ? { calls: o.calls } : {}),
        });
        continue;
      }
      joined = addEmission(joined.plan, joined.state, o.itemId, o.attempt, o.emitted, now);
    }
    if (o.kind === 'succeeded') {
      head = await integratePatch(store, { head, patch: o.patch, runId: run.runId, itemId: o.itemId, now });
      events.push({
        type: 'item-succeeded',
        itemId: o.itemId,
        attempt: o.attempt,
        resultRef: resultRefFor(o.patch),
        integrationHead: head,
        ...(o.log ? { log: o.log } : {}),
        exitCode: o.exitCode,
        ...(o.emitted ? { emitted: o.emitted } : {}),
        ...(o.calls ? { calls: o.calls } : {}),
      });
    } else if (o.kind === 'failed') {
      events.push({
        type: 'item-failed',
        itemId: o.itemId,
        attempt: o.attempt,
        reason: o.reason,
        retryable: o.retryable,
        ...(o.log ? { log: o.log } : {}),
        ...(o.exitCode === undefined ? {} : { exitCode: o.exitCode }),
        ...(o.calls ? { calls: o.calls } : {}),
      });
    }
  }
  return events;
}

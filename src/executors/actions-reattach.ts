import { errorMessage } from '../errors.js';
import { mirrorPrefix } from '../git/refspec.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { recordedAt, recordedJobText } from './actions-job.js';

/**
 * Re-attaching to an attempt of the `actions` target that an earlier process dispatched: an App that
 * restarted, or a replica that took the run over. The attempt's refs on GitHub (its dispatch record, its
 * claim, its result) are all there is of it, and its job's `workflow_job` webhooks went to the process
 * that died, or nowhere. Here: whether there is anything to re-attach to (`attemptOnGitHub`, the target's
 * `canResume`), the dispatch found recorded (`reattachedTo`), the recorded job to send again when nothing
 * of it reached GitHub (`jobToResend`). What GitHub says of the workflow run a claim names is in
 * actions-claims.ts. The target (actions-target.ts) dispatches, waits and decides the attempt's outcome.
 */

/**
 * The attempt's dispatch: sent by this call (`at` now), or found recorded by an earlier one (a process
 * that died, a replica whose run this one took over) at `at`, the time its record says, and not sent again.
 */
export interface Dispatched {
  reattached: boolean;
  at: number;
  /** The dispatch record's commit. */
  record: Oid;
  /** Re-attached, and sent again because nothing of it was on GitHub (see `jobToResend`). */
  resent?: boolean;
}

/**
 * After a restart: true once anything of the attempt `name` is on GitHub (its dispatch record, its claim or
 * its result), so that `run` re-attaches to it rather than the driver recording it lost and a runner running
 * the item a second time. False when the attempt was never dispatched (nothing was recorded before the
 * process died): it is lost and retried, and no job of it can run (the worker runs only a recorded job).
 */
export async function attemptOnGitHub(
  o: { store: GitStore; refs: RunRefs; fetchRefs: (refspecs: readonly string[]) => Promise<void> },
  runId: string,
  itemId: string,
  attempt: number,
  name: string,
): Promise<boolean> {
  const { refs, store } = o;
  const prefixes = [refs.dispatchesPrefix(runId), refs.claimsPrefix(runId), refs.resultsPrefix(runId)];
  try {
    await o.fetchRefs(prefixes.map((p) => mirrorPrefix(`${p}${itemId}/`)));
  } catch (e) {
    // Not TargetUnreachable: that would count the attempt lost, and a runner might then run the item a
    // second time beside a job that still runs it. The run's recovery fails instead, and is tried again
    // (the App's next sweep; hosted-run.ts).
    throw new Error(`cannot read the refs of ${name} on GitHub: ${errorMessage(e)}`, { cause: e });
  }
  for (const ref of [refs.result(runId, itemId, attempt), refs.claim(runId, itemId, attempt), refs.dispatch(runId, itemId, attempt)]) {
    if ((await store.resolveRef(ref)) !== null) return true;
  }
  return false;
}

/**
 * The dispatch an earlier process recorded (`record`, found where this one would have recorded its own): it
 * is re-attached to, never dispatched again, its start timeout counted from the time the record says (`now`
 * when the record cannot be read). Its job is not compared with the one this process built: it names the host
 * paths of the process that built it (`$AGORA_EMIT`), and it is what the worker job runs whichever process
 * waits for the result.
 */
export async function reattachedTo(store: GitStore, record: Oid, now: number): Promise<Dispatched> {
  return { reattached: true, at: await recordedAt(store, record, now), record };
}

/**
 * The job to dispatch again for a re-attached attempt, or null when there is none to send. The process that
 * recorded the dispatch may have died before GitHub had it: with neither a claim nor a result on GitHub (`seen`,
 * the attempt's result and claim refs, looked up once and not read), the recorded job is sent again, byte for byte (the worker runs only the
 * recorded job, and the claim keeps a second job of the attempt from running anything). Otherwise the job is
 * on its way: the target waits for it.
 */
export async function jobToResend(store: GitStore, record: Oid, seen: { result: Oid | null; claim: Oid | null }): Promise<string | null> {
  return seen.result === null && seen.claim === null ? recordedJobText(store, record) : null;
}

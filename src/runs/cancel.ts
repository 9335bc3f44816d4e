import { crashPoint } from '../crash-points.js';
import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import type { GitStore, Oid } from '../git/types.js';
import { submissionSecretStore } from './inbox.js';
import type { RunRefs } from './refs.js';
import { recordRequest } from './requests.js';
import { acceptedSubmission } from './state-store.js';
import { abandonWithdrawal, completeWithdrawal, markWithdrawal, type Withdrawal } from './withdrawal.js';

export type CancelOutcome =
  { kind: 'cancelled'; runningStopped: number } | { kind: 'already-terminal'; status: string } | { kind: 'withdrawn'; submission: Oid } | { kind: 'not-found' };

/**
 * Cancels a run: every item not yet finished ends `cancelled` with the reason, and the server driving
 * the run stops its workers. A submission not yet accepted is withdrawn from the inbox instead, and its
 * commit returned. With `secrets` (the CLI, on the host whose `<gitdir>/agora` holds the submissions'
 * secret stores), the store the withdrawn submission names goes too, under a withdrawal marker written
 * before the inbox entry goes and removed after the store (withdrawal.ts): a cancel killed in between
 * leaves the marker, and the next cancel or serve finishes the job.
 */
export async function cancelRun(
  store: GitStore,
  refs: RunRefs,
  runId: string,
  reason: string,
  clock: () => number,
  secrets?: { scratchDir: string },
): Promise<CancelOutcome> {
  return retryOnConflict(`run ${runId} (between its inbox and its state)`, 50, async (): Promise<CancelOutcome | typeof LOST_RACE> => {
    const outcome = await recordRequest(store, refs, runId, { type: 'cancel-run', reason }, clock);
    if (outcome.kind === 'recorded') return { kind: 'cancelled', runningStopped: outcome.stopped };
    if (outcome.kind === 'no-change') return { kind: 'already-terminal', status: outcome.run.state.status };
    const inbox = await store.resolveRef(refs.inbox(runId));
    if (!inbox) return { kind: 'not-found' };
    let withdrawal: Withdrawal | undefined;
    if (secrets) {
      // A pushed entry whose params cannot be read (not a file, say) names no store this host could
      // remove: it is withdrawn all the same, as it was before there were stores to remove.
      const token = await submissionSecretStore(store, inbox).catch(() => undefined);
      withdrawal = await markWithdrawal(secrets.scratchDir, refs, runId, token);
    }
    // A serve creates a run only while its entry is in place (inbox.ts): once the entry is gone, a run
    // that is not there now never will be from it, and one that is was accepted before, and reads the store.
    if ((await store.deleteRef(refs.inbox(runId), inbox)) && !(await acceptedFrom(store, refs, runId, inbox))) {
      crashPoint('submission-withdrawn'); // the marker is on disk: the next cancel or serve removes the store
      if (withdrawal) await completeWithdrawal(withdrawal);
      return { kind: 'withdrawn', submission: inbox };
    }
    // Accepted meanwhile: the run's workers read the store. Cancel the run instead.
    if (withdrawal) await abandonWithdrawal(withdrawal);
    return LOST_RACE;
  });
}

/**
 * Whether a run under `runId` was accepted from the entry `inbox`: one that names another entry was made from
 * a later submission that took the withdrawn id; one that names none (an earlier Agora accepted it) counts
 * as this one's, so its secret store stays.
 */
async function acceptedFrom(store: GitStore, refs: RunRefs, runId: string, inbox: Oid): Promise<boolean> {
  const head = await store.resolveRef(refs.run(runId));
  if (head === null) return false;
  const named = await acceptedSubmission(store, head).catch(() => undefined);
  return named === undefined || named === inbox;
}

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
 * of it reached GitHub (`jobToResend`), and what GitHub says of the workflow run a claim names, trusted only
 * when it is a `workflow_dispatch` run of the worker workflow (`claimantRun`, `askClaimant`,
 * `runningClaimant`). The target (actions-target.ts) dispatches, waits and decides the attempt's outcome.
 */

/** A workflow run as GitHub shows it now (`ActionsApi.workflowRun`). */
export interface WorkflowRunView {
  status: string | null;
  conclusion: string | null;
  htmlUrl: string | null;
  path: string | null;
  event: string | null;
}

/** The claimant's workflow run as far as the target uses it. */
export type ClaimantRun = Pick<WorkflowRunView, 'status' | 'conclusion' | 'htmlUrl'>;

/** What the target asks GitHub about a claimant's workflow run with (a part of its `ActionsApi`). */
export interface WorkflowRunApi {
  workflowRun(workflowRunId: number): Promise<WorkflowRunView>;
}

/** A job of the attempt as the target's webhooks showed it. */
interface HeardJob {
  workflowRunId: number;
  status: string;
}

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

/**
 * The workflow file a run's `path` names. GitHub documents it as "the full path of the workflow" and shows
 * it with the repository before it and the ref after it (`octo/repo/.github/workflows/ci.yml@main`), as
 * well as bare: the file is what is between the two.
 */
export function workflowFile(path: string): string {
  const at = path.indexOf('@');
  const file = at < 0 ? path : path.slice(0, at);
  const dir = file.indexOf('.github/workflows/');
  return dir > 0 && file[dir - 1] === '/' ? file.slice(dir) : file;
}

/**
 * The workflow run a claim names, when it is a dispatch of the worker workflow (`workflow`, its file name
 * under `.github/workflows/`): a run GitHub no longer has (404) counts as completed; `foreign` is a run of
 * another workflow or event, which only a claim pushed by someone else names (a worker job claims in its own
 * run), never trusted or touched; null means unanswered (asked again at the next look).
 */
async function claimantRun(api: WorkflowRunApi, workflow: string, id: number): Promise<ClaimantRun | 'foreign' | null> {
  try {
    const run = await api.workflowRun(id);
    if (run.path === null || workflowFile(run.path) !== `.github/workflows/${workflow}` || run.event !== 'workflow_dispatch') return 'foreign';
    return run;
  } catch (e) {
    if ((e as { status?: number }).status === 404) return { status: 'completed', conclusion: 'gone (GitHub no longer has the run)', htmlUrl: null };
    return null;
  }
}

/**
 * For a claim whose job's webhooks do not come here (a re-attached attempt: they went to the process that
 * died, or nowhere while no process listened; or a claimant this process never heard of): a job that ended
 * without a result (its runner lost, its run cancelled by a replica that lost the run to this one) might
 * never be heard of here. GitHub is asked about its workflow run at each look instead: `ended` once it
 * completed (or GitHub no longer has it), for the target to count the runner lost; `foreign` when the claim
 * names a run that is not a dispatch of the worker workflow (pushed by someone else: the attempt's own job
 * could not claim it, so it can never end with a result); null while it goes, when unanswered, or when a
 * webhook here already showed it completed (the target then judges it by its jobs).
 */
export async function askClaimant(
  api: WorkflowRunApi,
  workflow: string,
  claimant: number,
  heard: readonly HeardJob[],
): Promise<{ ended: ClaimantRun } | 'foreign' | null> {
  if (heard.some((j) => j.workflowRunId === claimant && j.status === 'completed')) return null;
  const run = await claimantRun(api, workflow, claimant);
  if (run === 'foreign') return run;
  return run !== null && run.status === 'completed' ? { ended: run } : null;
}

/**
 * Whether to cancel the claimant's workflow run when the attempt is stopped, which a process that re-attached
 * knows only from the claim: a claim ref is written by whoever can push, and names any run, so only a dispatch
 * of the worker workflow that is still going is cancelled, never another workflow's run (a deploy, say).
 */
export async function runningClaimant(api: WorkflowRunApi, workflow: string, claimant: number, heard: readonly HeardJob[]): Promise<boolean> {
  if (heard.some((j) => j.workflowRunId === claimant && j.status === 'completed')) return false;
  const run = await claimantRun(api, workflow, claimant);
  return run !== null && run !== 'foreign' && run.status !== 'completed';
}

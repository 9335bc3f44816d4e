import { mirrorPrefix } from '../git/refspec.js';
import { workerJobName } from './actions-job.js';
import type { GitStore } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';

/**
 * An attempt's claim ref on the `actions` target: the commit its worker job pushes before it runs the item
 * (src/action/worker.ts), `agora: <attempt> claimed by <run id>/<run attempt>/<runner>`. Here: which
 * workflow run a claim names (`claimedBy`), whether GitHub says that run is the attempt's own worker (a
 * `workflow_dispatch` run of the worker workflow whose job is named for the attempt: `askClaimant`,
 * `runningClaimant`), why an attempt whose claim its job did not push fails (`foreignClaimReason`), and
 * stopping the claimant of an attempt that ended while no process watched it (`stopUnwatchedClaimant`, the
 * target's `stopElsewhere`). Claim refs never move, and anyone who can push writes them: the run a claim
 * names is waited on or cancelled only once GitHub has said it is the attempt's own worker (a run that has
 * completed only ends the attempt as a lost runner, whoever it ran for).
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
  /** The names of the run's jobs, of all its run attempts (GitHub's first page: a worker run has one job per run attempt). */
  workflowRunJobNames(workflowRunId: number): Promise<string[]>;
}

/**
 * The run a claim names, asked about for the attempt whose worker job is named `jobName`
 * (`agora <run> <item> <attempt>`). `tied` holds the runs GitHub already showed with that job, so a wait
 * that asks at each look lists a run's jobs once.
 */
export interface Claimant {
  workflowRunId: number;
  jobName: string;
  tied?: Set<number>;
}

/** A job of the attempt as the target's webhooks showed it. */
interface HeardJob {
  workflowRunId: number;
  status: string;
}

/** The workflow run a claim commit's message names. */
export function claimedBy(message: string): number | undefined {
  const by = / claimed by (\d+)(?:\/|\s|$)/.exec(message);
  return by ? Number(by[1]) : undefined;
}

/** Why an attempt whose claim was not pushed by its worker job fails (retried as an infrastructure failure). */
export function foreignClaimReason(name: string, what: string): string {
  return `the claim of the worker job ${name} ${what}: it was not pushed by a worker job (anyone who can push can write the ref), so this attempt's job could not claim it and can never push a result; the item is retried per its policy`;
}

/** How long one fetch of a run's claims and results serves the stops of one recovery. */
const FETCH_REUSE_MS = 5_000;

/**
 * The claims and results of every item of a run, in one fetch shared by the calls of one recovery (a
 * takeover asks about each ended item in turn): fetched again once a few seconds have passed.
 */
export class RunClaimsFetch {
  private last: { runId: string; at: number; done: Promise<void> } | undefined;

  constructor(
    private readonly refs: RunRefs,
    private readonly fetchRefs: (refspecs: readonly string[]) => Promise<void>,
    private readonly clock: () => number,
  ) {}

  fetch(runId: string): Promise<void> {
    const now = this.clock();
    if (this.last?.runId === runId && now - this.last.at < FETCH_REUSE_MS) return this.last.done;
    const done = this.fetchRefs([mirrorPrefix(this.refs.claimsPrefix(runId)), mirrorPrefix(this.refs.resultsPrefix(runId))]);
    this.last = { runId, at: now, done };
    done.catch(() => {
      if (this.last?.done === done) this.last = undefined;
    });
    return done;
  }
}

/**
 * An attempt that ended while no process watched its job (cancelled after a hand-over or a crash): the job
 * that claimed it is cancelled while it still runs, when GitHub says it is the attempt's own worker (a
 * dispatch of the worker workflow with the attempt's job). A job not started yet, or one that claims after
 * this look, needs nothing: it reads the attempt ended and runs nothing (src/action/worker.ts).
 */
export async function stopUnwatchedClaimant(
  o: {
    store: GitStore;
    refs: RunRefs;
    claims: RunClaimsFetch;
    api: () => Promise<WorkflowRunApi & { cancelRun(id: number): Promise<void> }>;
    workflow: string;
  },
  runId: string,
  itemId: string,
  attempt: number,
): Promise<void> {
  const { refs, store } = o;
  await o.claims.fetch(runId);
  if ((await store.resolveRef(refs.result(runId, itemId, attempt))) !== null) return; // it ended
  const claimed = await store.resolveRef(refs.claim(runId, itemId, attempt));
  if (claimed === null) return;
  const claimant = claimedBy((await store.readCommit(claimed).catch(() => null))?.message ?? '');
  if (claimant === undefined) return;
  const api = await o.api();
  if (await runningClaimant(api, o.workflow, { workflowRunId: claimant, jobName: workerJobName(runId, itemId, attempt) }, [])) {
    await api.cancelRun(claimant).catch(() => undefined);
  }
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
 * The workflow run a claim names, when GitHub says it is the attempt's own worker: a dispatch of the worker
 * workflow (`workflow`, its file name under `.github/workflows/`) with a job named for the attempt, or such a
 * dispatch that has completed (no result came of it, whoever it ran for). A run GitHub no longer has (404)
 * counts as completed. `foreign` is any other run, which only a claim pushed by someone else names (a worker
 * job claims in its own run): another workflow's (a deploy, say), or another attempt's worker still going;
 * it is never trusted or touched. Null means unanswered, or a run going whose jobs GitHub does not list yet
 * (asked again at the next look). A run whose jobs' webhooks came here (`heard`: jobs named for the attempt)
 * is not listed again.
 */
async function claimantRun(
  api: WorkflowRunApi,
  workflow: string,
  claimant: Claimant,
  heard: readonly HeardJob[],
): Promise<ClaimantRun | { foreign: string } | null> {
  const id = claimant.workflowRunId;
  try {
    const run = await api.workflowRun(id);
    if (run.path === null || workflowFile(run.path) !== `.github/workflows/${workflow}` || run.event !== 'workflow_dispatch') {
      return { foreign: `names workflow run ${id}, which is not a workflow_dispatch run of ${workflow}` };
    }
    // A run that ended is judged by its end whoever it ran for (no result came: a lost runner), so its jobs
    // are not listed. Nor those of a run already shown to have the attempt's job.
    if (run.status === 'completed' || claimant.tied?.has(id) || heard.some((j) => j.workflowRunId === id)) return run;
    const names = await api.workflowRunJobNames(id);
    // The job that claimed is listed once it runs: a run that shows none yet is asked about again.
    if (names.length === 0) return null;
    if (!names.includes(claimant.jobName)) {
      return {
        foreign: `names workflow run ${id}, a run of ${workflow} with no job named ${claimant.jobName} (another attempt's worker, or a worker workflow whose job is not named as examples/workflows/agora-worker.yml names it)`,
      };
    }
    claimant.tied?.add(id);
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
 * completed (or GitHub no longer has it), for the target to count the runner lost; `foreign` (with what the
 * claim names) when it is not the attempt's own worker (pushed by someone else: the attempt's own job could
 * not claim it, so it can never end with a result); null while it goes, when unanswered, or when a webhook
 * here already showed it completed (the target then judges it by its jobs).
 */
export async function askClaimant(
  api: WorkflowRunApi,
  workflow: string,
  claimant: Claimant,
  heard: readonly HeardJob[],
): Promise<{ ended: ClaimantRun } | { foreign: string } | null> {
  if (heard.some((j) => j.workflowRunId === claimant.workflowRunId && j.status === 'completed')) return null;
  const run = await claimantRun(api, workflow, claimant, heard);
  if (run === null || 'foreign' in run) return run;
  return run.status === 'completed' ? { ended: run } : null;
}

/**
 * Whether to cancel the claimant's workflow run when the attempt is stopped, which a process that re-attached
 * knows only from the claim: a claim ref is written by whoever can push, and names any run, so only the
 * attempt's own worker that is still going is cancelled, never another workflow's run (a deploy, say) nor
 * another attempt's worker.
 */
export async function runningClaimant(api: WorkflowRunApi, workflow: string, claimant: Claimant, heard: readonly HeardJob[]): Promise<boolean> {
  if (heard.some((j) => j.workflowRunId === claimant.workflowRunId && j.status === 'completed')) return false;
  const run = await claimantRun(api, workflow, claimant, heard);
  return run !== null && !('foreign' in run) && run.status !== 'completed';
}

import type { ActionsTargetConfig } from '../config/types.js';
import { errorMessage } from '../errors.js';
import { dispatchedJob, dispatchRecord, workerJobName } from './actions-job.js';
import type { GitStore } from '../git/types.js';
import type { RunRefs } from '../runs/refs.js';
import { handingOver } from './hand-over.js';
import { askClaimant, foreignClaimReason, RunClaimsFetch, runningClaimant, stopUnwatchedClaimant, type WorkflowRunView } from './actions-claims.js';
import { attemptOnGitHub, jobToResend, reattachedTo, type Dispatched } from './actions-reattach.js';
import { attemptRefs, claimantNow, lookAtAttempt, type Claim } from './actions-look.js';
import type { WorkerJob, WorkerResult, WorkerTarget } from './types.js';

/**
 * The `actions` target: each attempt is a `workflow_dispatch` of the repository's worker workflow
 * (`.github/workflows/agora-worker.yml` by default), whose job runs the Agora Action in `mode: worker`
 * on a self-hosted runner with the attempt's labels. The job claims the attempt, runs the item in a
 * container and pushes one result commit to `refs/agora/results/<run>/<item>/<attempt>`
 * (actions-result.ts). Here the result is fetched, its base checked, and its workspace written into the
 * local workspace (actions-look.ts), so the attempt's capture, secret search and write-scope check run on the
 * orchestrator exactly as for any other target.
 *
 * Declared secrets travel by name only; the job reads their values from the repository's Actions secrets
 * (the worker workflow passes `secrets: ${{ toJSON(secrets) }}` to its step) and hands the item only those.
 *
 * The job's progress comes in as `workflow_job` webhooks ({@link ActionsTarget.observe}, matched by the
 * job's name `agora <run> <item> <attempt>`); the attempt's claim and result refs are also fetched every
 * `pollMs`. The attempt has started once a webhook here says a job of it is in progress, or once its
 * claim ref exists: the claim is what the job pushes first, and webhooks may reach another replica of
 * the App or be lost. An attempt that has not started by `startTimeoutSeconds` (no runner with the
 * labels), its refs fetched once more at that moment, fails naming the labels; every job of the attempt
 * completed without a result is a lost runner (retried per the item's policy). Stopping the attempt
 * cancels its workflow runs.
 *
 * The attempt's refs on GitHub are all there is of it, so an orchestrator that restarts (or a replica that
 * takes the run over) picks it up again: {@link ActionsTarget.canResume} is true once the attempt's dispatch
 * record (or its claim, or its result) exists, and `run` then finds that record and re-attaches, collecting
 * the result or waiting for it, instead of dispatching the attempt a second time. What a re-attached attempt
 * reads from GitHub is in actions-reattach.ts; which claimant run it trusts, in actions-claims.ts.
 */

/** The REST calls the target makes, with the installation's token. Errors carry GitHub's `status`. */
export interface ActionsApi {
  dispatch(workflow: string, ref: string, inputs: Record<string, string>): Promise<void>;
  cancelRun(workflowRunId: number): Promise<void>;
  defaultBranch(): Promise<string>;
  /**
   * A workflow run as GitHub shows it now (errors carry GitHub's `status`): asked only about the run a claim
   * names, which the App checks is a dispatch of its worker workflow (`path`, `event`) before it trusts it.
   */
  workflowRun(workflowRunId: number): Promise<WorkflowRunView>;
  /** The names of a run's jobs (GitHub's first page, all run attempts): the run a claim names must have the attempt's job. */
  workflowRunJobNames(workflowRunId: number): Promise<string[]>;
}

/** A `workflow_job` webhook as the target needs it. */
export interface WorkflowJobEvent {
  /** The job's name: the worker workflow names it `agora <run> <item> <attempt>`. */
  name: string;
  jobId: number;
  workflowRunId: number;
  action: string;
  conclusion: string | null;
  runnerName: string | null;
  htmlUrl?: string | null;
}

export interface ActionsTargetOptions {
  config?: Partial<ActionsTargetConfig>;
  api: () => Promise<ActionsApi>;
  store: GitStore;
  refs: RunRefs;
  /**
   * Fetches `refspecs` from the repository into `store` (the mirror's fetch). The target fetches with it the
   * claims and results of the item it runs (`<refs.claimsPrefix(run)><item>/*`, `<refs.resultsPrefix(run)><item>/*`).
   */
  fetchRefs: (refspecs: readonly string[]) => Promise<void>;
  /** How often the claim and result refs are looked at besides the webhooks. Default 15 s. */
  pollMs?: number;
  clock?: () => number;
}

export const DEFAULT_ACTIONS_CONFIG: ActionsTargetConfig = { workflow: 'agora-worker.yml', labels: ['self-hosted', 'agora'], startTimeoutSeconds: 600 };

interface SeenJob {
  workflowRunId: number;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  runnerName: string | null;
  htmlUrl: string | null;
}

interface Watch {
  jobs: Map<number, SeenJob>;
  wake: () => void;
}

/** Dispatch answers that a retry can help with (the dispatch may have taken effect: the claim keeps it to one job). */
const TRANSIENT = (status: number | undefined) => status === undefined || status >= 500 || status === 429;

/** Job pages kept for the attempts that ended here (the newest; older ones are forgotten). */
const SHOWN_JOBS = 1000;

/** A job page URL from a webhook, when it is one that can sit in a markdown link as is. */
const linkable = (url: string | null | undefined): string | null => (url && /^https?:\/\/[^\s()<>[\]`]+$/.test(url) ? url : null);

export class ActionsTarget implements WorkerTarget {
  readonly name = 'actions';
  /** A graceful stop leaves the job going: the next process re-attaches to it (hand-over.ts). */
  readonly handsOver = true;
  /** One fetch of a run's claims and results, shared by the stopElsewhere calls of one recovery. */
  private readonly claims: RunClaimsFetch;
  /** The job hands back what the item emitted in its result commit; run parameters are not a GitHub run's. */
  readonly controlFiles = ['emit'] as const;
  private readonly watches = new Map<string, Watch>();
  /** The job page of each attempt that ended here, by job name: the job that pushed the result, else the last one seen. */
  private readonly shown = new Map<string, string>();
  private readonly cfg: ActionsTargetConfig;
  private readonly pollMs: number;
  private readonly clock: () => number;

  constructor(private readonly o: ActionsTargetOptions) {
    this.cfg = { ...DEFAULT_ACTIONS_CONFIG, ...o.config };
    this.pollMs = o.pollMs ?? 15_000;
    this.clock = o.clock ?? Date.now;
    this.claims = new RunClaimsFetch(o.refs, o.fetchRefs, this.clock);
  }

  /** A `workflow_job` webhook: updates the attempt it names, if one waits here; others are ignored. Repeats are harmless. */
  observe(ev: WorkflowJobEvent): void {
    const watch = this.watches.get(ev.name);
    if (!watch) return;
    const status = ev.action === 'completed' ? 'completed' : ev.action === 'in_progress' ? 'in_progress' : 'queued';
    const before = watch.jobs.get(ev.jobId);
    // Deliveries can come late or twice: a job never goes back from completed or in_progress.
    const rank = { queued: 0, in_progress: 1, completed: 2 };
    if (before && rank[before.status] > rank[status]) return;
    watch.jobs.set(ev.jobId, {
      workflowRunId: ev.workflowRunId,
      status,
      conclusion: ev.conclusion,
      runnerName: ev.runnerName ?? before?.runnerName ?? null,
      htmlUrl: linkable(ev.htmlUrl) ?? before?.htmlUrl ?? null,
    });
    watch.wake();
  }

  /**
   * The page (and log) of the worker job of an attempt, as GitHub named it in its `workflow_job` webhooks:
   * once the attempt ended here, the job that pushed its result (or the last job seen); while it runs, the
   * newest job that started. Undefined when no webhook about it reached this process.
   */
  jobUrl(runId: string, itemId: string, attempt: number): string | undefined {
    const name = workerJobName(runId, itemId, attempt);
    const ended = this.shown.get(name);
    if (ended) return ended;
    const jobs = [...(this.watches.get(name)?.jobs.values() ?? [])];
    return (jobs.filter((j) => j.status !== 'queued').at(-1) ?? jobs.at(-1))?.htmlUrl ?? undefined;
  }

  /** Remembers the job page shown for an attempt that ended: `workflowRunId`'s job when known, else the last one seen. */
  private remember(name: string, watch: Watch, workflowRunId?: number): void {
    const jobs = [...watch.jobs.values()].filter((j) => j.htmlUrl !== null);
    const job = jobs.find((j) => j.workflowRunId === workflowRunId) ?? jobs.filter((j) => j.status !== 'queued').at(-1) ?? jobs.at(-1);
    if (!job?.htmlUrl) return;
    this.shown.delete(name);
    this.shown.set(name, job.htmlUrl);
    if (this.shown.size > SHOWN_JOBS) this.shown.delete(this.shown.keys().next().value!);
  }

  /** An attempt that ended while no process watched its job: its claimant is stopped (actions-claims.ts). */
  async stopElsewhere(runId: string, itemId: string, attempt: number): Promise<void> {
    const { store, refs, api } = this.o;
    await stopUnwatchedClaimant({ store, refs, claims: this.claims, api, workflow: this.cfg.workflow }, runId, itemId, attempt);
  }

  /** After a restart: whether anything of the attempt is on GitHub to re-attach to (actions-reattach.ts). */
  async canResume(runId: string, itemId: string, attempt: number): Promise<boolean> {
    return attemptOnGitHub(this.o, runId, itemId, attempt, workerJobName(runId, itemId, attempt));
  }

  async run(job: WorkerJob, signal: AbortSignal): Promise<WorkerResult> {
    // One worker job, one claim and one result ref per attempt: a second job of the attempt (an agent's
    // bash or command tool, a command dependency) would find the first one's result as its own.
    if (job.subJob !== undefined) {
      return {
        exitCode: null,
        infrastructureFailure: false,
        reason: `the actions target runs only the item's own worker, not a job beside it (${job.subJob}): run the item's subagent on the local or docker target for its bash, command tools or command dependencies (docs/agents.md)`,
      };
    }
    // Secret values never travel in a dispatch (its inputs are shown to whoever can read the repository's
    // Actions): only the names do, and the job reads the values from the repository's Actions secrets.
    if (Object.keys(job.secrets).length > 0) {
      return {
        exitCode: null,
        reason: `the actions target does not carry secret values (${Object.keys(job.secrets).join(', ')}) to a runner: declare them by name and add them as Actions secrets of the repository (docs/actions.md)`,
      };
    }
    const optLabels = job.options?.labels;
    const labels = Array.isArray(optLabels) ? optLabels.map(String) : this.cfg.labels;
    const name = workerJobName(job.runId, job.itemId, job.attempt);
    let wake = () => {};
    const watch: Watch = { jobs: new Map(), wake: () => wake() };
    this.watches.set(name, watch);
    try {
      const api = await this.o.api();
      const dispatched = await this.dispatch(api, job, labels);
      if ('exitCode' in dispatched) return dispatched;
      // Counted from the dispatch, also for one an earlier process sent: a restart gives a job no runner
      // took no fresh start timeout (never one ending later than a dispatch sent now would).
      const startBy = Math.min(dispatched.at, this.clock()) + this.cfg.startTimeoutSeconds * 1000;
      // The attempt's claim, once seen (a claim ref is never moved): a job of it started, wherever its webhooks went.
      let claim: Claim | null = null;
      // The claimant runs GitHub showed with this attempt's job: their jobs are not listed again at each look.
      const tied = new Set<number>();
      for (;;) {
        if (handingOver(signal)) {
          // The job goes on: its refs are on GitHub, and the process that takes the run over re-attaches to it.
          this.remember(name, watch);
          return { exitCode: null, reason: `handed over: ${String(signal.reason)}` };
        }
        if (signal.aborted) {
          this.remember(name, watch);
          // The claimant too, whether or not its webhooks came here (another replica may have had them), and
          // one that claimed since the last look.
          await this.cancel(api, name, watch, claim?.workflowRunId ?? (await claimantNow(this.o, job)), tied);
          return { exitCode: null, reason: 'stopped' };
        }
        const look = await lookAtAttempt(this.o, job, claim === null);
        if (look.result) {
          this.remember(name, watch, look.result.workflowRunId);
          return look.result.result;
        }
        claim ??= look.claim;
        const jobs = [...watch.jobs.values()];
        // A claim by a job this process heard nothing of: that job runs, its webhooks went elsewhere.
        const claimant = claim?.workflowRunId;
        const claimantUnseen = claimant !== undefined && !jobs.some((j) => j.workflowRunId === claimant);
        if (jobs.length > 0 && jobs.every((j) => j.status === 'completed') && !claimantUnseen) {
          // A result pushed just before its job completed is fetched once more before the runner counts as lost.
          const late = (await lookAtAttempt(this.o, job, false)).result;
          this.remember(name, watch, late?.workflowRunId);
          if (late) return late.result;
          const last = jobs.at(-1)!;
          return {
            exitCode: null,
            infrastructureFailure: true,
            reason: `runner lost: the worker job ${name} on runner ${last.runnerName ?? '(none)'} ended ${last.conclusion ?? 'without a conclusion'} before it pushed a result${last.htmlUrl ? ` (${last.htmlUrl})` : ''}`,
          };
        }
        // Only a worker job claims, naming its own workflow run: a claim that names none was pushed by someone
        // else, and the attempt's job, unable to claim, can never push its result.
        if (claim !== null && claimant === undefined) {
          this.remember(name, watch);
          await this.cancel(api, name, watch);
          return { exitCode: null, infrastructureFailure: true, reason: foreignClaimReason(name, 'names no workflow run') };
        }
        // GitHub is asked about the claimant's workflow run at each look when its webhooks may never come here:
        // re-attached, or a claimant this process never heard of.
        const asked =
          claimant !== undefined && (dispatched.reattached || claimantUnseen)
            ? await askClaimant(api, this.cfg.workflow, { workflowRunId: claimant, jobName: name, tied }, jobs)
            : null;
        if (asked !== null && 'foreign' in asked) {
          this.remember(name, watch);
          await this.cancel(api, name, watch);
          return { exitCode: null, infrastructureFailure: true, reason: foreignClaimReason(name, asked.foreign) };
        }
        const ended = asked?.ended;
        if (ended) {
          const late = (await lookAtAttempt(this.o, job, false)).result;
          this.remember(name, watch, late?.workflowRunId);
          if (late) return late.result;
          const url = linkable(ended.htmlUrl);
          return {
            exitCode: null,
            infrastructureFailure: true,
            reason: `runner lost: the worker job ${name} (workflow run ${claimant}) ended ${ended.conclusion ?? 'without a conclusion'} before it pushed a result${url ? ` (${url})` : ''}`,
          };
        }
        // The refs were fetched just now: a job that claimed the attempt by the deadline counts as started.
        const started = claim !== null || jobs.some((j) => j.status !== 'queued');
        if (!started && this.clock() >= startBy) {
          this.remember(name, watch);
          await this.cancel(api, name, watch);
          return {
            exitCode: null,
            infrastructureFailure: true,
            reason:
              `no runner with the labels [${labels.join(', ')}] took the worker job within ${this.cfg.startTimeoutSeconds} s: register a self-hosted runner with these labels (docs/actions.md), or change the labels in the App's config` +
              // Re-attached: the process that recorded the dispatch may have died before it was sent.
              (dispatched.reattached && !dispatched.resent ? ` (the attempt was dispatched before the App restarted)` : ''),
          };
        }
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            wake = () => {};
            resolve();
          };
          // Until it started, the next look is at the deadline at the latest; after, every `pollMs`.
          const timer = setTimeout(done, started ? this.pollMs : Math.max(10, Math.min(this.pollMs, startBy - this.clock())));
          wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
      }
    } finally {
      if (this.watches.get(name) === watch) this.watches.delete(name);
    }
  }

  /**
   * Records the job at `refs.dispatch(…)`, create-only, before it is dispatched: the worker job runs only
   * the job recorded there, so a dispatch by anyone else (`actions: write` is enough to dispatch) runs
   * nothing. A record already there means the attempt was dispatched (or about to be) by an earlier
   * process: a restart, or a replica whose run this one took over. The attempt is then re-attached to
   * (`reattachedTo`), never dispatched again.
   */
  private async recordDispatch(job: WorkerJob, jobText: string): Promise<WorkerResult | Dispatched> {
    const { store, refs } = this.o;
    const ref = refs.dispatch(job.runId, job.itemId, job.attempt);
    const name = workerJobName(job.runId, job.itemId, job.attempt);
    try {
      const now = this.clock();
      const record = await dispatchRecord(store, name, jobText, now);
      // A refused create whose ref is still absent (a batched push refused as a whole): tried again.
      for (let tries = 0; tries < 3; tries += 1) {
        if (await store.casRef(ref, record, null)) return { reattached: false, at: now, record };
        const existing = await store.resolveRef(ref);
        if (existing !== null) return await reattachedTo(store, existing, now);
      }
      return { exitCode: null, infrastructureFailure: true, reason: `${ref} could not be created (refused 3 times): the attempt is not dispatched` };
    } catch (e) {
      return { exitCode: null, infrastructureFailure: true, reason: `cannot record the dispatch of ${name} at ${ref}: ${errorMessage(e)}` };
    }
  }

  /** Records and dispatches the worker workflow (only when this call made the record), else the attempt's failure. */
  private async dispatch(api: ActionsApi, job: WorkerJob, labels: readonly string[]): Promise<WorkerResult | Dispatched> {
    const file = `.github/workflows/${this.cfg.workflow}`;
    const inputs = {
      run: job.runId,
      item: job.itemId,
      attempt: String(job.attempt),
      'runs-on': JSON.stringify(labels),
      // The form mode: worker compares with the job it rebuilds from the plan (src/action/worker-check.ts).
      job: JSON.stringify(dispatchedJob(job)),
    };
    const recorded = await this.recordDispatch(job, inputs.job);
    if ('exitCode' in recorded) return recorded;
    if (recorded.reattached) {
      // Sent again only when nothing of it reached GitHub; the start timeout then counts from now.
      // Only whether the refs exist: reading the result here would apply it (its log, its changes, its
      // emitted items) before the wait below reads and applies it again.
      const text = await jobToResend(this.o.store, recorded.record, await attemptRefs(this.o, job));
      if (text === null) return recorded;
      inputs.job = text;
    }
    let ref: string;
    try {
      ref = await api.defaultBranch();
    } catch (e) {
      return { exitCode: null, infrastructureFailure: true, reason: `cannot read the repository's default branch to dispatch ${file} on: ${errorMessage(e)}` };
    }
    for (let tries = 1; ; tries++) {
      try {
        await api.dispatch(this.cfg.workflow, ref, inputs);
        return recorded.reattached ? { ...recorded, at: this.clock(), resent: true } : recorded;
      } catch (e) {
        const status = (e as { status?: number }).status;
        if (TRANSIENT(status) && tries < 3) continue;
        const why = errorMessage(e);
        const fix =
          status === 404
            ? `add the worker workflow as ${file} on ${ref} (examples/workflows/agora-worker.yml)`
            : status === 403
              ? 'grant the App `actions: write` (it dispatches the worker workflow)'
              : status === 422
                ? `${file} must have \`on: workflow_dispatch\` with the inputs run, item, attempt, runs-on and job (examples/workflows/agora-worker.yml)`
                : 'GitHub may be down; the item is retried per its policy';
        return {
          exitCode: null,
          infrastructureFailure: TRANSIENT(status),
          reason: `dispatching ${file} on ${ref} failed (${status ?? 'no answer'}: ${why}): ${fix}`,
        };
      }
    }
  }

  /**
   * Cancels the attempt's workflow runs that may still run: those of the jobs seen here and not completed,
   * and the claimant's (`claimant`, from its claim ref), which a process that re-attached to the attempt
   * after a restart knows only from there.
   */
  private async cancel(api: ActionsApi, name: string, watch: Watch, claimant?: number, tied?: Set<number>): Promise<void> {
    const jobs = [...watch.jobs.values()];
    const runs = new Set(jobs.filter((j) => j.status !== 'completed').map((j) => j.workflowRunId));
    // Never another workflow's run, nor another attempt's worker, which a claim pushed by someone else may name.
    if (
      claimant !== undefined &&
      !runs.has(claimant) &&
      (await runningClaimant(api, this.cfg.workflow, { workflowRunId: claimant, jobName: name, ...(tied ? { tied } : {}) }, jobs))
    ) {
      runs.add(claimant);
    }
    for (const id of runs) await api.cancelRun(id).catch(() => undefined); // 409 once it completed: nothing to stop
  }
}

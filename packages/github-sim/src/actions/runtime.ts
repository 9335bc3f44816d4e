/**
 * The simulator's Actions host: workflow files read at the event's commit, runs and jobs created
 * for `push`, `pull_request` and `workflow_dispatch`, jobs matched by their `runs-on` labels to
 * registered self-hosted runners (a job with no matching runner stays `queued`), cancel and re-run,
 * `workflow_run` / `workflow_job` webhooks, and a GITHUB_TOKEN per job that the simulator's auth
 * honours with exactly the job's `permissions`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateAppKey, type Permissions } from '../auth.js';
import { runGit } from '../git.js';
import { HttpError, notFound } from '../http.js';
import type { Sim } from '../sim.js';
import type { App, Installation, Pull, Repo, User } from '../state.js';
import { openJobCheckRun, syncJobCheckRun } from './check-runs.js';
import { executeJob, flag, RUNNER_LOST, slowRunner, stepRecords, TIMED_OUT, timeoutMs } from './executor.js';
import { evaluate, ExpressionError, render, type ExpressionContext } from './expressions.js';
import { pathsMatch, pullRequestMatches, pushMatches } from './filters.js';
import { gate, needsContext, type Gate } from './graph.js';
import { expandMatrix, matrixJobName, MatrixError } from './matrix.js';
import type { Conclusion, JobRecord, RunnerOptions, RunRecord, SimRunner } from './model.js';
import { node24 } from './node24.js';
import { OidcIssuer } from './oidc.js';
import {
  dispatchInputs,
  eventFilter,
  parseWorkflow,
  WorkflowFileError,
  type DispatchInputSpec,
  type Workflow,
  type WorkflowFile,
  type WorkflowJobSpec,
} from './workflow.js';

/** The abort reason of a matrix job cancelled because another job of its matrix failed. */
const FAIL_FAST = 'fail-fast';

const iso = (ms = Date.now()): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Scopes a `permissions:` block can name (`id-token` is OIDC, not a token scope). */
const SCOPES = [
  'actions',
  'attestations',
  'checks',
  'contents',
  'deployments',
  'discussions',
  'issues',
  'models',
  'packages',
  'pages',
  'pull-requests',
  'repository-projects',
  'security-events',
  'statuses',
];

/** GitHub's "restricted" default for a job that names no permissions. */
const DEFAULT_PERMISSIONS: Permissions = { contents: 'read', packages: 'read' };

/** The token permissions of a job: the job's block, else the workflow's, else the restricted default. */
export function jobPermissions(workflow: Workflow, job: WorkflowJobSpec): Permissions {
  const block = job.permissions ?? workflow.permissions;
  const out: Permissions = {};
  if (block === undefined) Object.assign(out, DEFAULT_PERMISSIONS);
  else if (block === 'read-all' || block === 'write-all') for (const s of SCOPES) out[s.replace(/-/g, '_')] = block === 'read-all' ? 'read' : 'write';
  else
    for (const [scope, level] of Object.entries(block))
      if ((level === 'read' || level === 'write') && scope !== 'id-token') out[scope.replace(/-/g, '_')] = level;
  out.metadata = 'read';
  return out;
}

/** Whether the job's (else the workflow's) permissions grant `id-token: write`. */
export function mayRequestIdToken(workflow: Workflow, job: WorkflowJobSpec): boolean {
  const block = job.permissions ?? workflow.permissions;
  return block === 'write-all' || (typeof block === 'object' && block['id-token'] === 'write');
}

/** A workflow of a repository, as `GET …/actions/workflows` lists it. */
export interface RepoWorkflow {
  id: number;
  path: string;
  name: string;
  state: 'active' | 'deleted';
  createdAt: string;
}

/** A workflow file that failed to load, as GitHub lists it under the commit. */
export interface WorkflowFileProblem {
  repo: string;
  sha: string;
  path: string;
  message: string;
}

export class ActionsRuntime {
  readonly runners = new Map<number, SimRunner>();
  readonly runs = new Map<number, RunRecord>();
  readonly jobs = new Map<number, JobRecord>();
  readonly fileProblems: WorkflowFileProblem[] = [];
  /** Unguessable keys of the job-log download URLs the logs route redirects to. */
  readonly logKeys = new Map<string, number>();
  private readonly workflowIds = new Map<string, { id: number; createdAt: string }>();
  private readonly runNumbers = new Map<string, number>();
  private readonly executing = new Set<Promise<void>>();
  private actionsApp: App | undefined;
  /** Bearer → job, for the OIDC token requests of running jobs. */
  private readonly idTokenRequests = new Map<string, number>();
  private issuer: OidcIssuer | undefined;
  /** Jobs a slow runner was given and has not started yet (still `queued`, not for another runner), and what ends that wait. */
  private readonly pickingUp = new Map<number, AbortController>();
  /** Ends slow runners' waits on close. */
  private readonly closing = new AbortController();

  constructor(private readonly sim: Sim) {}

  /** The OIDC issuer at `<apiUrl>/_sim/oidc` (made on first use: the runtime is built before the sim's URLs are set). */
  get oidc(): OidcIssuer {
    return (this.issuer ??= new OidcIssuer(`${this.sim.urls.api}/_sim/oidc`));
  }

  /**
   * Whether an event `sender` caused starts workflow runs: not when it is a job's GITHUB_TOKEN (the Actions
   * app's bot), as on GitHub, so that a workflow cannot trigger itself in a loop. Dispatches still do.
   */
  triggersRuns(sender: User): boolean {
    return this.actionsApp === undefined || sender.id !== this.actionsApp.bot.id;
  }

  // ---- runners ------------------------------------------------------------------------------

  /**
   * Registers a self-hosted runner (`self-hosted`, `linux`, `x64` plus `labels`); it is given a matching
   * queued job at once, and starts it after its `pickupDelayMs` (a slow runner; the job stays `queued`).
   */
  addRunner(opts: RunnerOptions = {}): SimRunner {
    const id = this.sim.state.nextId();
    const runner: SimRunner = {
      id,
      name: opts.name ?? `sim-runner-${id}`,
      labels: ['self-hosted', 'linux', 'x64', ...(opts.labels ?? [])],
      ephemeral: opts.ephemeral ?? false,
      busyWith: null,
      registered: true,
      pickupDelayMs: opts.pickupDelayMs ?? 0,
      stepDelayMs: opts.stepDelayMs ?? 0,
    };
    this.runners.set(id, runner);
    void this.schedule();
    return runner;
  }

  /** De-registers an idle runner (a busy one finishes its job first). */
  removeRunner(id: number): void {
    const r = this.runners.get(id);
    if (!r) return;
    r.registered = false;
    if (r.busyWith === null) this.runners.delete(id);
    else this.pickingUp.get(r.busyWith)?.abort();
  }

  /**
   * Kills a runner as a machine dies: its job's processes get SIGKILL at once, the runner is gone,
   * and the job fails with GitHub's lost-runner message.
   */
  killRunner(id: number): void {
    const r = this.runners.get(id);
    if (!r) return;
    r.registered = false;
    this.runners.delete(id);
    if (r.busyWith !== null) this.pickingUp.get(r.busyWith)?.abort();
    const job = r.busyWith === null ? undefined : this.jobs.get(r.busyWith);
    // A job the runner was given but had not started goes back to the queue when its wait ends.
    if (!job || job.status !== 'in_progress') return;
    job.log.push(
      `${new Date().toISOString()} ##[error]The self-hosted runner: ${r.name} lost communication with the server. Verify the machine is running and has a healthy network connection. Anything in your workflow that terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this error.`,
    );
    job.abort?.abort(RUNNER_LOST);
  }

  // ---- triggers -----------------------------------------------------------------------------

  /** The workflow files at `sha`; files that fail to load are recorded (and create no run). */
  async workflowsAt(repo: Repo, sha: string): Promise<WorkflowFile[]> {
    const listing = await repo.git.text(['ls-tree', '--name-only', `${sha}:.github/workflows`]).catch(() => '');
    const out: WorkflowFile[] = [];
    for (const name of listing.split('\n').filter((n) => /\.ya?ml$/.test(n))) {
      const path = `.github/workflows/${name}`;
      const file = await this.loadWorkflow(repo, sha, path);
      if (file) out.push(file);
    }
    return out;
  }

  private async loadWorkflow(repo: Repo, sha: string, path: string): Promise<WorkflowFile | null> {
    const text = await repo.git.text(['cat-file', '-p', `${sha}:${path}`]);
    try {
      return await parseWorkflow(path, text);
    } catch (e) {
      if (!(e instanceof WorkflowFileError)) throw e;
      this.fileProblems.push({ repo: repo.fullName, sha, path, message: e.message });
      return null;
    }
  }

  async onPush(repo: Repo, ref: string, sha: string, sender: User, payload: Record<string, unknown>): Promise<void> {
    const before = typeof payload.before === 'string' && !/^0+$/.test(payload.before) ? payload.before : null;
    // A new ref is compared as GitHub does for a first push: the files of its head commit.
    const changed = await this.changedFiles(
      repo,
      before === null ? ['diff-tree', '--no-commit-id', '--name-only', '-r', '--root', sha] : ['diff', '--name-only', before, sha],
    );
    for (const wf of await this.workflowsAt(repo, sha)) {
      const filter = eventFilter(wf, 'push');
      if (!('push' in wf.on) || !pushMatches(filter, ref) || !pathsMatch(filter, changed)) continue;
      const branch = ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
      await this.createRun(repo, wf, { event: 'push', headSha: sha, sha, ref, headBranch: branch, actor: sender, inputs: {}, eventPayload: payload });
    }
  }

  /** A pull request event: runs (for the workflows whose `types` name it) at the merge commit GitHub would test (none when it conflicts). */
  async onPullRequest(repo: Repo, pull: Pull, action: string, sender: User, payload: Record<string, unknown>): Promise<void> {
    const changed = await this.changedFiles(repo, ['diff', '--name-only', `${pull.baseSha}...${pull.headSha}`]);
    const workflows = (await this.workflowsAt(repo, pull.headSha)).filter((wf) => {
      const filter = eventFilter(wf, 'pull_request');
      return 'pull_request' in wf.on && pullRequestMatches(filter, action, pull.baseRef) && pathsMatch(filter, changed);
    });
    if (workflows.length === 0) return;
    const merge = await this.mergeCommit(repo, pull);
    if (!merge) return;
    for (const wf of workflows) {
      await this.createRun(repo, wf, {
        event: 'pull_request',
        headSha: pull.headSha,
        sha: merge,
        ref: `refs/pull/${pull.number}/merge`,
        headBranch: pull.headRef,
        actor: sender,
        inputs: {},
        eventPayload: payload,
      });
    }
  }

  /** The file names a git diff command lists, or null when git cannot list them (path filters then let the run through). */
  private async changedFiles(repo: Repo, args: string[]): Promise<string[] | null> {
    const out = await repo.git.text(args).catch(() => null);
    return out === null ? null : out.split('\n').filter(Boolean);
  }

  /** The test merge of a pull request's head into its base (`refs/pull/N/merge`), or null on a conflict. */
  private async mergeCommit(repo: Repo, pull: Pull): Promise<string | null> {
    const tree = await repo.git.text(['merge-tree', '--write-tree', pull.baseSha, pull.headSha]).catch(() => null);
    if (tree === null) return null;
    const who = { name: 'GitHub', email: 'noreply@github.com', date: iso() };
    const sha = await repo.git.commitTree(tree.split('\n')[0]!.trim(), [pull.baseSha, pull.headSha], `Merge ${pull.headSha} into ${pull.baseSha}\n`, who, who);
    // Moved on every push to the pull request (GitHub recomputes it), so no expected old value.
    await repo.git.git(['update-ref', `refs/pull/${pull.number}/merge`, sha]);
    return sha;
  }

  /** A `workflow_dispatch`: the file must load, name the trigger, and the inputs must fit its typed inputs (else 422). */
  async dispatch(
    repo: Repo,
    workflowId: string,
    ref: string,
    rawInputs: Record<string, unknown>,
    actor: User,
    payload: Record<string, unknown>,
  ): Promise<void> {
    const commit = await repo.git.resolve(ref, 'commit');
    if (!commit) throw new HttpError(422, `No ref found for: ${ref}`);
    const path = await this.workflowPath(repo, workflowId);
    const text = await repo.git.text(['cat-file', '-p', `${commit}:${path}`]).catch(() => null);
    if (text === null) throw notFound();
    let wf: WorkflowFile;
    try {
      wf = await parseWorkflow(path, text);
    } catch (e) {
      if (!(e instanceof WorkflowFileError)) throw e;
      this.fileProblems.push({ repo: repo.fullName, sha: commit, path, message: e.message });
      throw new HttpError(422, e.message);
    }
    if (!('workflow_dispatch' in wf.on)) throw new HttpError(422, "Workflow does not have 'workflow_dispatch' trigger");
    const inputs = typedInputs(dispatchInputs(wf), rawInputs);
    const fullRef = ref.startsWith('refs/') ? ref : (await repo.git.resolve(`refs/tags/${ref}`)) ? `refs/tags/${ref}` : `refs/heads/${ref}`;
    const branch = fullRef.startsWith('refs/heads/') ? fullRef.slice('refs/heads/'.length) : null;
    await this.createRun(repo, wf, {
      event: 'workflow_dispatch',
      headSha: commit,
      sha: commit,
      ref: fullRef,
      headBranch: branch,
      actor,
      inputs,
      eventPayload: { ...payload, inputs: rawInputs, ref: fullRef },
    });
  }

  /** A dispatch names a workflow by file name or by its id. */
  private async workflowPath(repo: Repo, workflowId: string): Promise<string> {
    if (!/^\d+$/.test(workflowId)) return `.github/workflows/${workflowId}`;
    return (await this.workflow(repo, workflowId)).path;
  }

  workflowId(repo: string, path: string): number {
    return this.workflowEntry(repo, path).id;
  }

  private workflowEntry(repo: string, path: string): { id: number; createdAt: string } {
    const key = `${repo}:${path}`;
    let entry = this.workflowIds.get(key);
    if (entry === undefined) {
      entry = { id: this.sim.state.nextId(), createdAt: iso() };
      this.workflowIds.set(key, entry);
    }
    return entry;
  }

  /**
   * The repository's workflows as GitHub lists them: every `.github/workflows/*.yml|yaml` on the
   * default branch (a file that does not load is listed under its path as its name), and any file
   * that ran before but is gone now (state `deleted`).
   */
  async workflows(repo: Repo): Promise<RepoWorkflow[]> {
    const head = await repo.git.resolve(`refs/heads/${repo.defaultBranch}`, 'commit');
    const listing = head ? await repo.git.text(['ls-tree', '--name-only', `${head}:.github/workflows`]).catch(() => '') : '';
    const out: RepoWorkflow[] = [];
    for (const file of listing.split('\n').filter((n) => /\.ya?ml$/.test(n))) {
      const path = `.github/workflows/${file}`;
      const text = await repo.git.text(['cat-file', '-p', `${head}:${path}`]);
      let name = path;
      try {
        name = (await parseWorkflow(path, text)).workflow.name ?? path;
      } catch (e) {
        if (!(e instanceof WorkflowFileError)) throw e;
      }
      out.push({ ...this.workflowEntry(repo.fullName, path), path, name, state: 'active' });
    }
    const prefix = `${repo.fullName}:`;
    for (const [key, entry] of this.workflowIds) {
      if (!key.startsWith(prefix) || out.some((w) => w.id === entry.id)) continue;
      const last = [...this.runs.values()].filter((r) => r.workflowId === entry.id).at(-1);
      out.push({ ...entry, path: key.slice(prefix.length), name: last?.name ?? key.slice(prefix.length), state: 'deleted' });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** One workflow by its id or its file name (`ci.yml`); 404 when the repository has none such. */
  async workflow(repo: Repo, idOrFile: string): Promise<RepoWorkflow> {
    const all = await this.workflows(repo);
    const found = /^\d+$/.test(idOrFile) ? all.find((w) => w.id === Number(idOrFile)) : all.find((w) => w.path === `.github/workflows/${idOrFile}`);
    if (!found) throw notFound();
    return found;
  }

  private async createRun(
    repo: Repo,
    wf: WorkflowFile,
    e: {
      event: RunRecord['event'];
      headSha: string;
      sha: string;
      ref: string;
      headBranch: string | null;
      actor: User;
      inputs: Record<string, unknown>;
      eventPayload: Record<string, unknown>;
    },
  ): Promise<RunRecord> {
    const workflowId = this.workflowId(repo.fullName, wf.path);
    const number = (this.runNumbers.get(`${workflowId}`) ?? 0) + 1;
    this.runNumbers.set(`${workflowId}`, number);
    const now = iso();
    const run: RunRecord = {
      id: this.sim.state.nextId(),
      repo: repo.fullName,
      workflowId,
      workflow: wf,
      name: wf.workflow.name ?? wf.path,
      ...e,
      runNumber: number,
      runAttempt: 1,
      status: 'queued',
      conclusion: null,
      createdAt: now,
      updatedAt: now,
      runStartedAt: now,
      jobs: [],
      cancelRequested: false,
    };
    this.runs.set(run.id, run);
    await this.newAttemptJobs(run);
    await this.emitRun(run, 'requested');
    for (const job of run.jobs) this.emitJob(job, 'queued');
    void this.schedule();
    return run;
  }

  /** The jobs of the run's current attempt, each with its check run (queued). */
  private async newAttemptJobs(run: RunRecord): Promise<void> {
    this.makeJobs(run);
    const repo = this.sim.repo(run.repo);
    const app = this.actionsInstallation(repo).appId;
    for (const job of run.jobs) await openJobCheckRun(this.sim, run, job, app, run.actor);
  }

  private makeJobs(run: RunRecord): void {
    const now = iso();
    run.jobs = Object.entries(run.workflow.workflow.jobs).flatMap(([key, spec]) => {
      let strategy: JobRecord['strategy'] = {};
      let combos: (Record<string, unknown> | null)[] = [null];
      let refusal: string | null = null;
      try {
        strategy = (evaluate(spec.strategy, jobLevelContext(run, null, {})) ?? {}) as JobRecord['strategy'];
        if (strategy.matrix !== undefined) combos = expandMatrix(strategy.matrix);
      } catch (e) {
        if (!(e instanceof MatrixError) && !(e instanceof ExpressionError)) throw e;
        refusal = `${run.workflow.path}: job '${key}': ${e.message}`;
      }
      return combos.map((matrix, index) => {
        const ctx = jobLevelContext(run, matrix, {
          'fail-fast': strategy['fail-fast'] !== false,
          'job-index': index,
          'job-total': combos.length,
          'max-parallel': strategy['max-parallel'] ?? combos.length,
        });
        // The name and `runs-on` may use `${{ matrix.* }}` (and inputs); a value that fails to evaluate is left as written (the job is refused below).
        const text = (value: Parameters<typeof render>[0]): string => {
          try {
            return render(value, ctx);
          } catch (e) {
            if (!(e instanceof ExpressionError)) throw e;
            refusal ??= `${run.workflow.path}: job '${key}': ${e.message}`;
            return String(value);
          }
        };
        let labels: string[] = [];
        try {
          labels = runsOnLabels(evaluate(spec['runs-on'], ctx));
        } catch (e) {
          if (!(e instanceof ExpressionError)) throw e;
          refusal ??= `${run.workflow.path}: job '${key}' runs-on: ${e.message}`;
        }
        const job: JobRecord = {
          id: this.sim.state.nextId(),
          runId: run.id,
          runAttempt: run.runAttempt,
          key,
          strategy,
          matrix,
          gate: 'pending',
          refusal,
          continueOnError: false,
          outputs: {},
          name: spec.name !== undefined ? text(spec.name) : matrix ? matrixJobName(key, matrix) : key,
          spec,
          labels,
          status: 'queued',
          conclusion: null,
          createdAt: now,
          startedAt: now,
          completedAt: null,
          runner: null,
          steps: stepRecords(spec.steps),
          log: [],
          annotations: [],
          summary: '',
          abort: null,
          token: null,
          tokenPermissions: jobPermissions(run.workflow.workflow, spec),
          idToken: mayRequestIdToken(run.workflow.workflow, spec),
          idTokenRequest: null,
        };
        try {
          job.continueOnError = flag(spec['continue-on-error'], ctx);
        } catch (e) {
          if (!(e instanceof ExpressionError)) throw e;
          job.refusal = `${run.workflow.path}: job '${key}' continue-on-error: ${e.message}`;
        }
        this.jobs.set(job.id, job);
        return job;
      });
    });
  }

  // ---- scheduling ---------------------------------------------------------------------------

  /**
   * Decides queued jobs whose `needs` have completed (run, skipped, or failed for a refused
   * `if:`), then hands each runnable one (oldest first) to an idle registered runner whose labels
   * cover its `runs-on`, keeping a matrix within its `max-parallel`.
   */
  private async schedule(): Promise<void> {
    for (let progressed = true; progressed;) {
      progressed = false;
      for (const job of [...this.jobs.values()].filter((j) => j.status === 'queued' && j.gate === 'pending').sort((a, b) => a.id - b.id)) {
        const run = this.runs.get(job.runId)!;
        const g: Gate = job.refusal !== null ? { decision: 'error', message: job.refusal } : gate(run, job, jobContext(run, job));
        if (g.decision === 'wait') continue;
        if (g.decision === 'run') {
          job.gate = 'run';
          continue;
        }
        if (g.decision === 'error') job.log.push(`${new Date().toISOString()} ##[error]${g.message}`);
        // Skipped (or refused) before any runner: no steps, as GitHub shows such a job.
        job.steps = [];
        await this.completeJob(job, g.decision === 'skip' ? 'skipped' : 'failure');
        progressed = true;
      }
    }
    for (const job of [...this.jobs.values()]
      .filter((j) => j.status === 'queued' && j.gate === 'run' && !this.pickingUp.has(j.id))
      .sort((a, b) => a.id - b.id)) {
      const run = this.runs.get(job.runId)!;
      const limit = Number(job.strategy['max-parallel'] ?? Infinity);
      if (run.jobs.filter((j) => j.key === job.key && j.status === 'in_progress').length >= limit) continue;
      const want = job.labels.map((l) => l.toLowerCase());
      const runner = [...this.runners.values()].find(
        (r) => r.registered && r.busyWith === null && want.every((l) => r.labels.some((have) => have.toLowerCase() === l)),
      );
      if (!runner) continue;
      runner.busyWith = job.id;
      const work = this.pickUp(job, runner);
      this.executing.add(work);
      // A failure here is a broken contract (strict mode throws where the webhook is built): it is
      // already in sim.contractViolations, where the tests look.
      void work.catch(() => undefined).finally(() => this.executing.delete(work));
    }
  }

  /**
   * A runner takes a job it was given: a slow one first waits its `pickupDelayMs` with the job still
   * `queued` (no other runner gets it). A job cancelled meanwhile stays cancelled; a runner killed or
   * removed meanwhile never started it, so the job goes back to the queue for another runner. Each of
   * these (and close) ends the wait at once.
   */
  private async pickUp(job: JobRecord, runner: SimRunner): Promise<void> {
    if (runner.pickupDelayMs > 0) {
      const wait = new AbortController();
      this.pickingUp.set(job.id, wait);
      await slowRunner(runner.pickupDelayMs, AbortSignal.any([wait.signal, this.closing.signal]));
      this.pickingUp.delete(job.id);
      if (job.status !== 'queued' || !runner.registered || this.closing.signal.aborted) {
        runner.busyWith = null;
        if (!runner.registered) this.runners.delete(runner.id);
        if (!this.closing.signal.aborted) void this.schedule();
        return;
      }
    }
    job.runner = runner;
    job.status = 'in_progress';
    job.startedAt = iso();
    await this.runJob(job, runner);
  }

  private async runJob(job: JobRecord, runner: SimRunner): Promise<void> {
    const run = this.runs.get(job.runId)!;
    const repo = this.sim.repo(run.repo);
    const inst = this.actionsInstallation(repo);
    const token = this.sim.tokens.issue({
      installationId: inst.id,
      appId: inst.appId,
      expiresAt: Date.now() + 6 * 3600_000,
      permissions: job.tokenPermissions,
      repositories: [repo.fullName],
    });
    job.token = token.token;
    job.abort = new AbortController();
    if (job.idToken) {
      job.idTokenRequest = randomBytes(24).toString('hex');
      this.idTokenRequests.set(job.idTokenRequest, job.id);
    }
    if (run.status === 'queued') {
      run.status = 'in_progress';
      run.updatedAt = iso();
      await this.emitRun(run, 'in_progress');
    }
    this.emitJob(job, 'in_progress');
    await syncJobCheckRun(this.sim, job, run.actor);
    let conclusion: Conclusion;
    let timer: NodeJS.Timeout | undefined;
    try {
      const limit = timeoutMs(job.spec['timeout-minutes'], jobContext(run, job), `job '${job.key}'`);
      if (limit !== null) {
        timer = setTimeout(() => {
          job.log.push(
            `${new Date().toISOString()} ##[error]The job running on runner ${runner.name} has exceeded the maximum execution time of ${String(job.spec['timeout-minutes'])} minutes.`,
          );
          job.abort?.abort(TIMED_OUT);
        }, limit);
      }
      for (const key of ['container', 'services', 'environment', 'uses'] as const) {
        if (job.spec[key] !== undefined) throw new Error(`job '${job.key}' uses \`${key}:\`, which the simulator does not support`);
      }
      conclusion = await executeJob({
        root: await mkdtemp(join(tmpdir(), 'sim-runner-')),
        runnerName: runner.name,
        run,
        job,
        repo: { fullName: repo.fullName, id: repo.id, owner: repo.owner.login, name: repo.name },
        urls: { api: this.sim.urls.api, git: this.sim.urls.git, html: this.sim.urls.html },
        token: token.token,
        secrets: Object.fromEntries(repo.actionsSecrets ?? []),
        node24,
        fetchAction: (fullName, ref, into) => this.fetchAction(fullName, ref, into),
        signal: job.abort.signal,
        stepDelayMs: runner.stepDelayMs,
        jobContext: jobContext(run, job),
        needs: needsContext(run, job),
        idTokenRequest: job.idTokenRequest ? { url: `${this.oidc.issuer}/token?api-version=2.0`, token: job.idTokenRequest } : null,
        changed: () => undefined,
      });
    } catch (e) {
      job.log.push(`${new Date().toISOString()} ##[error]${(e as Error).message}`);
      conclusion = 'failure';
    }
    if (timer) clearTimeout(timer);
    this.sim.tokens.expire(token.token);
    if (job.idTokenRequest) this.idTokenRequests.delete(job.idTokenRequest);
    runner.busyWith = null;
    if (!runner.registered || runner.ephemeral) {
      runner.registered = false;
      this.runners.delete(runner.id);
    }
    const reason: unknown = job.abort?.signal.reason;
    await this.completeJob(
      job,
      reason === RUNNER_LOST || reason === TIMED_OUT ? 'failure' : run.cancelRequested || reason === FAIL_FAST ? 'cancelled' : conclusion,
    );
    void this.schedule();
  }

  private async completeJob(job: JobRecord, conclusion: Conclusion): Promise<void> {
    // A slow runner given this job (cancelled before it started) is free at once.
    this.pickingUp.get(job.id)?.abort();
    job.status = 'completed';
    job.conclusion = conclusion;
    job.completedAt = iso();
    job.abort = null;
    this.emitJob(job, 'completed');
    const run = this.runs.get(job.runId)!;
    await syncJobCheckRun(this.sim, job, run.actor);
    if (conclusion === 'failure' && job.matrix !== null && !job.continueOnError && job.strategy['fail-fast'] !== false) {
      // fail-fast (the default): the rest of the matrix is cancelled.
      for (const other of run.jobs.filter((j) => j.key === job.key && j !== job)) {
        if (other.status === 'queued') await this.completeJob(other, 'cancelled');
        else if (other.status === 'in_progress') other.abort?.abort(FAIL_FAST);
      }
    }
    if (run.jobs.every((j) => j.status === 'completed') && run.status !== 'completed') {
      const counted = run.jobs.filter((j) => !(j.conclusion === 'failure' && j.continueOnError)).map((j) => j.conclusion);
      run.status = 'completed';
      run.conclusion = counted.includes('cancelled') ? 'cancelled' : counted.includes('failure') ? 'failure' : 'success';
      run.updatedAt = iso();
      await this.emitRun(run, 'completed');
    }
  }

  /** An action of another simulated repository at `ref`, extracted with `git archive`. */
  private async fetchAction(fullName: string, ref: string, into: string): Promise<void> {
    const repo = this.sim.repo(fullName);
    const commit = await repo.git.resolve(ref, 'commit');
    if (!commit) throw new Error(`${fullName} has no ref ${ref}`);
    const tar = await runGit(['--git-dir', repo.git.dir, 'archive', '--format=tar', commit]);
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('tar', ['-x', '-C', into], { input: tar });
    if (r.status !== 0) throw new Error(`tar failed: ${r.stderr.toString()}`);
  }

  /** The built-in GitHub Actions app and its installation on `repo` (the issuer of GITHUB_TOKENs). */
  private actionsInstallation(repo: Repo): Installation {
    if (!this.actionsApp) {
      const { privateKey, publicKey } = generateAppKey();
      const id = this.sim.state.nextId();
      // It subscribes to no events and holds only metadata: it receives nothing; its check suites hold the jobs' check runs.
      this.actionsApp = {
        id,
        slug: 'github-actions',
        name: 'GitHub Actions',
        clientId: `Iv1.${randomBytes(8).toString('hex')}`,
        publicKey,
        privateKey,
        webhookUrl: 'http://127.0.0.1:9/unused',
        webhookSecret: randomBytes(8).toString('hex'),
        permissions: { metadata: 'read' },
        events: [],
        owner: this.sim.state.user('github'),
        bot: this.sim.state.user('github-actions[bot]', 'Bot'),
        createdAt: iso(),
      };
      this.sim.state.apps.set(id, this.actionsApp);
    }
    const app = this.actionsApp;
    let inst = [...this.sim.state.installations.values()].find((i) => i.appId === app.id && i.account.login === repo.owner.login);
    if (!inst) {
      inst = { id: this.sim.state.nextId(), appId: app.id, account: repo.owner, repositories: new Set(), createdAt: iso() };
      this.sim.state.installations.set(inst.id, inst);
    }
    inst.repositories.add(repo.fullName);
    return inst;
  }

  /**
   * An ID token for the running job that holds `bearer` (null when none does), with GitHub's claims;
   * `aud` defaults, as on GitHub, to the URL of the repository owner.
   */
  idTokenFor(bearer: string, audience: string | null): string | null {
    const job = this.jobs.get(this.idTokenRequests.get(bearer) ?? -1);
    if (!job || job.status !== 'in_progress') return null;
    const run = this.runs.get(job.runId)!;
    const repo = this.sim.repo(run.repo);
    const workflowRef = `${repo.fullName}/${run.workflow.path}@${run.ref}`;
    const subject = run.event === 'pull_request' ? 'pull_request' : `ref:${run.ref}`;
    return this.oidc.sign({
      sub: `repo:${repo.fullName}:${subject}`,
      aud: audience ?? `${this.sim.urls.html}/${repo.owner.login}`,
      ref: run.ref,
      ref_type: run.ref.startsWith('refs/tags/') ? 'tag' : 'branch',
      sha: run.sha,
      repository: repo.fullName,
      repository_id: String(repo.id),
      repository_owner: repo.owner.login,
      repository_owner_id: String(repo.owner.id),
      repository_visibility: 'private',
      run_id: String(run.id),
      run_number: String(run.runNumber),
      run_attempt: String(run.runAttempt),
      actor: run.actor.login,
      actor_id: String(run.actor.id),
      event_name: run.event,
      workflow: run.name,
      workflow_ref: workflowRef,
      workflow_sha: run.headSha,
      job_workflow_ref: workflowRef,
      job_workflow_sha: run.headSha,
      runner_environment: 'self-hosted',
      head_ref: run.event === 'pull_request' ? (run.headBranch ?? '') : '',
      base_ref: run.event === 'pull_request' ? ((run.eventPayload.pull_request as { base?: { ref?: string } } | undefined)?.base?.ref ?? '') : '',
    });
  }

  // ---- cancel and re-run --------------------------------------------------------------------

  /** Cancels a run: queued jobs complete `cancelled`, running ones have their steps killed. 409 once completed. */
  async cancel(run: RunRecord): Promise<void> {
    if (run.status === 'completed') throw new HttpError(409, 'Cannot cancel a workflow run that is completed.');
    run.cancelRequested = true;
    for (const job of run.jobs) {
      if (job.status === 'queued') await this.completeJob(job, 'cancelled');
      else if (job.status === 'in_progress') job.abort?.abort();
    }
  }

  /** Re-runs a completed run as its next attempt (same id, `run_attempt` + 1). */
  async rerun(run: RunRecord): Promise<void> {
    if (run.status !== 'completed') throw new HttpError(403, `This workflow is already running`);
    run.runAttempt += 1;
    run.status = 'queued';
    run.conclusion = null;
    run.cancelRequested = false;
    run.runStartedAt = run.updatedAt = iso();
    await this.newAttemptJobs(run);
    await this.emitRun(run, 'requested');
    for (const job of run.jobs) this.emitJob(job, 'queued');
    void this.schedule();
  }

  /** A key for the job's log download URL (what the logs route redirects to). */
  logKey(job: JobRecord): string {
    const key = randomBytes(16).toString('hex');
    this.logKeys.set(key, job.id);
    return key;
  }

  /** Stops every running job (on close). */
  async shutdown(): Promise<void> {
    this.closing.abort();
    for (const job of this.jobs.values()) job.abort?.abort();
    await Promise.allSettled([...this.executing]);
  }

  /** Resolves when no job is running (queued jobs with no runner do not count). */
  async idle(): Promise<void> {
    while (this.executing.size > 0) await Promise.allSettled([...this.executing]);
  }

  // ---- webhooks -----------------------------------------------------------------------------

  private async emitRun(run: RunRecord, action: 'requested' | 'in_progress' | 'completed'): Promise<void> {
    await this.sim.emitWorkflowRun({
      repo: run.repo,
      action,
      name: run.name,
      headSha: run.headSha,
      headBranch: run.headBranch ?? undefined,
      id: run.id,
      workflowId: run.workflowId,
      path: run.workflow.path,
      event: run.event,
      conclusion: run.conclusion ?? undefined,
      runNumber: run.runNumber,
      runAttempt: run.runAttempt,
      actor: run.actor,
      createdAt: run.createdAt,
      runStartedAt: run.runStartedAt,
    });
  }

  private emitJob(job: JobRecord, action: 'queued' | 'in_progress' | 'completed'): void {
    const run = this.runs.get(job.runId)!;
    this.sim.emitWorkflowJob({
      repo: run.repo,
      action,
      name: job.name,
      headSha: run.headSha,
      headBranch: run.headBranch ?? undefined,
      id: job.id,
      runId: run.id,
      runAttempt: job.runAttempt,
      conclusion: job.conclusion ?? undefined,
      labels: job.labels,
      runnerId: job.runner?.id,
      runnerName: job.runner?.name,
      workflowName: run.name,
      startedAt: job.startedAt,
      createdAt: job.createdAt,
      steps: job.steps,
    });
  }
}

/**
 * The contexts a job-level key (`if:`, `name`, `runs-on`, `timeout-minutes`, `continue-on-error`)
 * reads before a runner has the job: the run's `github` facts, `inputs`, the job's `matrix` and `strategy`.
 */
function jobLevelContext(run: RunRecord, matrix: Record<string, unknown> | null, strategy: Record<string, unknown>): ExpressionContext {
  const github = {
    ref: run.ref,
    sha: run.sha,
    event_name: run.event,
    event: run.eventPayload,
    repository: run.repo,
    repository_owner: run.repo.split('/')[0],
    actor: run.actor.login,
    triggering_actor: run.actor.login,
    run_id: String(run.id),
    run_number: String(run.runNumber),
    run_attempt: String(run.runAttempt),
    workflow: run.name,
    ref_name: run.ref.replace(/^refs\/(heads|tags)\//, ''),
    head_ref: run.event === 'pull_request' ? (run.headBranch ?? '') : '',
  };
  return { inputs: run.inputs, github, matrix: matrix ?? {}, strategy, vars: {} };
}

/** The job-level contexts of a job already made. */
function jobContext(run: RunRecord, job: JobRecord): ExpressionContext {
  const combos = run.jobs.filter((j) => j.key === job.key);
  const strategy = {
    'fail-fast': job.strategy['fail-fast'] !== false,
    'job-index': combos.indexOf(job),
    'job-total': combos.length,
    'max-parallel': job.strategy['max-parallel'] ?? combos.length,
  };
  return jobLevelContext(run, job.matrix, strategy);
}

/** The labels of an evaluated `runs-on`: a label, a list of them, or `{ group, labels }` (a group alone has none to match). */
function runsOnLabels(value: unknown): string[] {
  const list = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return list((value as { labels?: unknown }).labels);
  return list(value);
}

/** Checks dispatch inputs against the workflow's typed inputs (GitHub's 422s) and fills defaults. */
export function typedInputs(specs: Record<string, DispatchInputSpec>, given: Record<string, unknown>): Record<string, unknown> {
  const unexpected = Object.keys(given).filter((k) => !(k in specs));
  if (unexpected.length > 0) throw new HttpError(422, `Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = given[name] ?? spec.default;
    if (raw === undefined || raw === '') {
      if (spec.required) throw new HttpError(422, `Required input '${name}' not provided`);
      out[name] = spec.type === 'boolean' ? false : '';
      continue;
    }
    const text = String(raw);
    switch (spec.type ?? 'string') {
      case 'boolean':
        if (text !== 'true' && text !== 'false') throw new HttpError(422, `Provided value '${text}' for input '${name}' not in the list of allowed values`);
        out[name] = text === 'true';
        break;
      case 'number':
        if (!Number.isFinite(Number(text))) throw new HttpError(422, `Provided value '${text}' for input '${name}' is not a number`);
        out[name] = Number(text);
        break;
      case 'choice':
        if (!(spec.options ?? []).includes(text)) throw new HttpError(422, `Provided value '${text}' for input '${name}' not in the list of allowed values`);
        out[name] = text;
        break;
      default:
        out[name] = text;
    }
  }
  return out;
}

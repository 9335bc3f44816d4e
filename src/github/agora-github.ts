import type { ProbotOctokit } from 'probot';
import { appendEntries } from '../audit/entry.js';
import type { OrchConfig } from '../config/types.js';
import { newRun } from '../engine/step.js';
import { TERMINAL_ITEM_STATUSES, type ItemState } from '../engine/types.js';
import type { Problem } from '../errors.js';
import { diffTrees } from '../git/tree-diff.js';
import { agoraIdentity } from '../git/identity.js';
import type { Oid } from '../git/types.js';
import { parsePlanText } from '../plan/parse.js';
import { validatePlan } from '../plan/validate.js';
import { cancelRun } from '../runs/cancel.js';
import { RunDriver } from '../runs/driver.js';
import { logName, readLog, writeRun, sortTree, type StoredRun } from '../runs/state-store.js';
import { finishAudit, regate, type AuditOutcome } from './audit-release.js';
import { conclusionOf, invalidPlanSummary, itemOutput, runConclusion, runSummary } from './check-text.js';
import { classifyCommit, planPathSlug, runIdFor } from './plan-commit.js';
import { RepoContext } from './repo-context.js';

/**
 * The app's work, independent of Probot: turn a plan commit into a run on GitHub and report it through
 * check runs; when the run ends, push its integration commits onto the branch and publish the audit.
 * Webhook handlers only call {@link AgoraGitHub.onPlanEvent}, which returns at once; the work runs in the
 * background, keyed by repository and commit, so duplicated deliveries are no-ops. All state lives in the
 * repository (refs/agora/*) through the mirror; this object holds only caches and the running drivers.
 */

export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface AgoraGitHubOptions {
  /** Where repository mirrors live (disposable). */
  cacheDir: string;
  /** The app's configuration: queues, subagents (which executors this installation offers). */
  config: OrchConfig;
  /** The plan file in the repository (default `plan.json`). */
  planPath?: string;
  /** PEM of the ECDSA P-256 key audit bundles are signed with (AGORA_SIGNING_KEY); unsigned without. */
  signingKeyPem?: string;
  /** Environment secrets are read from for workers (default process.env; only declared names reach them). */
  environment?: Record<string, string | undefined>;
  pollMs?: number;
  clock?: () => number;
  log?: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}

/** A commit on a branch that may carry a plan: from a push or a pull_request event. */
export interface PlanEvent {
  octokit: Octokit;
  owner: string;
  repo: string;
  /** https clone URL without credentials. */
  cloneUrl: string;
  /** The repository's web URL (links in summaries). */
  htmlUrl: string;
  branch: string;
  headSha: Oid;
  /** A current installation token for git over HTTPS. */
  token: () => Promise<string>;
}

interface ActiveRun {
  runId: string;
  ev: PlanEvent;
  repo: RepoContext;
  driver: RunDriver;
  runCheck: number;
  itemChecks: Map<string, number>;
  /** The status each item check last showed. */
  reported: Map<string, ItemState['status']>;
  /** GitHub updates, in commit order. */
  updates: Promise<void>;
  wake(): void;
}

/** What handling one event came to (for logs and tests). */
export type EventOutcome =
  | { kind: 'ignored'; why: string }
  | { kind: 'duplicate'; key: string }
  | { kind: 'invalid'; problems: Problem[] }
  | { kind: 'started'; runId: string }
  | { kind: 'exists'; runId: string }
  /** A later push on a patched branch: the gate was re-evaluated on the new head. */
  | { kind: 'regated'; runId: string };

export class AgoraGitHub {
  readonly planPath: string;
  private readonly repos = new Map<string, Promise<RepoContext>>();
  private readonly seen = new Set<string>();
  private readonly active = new Map<string, ActiveRun>();
  private readonly work = new Set<Promise<unknown>>();
  private readonly clock: () => number;
  readonly outcomes: EventOutcome[] = [];
  private closed = false;

  constructor(private readonly opts: AgoraGitHubOptions) {
    this.planPath = opts.planPath ?? 'plan.json';
    this.clock = opts.clock ?? Date.now;
  }

  /** Accepts an event and returns at once; the work goes on in the background. */
  onPlanEvent(ev: PlanEvent): void {
    const key = `${ev.owner}/${ev.repo}@${ev.headSha}`.toLowerCase();
    if (this.seen.has(key)) {
      this.outcomes.push({ kind: 'duplicate', key });
      return;
    }
    this.seen.add(key);
    this.track(
      this.handle(ev).then(
        (o) => {
          this.outcomes.push(o);
          this.opts.log?.info(`agora: ${key}: ${o.kind}${'runId' in o ? ` ${o.runId}` : ''}${'why' in o ? ` (${o.why})` : ''}`);
        },
        (e: unknown) => {
          this.seen.delete(key); // a later delivery may try again
          this.opts.log?.error(`agora: ${key}: ${(e as Error).stack ?? String(e)}`);
        },
      ),
    );
  }

  /** Resolves when no event handling and no run is in progress. */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  get busy(): boolean {
    return this.work.size > 0;
  }

  /** Stops every run's workers (recorded as interrupted) and waits for the background work. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.active.values()].map((a) => a.driver.shutdown('the agora app is stopping').then(() => a.wake())));
    await this.idle();
  }

  /** Remote pushes and refused pushes (CAS conflicts) across repositories. */
  async gitStats(): Promise<{ pushes: number; conflicts: number }> {
    let pushes = 0;
    let conflicts = 0;
    for (const r of this.repos.values()) {
      const { store } = await r;
      pushes += store.pushes;
      conflicts += store.conflicts;
    }
    return { pushes, conflicts };
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  private repoFor(ev: PlanEvent): Promise<RepoContext> {
    const fullName = `${ev.owner}/${ev.repo}`.toLowerCase();
    const token = ev.token;
    let ctx = this.repos.get(fullName);
    if (!ctx) {
      ctx = RepoContext.open({
        cacheDir: this.opts.cacheDir,
        fullName,
        cloneUrl: ev.cloneUrl,
        config: this.opts.config,
        token,
        clock: this.clock,
        ...(this.opts.environment ? { environment: this.opts.environment } : {}),
      });
      ctx.catch(() => this.repos.delete(fullName));
      this.repos.set(fullName, ctx);
    } else void ctx.then((c) => c.useToken(token));
    return ctx;
  }

  private async handle(ev: PlanEvent): Promise<EventOutcome> {
    if (this.closed) return { kind: 'ignored', why: 'the app is stopping' };
    const repo = await this.repoFor(ev);
    await repo.fetchForEvent(ev.branch, ev.headSha);
    const found = await classifyCommit(repo.store, ev.headSha, this.planPath);
    if (found.kind === 'ignored') {
      if (found.why.endsWith('did not change')) {
        const runId = await regate({ octokit: ev.octokit, owner: ev.owner, repo: ev.repo, store: repo.store, refs: repo.refs, head: ev.headSha });
        if (runId) return { kind: 'regated', runId };
      }
      return found;
    }

    const planText = new TextDecoder().decode(await repo.store.readBlob(found.planBlob));
    const problems: Problem[] = [];
    let plan;
    try {
      const result = validatePlan(parsePlanText(planText, this.planPath), this.opts.config);
      if (result.ok) plan = result.plan;
      else problems.push(...result.problems);
    } catch (e) {
      problems.push(...((e as { problems?: Problem[] }).problems ?? [{ path: '$', message: (e as Error).message }]));
    }
    if (!plan) return this.reject(ev, repo, planText, problems);

    const runId = runIdFor(plan.id, ev.headSha);
    const now = this.clock();
    const concurrency = this.opts.config.queues[plan.queue]?.concurrency ?? this.opts.config.defaultConcurrency;
    const created = newRun(plan, { runId, base: ev.headSha, concurrency, now });
    const stored = await writeRun(repo.store, repo.refs, {
      runId,
      prev: null,
      planText,
      state: created.run.state,
      entries: appendEntries(null, runId, created.transitions),
      transitions: created.transitions,
      now,
    });
    if (!stored) return { kind: 'exists', runId }; // another delivery or replica created it: nothing to do
    await this.supersede(ev, repo, runId);
    await this.startRun(ev, repo, stored);
    return { kind: 'started', runId };
  }

  /** An invalid plan: one failed `agora` check, once per commit (the rejection ref is the lock). */
  private async reject(ev: PlanEvent, repo: RepoContext, planText: string, problems: Problem[]): Promise<EventOutcome> {
    const id = `${planPathSlug(this.planPath)}-${ev.headSha.slice(0, 12)}`;
    const who = agoraIdentity(this.clock());
    const tree = await repo.store.writeTree(
      sortTree([
        { mode: '100644', path: 'errors.json', oid: await repo.store.writeBlob(`${JSON.stringify({ problems }, null, 2)}\n`), type: 'blob' },
        { mode: '100644', path: 'plan.json', oid: await repo.store.writeBlob(planText), type: 'blob' },
      ]),
    );
    const commit = await repo.store.writeCommit({
      tree,
      parents: [],
      message: `agora: ${id} rejected (${problems.length} problems)\n\nAgora-Run: ${id}\n`,
      author: who,
      committer: who,
    });
    if (!(await repo.store.casRef(repo.refs.rejected(id), commit, null))) return { kind: 'duplicate', key: id };
    await ev.octokit.rest.checks.create({
      owner: ev.owner,
      repo: ev.repo,
      name: 'agora',
      head_sha: ev.headSha,
      status: 'completed',
      conclusion: 'failure',
      external_id: id,
      output: { title: `Invalid plan: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, summary: invalidPlanSummary(this.planPath, problems) },
    });
    return { kind: 'invalid', problems };
  }

  /** A new plan commit on a branch cancels the runs of older plan commits on it. */
  private async supersede(ev: PlanEvent, repo: RepoContext, runId: string): Promise<void> {
    for (const a of this.active.values()) {
      if (a.repo !== repo || a.ev.branch !== ev.branch || a.runId === runId) continue;
      const reason = `superseded by a new plan commit ${ev.headSha.slice(0, 12)} on ${ev.branch} (run ${runId})`;
      const outcome = await cancelRun(repo.store, repo.refs, a.runId, reason, this.clock);
      this.opts.log?.info(`agora: ${a.runId}: ${outcome.kind} (${reason})`);
      a.wake();
    }
  }

  private async startRun(ev: PlanEvent, repo: RepoContext, stored: StoredRun): Promise<void> {
    const { plan, state } = stored;
    const base = { owner: ev.owner, repo: ev.repo, head_sha: ev.headSha };
    const runCheck = await ev.octokit.rest.checks.create({
      ...base,
      name: 'agora',
      status: 'in_progress',
      external_id: stored.runId,
      output: { title: `Run ${stored.runId}: ${plan.items.length} items`, summary: runSummary(plan, state) },
    });
    this.opts.log?.info(`agora: ${stored.runId}: run check created`);
    const itemChecks = new Map<string, number>();
    for (const item of plan.items) {
      const res = await ev.octokit.rest.checks.create({
        ...base,
        name: `agora / ${item.id}`,
        status: 'queued',
        external_id: `${stored.runId}/${item.id}`,
        output: { title: `${item.id}: queued`, summary: `Run \`${stored.runId}\`, item \`${item.id}\`: waiting for ${item.depends_on.length ? item.depends_on.map((d) => `\`${d}\``).join(', ') : 'a free slot'}.` },
      });
      itemChecks.set(item.id, res.data.id);
    }
    this.opts.log?.info(`agora: ${stored.runId}: item checks created`);
    let wakeUp: (() => void) | undefined;
    let woken = false;
    const wake = () => {
      woken = true;
      wakeUp?.();
    };
    const active: ActiveRun = {
      runId: stored.runId,
      ev,
      repo,
      runCheck: runCheck.data.id,
      itemChecks,
      reported: new Map(),
      updates: Promise.resolve(),
      wake,
      driver: new RunDriver(stored, repo.attempt, {
        wake,
        onCommit: (run) => this.enqueueReport(active, run),
      }),
    };
    this.active.set(stored.runId, active);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        if (woken) {
          woken = false;
          resolve();
          return;
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wakeUp = undefined;
          woken = false;
          resolve();
        }
        wakeUp = done;
      });
    this.track(
      (async () => {
        try {
          for (;;) {
            await active.driver.tick();
            if (active.driver.run.state.status !== 'running' && !active.driver.busy) break;
            if (this.closed && !active.driver.busy) break;
            const at = active.driver.wakeAt;
            await sleep(Math.min(this.opts.pollMs ?? 500, at === undefined ? Infinity : Math.max(0, at - this.clock())));
          }
          this.enqueueReport(active, active.driver.run); // transitions other writers committed (a cancel)
          await active.updates;
          if (active.driver.run.state.status !== 'running') await this.finish(active);
        } finally {
          this.active.delete(stored.runId);
        }
      })().catch((e: unknown) => this.opts.log?.error(`agora: ${stored.runId}: ${(e as Error).stack ?? String(e)}`)),
    );
  }

  /**
   * Item checks follow the state, not the transitions this driver made: a cancel (or any other writer)
   * commits transitions the driver only loads, so each call reports every item whose status moved since
   * the last report.
   */
  private async report(active: ActiveRun, run: StoredRun): Promise<void> {
    const { octokit, owner, repo } = active.ev;
    for (const item of Object.values(run.state.items)) {
      const id = active.itemChecks.get(item.id);
      const before = active.reported.get(item.id);
      if (id === undefined || before === item.status) continue;
      if (item.status === 'running' && !TERMINAL_ITEM_STATUSES.has(before ?? 'pending')) {
        active.reported.set(item.id, item.status);
        await octokit.rest.checks.update({
          owner,
          repo,
          check_run_id: id,
          status: 'in_progress',
          ...(item.startedAt ? { started_at: new Date(item.startedAt).toISOString() } : {}),
          output: { title: `${item.id}: running (attempt ${item.attempts})`, summary: `Run \`${run.runId}\`, item \`${item.id}\`: attempt ${item.attempts} is running.` },
        });
      } else if (TERMINAL_ITEM_STATUSES.has(item.status)) {
        const conclusion = conclusionOf(item.status);
        if (!conclusion) continue;
        active.reported.set(item.id, item.status);
        await octokit.rest.checks.update({
          owner,
          repo,
          check_run_id: id,
          status: 'completed',
          conclusion,
          completed_at: new Date(item.finishedAt ?? this.clock()).toISOString(),
          output: itemOutput(run.runId, item, await this.itemDetails(active, run, item)),
        });
      }
    }
  }

  private async itemDetails(active: ActiveRun, run: StoredRun, item: ItemState) {
    const { store } = active.repo;
    const patch = item.resultRef?.startsWith('git:') ? item.resultRef.slice(4) : undefined;
    let changes: Awaited<ReturnType<typeof diffTrees>> = [];
    if (patch) {
      const c = await store.readCommit(patch);
      const parentTree = c.parents[0] ? (await store.readCommit(c.parents[0])).tree : null;
      changes = await diffTrees(store, parentTree, c.tree);
    }
    const log = item.attempts > 0 ? await readLog(store, run.logsTree, logName(item.id, item.attempts)) : null;
    return {
      changes,
      ...(patch ? { patchUrl: `${active.ev.htmlUrl}/commit/${patch}` } : {}),
      ...(log ? { logTail: log.split('\n').slice(-40).join('\n').slice(-4000) } : {}),
    };
  }

  private enqueueReport(active: ActiveRun, run: StoredRun): void {
    active.updates = active.updates
      .then(() => this.report(active, run))
      .catch((e: unknown) => this.opts.log?.warn(`agora: ${run.runId}: check update failed: ${(e as Error).message}`));
  }

  /** The run is terminal: push its commits onto the branch, publish the audit, complete the run check. */
  private async finish(active: ActiveRun): Promise<void> {
    const run = active.driver.run;
    const { state, plan } = run;
    const { octokit, owner, repo, branch } = active.ev;
    const notes: string[] = [];
    let audit: AuditOutcome | undefined;
    if (state.status !== 'cancelled') {
      let head: Oid = state.base;
      const commits = await countCommits(active.repo, state.integrationHead, state.base);
      if (state.status === 'done' && commits > 0) {
        const pushed = await active.repo.store.mirror.pushRefs([
          { ref: `refs/heads/${branch}`, next: state.integrationHead, expected: state.base },
        ]);
        if (pushed.ok) {
          head = state.integrationHead;
          notes.push(`Pushed ${commits} commit${commits === 1 ? '' : 's'} onto \`${branch}\` (${state.integrationHead.slice(0, 12)}).`);
        } else {
          notes.push(
            `\`${branch}\` moved after the plan commit, so the ${commits} patch commit${commits === 1 ? ' was' : 's were'} not pushed; ` +
              `they stay at \`${active.repo.refs.integration(run.runId)}\` (replaying them onto the new head is not implemented yet).`,
          );
        }
      } else if (state.status !== 'done' && commits > 0) {
        notes.push(`The run did not succeed, so its ${commits} patch commit${commits === 1 ? '' : 's'} stay at \`${active.repo.refs.integration(run.runId)}\` and were not pushed.`);
      }
      this.opts.log?.info(`agora: ${run.runId}: branch push done; auditing`);
      audit = await finishAudit({
        octokit,
        owner,
        repo,
        htmlUrl: active.ev.htmlUrl,
        store: active.repo.store,
        refs: active.repo.refs,
        run,
        gateSha: head,
        clock: this.clock,
        ...(this.opts.signingKeyPem ? { signingKeyPem: this.opts.signingKeyPem } : {}),
      });
      notes.push(audit.note);
      this.opts.log?.info(`agora: ${run.runId}: audit ${audit.conclusion}`);
    }
    await octokit.rest.checks.update({
      owner,
      repo,
      check_run_id: active.runCheck,
      status: 'completed',
      conclusion: runConclusion(state),
      output: { title: `Run ${run.runId}: ${state.status}`, summary: runSummary(plan, state, notes) },
    });
  }
}

/** Commits on the first-parent chain from `head` down to (not including) `base`. */
async function countCommits(repo: RepoContext, head: Oid, base: Oid): Promise<number> {
  let n = 0;
  for (let at: Oid | undefined = head; at && at !== base; n += 1) at = (await repo.store.readCommit(at)).parents[0];
  return n;
}

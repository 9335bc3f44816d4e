import { errorStack } from '../errors.js';
import type { CheckActionEvent, HeadAbandonedEvent, PlanEvent, RepoAccess, RepoHandle, SweepReport } from './app-events.js';
import type { WorkflowJobEvent } from '../executors/actions-target.js';
import { handleOf } from './app-events.js';
import { resolveOptions, type AgoraGitHubOptions } from './app-options.js';
import { AppState } from './app-state.js';
import { intakePlanEvent } from './plan-intake.js';
import { RecentKeys } from './recent-keys.js';
import { cancelRunsAt, pressButton } from './run-requests.js';
import { takeOver, type TakeOver } from './run-takeover.js';
import { Sweeper } from './sweep.js';

/**
 * The app's work, independent of Probot: turn a plan commit into a run on GitHub and report it through
 * check runs; when the run ends, push its integration commits onto the branch and publish the audit.
 * This is the service: it takes events in and returns at once, drops duplicated deliveries, keeps the
 * background work and stops it. The work itself is done by plan-intake.ts (a commit taken in),
 * hosted-run.ts and check-reporter.ts (a run driven and shown), run-resume.ts (a run taken over),
 * run-requests.ts (buttons, closed pull requests) and sweep.ts. All state lives in the repository
 * (refs/agora/*) through the mirror; this object holds only caches and the running drivers.
 */

export type { Octokit } from './octokit.js';
export type { AgoraGitHubOptions } from './app-options.js';
export type * from './app-events.js';
export type { TakeOver } from './run-takeover.js';
export { RETRY_ACTION } from './check-buttons.js';
export { RERUN_ACTION } from './audit-release.js';

export class AgoraGitHub {
  private readonly app: AppState;
  /** The commits handled lately (duplicated deliveries are no-ops): bounded, see recent-keys.ts. */
  private readonly seen = new RecentKeys();
  private readonly sweeper: Sweeper;

  /** What each event, button press and sweep came to is told to `opts.onOutcome`; the App keeps none of it. */
  constructor(opts: AgoraGitHubOptions) {
    this.app = new AppState(resolveOptions(opts));
    this.sweeper = new Sweeper(this.app, this.seen);
  }

  /**
   * Takes the cache dir for this process now (else the first repository opened takes it): `agora app`
   * does at start, so a second process given the same AGORA_CACHE_DIR refuses to start
   * (`cache-dir-in-use`) instead of emptying this one's workspaces. Given up at close and kill.
   */
  holdCacheDir(): Promise<void> {
    return this.app.holdCacheDir();
  }

  /** The plan file's default path in repositories (`.github/agora.yml` may name another). */
  get planPath(): string {
    return this.app.opts.planPath;
  }

  /** This process's name in run leases. */
  get holder(): string {
    return this.app.opts.lease.holder;
  }

  /** Adds a repository (`owner/name`) to the sweep. */
  watchRepository(fullName: string): void {
    this.sweeper.watch(fullName);
  }

  /**
   * Sweeps now and then every `sweepIntervalMs` (default 60 s) on an unref'd timer, until close.
   * `access` opens the repositories no event has brought yet (after a restart: the configured ones).
   */
  startSweeping(access: RepoAccess): void {
    this.sweeper.start(access);
  }

  /**
   * Stops the periodic sweep until {@link resumeSweeping}; a pass under way finishes. With it stopped,
   * {@link idle} is reached once the work already under way and what it starts are done: nothing
   * periodic adds more.
   */
  pauseSweeping(): void {
    this.sweeper.stop();
  }

  /**
   * Goes on with the periodic sweep after {@link pauseSweeping}, its next pass one interval from now (none
   * at once, so an app left idle is idle when this returns); nothing after close. {@link startSweeping}
   * (Probot mounting the app) starts a paused sweep again too.
   */
  resumeSweeping(): void {
    this.sweeper.resume();
  }

  /**
   * One pass over the known repositories: open pull requests whose head commit no event brought are
   * handled as if their webhook had arrived (GitHub does not redeliver dropped webhooks), then every run
   * whose state on GitHub (refs/agora/runs/*) is `running` and that no driver here drives is taken over:
   * its dead attempts are recorded lost and run again, and it is finished as usual. Concurrent calls share one pass.
   */
  sweep(): Promise<SweepReport> {
    return this.sweeper.sweep();
  }

  /** Accepts an event and returns at once; the work goes on in the background. */
  onPlanEvent(ev: PlanEvent): void {
    this.sweeper.remember(handleOf(ev));
    const key = `${ev.owner}/${ev.repo}@${ev.headSha}`.toLowerCase();
    if (this.seen.has(key)) {
      this.app.emit({ kind: 'plan', outcome: { kind: 'duplicate', key } });
      return;
    }
    this.seen.add(key);
    this.app.track(
      intakePlanEvent(this.app, ev).then(
        (o) => {
          this.app.emit({ kind: 'plan', outcome: o });
          this.app.log.info(`agora: ${key}: ${o.kind}${'runId' in o ? ` ${o.runId}` : ''}${'why' in o ? ` (${o.why})` : ''}`);
        },
        (e: unknown) => {
          this.seen.delete(key); // a later delivery may try again
          this.app.log.error(`agora: ${key}: ${errorStack(e)}`);
        },
      ),
    );
  }

  /**
   * Takes over the running run `runId` of `ev`'s plan commit once the process that drove it lets go or its
   * lease expires (waiting up to `deadline`, by the App's clock); the run is then driven in the background
   * like any other ({@link idle} waits for it). The Agora Action's next job for the same head uses it.
   */
  takeOver(ev: PlanEvent, runId: string, deadline: number): Promise<TakeOver> {
    this.sweeper.remember(handleOf(ev));
    return this.app.track(takeOver(this.app, ev, runId, deadline));
  }

  /**
   * A `workflow_job` webhook: a job of the worker workflow moved (queued, started, completed). The
   * repository's `actions` target, if one waits for that attempt here, looks at it; nothing else does.
   */
  onWorkflowJob(ev: Pick<RepoHandle, 'owner' | 'repo' | 'repositoryId'>, job: WorkflowJobEvent): void {
    const ctx = this.app.openRepo(ev);
    if (ctx) this.app.track(ctx.then((c) => c.actions?.observe(job)).catch(() => undefined));
  }

  /** A button press: records the request in the run's state (leased push), then drives the run on. */
  onCheckAction(ev: CheckActionEvent): void {
    this.sweeper.remember(handleOf(ev));
    this.app.track(
      pressButton(this.app, ev).then(
        (o) => {
          this.app.emit({ kind: 'action', outcome: o });
          this.app.log.info(`agora: ${ev.request} by ${ev.by} on ${ev.checkName}: ${o.kind}`);
        },
        (e: unknown) => this.app.log.error(`agora: ${ev.request} on ${ev.checkName}: ${errorStack(e)}`),
      ),
    );
  }

  /**
   * A pull request closed (merged or not), or a branch deleted, while a run of its head commit still
   * goes: the run is cancelled. This is how a person stops a run on github.com: GitHub shows a check
   * run's buttons only once it has completed, so a running `agora` check can offer no Cancel button.
   */
  onHeadAbandoned(ev: HeadAbandonedEvent): void {
    this.sweeper.remember(handleOf(ev));
    const what = ev.cause.kind === 'pull-request-closed' ? `pull request #${ev.cause.number} was closed` : `branch ${ev.branch} was deleted`;
    this.app.track(
      cancelRunsAt(this.app, ev, `cancelled: ${what} by @${ev.by}`).then(
        (outcomes) => {
          for (const outcome of outcomes) this.app.emit({ kind: 'action', outcome });
          this.app.log.info(`agora: ${what} by ${ev.by}: ${outcomes.map((o) => o.kind).join(', ') || 'no run to cancel'}`);
        },
        (e: unknown) => this.app.log.error(`agora: ${what}: ${errorStack(e)}`),
      ),
    );
  }

  /** Resolves when no event handling and no run is in progress. */
  idle(): Promise<void> {
    return this.app.idle();
  }

  get busy(): boolean {
    return this.app.busy;
  }

  /**
   * Stops every run's workers and waits for the background work. A worker the next process can re-attach
   * to (a job on the `actions` target) is handed over, left going with its attempt running; the others are
   * stopped and recorded as interrupted. The runs' leases are given back, so the next process (a deploy's
   * new one, another replica) takes the runs over at its next sweep.
   */
  async close(): Promise<void> {
    this.app.closed = true;
    this.sweeper.stop();
    await Promise.all([...this.app.active.values()].map((a) => a.stop('the agora app is stopping', { handOver: true })));
    await this.app.idle();
    await this.app.releaseCacheDir();
  }

  /**
   * Simulates a crash (tests): stops every worker and every further write, records nothing — the runs stay
   * `running` on GitHub with their attempts, exactly as a killed process leaves them.
   */
  async kill(): Promise<void> {
    this.app.killed = true;
    this.app.closed = true;
    this.sweeper.stop();
    // Handed over: a crashed process sends GitHub nothing, not even the cancel of its attempts' jobs.
    await Promise.all([...this.app.active.values()].map((a) => a.stop('killed', { handOver: true })));
    await this.app.idle();
    await this.app.releaseCacheDir(); // a dead process's claim is provably gone; this one's process lives on
  }

  /** Remote pushes and refused pushes (CAS conflicts) across repositories. */
  gitStats(): ReturnType<AppState['gitStats']> {
    return this.app.gitStats();
  }
}

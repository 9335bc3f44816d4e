import { errorMessage, errorStack } from '../errors.js';
import { mirrorRef } from '../git/refspec.js';
import { crashPoint } from '../crash-points.js';
import type { ItemStatus } from '../engine/types.js';
import { firstParentChain } from '../git/history.js';
import type { Oid } from '../git/types.js';
import { RunDriver } from '../runs/driver.js';
import { RunLease } from '../runs/lease.js';
import type { LeaseKeeper } from '../runs/lease-keeper.js';
import type { StoredRun } from '../runs/state-store.js';
import type { PlanEvent } from './app-events.js';
import type { AppState, DrivenRun } from './app-state.js';
import { finishAudit, postGate, type AuditOutcome } from './audit-release.js';
import { CheckReporter, type ReportedRun } from './check-reporter.js';
import { runConclusion, runSummary } from './check-text.js';
import { landPatches } from './land-patches.js';
import type { RepoContext } from './repo-context.js';
import { codeSpan, plainText } from './untrusted-markdown.js';

/**
 * One run driven by this process: the driver's loop, the lease kept alive and the run re-read from
 * GitHub between ticks, and, when the run ends, its finish (patches pushed onto the branch, the audit
 * published, the run check completed), tried again when GitHub refuses. Its check runs are written by its
 * {@link CheckReporter}.
 */
export class HostedRun implements DrivenRun, ReportedRun {
  readonly runId: string;
  readonly driver: RunDriver;
  readonly checks: CheckReporter;
  /** When the run was last re-read from GitHub (or pushed there, which proves GitHub holds this state). */
  private refreshedAt: number;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  /**
   * The ended run's finish is over: its `agora` check was completed (the finish done, or given up on with
   * a red gate). Until then the lease of an ended run is never given back, only left (or, on close(), made)
   * to expire, which is what tells the sweep to finish the run (unfinished-run.ts): a finish cut short by close() is not lost.
   */
  private finishOver = false;
  /**
   * The run's recovery after a restart failed (a target could not say whether a worker outlived the dead
   * process): it was not driven, and its lease goes back expired, for the next sweep to try again.
   */
  private recoveryFailed = false;

  private constructor(
    private readonly app: AppState,
    readonly ev: PlanEvent,
    readonly repo: RepoContext,
    stored: StoredRun,
    runCheck: number,
    shown: { ids: Map<string, number>; statuses: Map<string, ItemStatus>; attempts?: Map<string, number> },
    private readonly lease: LeaseKeeper,
    /** After the run stopped being driven here (not on close or kill): drive it again if a Retry reopened it meanwhile. */
    private readonly reopened: (run: HostedRun) => Promise<void>,
    /** A run taken over from a dead process: its running attempts are recovered before its first tick. */
    private readonly recovering: boolean,
  ) {
    this.runId = stored.runId;
    this.refreshedAt = app.opts.clock();
    this.checks = new CheckReporter(app, this, runCheck, shown);
    this.driver = new RunDriver(stored, repo.attempt, {
      wake: () => this.wake(),
      onCommit: (run) => {
        this.refreshedAt = this.app.opts.clock(); // the push landed: GitHub holds exactly this state
        this.checks.enqueue(run);
      },
    });
  }

  /**
   * Drives a claimed run in the background until it ends (and again if a button reopens it meanwhile).
   * `shown` are the run's check runs already on GitHub (none for a new run: the reports create them).
   * With `recover` (a run a dead process drove), the attempts its state says are running are re-attached
   * or recorded lost first (RunDriver.recover): a run is never ticked with attempts nobody watches.
   */
  static drive(
    app: AppState,
    args: {
      ev: PlanEvent;
      repo: RepoContext;
      stored: StoredRun;
      runCheck: number;
      shown: { ids: Map<string, number>; statuses: Map<string, ItemStatus>; attempts?: Map<string, number> };
      lease: LeaseKeeper;
      recover?: boolean;
    },
    reopened: (run: HostedRun) => Promise<void>,
  ): HostedRun {
    const run = new HostedRun(app, args.ev, args.repo, args.stored, args.runCheck, args.shown, args.lease, reopened, args.recover === true);
    app.active.set(run.runId, run);
    app.track(run.loop().catch((e: unknown) => app.log.error(`agora: ${run.runId}: ${errorStack(e)}`)));
    return run;
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /**
   * Stops the run's workers, and returns once the check writes in flight are done (or failed). With
   * `handOver` (a graceful stop: the next process takes the run over), workers that process can re-attach
   * to are left going (RunDriver.shutdown).
   */
  async stop(why: string, opts: { handOver?: boolean } = {}): Promise<void> {
    await this.driver.shutdown(why, opts);
    this.wake();
    await this.checks.written();
  }

  current(): StoredRun {
    return this.driver.run;
  }

  pendingOutcome(itemId: string): boolean {
    return this.driver.hasPendingOutcome(itemId);
  }

  live(): boolean {
    return this.app.active.get(this.runId) === this && !this.app.killed;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.woken) {
        this.woken = false;
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private async loop(): Promise<void> {
    const { app, driver, repo } = this;
    const { opts } = app;
    try {
      if (this.recovering && !(await this.recover())) return;
      let firstTick = true;
      for (;;) {
        for (;;) {
          if (app.killed) return;
          await driver.tick();
          if (firstTick) this.checks.enqueue(driver.run); // the first report, even if the tick committed nothing
          firstTick = false;
          if (app.killed) return;
          if (driver.run.state.status !== 'running' && !driver.busy) break;
          if (app.closed && !driver.busy) break;
          const at = driver.wakeAt;
          await this.sleep(Math.min(opts.pollMs, opts.lease.refreshMs, at === undefined ? Infinity : Math.max(0, at - opts.clock())));
          if (!app.closed && !(await this.keepLease())) return;
        }
        // The run's final state is on GitHub and nothing of its finish is done yet: a crash here leaves an
        // ended run with its `agora` check in progress and its lease unreleased, which the sweep finishes.
        if (driver.run.state.status !== 'running') crashPoint('run-ended');
        this.checks.enqueue(driver.run); // transitions other writers committed (a cancel)
        await this.checks.written();
        if (app.killed || driver.run.state.status === 'running') return;
        await this.checks.settle();
        this.finishOver = false;
        await this.finishPatiently();
        // A Retry pressed while the run was finishing (here or on another replica) reopened it: drive it
        // again, with a new run check.
        await repo.store.fetch([mirrorRef(repo.refs.run(this.runId))]);
        await driver.tick();
        if (app.closed || (driver.run.state.status as string) !== 'running') return;
        await this.checks.newRunCheck(driver.run);
      }
    } finally {
      this.checks.stop();
      // A crash (kill) leaves the lease to expire. An ended run whose finish is not over (close() while
      // GitHub refused a step) gets its lease back already expired, not given back (a given-back lease tells
      // the sweep the finish was done), so the next sweep finishes it without waiting out the lease.
      // Otherwise the next replica may take the run at once.
      const finishPending = driver.run.state.status !== 'running' && !this.finishOver;
      if (finishPending && !app.killed)
        app.log.info(`agora: ${this.runId}: stopped before its finish was over; its lease is handed back expired, so the next sweep finishes it`);
      await this.lease.stop({ release: app.killed ? false : finishPending || this.recoveryFailed ? 'expired' : true });
      app.active.delete(this.runId);
      app.claimed.delete(this.runId);
      // A Retry another replica recorded while this one still held the lease found it taken and left the
      // run to its holder: look once more now that the lease is free, and drive the run again if it reopened.
      // Not after a failed recovery: that is the next sweep's to try again, not a loop's here.
      if (!app.closed && !app.killed && !this.recoveryFailed) await this.reopened(this);
    }
  }

  /**
   * Recovers the run's running attempts (RunDriver.recover). False, logged, when that failed: the run is
   * then not driven here, and the next sweep resumes it again (what recovery does is harmless to redo).
   */
  private async recover(): Promise<boolean> {
    try {
      await this.driver.recover();
      return true;
    } catch (e) {
      this.recoveryFailed = true;
      this.app.log.error(`agora: ${this.runId}: its running attempts could not be recovered (the next sweep tries again): ${errorMessage(e)}`);
      return false;
    }
  }

  /**
   * Between ticks: gives the run up when the lease was lost (another replica found it expired — this
   * process stalled — and drives it now: this one stops its workers and lets go; false), and re-reads the
   * run from GitHub (what other replicas recorded: a cancel, a retry) when this driver has not pushed it
   * for `refreshMs`, counted from the end of the last re-read or push — a push that lands proves the run
   * was not moved by anyone else, and one that is refused re-reads it anyway.
   */
  private async keepLease(): Promise<boolean> {
    const { store, refs } = this.repo;
    const { clock, lease } = this.app.opts;
    if (this.lease.lost) {
      const holder = (await RunLease.read(store, refs, this.runId).catch(() => null))?.holder ?? 'another replica';
      this.app.log.warn(`agora: ${this.runId}: lease lost to ${holder}; stopping this process's workers`);
      // Handed over: the holder re-attaches to this process's jobs on the actions target; cancelling them
      // here would end the attempts it collects as lost runners.
      await this.driver.shutdown(`the run is driven by ${holder} now`, { handOver: true });
      return false;
    }
    if (clock() - this.refreshedAt < lease.refreshMs) return true;
    try {
      await store.fetch([mirrorRef(refs.run(this.runId))]);
    } catch (e) {
      this.app.log.warn(`agora: ${this.runId}: refreshing from GitHub failed (will retry): ${errorMessage(e)}`);
    } finally {
      this.refreshedAt = clock();
    }
    return true;
  }

  /**
   * Finishing writes to GitHub several times (branch, release, gate, run check); when GitHub still refuses
   * after the client's own retries (secondary limits under sustained load, an outage), the whole finish is
   * tried again — each step finds what an earlier try did — 3 times, `finishRetryMs` and twice that apart.
   */
  private async finishPatiently(): Promise<void> {
    for (let tries = 1; ; tries += 1) {
      try {
        await this.finish();
        this.finishOver = true;
        return;
      } catch (e) {
        if (tries >= 3 && !this.app.closed) this.finishOver = await this.finishFailed(e);
        if (tries >= 3 || this.app.closed) throw e;
        this.app.log.info(`agora: ${this.runId}: finishing failed (will try again): ${errorMessage(e)}`);
        await new Promise((r) => setTimeout(r, this.app.opts.finishRetryMs * tries));
      }
    }
  }

  /**
   * Finishing failed for good: the run check is completed (failure) and the gate on the plan commit is
   * red, both naming why, so that no check is left in progress. Best effort: GitHub may still refuse
   * (false: the checks are not completed, and the sweep will try the finish again).
   */
  private async finishFailed(e: unknown): Promise<boolean> {
    const run = this.driver.run;
    const why = `finishing the run failed 3 times: ${errorMessage(e) ?? String(e)}`;
    try {
      await postGate(this.ev, run.state.base, run.runId, 'failure', {
        title: 'Not audited: the run could not be finished',
        summary: `Run ${codeSpan(run.runId)} (${run.state.status}): ${plainText(why)}`,
      });
      await this.checks.completeRunCheck('failure', {
        title: `Run ${run.runId}: ${run.state.status}, not finished`,
        summary: runSummary(run.plan, run.state, [plainText(why)]),
      });
      return true;
    } catch (err) {
      this.app.log.warn(`agora: ${run.runId}: ${why}; the checks could not be completed either: ${errorMessage(err)}`);
      return false;
    }
  }

  /** The run is terminal: push its commits onto the branch, publish the audit, complete the run check. */
  private async finish(): Promise<void> {
    const run = this.driver.run;
    const { state, plan } = run;
    const { ev, repo } = this;
    const { octokit, owner, branch } = ev;
    const { clock, signer } = this.app.opts;
    const notes: string[] = [];
    let audit: AuditOutcome | undefined;
    let landingRefused: string | undefined;
    if (state.status !== 'cancelled') {
      let head: Oid = state.base;
      const commits = await countCommits(repo, state.integrationHead, state.base);
      if (state.status === 'done' && commits > 0 && !branch) {
        notes.push(
          `No branch points at the plan commit any more, so the ${commits} patch commit${commits === 1 ? '' : 's'} stay at \`${repo.refs.integration(run.runId)}\`.`,
        );
      } else if (state.status === 'done' && commits > 0) {
        const landed = await landPatches({ store: repo.store, refs: repo.refs, run, branch, commits, now: clock() });
        if (landed.head) head = landed.head;
        if (landed.refused !== undefined) landingRefused = landed.refused;
        notes.push(landed.note);
      } else if (state.status !== 'done' && commits > 0) {
        notes.push(
          `The run did not succeed, so its ${commits} patch commit${commits === 1 ? ' stays' : 's stay'} at \`${repo.refs.integration(run.runId)}\` and ${commits === 1 ? 'was' : 'were'} not pushed.`,
        );
      }
      this.app.log.info(`agora: ${run.runId}: branch push done; auditing`);
      audit = await finishAudit({
        octokit,
        owner,
        repo: ev.repo,
        htmlUrl: ev.htmlUrl,
        ...(ev.repositoryId !== undefined ? { repositoryId: ev.repositoryId } : {}),
        store: repo.store,
        refs: repo.refs,
        run,
        gateSha: head,
        ...(landingRefused !== undefined ? { landingRefused } : {}),
        clock,
        ...(signer ? { signer } : {}),
        // The report beside the bundle: redacted with the secrets the App's config declares, from this repository's.
        report: { config: repo.attempt.config, environment: repo.attempt.environment },
      });
      notes.push(audit.note);
      this.app.log.info(`agora: ${run.runId}: audit ${audit.conclusion}`);
    }
    await this.checks.completeRunCheck(runConclusion(state), { title: `Run ${run.runId}: ${state.status}`, summary: runSummary(plan, state, notes) });
  }
}

/** Commits on the first-parent chain from `head` down to (not including) `base`. */
async function countCommits(repo: RepoContext, head: Oid, base: Oid): Promise<number> {
  const found = await firstParentChain(repo.store, base, head, 100_000);
  if (!found.ok) throw new Error(`integration head ${head} does not descend from the plan commit ${base}: ${found.why}`);
  return found.chain.length;
}

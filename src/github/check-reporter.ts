import { errorMessage } from '../errors.js';
import type { ItemState, ItemStatus } from '../engine/types.js';
import { commitChanges } from '../git/tree-diff.js';
import { patchCommitOf } from '../log/result-ref.js';
import { logName, readLog, type StoredRun } from '../runs/state-store.js';
import type { PlanEvent } from './app-events.js';
import type { AppState } from './app-state.js';
import { RETRY_ACTION } from './check-buttons.js';
import { itemCheckName, itemExternalId, RUN_CHECK_NAME, runExternalId } from './check-names.js';
import { checksFor, planCheckWrites, progressDue, unsettledItems, type CheckPlanInput, type CheckWrite, type ProgressShown } from './check-plan.js';
import { itemOutput, runSummary, type CheckConclusion } from './check-text.js';
import type { RepoContext } from './repo-context.js';

/**
 * The check runs of one hosted run: their ids, and the writes that make them show the run's state. What
 * to write is decided by planCheckWrites (check-plan.ts); this performs it, one report at a time, in
 * commit order. Reports coalesce: while one is being written, later states replace each other and only
 * the newest is reported, so an item that started and finished in between goes from queued to completed
 * in one write (GitHub shows the final state either way).
 */

/** What the reporter needs of its run. */
export interface ReportedRun {
  readonly runId: string;
  readonly ev: PlanEvent;
  readonly repo: RepoContext;
  /** The run's newest state here. */
  current(): StoredRun;
  /** True when the item's attempt ended here and the next commit records it. */
  pendingOutcome(itemId: string): boolean;
  /** False once the run is no longer driven here (or the process was killed): no timer reports any more. */
  live(): boolean;
}

export class CheckReporter {
  /** The status each item check last showed. */
  private readonly statuses: Map<string, ItemStatus>;
  private readonly ids: Map<string, number>;
  /** The attempt each completed item check showed (-1: an earlier one than any to come). */
  private readonly attempts: Map<string, number>;
  /** GitHub updates, in commit order. */
  private updates: Promise<void> = Promise.resolve();
  /** The newest state not reported yet, and whether a report of it is already queued. */
  private latest: StoredRun | undefined;
  private queued = false;
  /** A report scheduled for when a started item's check is due to show `in_progress`. */
  private laterTimer: NodeJS.Timeout | undefined;
  /** The audit seq of the last state reported (older snapshots are skipped). */
  private reportedSeq = -1;
  /** Why the last report failed (GitHub refused after retries), until one succeeds. */
  private error: string | undefined;
  /** A large run (over itemChecksUpTo items) shows its items in the `agora` check: the title shown last, and when. */
  private progressShown: ProgressShown | undefined;

  constructor(
    private readonly app: AppState,
    private readonly run: ReportedRun,
    /** The `agora` check of the run. */
    public runCheck: number,
    shown: { ids: Map<string, number>; statuses: Map<string, ItemStatus>; attempts?: Map<string, number> },
  ) {
    this.ids = shown.ids;
    this.statuses = shown.statuses;
    this.attempts = shown.attempts ?? new Map();
  }

  /** Queues a report of `run` behind the ones in flight. */
  enqueue(run: StoredRun): void {
    if (!this.latest || (run.last?.seq ?? -1) >= (this.latest.last?.seq ?? -1)) this.latest = run;
    if (this.queued) return;
    this.queued = true;
    this.updates = this.updates
      .then(() => {
        this.queued = false;
        const newest = this.latest ?? run;
        return this.app.killed ? undefined : this.report(newest);
      })
      .then(
        () => {
          this.error = undefined;
        },
        (e: unknown) => {
          // GitHub refused even after the client's retries (e.g. secondary limits under sustained load): the
          // checks not shown yet are written again by the next report; one comes soon if nothing else does.
          this.error = errorMessage(e);
          this.app.log.info(`agora: ${run.runId}: check update deferred (will try again): ${this.error}`);
          this.later(this.app.opts.reportRetryMs);
        },
      );
  }

  /** Resolves when the reports queued so far are written (or failed). */
  written(): Promise<void> {
    return this.updates;
  }

  /**
   * Before a run's checks are completed: every item check must show its final state. Reports that GitHub
   * refused are made again (3 tries); what still fails is logged by name.
   */
  async settle(): Promise<void> {
    const behind = () =>
      unsettledItems(
        { ids: this.ids, statuses: this.statuses, attempts: this.attempts },
        { items: Object.values(this.run.current().state.items), ...this.mode(this.run.current()) },
      );
    for (let tries = 0; tries < 3 && behind().length > 0; tries += 1) {
      this.enqueue(this.run.current());
      await this.updates;
    }
    const left = behind();
    if (left.length > 0)
      this.app.log.warn(`agora: ${this.run.runId}: the checks of ${left.map((i) => i.id).join(', ')} could not be updated: ${this.error ?? 'unknown error'}`);
  }

  stop(): void {
    clearTimeout(this.laterTimer);
  }

  /** A new `agora` check for the run (after a Retry reopened a finished run). */
  async newRunCheck(run: StoredRun): Promise<void> {
    this.runCheck = await createRunCheck(this.run.ev, run);
    this.progressShown = undefined; // the new check shows none of the old one's progress
  }

  /** Completes the `agora` check. */
  async completeRunCheck(conclusion: CheckConclusion, output: { title: string; summary: string }): Promise<void> {
    const { octokit, owner, repo } = this.run.ev;
    await octokit.rest.checks.update({ owner, repo, check_run_id: this.runCheck, status: 'completed', conclusion, output, actions: [] });
  }

  /**
   * Item checks follow the state, not the transitions this driver made: a cancel (or any other writer)
   * commits transitions the driver only loads, so each report writes every item whose status moved since
   * the last report.
   */
  private async report(run: StoredRun): Promise<void> {
    const plan = planCheckWrites(
      { ids: this.ids, statuses: this.statuses, attempts: this.attempts },
      {
        seq: run.last?.seq ?? -1,
        reportedSeq: this.reportedSeq,
        items: Object.values(run.state.items),
        now: this.app.opts.clock(),
        progressDelayMs: this.app.opts.progressDelayMs,
        pendingOutcome: (id) => this.run.pendingOutcome(id),
        ...this.mode(run),
      },
    );
    if (!plan.report) return;
    this.reportedSeq = run.last?.seq ?? -1;
    if (plan.laterMs !== undefined) this.later(plan.laterMs);
    // Each write is recorded as shown only once GitHub accepted it: a failed one is planned again next report.
    for (const w of plan.writes) {
      if (this.app.killed) return; // a killed process writes nothing more
      await this.write(run, w);
    }
    if (this.mode(run).checksFor === 'failures') await this.showProgress(run);
  }

  private mode(run: StoredRun): Pick<CheckPlanInput, 'checksFor' | 'maxChecks'> {
    return { checksFor: checksFor(run.plan.items.length, this.app.opts.itemChecksUpTo), maxChecks: this.app.opts.itemChecksUpTo };
  }

  /**
   * A large run's progress in its `agora` check: written when the counts moved, at most once per
   * `progressEveryMs`; a title held back is written by a later report (one is scheduled).
   */
  private async showProgress(run: StoredRun): Promise<void> {
    if (run.state.status !== 'running') return; // the finish completes the check
    const title = progressTitle(run);
    const now = this.app.opts.clock();
    const due = progressDue(this.progressShown, { title, now, everyMs: this.app.opts.progressEveryMs });
    if (due.laterMs !== undefined) this.later(due.laterMs);
    if (!due.write) return;
    const { octokit, owner, repo } = this.run.ev;
    await octokit.rest.checks.update({ owner, repo, check_run_id: this.runCheck, output: { title, summary: runSummary(run.plan, run.state) } });
    this.progressShown = { title, at: now };
  }

  private async write(run: StoredRun, w: CheckWrite): Promise<void> {
    const { octokit, owner, repo } = this.run.ev;
    const item = run.state.items[w.itemId]!;
    // Reports coalesce, so an item that ran between two reports was never shown in progress: its start still shows.
    const started = item.startedAt ? { started_at: new Date(item.startedAt).toISOString() } : {};
    if (w.kind === 'create') {
      this.ids.set(
        w.itemId,
        await createItemCheck(this.run.ev, run, w.itemId, w.status === 'queued' ? queuedBody(run, w.itemId) : { ...started, ...runningBody(run, item) }),
      );
      if (w.shows) this.statuses.set(w.itemId, w.shows);
      else this.statuses.delete(w.itemId);
    } else if (w.kind === 'progress') {
      await octokit.rest.checks.update({
        owner,
        repo,
        check_run_id: this.ids.get(w.itemId)!,
        ...started,
        ...runningBody(run, item),
        ...this.jobLink(run, item),
      });
      this.statuses.set(w.itemId, 'running');
    } else {
      const body = {
        status: 'completed' as const,
        conclusion: w.conclusion,
        ...this.jobLink(run, item),
        ...started,
        completed_at: new Date(item.finishedAt ?? this.app.opts.clock()).toISOString(),
        output: itemOutput(run.runId, item, await this.itemDetails(run, item)),
        actions: w.retry ? [RETRY_ACTION] : [],
      };
      if (w.create) this.ids.set(w.itemId, await createItemCheck(this.run.ev, run, w.itemId, body));
      else await octokit.rest.checks.update({ owner, repo, check_run_id: this.ids.get(w.itemId)!, ...body });
      this.statuses.set(w.itemId, w.status);
      this.attempts.set(w.itemId, item.attempts);
    }
  }

  /** `details_url`: the page of the worker job that ran the item's attempt, when it ran on the `actions` target here. */
  private jobLink(run: StoredRun, item: ItemState): { details_url?: string } {
    const url = item.attempts > 0 ? this.run.repo.actions?.jobUrl(run.runId, item.id, item.attempts) : undefined;
    return url ? { details_url: url } : {};
  }

  private async itemDetails(run: StoredRun, item: ItemState) {
    const { store } = this.run.repo;
    const patch = patchCommitOf(item.resultRef);
    const changes = patch ? await commitChanges(store, patch) : [];
    const log = item.attempts > 0 ? await readLog(store, run.logsTree, logName(item.id, item.attempts)) : null;
    const jobUrl = this.jobLink(run, item).details_url;
    return {
      changes,
      ...(jobUrl ? { jobUrl } : {}),
      ...(patch ? { patchUrl: `${this.run.ev.htmlUrl}/commit/${patch}` } : {}),
      ...(log ? { logTail: log.split('\n').slice(-40).join('\n').slice(-4000) } : {}),
    };
  }

  /** Reports the run's newest state again in `ms` (one timer per run; a report that finds more due schedules again). */
  private later(ms: number): void {
    if (this.laterTimer) return;
    this.laterTimer = setTimeout(() => {
      this.laterTimer = undefined;
      if (this.run.live()) this.enqueue(this.run.current());
    }, ms);
  }
}

/** `Run <id>: 812/10000 done, 3 failed, 2 running`. */
function progressTitle(run: StoredRun): string {
  const counts = new Map<ItemStatus, number>();
  for (const item of Object.values(run.state.items)) counts.set(item.status, (counts.get(item.status) ?? 0) + 1);
  const parts = [`${counts.get('done') ?? 0}/${run.plan.items.length} done`];
  for (const status of ['failed', 'running', 'skipped', 'cancelled'] as const) if (counts.get(status)) parts.push(`${counts.get(status)} ${status}`);
  return `Run ${run.runId}: ${parts.join(', ')}`;
}

/** The run's `agora` check, created in progress with the run's summary. */
export async function createRunCheck(ev: PlanEvent, stored: StoredRun): Promise<number> {
  const res = await ev.octokit.rest.checks.create({
    owner: ev.owner,
    repo: ev.repo,
    head_sha: ev.headSha,
    name: RUN_CHECK_NAME,
    status: 'in_progress',
    external_id: runExternalId(stored.runId),
    output: { title: `Run ${stored.runId}: ${stored.plan.items.length} items`, summary: runSummary(stored.plan, stored.state) },
  });
  return res.data.id;
}

/** What an item check shows while its attempt runs. */
function runningBody(run: StoredRun, item: ItemState) {
  return {
    status: 'in_progress' as const,
    output: {
      title: `${item.id}: running (attempt ${item.attempts})`,
      summary: `Run \`${run.runId}\`, item \`${item.id}\`: attempt ${item.attempts} is running.`,
    },
  };
}

/** What a reopened item's new check shows until its attempt starts. */
function queuedBody(run: StoredRun, itemId: string) {
  const item = run.plan.items.find((i) => i.id === itemId)!;
  const waits = item.depends_on.length ? item.depends_on.map((d) => `\`${d}\``).join(', ') : 'a free slot';
  return { status: 'queued' as const, output: { title: `${item.id}: queued`, summary: `Run \`${run.runId}\`, item \`${item.id}\`: waiting for ${waits}.` } };
}

type ItemCheckBody = Omit<Parameters<PlanEvent['octokit']['rest']['checks']['create']>[0] & object, 'owner' | 'repo' | 'head_sha' | 'name' | 'external_id'>;

/** An item's check run on the plan commit, named and identified so that it is found again (resume, buttons). */
async function createItemCheck(ev: PlanEvent, stored: StoredRun, itemId: string, body: ItemCheckBody): Promise<number> {
  const res = await ev.octokit.rest.checks.create({
    owner: ev.owner,
    repo: ev.repo,
    head_sha: ev.headSha,
    name: itemCheckName(itemId),
    external_id: itemExternalId(stored.runId, itemId),
    ...body,
  });
  return res.data.id;
}

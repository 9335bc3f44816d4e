import { errorMessage } from '../errors.js';
import { mirrorPrefix } from '../git/refspec.js';
import type { RepoAccess, RepoHandle, SweepReport } from './app-events.js';
import type { AppState } from './app-state.js';
import { readAppRun } from './listed-run.js';
import { intakePlanEvent } from './plan-intake.js';
import type { RecentKeys } from './recent-keys.js';
import { resume } from './run-resume.js';
import { finishPending } from './unfinished-run.js';

/**
 * The sweep: what webhooks cannot be trusted to bring. Now and then, over every repository the App
 * knows, open pull requests whose head commit no event brought are handled as if their webhook had
 * arrived (GitHub does not redeliver dropped webhooks), and every run whose state on GitHub is `running`
 * and that no driver here drives is taken over (run-resume.ts), as is every ended run whose finish its
 * driver did not live to complete (unfinished-run.ts): driven again, it only finishes.
 */
export class Sweeper {
  /**
   * Repositories the sweep covers, with the last handle an event brought (null: open through access):
   * keyed `#<repository id>` once the id is known, by lowercase full name until then. A name can pass to
   * another repository (rename, then a new one takes the name): the id is what trust and secrets belong to.
   */
  private readonly known = new Map<string, { fullName: string; handle: RepoHandle | null }>();
  private access: RepoAccess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<SweepReport> | undefined;

  constructor(
    private readonly app: AppState,
    /** The commits already handled here (shared with webhook intake). */
    private readonly seen: RecentKeys,
  ) {
    for (const r of app.opts.repositories) this.watch(r);
  }

  /** Adds a repository (`owner/name`) to the sweep. */
  watch(fullName: string): void {
    const name = fullName.toLowerCase();
    if (![...this.known.values()].some((k) => k.fullName === name)) this.known.set(name, { fullName: name, handle: null });
  }

  /** Keeps `handle` for the sweep, under its repository id when it has one. */
  remember(handle: RepoHandle): void {
    const fullName = `${handle.owner}/${handle.repo}`.toLowerCase();
    if (handle.repositoryId === undefined) {
      this.known.set(fullName, { fullName, handle });
      return;
    }
    this.known.delete(fullName);
    this.known.set(`#${handle.repositoryId}`, { fullName, handle });
  }

  /** Sweeps now, then every `sweepIntervalMs` on an unref'd timer, until {@link stop}. */
  start(access: RepoAccess): void {
    this.access = access;
    if (this.timer || this.app.closed) return;
    void this.sweep();
    this.every();
  }

  /** Ends the periodic sweep (a pass under way finishes); {@link resume} goes on with it. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Goes on with the periodic sweep after {@link stop}, its next pass one interval from now (not at once:
   * whoever paused it to let the app go idle finds it idle when this returns). Nothing if it was never
   * started, is running, or the app is closed.
   */
  resume(): void {
    if (this.access && !this.timer && !this.app.closed) this.every();
  }

  private every(): void {
    this.timer = setInterval(() => void this.sweep(), this.app.opts.sweepIntervalMs);
    this.timer.unref();
  }

  /** One pass over the known repositories; concurrent calls share one pass. */
  sweep(): Promise<SweepReport> {
    if (this.sweeping) return this.sweeping;
    const pass = this.app.track(this.sweepAll()).finally(() => {
      this.sweeping = undefined;
    });
    this.sweeping = pass;
    return pass;
  }

  private async sweepAll(): Promise<SweepReport> {
    const { log } = this.app;
    const report: SweepReport = { repositories: 0, discovered: [], resumed: [], finished: [], errors: [] };
    try {
      for (const fullName of (await this.access?.list?.()) ?? []) this.watch(fullName);
    } catch (e) {
      const msg = `agora: sweep: listing the installations' repositories: ${errorMessage(e)}`;
      report.errors.push(msg);
      log.warn(msg);
    }
    for (const [key, known] of [...this.known]) {
      if (this.app.closed) break;
      const { fullName } = known;
      try {
        const handle = known.handle ? await this.stillNamed(key, known.handle) : await this.open(fullName);
        if (!handle) continue;
        report.repositories += 1;
        await this.sweepRepository(handle, report);
      } catch (e) {
        const msg = `agora: sweep of ${fullName}: ${errorMessage(e)}`;
        report.errors.push(msg);
        log.warn(msg);
      }
    }
    if (report.discovered.length || report.resumed.length || report.finished.length) {
      log.info(
        `agora: sweep: ${report.discovered.length} commits discovered, resumed ${report.resumed.join(', ') || 'none'}, finishing ${report.finished.join(', ') || 'none'}`,
      );
    }
    this.app.emit({ kind: 'sweep', report });
    return report;
  }

  /** Opens `fullName` through the app's access (and remembers it by id); null when the app is not installed there. */
  private async open(fullName: string): Promise<RepoHandle | null> {
    const handle = (await this.access?.open(fullName)) ?? null;
    if (handle) this.remember(handle);
    return handle;
  }

  /**
   * An event's handle, if its name still names its repository. When another repository answers to the
   * name now (the old one was renamed, or deleted, and a new one took the name), the handle is dropped
   * and the name is opened afresh: the new repository gets its own id, trust and secrets, never the old
   * one's. (The renamed repository is found under its new name through the installations' list.)
   */
  private async stillNamed(key: string, handle: RepoHandle): Promise<RepoHandle | null> {
    if (handle.repositoryId === undefined) return handle;
    let id: number | null;
    try {
      id = (await handle.octokit.rest.repos.get({ owner: handle.owner, repo: handle.repo })).data.id;
    } catch (e) {
      if ((e as { status?: number }).status !== 404) throw e;
      id = null;
    }
    if (id === handle.repositoryId) return handle;
    this.known.delete(key);
    const fullName = `${handle.owner}/${handle.repo}`.toLowerCase();
    this.app.log.info(`agora: sweep: ${fullName} no longer names repository ${handle.repositoryId}${id === null ? '' : ` (it names ${id} now)`}`);
    return id === null ? null : this.open(fullName);
  }

  private async sweepRepository(handle: RepoHandle, report: SweepReport): Promise<void> {
    const { app } = this;
    const { octokit, owner, repo: name } = handle;
    const fullName = `${owner}/${name}`.toLowerCase();
    // Webhooks GitHub never delivered: the open pull requests' head commits (forks are not ours).
    const pulls = await octokit.paginate(octokit.rest.pulls.list, { owner, repo: name, state: 'open', per_page: 100 });
    for (const pr of pulls) {
      if (app.closed) return;
      if (pr.head.repo?.full_name?.toLowerCase() !== fullName) continue;
      const key = `${fullName}@${pr.head.sha}`.toLowerCase();
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      try {
        const outcome = await intakePlanEvent(app, { ...handle, branch: pr.head.ref, headSha: pr.head.sha });
        app.emit({ kind: 'plan', outcome });
        report.discovered.push(outcome);
      } catch (e) {
        this.seen.delete(key);
        throw e;
      }
    }
    // Runs left running, or ended but not finished, by a process that died (or a replica that stopped).
    const repo = await app.repoFor(handle);
    const leases = repo.refs.lease('');
    await repo.store.fetch([mirrorPrefix(repo.refs.runsPrefix), mirrorPrefix(leases)]);
    for (const { ref } of await repo.store.listRefs(repo.refs.runsPrefix)) {
      const runId = ref.slice(repo.refs.runsPrefix.length);
      if (app.claimed.has(runId) || app.closed) continue;
      // A ref anyone pushed there that holds no run is skipped (and said once), never the runs after it.
      const run = await readAppRun(app, repo, runId);
      if (!run) continue;
      const unfinished = run.state.status !== 'running' && (await finishPending(app, handle, repo, run));
      if (run.state.status !== 'running' && !unfinished) continue;
      await repo.store.fetch([mirrorPrefix(repo.refs.ns)]);
      const fresh = await readAppRun(app, repo, runId);
      if (!fresh || !(await resume(app, handle, repo, fresh, null))) continue;
      (unfinished ? report.finished : report.resumed).push(runId);
    }
  }
}

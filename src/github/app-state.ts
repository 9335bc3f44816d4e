import type { AppOutcomeEvent, RepoHandle } from './app-events.js';
import type { ResolvedOptions } from './app-options.js';
import { holdCacheDir, type CacheDirHold } from './cache-dir-lock.js';
import { RepoContext } from './repo-context.js';
import { offersLocal, secretsFor } from './worker-policy.js';

/**
 * What the App's parts share within one process: the resolved options, whether it is stopping, the runs
 * it drives, its background work and its repository contexts. Caches and bookkeeping only: every state
 * that matters lives in the repositories (refs/agora/*).
 */

/** A run this process drives (hosted-run.ts), as the other parts see it. */
export interface DrivenRun {
  /** Makes the driver look at the run now (a request was recorded, the lease was lost). */
  wake(): void;
  /**
   * Stops the run's workers (recorded as interrupted, or nothing recorded when killed), then wakes it.
   * With `handOver`, workers the next process can re-attach to are left going, and nothing is recorded of them.
   */
  stop(why: string, opts?: { handOver?: boolean }): Promise<void>;
}

export class AppState {
  /** Set by close and kill: nothing new starts. */
  closed = false;
  /** Set by kill (a simulated crash): nothing more is written. */
  killed = false;
  /** The runs driven here, by run id. */
  readonly active = new Map<string, DrivenRun>();
  /** Runs this process drives or is about to (claimed synchronously, so two paths never drive one run). */
  readonly claimed = new Set<string>();
  private readonly work = new Set<Promise<unknown>>();
  private readonly repos = new Map<string, Promise<RepoContext>>();
  /** This process's hold on the cache dir (cache-dir-lock.ts), once taken; 'released' after close or kill. */
  private hold: Promise<CacheDirHold> | 'released' | undefined;

  constructor(readonly opts: ResolvedOptions) {}

  /**
   * Takes the cache dir for this process, once (a refusal is tried again next time: the other process
   * may have stopped). Every repository context waits for it: opening one empties its workspace pool.
   */
  async holdCacheDir(): Promise<void> {
    if (this.hold === 'released') throw new Error('the agora app is stopped: its cache dir is given up');
    if (this.hold === undefined) {
      const taking = holdCacheDir(this.opts.cacheDir, this.opts.clock());
      this.hold = taking;
      taking.catch(() => {
        if (this.hold === taking) this.hold = undefined;
      });
    }
    await this.hold;
  }

  /** Gives the cache dir up (at close and kill: a killed process's claim would go with the process). */
  async releaseCacheDir(): Promise<void> {
    const hold = this.hold;
    this.hold = 'released';
    if (hold === undefined || hold === 'released') return;
    const held = await hold.catch(() => undefined);
    await held?.release();
  }

  get log() {
    return this.opts.log;
  }

  emit(e: AppOutcomeEvent): void {
    this.opts.onOutcome(e);
  }

  /** Keeps `p` as background work until it settles ({@link idle} waits for it). */
  track<T>(p: Promise<T>): Promise<T> {
    this.work.add(p);
    void p.finally(() => this.work.delete(p)).catch(() => undefined);
    return p;
  }

  /** Resolves when no event handling and no run is in progress. */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  get busy(): boolean {
    return this.work.size > 0;
  }

  /** The repository's context (its mirror, store, workers), opened once per repository id. */
  repoFor(ev: RepoHandle): Promise<RepoContext> {
    const fullName = `${ev.owner}/${ev.repo}`.toLowerCase();
    // By id too: a name can pass to another repository, which must not inherit this one's trust.
    const key = `${fullName}#${ev.repositoryId ?? ''}`;
    const token = ev.token;
    let ctx = this.repos.get(key);
    if (!ctx) {
      ctx = this.holdCacheDir().then(() =>
        RepoContext.open({
          cacheDir: this.opts.cacheDir,
          fullName,
          ...(ev.repositoryId !== undefined ? { repositoryId: ev.repositoryId } : {}),
          cloneUrl: ev.cloneUrl,
          config: this.opts.config,
          token,
          octokit: ev.octokit,
          clock: this.opts.clock,
          offerLocal: offersLocal(this.opts.policy, ev.repositoryId),
          ...(this.opts.containerStopGraceSeconds !== undefined ? { containerStopGraceSeconds: this.opts.containerStopGraceSeconds } : {}),
          secrets: secretsFor(this.opts.policy, ev.repositoryId),
        }),
      );
      ctx.catch(() => this.repos.delete(key));
      this.repos.set(key, ctx);
    } else void ctx.then((c) => c.useToken(token, ev.octokit));
    return ctx;
  }

  /** The repository's context if one is open here (an event about a repository with no run here opens none). */
  openRepo(ev: Pick<RepoHandle, 'owner' | 'repo' | 'repositoryId'>): Promise<RepoContext> | undefined {
    return this.repos.get(`${`${ev.owner}/${ev.repo}`.toLowerCase()}#${ev.repositoryId ?? ''}`);
  }

  /**
   * Across repositories: ref updates pushed, refused pushes (CAS conflicts), pushes made in-process, and
   * those the git CLI made (or finished) because an in-process one could not settle.
   */
  async gitStats(): Promise<{ pushes: number; conflicts: number; inProcess: number; cliFallbacks: number }> {
    const stats = { pushes: 0, conflicts: 0, inProcess: 0, cliFallbacks: 0 };
    for (const r of this.repos.values()) {
      const { store } = await r;
      stats.pushes += store.pushes;
      stats.conflicts += store.conflicts;
      stats.inProcess += store.mirror.httpPushes;
      stats.cliFallbacks += store.mirror.cliFallbacks;
    }
    return stats;
  }
}

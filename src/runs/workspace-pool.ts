import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { workDirFor } from './work-dir.js';
import type { LocalGitStore } from '../git/local-store.js';
import type { Oid } from '../git/types.js';
import { materializeWorkspace, removeWorkspace, retargetWorkspace, type Workspace, type WorkspaceCapture, type WorkspaceOptions } from '../git/workspace.js';

/**
 * Workspaces kept between attempts. Checking out a 10,000-file tree and deleting it again for every
 * item made an item's cost grow with the repository; a released workspace is instead re-targeted to
 * the next item's base, which touches only the paths that differ, and ends exactly like a fresh checkout
 * (nothing a worker left, a `.git` it planted included, reaches the next attempt). The pool lives in the
 * repository's work dir, outside the repository (see {@link workDirFor}: a worker's `git` must not find
 * the orchestrator's repository), and is cleared when a server starts (a crash leaves it in an unknown
 * state) and stops.
 */
/** What a capture found that the next re-target uses. */
export type WorkspaceRelease = Pick<WorkspaceCapture, 'changes' | 'untracked'>;

export class WorkspacePool {
  /** Released workspaces, each with what its worker changed and left when a capture found it. */
  private readonly idle: Array<{ ws: Workspace; captured?: WorkspaceRelease }> = [];
  private created = 0;
  private workDirPromise: Promise<string> | null = null;
  private readonly locate: () => Promise<string>;

  constructor(
    private readonly store: LocalGitStore,
    /** The work dir (the pool is its `pool/`, attempts' needs its `needs/`), or how to find it. */
    workDir: string | (() => Promise<string>),
    /** How new workspaces are made (default: the git CLI when present). */
    private readonly options: WorkspaceOptions = {},
  ) {
    this.locate = typeof workDir === 'string' ? () => Promise.resolve(workDir) : workDir;
  }

  /** The pool of `store`'s repository in its work dir, outside the repository (found on first use). */
  static outsideRepository(store: LocalGitStore, options: WorkspaceOptions = {}): WorkspacePool {
    return new WorkspacePool(store, () => workDirFor(store.gitdir), options);
  }

  /** The repository's work dir (created on first use). */
  workDir(): Promise<string> {
    this.workDirPromise ??= this.locate().catch((e: unknown) => {
      this.workDirPromise = null; // a refused location may be fixed while the server runs
      throw e;
    });
    return this.workDirPromise;
  }

  private async root(): Promise<string> {
    return join(await this.workDir(), 'pool');
  }

  /**
   * Removes every pooled workspace and every attempt's needs (at server start, and when the server
   * stops), and what releases before the move kept inside the git dir (`<gitdir>/agora/work`, `needs`).
   */
  async clear(): Promise<void> {
    this.idle.splice(0);
    const dir = await this.workDir();
    for (const path of [join(dir, 'pool'), join(dir, 'needs'), join(this.store.gitdir, 'agora', 'work'), join(this.store.gitdir, 'agora', 'needs')]) {
      await rm(path, { recursive: true, force: true, maxRetries: 3 });
    }
  }

  /** A workspace holding exactly `commit`'s tree, for one attempt. */
  async acquire(commit: Oid): Promise<Workspace> {
    // Prefer one already at this commit (siblings started from the same integration head).
    const i = this.idle.findIndex((w) => w.ws.commit === commit);
    const reuse = i >= 0 ? this.idle.splice(i, 1)[0] : this.idle.pop();
    if (reuse) {
      try {
        return await retargetWorkspace(reuse.ws, commit, reuse.captured);
      } catch {
        await removeWorkspace(reuse.ws); // unusable: start afresh below
      }
    }
    const root = await this.root();
    await mkdir(root, { recursive: true, mode: 0o700 });
    this.created += 1;
    return materializeWorkspace(this.store, commit, join(root, String(this.created)), { ...this.options, scratch: root });
  }

  /**
   * Returns a workspace after its attempt: kept for the next one, or removed if it may be damaged.
   * `captured` is what {@link captureWorkspace} found the worker changed and left (then only those paths
   * are restored and removed); without it the next re-target compares every tracked file and walks the
   * workspace for what is untracked.
   */
  async release(ws: Workspace, reusable: boolean, captured?: WorkspaceRelease): Promise<void> {
    if (reusable) this.idle.push(captured ? { ws, captured } : { ws });
    else await removeWorkspace(ws);
  }
}

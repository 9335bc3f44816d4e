import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalGitStore } from '../git/local-store.js';
import type { Oid } from '../git/types.js';
import { materializeWorkspace, removeWorkspace, retargetWorkspace, type Workspace, type WorkspaceOptions } from '../git/workspace.js';

/**
 * Workspaces kept between attempts. Checking out a 10,000-file tree and deleting it again for every
 * item made an item's cost grow with the repository; a released workspace is instead re-targeted to
 * the next item's base, which touches only the paths that differ, and ends exactly like a fresh checkout
 * (nothing a worker left, a `.git` it planted included, reaches the next attempt). The pool lives under
 * `<gitdir>/agora/work/pool/` and is cleared when a server starts (a crash leaves it in an unknown state).
 */
export class WorkspacePool {
  private readonly idle: Workspace[] = [];
  private created = 0;

  constructor(
    private readonly store: LocalGitStore,
    private readonly root: string,
    /** How new workspaces are made (default: the git CLI when present). */
    private readonly options: WorkspaceOptions = {},
  ) {}

  static forScratch(store: LocalGitStore, scratchDir: string, options: WorkspaceOptions = {}): WorkspacePool {
    return new WorkspacePool(store, join(scratchDir, 'work', 'pool'), options);
  }

  /** Removes every pooled workspace (at server start, and when the server stops). */
  async clear(): Promise<void> {
    this.idle.splice(0);
    await rm(this.root, { recursive: true, force: true, maxRetries: 3 });
  }

  /** A workspace holding exactly `commit`'s tree, for one attempt. */
  async acquire(commit: Oid): Promise<Workspace> {
    // Prefer one already at this commit (siblings started from the same integration head).
    const i = this.idle.findIndex((w) => w.commit === commit);
    const reuse = i >= 0 ? this.idle.splice(i, 1)[0] : this.idle.pop();
    if (reuse) {
      try {
        return await retargetWorkspace(reuse, commit);
      } catch {
        await removeWorkspace(reuse); // unusable: start afresh below
      }
    }
    await mkdir(this.root, { recursive: true });
    this.created += 1;
    return materializeWorkspace(this.store, commit, join(this.root, String(this.created)), this.options);
  }

  /** Returns a workspace after its attempt: kept for the next one, or removed if it may be damaged. */
  async release(ws: Workspace, reusable: boolean): Promise<void> {
    if (reusable) this.idle.push(ws);
    else await removeWorkspace(ws);
  }
}

import { LocalGitStore } from '../git/local-store.js';
import { mirrorRef } from '../git/refspec.js';
import type { Oid } from '../git/types.js';
import { RecentDurations } from '../runs/lease-keeper.js';
import type { RemoteMirror } from './remote-sync.js';
import { AgoraError } from '../errors.js';

/**
 * The storage port over a mirror, for the same engine and driver code that runs locally: objects are
 * written to the local bare mirror; a compare-and-swap of a ref inside the shared namespace is pushed to
 * GitHub FIRST with an exact lease (the remote CAS), and only then applied locally. When the remote
 * refuses (another replica or delivery moved the ref), the ref is re-fetched and the CAS reports false,
 * so the driver reloads and redoes its step exactly as it does on a local conflict.
 */
export class MirroredGitStore extends LocalGitStore {
  private chain: Promise<unknown> = Promise.resolve();
  /** Remote pushes made (each one ref, one lease). */
  pushes = 0;
  /** Pushes the remote refused. */
  conflicts = 0;
  /** How long recent pushes and fetches took, queueing behind each other included (run leases are sized by it). */
  readonly roundTrips = new RecentDurations();

  constructor(
    readonly mirror: RemoteMirror,
    /** Refs under this prefix are shared with GitHub (default `refs/agora/`). */
    private readonly sharedPrefix: string,
  ) {
    super(mirror.dir, null);
  }

  override async casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean> {
    if (!ref.startsWith(this.sharedPrefix)) return super.casRef(ref, next, expected);
    return this.exclusive(async () => {
      if ((await this.resolveRef(ref)) !== expected) return false;
      this.pushes += 1;
      const pushed = await this.mirror.pushRefs([{ ref, next, expected }]);
      if (!pushed.ok && pushed.refused !== undefined) {
        // A rule declined it (a ruleset on refs/agora/*?): trying again is refused again. Say GitHub's reason.
        throw new AgoraError('push-refused', `GitHub refused the push of ${ref}: ${pushed.refused}`, 'allow the app to push refs/agora/* (repository rules, rulesets), then press Re-run');
      }
      if (!pushed.ok) {
        this.conflicts += 1;
        await this.refetch(ref);
        return false;
      }
      if (!(await super.casRef(ref, next, expected))) {
        // Only this store writes shared refs in this mirror, under this lock: the local ref cannot move.
        throw new Error(`mirror ${this.gitdir}: ${ref} moved locally while it was pushed`);
      }
      return true;
    });
  }

  /** Refs are deleted locally only (the app never deletes shared refs on GitHub). */
  override async deleteRef(ref: string, expected: Oid): Promise<boolean> {
    return this.exclusive(() => super.deleteRef(ref, expected));
  }

  /** Runs `work` while no shared ref is being pushed or fetched through this store. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const start = Date.now();
    const timed = () => work().finally(() => this.roundTrips.record(Date.now() - start));
    const run = this.chain.then(timed, timed);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Fetches refspecs under the store's lock (so a fetch never interleaves with a push and its local CAS). */
  fetch(refspecs: readonly string[], opts: { prune?: boolean } = {}): Promise<void> {
    return this.exclusive(() => this.mirror.fetchRefs(refspecs, opts));
  }

  private async refetch(ref: string): Promise<void> {
    const remote = await this.mirror.listRemoteRefs(ref);
    if (remote.has(ref)) await this.mirror.fetchRefs([mirrorRef(ref)]);
    else {
      const local = await this.resolveRef(ref);
      if (local) await super.deleteRef(ref, local);
    }
  }
}

import { LocalGitStore } from '../git/local-store.js';
import { mirrorRef } from '../git/refspec.js';
import type { Oid } from '../git/types.js';
import { RecentDurations } from '../runs/lease-keeper.js';
import type { RefPushOutcome, RemoteMirror } from './remote-sync.js';
import { AgoraError } from '../errors.js';

interface QueuedSwap {
  ref: string;
  next: Oid;
  expected: Oid | null;
  resolve(landed: boolean): void;
  reject(e: unknown): void;
}

/**
 * The storage port over a mirror, for the same engine and driver code that runs locally: objects are
 * written to the local bare mirror; a compare-and-swap of a ref inside the shared namespace is pushed to
 * GitHub FIRST with an exact lease (the remote CAS), and only then applied locally. When the remote
 * refuses (another replica or delivery moved the ref), the ref is re-fetched and the CAS reports false,
 * so the driver reloads and redoes its step exactly as it does on a local conflict. Swaps queued while a
 * push is in flight go to GitHub together in the next push, each on its own lease.
 */

export class MirroredGitStore extends LocalGitStore {
  private chain: Promise<unknown> = Promise.resolve();
  /** Compare-and-swaps of shared refs waiting for the next push. */
  private readonly queued: QueuedSwap[] = [];
  /** Ref updates pushed (each one ref, one lease; several may share one push). */
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

  override casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean> {
    if (!ref.startsWith(this.sharedPrefix)) return super.casRef(ref, next, expected);
    return new Promise<boolean>((resolve, reject) => {
      this.queued.push({ ref, next, expected, resolve, reject });
      void this.exclusive(() => this.pushQueued());
    });
  }

  /**
   * Pushes the compare-and-swaps queued meanwhile (by the driver, its attempts recording patches, the
   * lease keeper, other runs) in ONE push, each ref on its own lease: pushes are the App's slowest step and
   * are serialised per repository, so a batch is one round trip instead of one per ref. A ref queued twice
   * waits for the next batch (its second swap expects the first's result). Runs under the store's lock.
   */
  private async pushQueued(): Promise<void> {
    const batch: QueuedSwap[] = [];
    const later: QueuedSwap[] = [];
    for (const q of this.queued.splice(0)) (batch.some((b) => b.ref === q.ref) ? later : batch).push(q);
    this.queued.unshift(...later);
    if (later.length > 0) void this.exclusive(() => this.pushQueued());
    const toPush: QueuedSwap[] = [];
    for (const q of batch) {
      if ((await this.resolveRef(q.ref)) !== q.expected) q.resolve(false);
      else toPush.push(q);
    }
    if (toPush.length === 0) return;
    this.pushes += toPush.length;
    let outcomes: Map<string, RefPushOutcome>;
    try {
      outcomes = await this.mirror.pushEach(toPush);
    } catch (e) {
      for (const q of toPush) q.reject(e);
      return;
    }
    for (const q of toPush) {
      try {
        q.resolve(await this.settle(q, outcomes.get(q.ref)!));
      } catch (e) {
        q.reject(e);
      }
    }
  }

  /** Applies one pushed swap's outcome locally: true when it landed. */
  private async settle(q: QueuedSwap, outcome: RefPushOutcome): Promise<boolean> {
    if (outcome.kind === 'refused') {
      // A rule declined it (a ruleset on refs/agora/*?): trying again is refused again. Say GitHub's reason.
      throw new AgoraError('push-refused', `GitHub refused the push of ${q.ref}: ${outcome.reason}`, 'allow the app to push refs/agora/* (repository rules, rulesets), then press Re-run');
    }
    if (outcome.kind === 'conflict') {
      this.conflicts += 1;
      await this.refetch(q.ref);
      return false;
    }
    if (!(await super.casRef(q.ref, q.next, q.expected))) {
      // Only this store writes shared refs in this mirror, under this lock: the local ref cannot move.
      throw new Error(`mirror ${this.gitdir}: ${q.ref} moved locally while it was pushed`);
    }
    return true;
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

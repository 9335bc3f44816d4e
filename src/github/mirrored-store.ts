import { LocalGitStore } from '../git/local-store.js';
import { mirrorRef } from '../git/refspec.js';
import type { Oid, RefSwap } from '../git/types.js';
import { RecentDurations } from '../runs/lease-keeper.js';
import type { RefPushOutcome, RemoteMirror } from './remote-sync.js';
import { AgoraError } from '../errors.js';
import { objectsToPush } from '../git/objects-to-push.js';

/** Compare-and-swaps that land together or not at all (one for a plain casRef), and who waits for them. */
interface QueuedSwaps {
  swaps: readonly RefSwap[];
  resolve(landed: boolean): void;
  reject(e: unknown): void;
}

/**
 * The storage port over a mirror, for the same engine and driver code that runs locally: objects are
 * written to the local bare mirror; a compare-and-swap of a ref inside the shared namespace is pushed to
 * GitHub FIRST with an exact lease (the remote CAS), and only then applied locally. When the remote
 * refuses (another replica or delivery moved the ref), the ref is re-fetched and the CAS reports false,
 * so the driver reloads and redoes its step exactly as it does on a local conflict. Swaps queued while a
 * push is in flight go to GitHub together in the next push, each on its own lease; a transaction of
 * several refs (casRefs: a tick's state with its integration and patch refs) makes that push atomic, so
 * GitHub never holds a state whose commits it lacks.
 */

export class MirroredGitStore extends LocalGitStore {
  private chain: Promise<unknown> = Promise.resolve();
  /** Compare-and-swaps of shared refs waiting for the next push. */
  private readonly queued: QueuedSwaps[] = [];
  /** Ref updates pushed (each one ref, one lease; several may share one push). */
  pushes = 0;
  /** Pushes the remote refused. */
  conflicts = 0;
  /** How long recent pushes and fetches took, queueing behind each other included (run leases are sized by it). */
  readonly roundTrips = new RecentDurations();
  /**
   * Commits the remote has (pushed or fetched here), where a push's walk stops. The ones a walk stops at
   * stay: a run's base is where every item's patch commit starts, however many state commits were
   * pushed since (forgetting it sent the base's whole tree, the plan's file with it, with every push).
   */
  private readonly onRemote: RecentSet<Oid>;

  constructor(
    readonly mirror: RemoteMirror,
    /** Refs under this prefix are shared with GitHub (default `refs/agora/`). */
    private readonly sharedPrefix: string,
    opts: { rememberedCommits?: number } = {},
  ) {
    super(mirror.dir, null);
    this.onRemote = new RecentSet<Oid>(opts.rememberedCommits ?? 4_096);
  }

  override casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean> {
    return this.casRefs([{ ref, next, expected }]);
  }

  override casRefs(swaps: readonly RefSwap[]): Promise<boolean> {
    const shared = swaps.filter((s) => s.ref.startsWith(this.sharedPrefix));
    if (shared.length === 0) return super.casRefs(swaps);
    if (shared.length !== swaps.length) throw new Error(`casRefs: ${swaps.map((s) => s.ref).join(', ')} mix refs shared with GitHub and local ones`);
    return new Promise<boolean>((resolve, reject) => {
      this.queued.push({ swaps, resolve, reject });
      void this.exclusive(() => this.pushQueued());
    });
  }

  /**
   * Pushes the compare-and-swaps queued meanwhile (by the driver, its attempts, the lease keeper, other
   * runs) in ONE push, each ref on its own lease: pushes are the App's slowest step and are serialised
   * per repository, so a batch is one round trip instead of one per ref. A ref queued twice waits for the
   * next batch (its second swap expects the first's result). When the batch holds a transaction of
   * several refs the push is atomic; what failed only because another ref did goes in the next push.
   * Runs under the store's lock.
   */
  private async pushQueued(): Promise<void> {
    const batch: QueuedSwaps[] = [];
    const later: QueuedSwaps[] = [];
    const taken = new Set<string>();
    for (const q of this.queued.splice(0)) {
      if (q.swaps.some((s) => taken.has(s.ref))) later.push(q);
      else {
        batch.push(q);
        for (const s of q.swaps) taken.add(s.ref);
      }
    }
    this.requeue(later);
    const toPush: QueuedSwaps[] = [];
    for (const q of batch) {
      if (await this.stillExpected(q.swaps)) toPush.push(q);
      else q.resolve(false);
    }
    if (toPush.length === 0) return;
    const updates = toPush.flatMap((q) => q.swaps);
    const atomic = toPush.some((q) => q.swaps.length > 1);
    this.pushes += updates.length;
    let outcomes: Map<string, RefPushOutcome>;
    // The objects these refs name are synced while the push is on the wire (settle's local update waits
    // for that sync; one that failed is tried again there and fails that update).
    const synced = this.flushObjects().catch(() => undefined);
    let packed: PackedPush;
    try {
      packed = await this.packFor(updates);
      outcomes = await this.mirror.pushEach(updates, { atomic, ...(packed.pack ? { pack: packed.pack } : {}) });
    } catch (e) {
      for (const q of toPush) q.reject(e);
      return;
    } finally {
      await synced;
    }
    for (const u of updates) if (outcomes.get(u.ref)?.kind === 'ok') this.onRemote.add(u.next);
    // Every ref landed: so did every commit the pack carried (a commit it had to send again, once
    // forgotten, is known from now on). Where the pack fell short (GitHub lacked a commit the walk took for
    // its own), `git push` sent what was missing: every commit the walk assumed is on GitHub now too.
    if (updates.every((u) => outcomes.get(u.ref)?.kind === 'ok')) for (const c of packed.commits) this.onRemote.add(c);
    // An atomic push that failed without naming the ref that failed it: every ref counts as moved remotely.
    if ([...outcomes.values()].every((o) => o.kind === 'unattempted')) for (const u of updates) outcomes.set(u.ref, { kind: 'conflict' });
    const retry: QueuedSwaps[] = [];
    for (const q of toPush) {
      const mine = q.swaps.map((s) => outcomes.get(s.ref)!);
      if (mine.every((o) => o.kind === 'unattempted')) {
        retry.push(q);
        continue;
      }
      try {
        q.resolve(await this.settle(q.swaps, mine));
      } catch (e) {
        q.reject(e);
      }
    }
    this.requeue(retry);
  }

  /**
   * The pack of what the remote lacks for `updates` (objects-to-push.ts: from the new commits back to
   * the ones the remote is known to have), so that the push is made in-process; nothing (the git CLI
   * pushes, negotiating with the remote) when the walk cannot tell.
   */
  private async packFor(updates: readonly RefSwap[]): Promise<PackedPush> {
    const leased = new Set(updates.flatMap((u) => (u.expected ? [u.expected] : [])));
    try {
      const toSend = await objectsToPush(
        this,
        updates.map((u) => u.next),
        (commit) => leased.has(commit) || this.onRemote.has(commit),
      );
      // A thin pack: what replaces an object the remote has goes as a delta of it. Should the remote lack
      // a base after all, it cannot unpack, and the git CLI pushes instead (remote-sync.ts).
      return toSend === null ? { commits: [] } : { pack: await this.packObjects(toSend.objects, toSend.deltaBases), commits: toSend.commits };
    } catch {
      return { commits: [] }; // an object it could not read: git's own push finds what to send, or says what is missing
    }
  }

  private requeue(qs: readonly QueuedSwaps[]): void {
    if (qs.length === 0) return;
    this.queued.unshift(...qs);
    void this.exclusive(() => this.pushQueued());
  }

  private async stillExpected(swaps: readonly RefSwap[]): Promise<boolean> {
    for (const s of swaps) if ((await this.resolveRef(s.ref)) !== s.expected) return false;
    return true;
  }

  /** Applies one queued transaction's pushed outcome (a ref's each) locally: true when it landed. */
  private async settle(swaps: readonly RefSwap[], outcomes: readonly RefPushOutcome[]): Promise<boolean> {
    const refused = outcomes.findIndex((o) => o.kind === 'refused');
    if (refused >= 0) {
      // A rule declined it (a ruleset on refs/agora/*?): trying again is refused again. Say GitHub's reason.
      const { reason } = outcomes[refused] as { reason: string };
      throw new AgoraError(
        'push-refused',
        `GitHub refused the push of ${swaps[refused]!.ref}: ${reason}`,
        'allow the app to push refs/agora/* (repository rules, rulesets), then press Re-run',
      );
    }
    if (outcomes.some((o) => o.kind !== 'ok')) {
      this.conflicts += 1;
      for (const [i, s] of swaps.entries()) if (outcomes[i]!.kind === 'conflict') await this.refetch(s.ref);
      return false;
    }
    if (!(await super.casRefs(swaps))) {
      // Only this store writes shared refs in this mirror, under this lock: the local refs cannot move.
      throw new Error(`mirror ${this.gitdir}: ${swaps.map((s) => s.ref).join(', ')} moved locally while pushed`);
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
    return this.exclusive(async () => {
      await this.mirror.fetchRefs(refspecs, opts);
      // A ref fetched by name (a plan's branch, say) is a commit the remote has: later pushes stop there.
      for (const spec of refspecs) {
        const local = /^\+?[^:*]+:([^*]+)$/.exec(spec)?.[1];
        const oid = local === undefined ? null : await this.resolveRef(local);
        if (oid) this.onRemote.add(oid);
      }
    });
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

/** A push's pack and the commits it carries. */
interface PackedPush {
  pack?: Uint8Array;
  commits: readonly Oid[];
}

/**
 * A set that forgets its least recently used members beyond `capacity`: a member found by `has` counts as
 * used (what it holds is a cache: a miss costs a longer walk).
 */
class RecentSet<T> {
  private readonly items = new Set<T>();
  constructor(private readonly capacity: number) {}
  has(item: T): boolean {
    if (!this.items.has(item)) return false;
    this.items.delete(item);
    this.items.add(item);
    return true;
  }
  add(item: T): void {
    this.items.delete(item);
    this.items.add(item);
    if (this.items.size > this.capacity) this.items.delete(this.items.values().next().value as T);
  }
}

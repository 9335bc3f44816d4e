import { agoraIdentity } from '../git/identity.js';
import type { GitStore, Oid } from '../git/types.js';
import type { RunRefs } from './refs.js';

/**
 * Which process drives a run, and until when. Several app replicas may hold a mirror of one repository;
 * each of them may learn of a run (a webhook, a button, the sweep), but only the holder of the run's
 * lease runs its workers. The lease is a commit (empty tree, the holder and expiry as trailers) at
 * `refs/agora/leases/<run>`, moved only by compare-and-swap, so through a mirrored store every take-over
 * and renewal is a leased push: of two replicas that find a lease expired, exactly one takes it.
 *
 * A holder renews well before expiry; one that stops renewing (killed, partitioned, paused) loses the run
 * to whoever finds the lease expired. A released lease is a lease that has expired (`until` 0), so no
 * ref is ever deleted on the remote.
 */

export interface LeaseRecord {
  holder: string;
  /** Expiry, ms since the epoch (the holder's clock); 0 when released. */
  until: number;
}

export type LeaseAttempt =
  | { ok: true; lease: RunLease }
  /** Someone else holds it (until its expiry, by the holder's clock). */
  | { ok: false; holder: string; until: number };

export interface LeaseOptions {
  /** Who asks: unique per process (e.g. host, pid and a random suffix). */
  holder: string;
  /** How long a take-over or renewal holds (ms). */
  ttlMs: number;
  now: number;
  /** Clock difference tolerated between replicas: another's lease counts as expired only this long after its expiry (default 2 s). */
  skewMs?: number;
}

const HOLDER = 'Agora-Lease-Holder';
const UNTIL = 'Agora-Lease-Until';

export class RunLease {
  private constructor(
    private readonly store: GitStore,
    readonly runId: string,
    readonly ref: string,
    readonly holder: string,
    private head: Oid,
    private record: LeaseRecord,
    /** How long the last write of the lease held (ms): `until` minus the time it was written. */
    private held: number,
  ) {}

  /**
   * Takes the run's lease when it is free, expired, or already ours; otherwise reports who holds it.
   * Lost races are retried against the new value (a mirrored store re-fetches the ref when its push is refused).
   */
  static async acquire(store: GitStore, refs: RunRefs, runId: string, opts: LeaseOptions): Promise<LeaseAttempt> {
    const ref = refs.lease(runId);
    for (let tries = 0; tries < 5; tries += 1) {
      const current = await store.resolveRef(ref);
      const held = current ? await readLease(store, current) : null;
      if (held && held.holder !== opts.holder && held.until + (opts.skewMs ?? 2000) > opts.now) {
        return { ok: false, holder: held.holder, until: held.until };
      }
      const record = { holder: opts.holder, until: opts.now + opts.ttlMs };
      const next = await writeLease(store, runId, record, opts.now);
      if (await store.casRef(ref, next, current)) return { ok: true, lease: new RunLease(store, runId, ref, opts.holder, next, record, opts.ttlMs) };
    }
    const current = await store.resolveRef(ref);
    const held = current ? await readLease(store, current) : null;
    return { ok: false, holder: held?.holder ?? '(unknown)', until: held?.until ?? 0 };
  }

  /** Reads the lease of a run (null when it never had one). */
  static async read(store: GitStore, refs: RunRefs, runId: string): Promise<LeaseRecord | null> {
    const current = await store.resolveRef(refs.lease(runId));
    return current ? readLease(store, current) : null;
  }

  /** When the lease runs out (ms, the holder's clock). */
  get until(): number {
    return this.record.until;
  }

  /** How long the last write of the lease held (ms): a holder renews before two thirds of it have passed. */
  get heldMs(): number {
    return this.held;
  }

  /**
   * Extends the lease to `now + ttl` (by default as long as the last write held). False when it is not ours
   * any more (someone found it expired and took it): the caller must stop driving the run.
   */
  async renew(now: number, ttlMs = this.held): Promise<boolean> {
    const record = { holder: this.holder, until: now + ttlMs };
    const next = await writeLease(this.store, this.runId, record, now);
    if (!(await this.store.casRef(this.ref, next, this.head))) return false;
    this.head = next;
    this.record = record;
    this.held = ttlMs;
    return true;
  }

  /** Gives the run up (it ended, or this process stops): the next asker takes it at once. */
  async release(now: number): Promise<void> {
    await this.write({ holder: this.holder, until: 0 }, now);
  }

  /**
   * Gives the run up as a lease that has already expired (`until` 1, not the 0 of a release): the next
   * asker takes it at once, and a reader can still tell that its holder stopped before it was done with
   * it (the App: an ended run whose finish is not over, which the sweep then finishes).
   */
  async expire(now: number): Promise<void> {
    await this.write({ holder: this.holder, until: 1 }, now);
  }

  private async write(record: LeaseRecord, now: number): Promise<void> {
    const next = await writeLease(this.store, this.runId, record, now);
    if (await this.store.casRef(this.ref, next, this.head)) {
      this.head = next;
      this.record = record;
    }
  }
}

async function writeLease(store: GitStore, runId: string, record: LeaseRecord, now: number): Promise<Oid> {
  const who = agoraIdentity(now);
  return store.writeCommit({
    tree: await store.writeTree([]), // written, not assumed: a push needs the object
    parents: [],
    message: `agora: lease of run ${runId}\n\n${HOLDER}: ${record.holder}\n${UNTIL}: ${record.until}\n`,
    author: who,
    committer: who,
  });
}

async function readLease(store: GitStore, oid: Oid): Promise<LeaseRecord | null> {
  let message: string;
  try {
    message = (await store.readCommit(oid)).message;
  } catch {
    return null; // not a lease commit: treat as free, the next CAS replaces it
  }
  const holder = /^Agora-Lease-Holder: (.+)$/m.exec(message)?.[1];
  const until = Number(/^Agora-Lease-Until: (\d+)$/m.exec(message)?.[1]);
  return holder && Number.isFinite(until) ? { holder, until } : null;
}

import type { RunLease } from './lease.js';

/**
 * A run lease kept alive on its own timer, whatever the run's driver is busy with, and long enough for
 * the machine and the remote it runs against.
 *
 * Two things used to let a live driver lose its run on a slow host or a slow GitHub. Renewal happened
 * between the driver's ticks, so one long tick (several pushes in a row) outlasted the lease; and a lease
 * written for `ttl` from the moment it was computed could land, after a push slower than `ttl`, already
 * expired — so replicas took a run from each other on every write and none of them made progress. Here
 * renewal has its own timer, and a lease is written for at least {@link HOLD_FACTOR} times the slowest
 * recent round trip to the remote (so it outlives the write that carries it and the next renewal's).
 */

/** A lease holds at least this many times the slowest recent round trip. */
export const HOLD_FACTOR = 4;

/** The durations of the last few remote round trips (pushes and fetches, queueing included). */
export class RecentDurations {
  private readonly recent: number[] = [];

  constructor(private readonly keep = 16) {}

  record(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > this.keep) this.recent.shift();
  }

  get slowestMs(): number {
    return this.recent.reduce((a, b) => Math.max(a, b), 0);
  }
}

/** How long a lease written now must hold: the configured ttl, or longer when round trips are slow. */
export function leaseHoldMs(ttlMs: number, roundTrips: RecentDurations | undefined): number {
  return Math.max(ttlMs, HOLD_FACTOR * (roundTrips?.slowestMs ?? 0));
}

export interface LeaseKeeperOptions {
  clock: () => number;
  /** The configured lease length (ms); the lease written may be longer (see {@link leaseHoldMs}). */
  ttlMs: number;
  roundTrips?: RecentDurations;
  /** Another holder took the run (this process stalled past the lease), or renewals failed until the lease ran out: stop driving it. Called once. */
  onLost(): void;
  /** A renewal failed (the remote did not answer); it is tried again soon. */
  onError?(e: unknown): void;
}

/** Renews a held lease once a third of it has passed, on an unref'd timer, until stopped or lost. */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = false;
  private lostIt = false;

  constructor(
    readonly lease: RunLease,
    private readonly opts: LeaseKeeperOptions,
  ) {
    this.schedule();
  }

  /** Whether another holder took the run. */
  get lost(): boolean {
    return this.lostIt;
  }

  /**
   * Stops renewing (waits for a renewal in flight), then gives the lease back with `release` (a crash
   * leaves it to expire); `'expired'` gives it back already expired (RunLease.expire).
   */
  async stop(opts: { release: boolean | 'expired' }): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    if (!opts.release || this.lostIt) return;
    await (opts.release === 'expired' ? this.lease.expire(this.opts.clock()) : this.lease.release(this.opts.clock())).catch(() => undefined);
  }

  private schedule(retryMs?: number): void {
    if (this.stopped || this.lostIt) return;
    const now = this.opts.clock();
    const due = this.lease.until - (this.lease.heldMs * 2) / 3;
    this.timer = setTimeout(() => this.renewNow(), retryMs ?? Math.max(0, due - now));
    this.timer.unref();
  }

  private renewNow(): void {
    const renewal = (async () => {
      const hold = leaseHoldMs(this.opts.ttlMs, this.opts.roundTrips);
      try {
        if (await this.lease.renew(this.opts.clock(), hold)) return this.schedule();
        this.lostIt = true;
        this.opts.onLost();
      } catch (e) {
        this.opts.onError?.(e);
        if (this.opts.clock() >= this.lease.until) {
          // Past expiry without a renewal: another replica may drive the run now. Stop, as if it had.
          this.lostIt = true;
          this.opts.onLost();
          return;
        }
        // Soon, but not in a tight loop against a remote that is down.
        this.schedule(Math.max(100, Math.min(1000, hold / 10)));
      }
    })();
    this.renewing = renewal.finally(() => {
      this.renewing = undefined;
    });
  }
}

import { afterEach, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import type { GitStore, Oid } from '../../src/git/types.js';
import { RunLease } from '../../src/runs/lease.js';
import { HOLD_FACTOR, LeaseKeeper, RecentDurations, leaseHoldMs } from '../../src/runs/lease-keeper.js';
import { RunRefs } from '../../src/runs/refs.js';
import { eventually } from '../support/eventually.js';
import { initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();

/** A repository whose every ref update takes `delayMs` (a slow remote), timed into `roundTrips`; each landed lease write is reported. */
async function slowStore(delayMs: number, roundTrips: RecentDurations, landed: (until: number, at: number) => void): Promise<GitStore> {
  const r = await initRepo({ bare: true });
  cleanups.push(r.cleanup);
  const store = await openLocalStore(r.dir);
  return Object.assign(Object.create(store) as GitStore, {
    async casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean> {
      const start = Date.now();
      await new Promise((res) => setTimeout(res, delayMs));
      const ok = await store.casRef(ref, next, expected);
      roundTrips.record(Date.now() - start);
      if (ok) landed(Number(/^Agora-Lease-Until: (\d+)$/m.exec((await store.readCommit(next)).message)?.[1]), Date.now());
      return ok;
    },
  });
}

describe('LeaseKeeper', () => {
  it('holds a lease for several times the slowest round trip, so writes slower than the ttl still land unexpired', async () => {
    const roundTrips = new RecentDurations();
    const writes: Array<{ until: number; at: number }> = [];
    const store = await slowStore(100, roundTrips, (until, at) => writes.push({ until, at }));
    const got = await RunLease.acquire(store, refs, 'r1', { holder: 'a', ttlMs: 30, now: Date.now() });
    if (!got.ok) throw new Error('not acquired');
    // The first write knew no round trip yet: it landed already expired.
    expect(writes[0]!.at).toBeGreaterThan(writes[0]!.until);
    const keeper = new LeaseKeeper(got.lease, { clock: Date.now, ttlMs: 30, roundTrips, onLost: () => undefined });
    await eventually('three renewals', () => writes.length >= 4);
    await keeper.stop({ release: true });
    // Every renewal was sized by what writes took, and landed with time to spare.
    for (const w of writes.slice(1, 4)) expect(w.until - w.at).toBeGreaterThan(0);
    expect(got.lease.heldMs).toBeGreaterThanOrEqual(HOLD_FACTOR * 100);
    // Stopped with release: the lease is free.
    expect((await RunLease.read(store, refs, 'r1'))?.until).toBe(0);
  });

  it('renews on its own timer while the driver is busy, and says once when another holder took the run', async () => {
    const r = await initRepo({ bare: true });
    cleanups.push(r.cleanup);
    const store = await openLocalStore(r.dir);
    const got = await RunLease.acquire(store, refs, 'r1', { holder: 'a', ttlMs: 60, now: Date.now() });
    if (!got.ok) throw new Error('not acquired');
    let lost = 0;
    const keeper = new LeaseKeeper(got.lease, { clock: Date.now, ttlMs: 60, onLost: () => (lost += 1) });
    const first = got.lease.until;
    await eventually('a renewal with nobody calling for it', () => got.lease.until > first);
    // Another replica found it expired (its clock far ahead) and took it; its compare-and-swap may lose to a
    // renewal landing at the same moment (then it asks again, as a sweep would).
    await eventually(
      'replica b to take the lease',
      async () => (await RunLease.acquire(store, refs, 'r1', { holder: 'b', ttlMs: 60_000, now: Date.now() + 10_000 })).ok,
    );
    await eventually('the keeper to notice', () => keeper.lost);
    expect(lost).toBe(1);
    await keeper.stop({ release: true }); // not ours: nothing is given back
    expect((await RunLease.read(store, refs, 'r1'))?.holder).toBe('b');
  });

  it('sizes a lease by the configured ttl until round trips are slower than a quarter of it', () => {
    const d = new RecentDurations(3);
    expect(leaseHoldMs(1000, d)).toBe(1000);
    d.record(200);
    expect(leaseHoldMs(1000, d)).toBe(1000);
    d.record(400);
    expect(leaseHoldMs(1000, d)).toBe(1600);
    // Only the last few count: a slow spell passes.
    for (const ms of [10, 10, 10]) d.record(ms);
    expect(leaseHoldMs(1000, d)).toBe(1000);
  });
});

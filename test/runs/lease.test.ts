import { afterEach, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { RunLease } from '../../src/runs/lease.js';
import { RunRefs } from '../../src/runs/refs.js';
import { gitSync, initRepo } from '../git/git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const refs = new RunRefs();
const T0 = 1_800_000_000_000;

async function store() {
  const r = await initRepo({ bare: true });
  cleanups.push(r.cleanup);
  return { dir: r.dir, store: await openLocalStore(r.dir) };
}

describe('RunLease', () => {
  it('lets one holder drive a run; another is told who holds it and until when', async () => {
    const { store: s } = await store();
    const a = await RunLease.acquire(s, refs, 'r1', { holder: 'replica-a', ttlMs: 30_000, now: T0 });
    expect(a.ok).toBe(true);
    const b = await RunLease.acquire(s, refs, 'r1', { holder: 'replica-b', ttlMs: 30_000, now: T0 + 10_000 });
    expect(b).toEqual({ ok: false, holder: 'replica-a', until: T0 + 30_000 });
    // The holder asking again keeps it (a restart of the same process identity, or a second path in it).
    expect((await RunLease.acquire(s, refs, 'r1', { holder: 'replica-a', ttlMs: 30_000, now: T0 + 10_000 })).ok).toBe(true);
  });

  it('a renewed lease stays held; one left to expire is taken over, and the old holder learns it lost the run', async () => {
    const { store: s, dir } = await store();
    const a = await RunLease.acquire(s, refs, 'r1', { holder: 'a', ttlMs: 10_000, now: T0 });
    if (!a.ok) throw new Error('not acquired');
    expect(await a.lease.renew(T0 + 8_000)).toBe(true);
    expect((await RunLease.acquire(s, refs, 'r1', { holder: 'b', ttlMs: 10_000, now: T0 + 15_000 })).ok).toBe(false);
    // Past expiry plus the tolerated skew: b takes it.
    const b = await RunLease.acquire(s, refs, 'r1', { holder: 'b', ttlMs: 10_000, now: T0 + 18_000 + 2_001 });
    expect(b.ok).toBe(true);
    expect(await a.lease.renew(T0 + 21_000)).toBe(false);
    expect(await RunLease.read(s, refs, 'r1')).toEqual({ holder: 'b', until: T0 + 30_001 });
    // The lease is an ordinary commit at its ref: git itself can read it.
    expect(gitSync(dir, ['log', '-1', '--format=%B', refs.lease('r1')])).toContain('Agora-Lease-Holder: b');
  });

  it('a released lease is free at once, and of two askers racing for a free lease exactly one wins', async () => {
    const { store: s } = await store();
    const a = await RunLease.acquire(s, refs, 'r1', { holder: 'a', ttlMs: 60_000, now: T0 });
    if (!a.ok) throw new Error('not acquired');
    await a.lease.release(T0 + 1_000);
    expect(await RunLease.read(s, refs, 'r1')).toEqual({ holder: 'a', until: 0 });
    const racers = await Promise.all(['x', 'y', 'z'].map((holder) => RunLease.acquire(s, refs, 'r1', { holder, ttlMs: 60_000, now: T0 + 2_000 })));
    expect(racers.filter((r) => r.ok)).toHaveLength(1);
    const winner = (await RunLease.read(s, refs, 'r1'))!.holder;
    for (const r of racers) if (!r.ok) expect(r.holder).toBe(winner);
  });
});

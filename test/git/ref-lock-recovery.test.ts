import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { selfIdentity } from '../../src/process-identity.js';
import { eventually } from '../support/eventually.js';
import { initRepo, killedCasWriter } from './git-fixtures.js';

/**
 * A serve killed during a ref update leaves `<ref>.lock`; the next serve must get past it without a
 * person when its writer is provably gone, and still wait for a live one (issue 12, finding 5).
 */

const REF = 'refs/agora/runs/r1';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function commit(store: LocalGitStore, message: string, parents: string[] = []): Promise<string> {
  const tree = await store.writeTree([]);
  const who = agoraIdentity(1_700_000_000_000);
  return store.writeCommit({ tree, parents, message, author: who, committer: who });
}

/** A repository whose run ref a writer was killed updating: the lock it held is still there. */
async function lockLeftByKilledWriter() {
  const r = await initRepo();
  cleanups.push(r.cleanup);
  const store = await openLocalStore(r.dir, { maxWaitMs: 300 });
  const a = await commit(store, 'a');
  expect(await store.casRef(REF, a, null)).toBe(true);
  const child = killedCasWriter(r.dir, REF, 'ref-temp-written:1');
  expect(child.signal).toBe('SIGKILL');
  const lock = join(r.gitdir, `${REF}.lock`);
  expect(existsSync(lock)).toBe(true);
  expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ agoraRefLock: 1, pid: child.pid });
  return { ...r, store, a, lock };
}

describe('ref locks left by a killed agora writer', () => {
  it('are removed by a store that holds the serve lock, and the update goes through', async () => {
    const { store, a, lock } = await lockLeftByKilledWriter();
    store.recoverAbandonedLocks();
    const b = await commit(store, 'b', [a]);
    expect(await store.casRef(REF, b, a)).toBe(true);
    expect(await store.resolveRef(REF)).toBe(b);
    expect(existsSync(lock)).toBe(false);
  });

  it('are reported, not removed, by any other agora process: ref-locked names the dead writer and who removes it', async () => {
    const { store, a, lock } = await lockLeftByKilledWriter();
    const b = await commit(store, 'b', [a]);
    const err = await store.casRef(REF, b, a).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AgoraError);
    expect((err as AgoraError).code).toBe('ref-locked');
    expect((err as AgoraError).message).toContain('which is gone');
    expect((err as AgoraError).hint).toContain('agora orch serve');
    expect(existsSync(lock)).toBe(true);
    expect(await store.resolveRef(REF)).toBe(a);
  });
});

describe('ref locks of a live agora writer', () => {
  it('are respected even by a recovering store: the update waits, then reports a conflict', async () => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const store = await openLocalStore(r.dir, { maxWaitMs: 300 });
    store.recoverAbandonedLocks();
    const a = await commit(store, 'a');
    // A live writer: a process that sleeps, recorded the way a lock records it.
    const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
    cleanups.push(() => void sleeper.kill('SIGKILL'));
    const start = await eventually('the sleeper in /proc', () => {
      const text = readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8');
      return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
    });
    const lock = join(r.gitdir, `${REF}.lock`);
    await mkdir(join(r.gitdir, 'refs/agora/runs'), { recursive: true });
    await writeFile(lock, JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid: sleeper.pid, start }));
    expect(await store.casRef(REF, a, null)).toBe(false);
    expect(existsSync(lock)).toBe(true);

    // The same pid started at another time is another process (the pid was reused): that lock is dead.
    await writeFile(lock, JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid: sleeper.pid, start: start - 1 }));
    expect(await store.casRef(REF, a, null)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });
});

import { spawnSync } from 'node:child_process';
import { existsSync, lutimesSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { acquireLock, refTempDir, releaseLock, writeRefValue } from '../../src/git/ref-lock-file.js';
import { removeAbandonedRefTemps } from '../../src/git/ref-temp-sweep.js';
import { GONE_WRITER_MIN_AGE_MS as MIN_AGE_MS, selfIdentity } from '../../src/process-identity.js';
import { initRepo, killedCasWriter } from './git-fixtures.js';

/**
 * A process killed during a ref update leaves the new value it had not renamed yet (`agora/tmp/ref-*`) and
 * its owner file (`owner-*`). A serve removes them once their writer is provably gone and they are ten
 * minutes old; it leaves anything a live writer, a writer on another host, or nobody Agora knows wrote. A
 * process that exits removes its own.
 */

const REF = 'refs/agora/runs/r1';
const LATER = () => Date.now() + MIN_AGE_MS + 60_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function repo() {
  const r = await initRepo();
  cleanups.push(r.cleanup);
  return { ...r, tmp: refTempDir(r.gitdir) };
}

/** A pid that no process has any more: a child that ran and was reaped. */
function deadPid(): number {
  const child = spawnSync('true');
  return child.pid!;
}

/** Sets the times of `path` (a link's own, not its target's) `ms` into the past. */
function age(path: string, ms: number): void {
  const then = (Date.now() - ms) / 1000;
  lutimesSync(path, then, then);
}

describe('the ref values and owner files a killed writer left in agora/tmp', () => {
  it('are removed once the writer is gone and they are ten minutes old, not before', async () => {
    const r = await repo();
    const store = await openLocalStore(r.dir);
    const tree = await store.writeTree([]);
    const who = agoraIdentity(1_700_000_000_000);
    const a = await store.writeCommit({ tree, parents: [], message: 'a', author: who, committer: who });
    expect(await store.casRef(REF, a, null)).toBe(true);
    const child = killedCasWriter(r.dir, REF, 'ref-temp-written:1');
    expect(child.signal).toBe('SIGKILL');
    const left = readdirSync(r.tmp).filter((name) => name.startsWith('ref-') || name.startsWith('owner-'));
    const ours = left.filter((name) => name.includes(`-${process.pid}_`));
    const killed = left.filter((name) => name.includes(`-${child.pid}_`));
    expect(killed.sort().map((name) => name.split('-')[0])).toEqual(['owner', 'ref']);

    // Young: left (a writer judged gone wrongly, in a container sharing this host's name, may still use them).
    expect(await removeAbandonedRefTemps(r.gitdir, Date.now())).toEqual([]);
    expect(await store.removeAbandonedRefTemps(LATER())).toEqual(expect.arrayContaining(killed.map((name) => join(r.tmp, name))));
    // This process's own owner file stays: its writer lives.
    expect(readdirSync(r.tmp).sort()).toEqual(ours.sort());
  });

  it('a writer killed before it took any lock has its owner file beside its values, and they go', async () => {
    const r = await repo();
    const store = await openLocalStore(r.dir);
    const tree = await store.writeTree([]);
    const who = agoraIdentity(1_700_000_000_000);
    expect(await store.casRef(REF, await store.writeCommit({ tree, parents: [], message: 'a', author: who, committer: who }), null)).toBe(true);
    // Its first transaction: the values are written before any lock, which is what wrote the owner file before.
    const child = killedCasWriter(r.dir, REF, 'ref-values-written:1');
    expect(child.signal).toBe('SIGKILL');
    const killed = readdirSync(r.tmp).filter((name) => name.includes(`-${child.pid}_`));
    expect(killed.map((name) => name.split('-')[0]).sort()).toEqual(['owner', 'ref']);
    expect((await store.removeAbandonedRefTemps(LATER())).sort()).toEqual(killed.map((name) => join(r.tmp, name)).sort());
  });

  it('values with no owner file beside them stay, whatever the pid in their name', async () => {
    const r = await repo();
    mkdirSync(r.tmp, { recursive: true });
    const value = join(r.tmp, `ref-${deadPid()}_deadbeef_1`);
    writeFileSync(value, `${'0'.repeat(40)}\n`);
    expect(await removeAbandonedRefTemps(r.gitdir, LATER())).toEqual([]);
    expect(existsSync(value)).toBe(true);
  });

  it("a value written after its writer's owner file was removed has the owner file written again beside it", async () => {
    const r = await repo();
    await writeRefValue(r.tmp, 'x\n');
    const owners = () => readdirSync(r.tmp).filter((name) => name.startsWith(`owner-${process.pid}_`));
    const [first] = owners();
    rmSync(join(r.tmp, first!));
    await writeRefValue(r.tmp, 'y\n');
    expect(owners()).toHaveLength(1);
    expect(owners()).not.toEqual([first]);
  });

  it('a process that exits removes the values it had not renamed and its owner file', async () => {
    const r = await repo();
    const module = new URL('../../src/git/ref-lock-file.ts', import.meta.url).href;
    const script = `import(${JSON.stringify(module)}).then(async (m) => { await m.writeRefValue(${JSON.stringify(r.tmp)}, 'x\\n'); process.stdout.write(require('node:fs').readdirSync(${JSON.stringify(r.tmp)}).join(' ')); process.exit(0); });`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
    expect(child.status, child.stderr).toBe(0);
    expect(
      child.stdout
        .split(' ')
        .map((name) => name.split('-')[0])
        .sort(),
    ).toEqual(['owner', 'ref']);
    expect(readdirSync(r.tmp)).toEqual([]);
  });

  it("an owner file keeps its writer's values and itself while they are young; values go before it", async () => {
    const r = await repo();
    mkdirSync(r.tmp, { recursive: true });
    const pid = deadPid();
    const owner = join(r.tmp, `owner-${pid}_0badcafe_1`);
    const value = join(r.tmp, `ref-${pid}_0badcafe_2`);
    writeFileSync(owner, `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid })}\n`);
    writeFileSync(value, `${'0'.repeat(40)}\n`);
    age(owner, MIN_AGE_MS + 60_000);
    // The value is young: both stay (the owner is what judges the value).
    expect(await removeAbandonedRefTemps(r.gitdir, Date.now())).toEqual([]);
    expect(existsSync(owner)).toBe(true);
    age(value, MIN_AGE_MS + 60_000);
    expect(await removeAbandonedRefTemps(r.gitdir, Date.now())).toEqual([value, owner]);
  });

  it('leaves the files of a writer on another host, of a live writer, and whatever is no file of a writer', async () => {
    const r = await repo();
    mkdirSync(r.tmp, { recursive: true });
    const pid = deadPid();
    const elsewhere = join(r.tmp, `owner-${pid}_0000beef_1`);
    writeFileSync(elsewhere, `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid, host: `not-${selfIdentity().host}` })}\n`);
    writeFileSync(join(r.tmp, `ref-${pid}_0000beef_2`), 'x\n');
    // This process's own files, as a lock and a ref update make them.
    const lock = await acquireLock(r.gitdir, join(r.gitdir, 'refs', 'heads', 'x.lock'), 'refs/heads/x', {});
    const own = await writeRefValue(r.tmp, 'y\n');
    // Named like a value of a gone writer, but a directory and a link (never followed: the file it names stays).
    const outside = join(r.dir, 'outside.txt');
    writeFileSync(outside, 'keep\n');
    mkdirSync(join(r.tmp, `ref-${pid}_00000000_1`));
    symlinkSync(outside, join(r.tmp, `ref-${pid}_00000000_2`));
    writeFileSync(join(r.tmp, `owner-${pid}_00000000_3`), `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid })}\n`);
    // An owner file that names another pid than its name: it judges nothing, and the value beside it stays.
    writeFileSync(join(r.tmp, `owner-${process.pid}_11111111_1`), `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity(), pid })}\n`);
    writeFileSync(join(r.tmp, `ref-${process.pid}_11111111_2`), 'z\n');
    writeFileSync(join(r.tmp, 'notes.txt'), 'other\n');
    const before = readdirSync(r.tmp).sort();
    for (const name of before) age(join(r.tmp, name), MIN_AGE_MS + 60_000);
    expect(await removeAbandonedRefTemps(r.gitdir, LATER())).toEqual([]);
    expect(readdirSync(r.tmp).sort()).toEqual(before);
    expect(existsSync(own) && existsSync(outside)).toBe(true);
    await releaseLock(lock!);
  });

  it('a repository with no agora/tmp has nothing to remove', async () => {
    const r = await repo();
    expect(await removeAbandonedRefTemps(r.gitdir, LATER())).toEqual([]);
  });
});

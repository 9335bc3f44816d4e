import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { casRefs } from '../../src/git/ref-lock.js';
import { renameInto } from '../../src/git/ref-lock-file.js';
import { eventually } from '../support/eventually.js';
import { gitSync, initRepo } from './git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A repository with three commits, and what the `git` CLI says a ref is (null: no such ref). */
async function repoWithCommits() {
  const r = await initRepo({ bare: false });
  cleanups.push(r.cleanup);
  const commits: string[] = [];
  for (const m of ['one', 'two', 'three']) {
    gitSync(r.dir, ['commit', '--allow-empty', '-q', '-m', m]);
    commits.push(gitSync(r.dir, ['rev-parse', 'HEAD']).trim());
  }
  const cli = (ref: string) => gitSync(r.dir, ['for-each-ref', '--format=%(objectname)', ref]).trim() || null;
  return { dir: r.dir, gitdir: join(r.dir, '.git'), commits, cli };
}

async function locksUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.name.endsWith('.lock')) out.push(e.name);
  return out;
}

/** The new values waiting in temporary files of the transaction (`<gitdir>/agora/tmp/ref-…`). */
async function refTemps(gitdir: string): Promise<string[]> {
  return (await readdir(join(gitdir, 'agora', 'tmp')).catch(() => [])).filter((f) => f.startsWith('ref-'));
}

/** A tick's refs move as one transaction of git's lockfile protocol: all of them or none. */
describe('casRefs: several refs, one transaction', () => {
  it('moves every ref when every old value holds, and git sees each new value', async () => {
    const {
      dir,
      commits: [a, b, c],
      cli,
    } = await repoWithCommits();
    const store = await openLocalStore(dir);
    expect(await store.casRef('refs/agora/integration/r', a!, null)).toBe(true);
    const ok = await store.casRefs([
      { ref: 'refs/agora/integration/r', next: b!, expected: a! },
      { ref: 'refs/agora/patches/r/x', next: c!, expected: null },
      { ref: 'refs/agora/runs/r', next: c!, expected: null },
    ]);
    expect(ok).toBe(true);
    expect([cli('refs/agora/integration/r'), cli('refs/agora/patches/r/x'), cli('refs/agora/runs/r')]).toEqual([b, c, c]);
  });

  it('moves none when one old value is stale, and leaves no lock behind', async () => {
    const {
      dir,
      gitdir,
      commits: [a, b, c],
      cli,
    } = await repoWithCommits();
    const store = await openLocalStore(dir);
    expect(await store.casRef('refs/agora/runs/r', a!, null)).toBe(true);
    const ok = await store.casRefs([
      { ref: 'refs/agora/integration/r', next: b!, expected: null },
      { ref: 'refs/agora/runs/r', next: c!, expected: b! }, // stale: the run ref is at a
    ]);
    expect(ok).toBe(false);
    expect([cli('refs/agora/integration/r'), cli('refs/agora/runs/r')]).toEqual([null, a]);
    expect(await locksUnder(join(gitdir, 'refs'))).toEqual([]);
  });

  it('moves none while another writer (git) holds the lock of one of the refs', async () => {
    const {
      dir,
      gitdir,
      commits: [a, b],
      cli,
    } = await repoWithCommits();
    const store = await openLocalStore(dir, { maxWaitMs: 50 });
    gitSync(dir, ['update-ref', 'refs/agora/runs/r', a!]);
    await writeFile(join(gitdir, 'refs/agora/runs/r.lock'), ''); // git's lock: it names no writer
    const ok = await store.casRefs([
      { ref: 'refs/agora/integration/r', next: b!, expected: null },
      { ref: 'refs/agora/runs/r', next: b!, expected: a! },
    ]);
    expect(ok).toBe(false);
    expect([cli('refs/agora/integration/r'), cli('refs/agora/runs/r')]).toEqual([null, a]);
    expect(await locksUnder(join(gitdir, 'refs'))).toEqual(['r.lock']); // only git's own
  });

  it('refuses a transaction that names one ref twice', async () => {
    const {
      dir,
      commits: [a, b],
    } = await repoWithCommits();
    const store = await openLocalStore(dir);
    await expect(
      store.casRefs([
        { ref: 'refs/agora/runs/r', next: a!, expected: null },
        { ref: 'refs/agora/runs/r', next: b!, expected: a! },
      ]),
    ).rejects.toThrow(/twice/);
  });

  it('writes the new values while the objects are made durable, and takes no lock before they are', async () => {
    const {
      gitdir,
      commits: [a, b],
      cli,
    } = await repoWithCommits();
    let objectsDurable!: () => void;
    const objects = new Promise<void>((resolve) => (objectsDurable = resolve));
    const swaps = [
      { ref: 'refs/agora/integration/r', next: b!, expected: null },
      { ref: 'refs/agora/runs/r', next: a!, expected: null },
    ];
    const moved = casRefs(gitdir, swaps, {}, objects);
    // Both values are written (and synced) while the objects are not yet durable; no ref is locked or moved.
    await eventually('both new values in temporary files', async () => (await refTemps(gitdir)).length === 2);
    expect(await locksUnder(gitdir)).toEqual([]);
    expect(cli('refs/agora/runs/r')).toBeNull();
    objectsDurable();
    expect(await moved).toBe(true);
    expect(cli('refs/agora/integration/r')).toBe(b);
    expect(cli('refs/agora/runs/r')).toBe(a);
    expect(await refTemps(gitdir)).toEqual([]);
    expect(await locksUnder(gitdir)).toEqual([]);
  });

  it('moves none, and leaves no value or lock behind, when the objects could not be made durable', async () => {
    const {
      gitdir,
      commits: [a, b],
      cli,
    } = await repoWithCommits();
    const full = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    const swaps = [
      { ref: 'refs/agora/integration/r', next: b!, expected: null },
      { ref: 'refs/agora/runs/r', next: a!, expected: null },
    ];
    await expect(casRefs(gitdir, swaps, {}, Promise.reject(full))).rejects.toBe(full);
    expect(cli('refs/agora/integration/r')).toBeNull();
    expect(cli('refs/agora/runs/r')).toBeNull();
    expect(await refTemps(gitdir)).toEqual([]);
    expect(await locksUnder(gitdir)).toEqual([]);
  });

  it('through a store, moves none when the objects the new values name cannot be written out', async () => {
    const { dir, gitdir, cli } = await repoWithCommits();
    const store = await openLocalStore(dir);
    // Written by the store, so kept in memory until a ref update writes them out as a pack.
    const blob = await store.writeBlob('waiting\n');
    const tree = await store.writeTree([{ mode: '100644', path: 'f', oid: blob, type: 'blob' }]);
    const who = agoraIdentity(1_700_000_000_000);
    const commit = await store.writeCommit({ tree, parents: [], message: 'waiting\n', author: who, committer: who });
    // A file where the pack directory should be: the pack cannot be written.
    rmSync(join(gitdir, 'objects', 'pack'), { recursive: true, force: true });
    writeFileSync(join(gitdir, 'objects', 'pack'), '');
    await expect(store.casRefs([{ ref: 'refs/agora/runs/r', next: commit, expected: null }])).rejects.toThrow(/objects\/pack/);
    expect(cli('refs/agora/runs/r')).toBeNull();
    expect(await refTemps(gitdir)).toEqual([]);
    expect(await locksUnder(gitdir)).toEqual([]);
  });

  it('leaves no value behind when an old value no longer holds', async () => {
    const {
      gitdir,
      commits: [a, b],
      cli,
    } = await repoWithCommits();
    expect(await casRefs(gitdir, [{ ref: 'refs/agora/runs/r', next: a!, expected: null }])).toBe(true);
    expect(await casRefs(gitdir, [{ ref: 'refs/agora/runs/r', next: b!, expected: null }])).toBe(false);
    expect(cli('refs/agora/runs/r')).toBe(a);
    expect(await refTemps(gitdir)).toEqual([]);
  });

  it('creates a ref where an empty directory of its name was left, as git does', async () => {
    const {
      dir,
      gitdir,
      commits: [a],
      cli,
    } = await repoWithCommits();
    mkdirSync(join(gitdir, 'refs/agora/runs/r'), { recursive: true });
    expect(await casRefs(gitdir, [{ ref: 'refs/agora/runs/r', next: a!, expected: null }])).toBe(true);
    expect(cli('refs/agora/runs/r')).toBe(a);
    expect(gitSync(dir, ['fsck', '--no-dangling']).trim()).toBe('');
  });

  it('moves none, and says which ref, when refs exist below one it would create', async () => {
    const {
      dir,
      gitdir,
      commits: [a, b],
      cli,
    } = await repoWithCommits();
    gitSync(dir, ['update-ref', 'refs/agora/runs/r/x', a!]);
    const moved = casRefs(gitdir, [
      { ref: 'refs/agora/integration/r', next: b!, expected: null },
      { ref: 'refs/agora/runs/r', next: b!, expected: null },
    ]);
    await expect(moved).rejects.toMatchObject({
      code: 'ref-conflict',
      message: expect.stringContaining('cannot create refs/agora/runs/r: refs exist below it') as unknown,
    });
    expect([cli('refs/agora/integration/r'), cli('refs/agora/runs/r/x')]).toEqual([null, a]);
    expect(await locksUnder(join(gitdir, 'refs'))).toEqual([]);
    expect(await refTemps(gitdir)).toEqual([]);
  });

  it('says which ref, as a conflict, when a directory of its name appears between the check and the rename', async () => {
    const { gitdir } = await repoWithCommits();
    const target = join(gitdir, 'refs/agora/runs/r');
    const temp = join(gitdir, 'value');
    writeFileSync(temp, 'x\n');
    mkdirSync(join(target, 'x'), { recursive: true }); // another writer making refs/agora/runs/r/x
    await expect(renameInto(temp, target)).rejects.toMatchObject({
      code: 'ref-conflict',
      message: expect.stringContaining(`cannot create ${target}`) as unknown,
    });
    expect(existsSync(temp)).toBe(false);
  });
});

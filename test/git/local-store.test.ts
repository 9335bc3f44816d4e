import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import type { TreeEntry } from '../../src/git/types.js';
import { scaled } from '../support/eventually.js';
import { cliEnv, gitSync, initRepo, tempDir } from './git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function repo(opts: { bare?: boolean } = {}) {
  const r = await initRepo(opts);
  cleanups.push(r.cleanup);
  return { ...r, store: await openLocalStore(r.dir) };
}

async function rootCommit(store: LocalGitStore, message: string, parents: string[] = [], when = 1_700_000_000_000): Promise<string> {
  const blob = await store.writeBlob(message);
  const tree = await store.writeTree([{ mode: '100644', path: 'f.txt', oid: blob, type: 'blob' }]);
  const who = agoraIdentity(when);
  return store.writeCommit({ tree, parents, message, author: who, committer: who });
}

async function expectAgoraError(p: Promise<unknown>, code: string): Promise<AgoraError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgoraError);
  expect((err as AgoraError).code).toBe(code);
  return err as AgoraError;
}

describe('openLocalStore', () => {
  it('opens a work tree (dir set) and a bare repository (dir null)', async () => {
    const work = await repo();
    expect(work.store.dir).toBe(work.dir);
    expect(work.store.gitdir).toBe(join(work.dir, '.git'));
    const bare = await repo({ bare: true });
    expect(bare.store.dir).toBeNull();
    expect(bare.store.gitdir).toBe(bare.dir);
  });

  it('refuses a directory that is not a repository, naming it and the fix', async () => {
    const tmp = await tempDir();
    cleanups.push(tmp.cleanup);
    const err = await expectAgoraError(openLocalStore(tmp.path), 'repo-not-found');
    expect(err.message).toBe(`${tmp.path} is not a git repository`);
    expect(err.hint).toContain('git init');
    expect(err.hint).toContain('check the path');
  });

  it('refuses a .git file (linked worktree) clearly', async () => {
    const r = await repo();
    gitSync(r.dir, ['commit', '-q', '--allow-empty', '-m', 'init']);
    const linked = join(r.dir, '..', 'linked');
    gitSync(r.dir, ['worktree', 'add', '-q', linked]);
    const err = await expectAgoraError(openLocalStore(linked), 'repo-unsupported');
    expect(err.message).toContain('.git is a file');
  });
});

describe('objects', () => {
  it('writes blobs, trees and commits that pass git fsck --strict and read back with git cat-file', async () => {
    const { dir, store } = await repo();
    const text = await store.writeBlob('hello\n');
    const binary = await store.writeBlob(new Uint8Array([0, 1, 2, 255, 10]));
    const script = await store.writeBlob('#!/bin/sh\necho hi\n');
    const link = await store.writeBlob('f.txt');
    const sub = await store.writeTree([{ mode: '100644', path: 'bin.dat', oid: binary, type: 'blob' }]);
    // Deliberately unsorted, with names that sort differently as directories (`a` is compared as `a/`).
    const entries: TreeEntry[] = [
      { mode: '040000', path: 'a', oid: sub, type: 'tree' },
      { mode: '100755', path: 'run.sh', oid: script, type: 'blob' },
      { mode: '100644', path: 'a.txt', oid: text, type: 'blob' },
      { mode: '120000', path: 'link', oid: link, type: 'blob' },
      { mode: '100644', path: 'a-b', oid: text, type: 'blob' },
      { mode: '100644', path: 'a0', oid: text, type: 'blob' },
    ];
    const tree = await store.writeTree(entries);
    const who = agoraIdentity(1_700_000_123_456);
    const commit = await store.writeCommit({ tree, parents: [], message: 'agora: first\n\nAgora-Run: r1\n', author: who, committer: who });
    await store.flushObjects(); // git is another process: it sees objects once written out

    const fsck = gitSync(dir, ['fsck', '--strict', '--no-dangling', '--full']);
    expect(fsck).toBe('');
    expect(gitSync(dir, ['cat-file', '-p', text])).toBe('hello\n');
    expect(execFileSync('git', ['cat-file', 'blob', binary], { cwd: dir, env: cliEnv() })).toEqual(Buffer.from([0, 1, 2, 255, 10]));
    expect(gitSync(dir, ['cat-file', '-p', tree])).toBe(
      [
        `100644 blob ${text}\ta-b`,
        `100644 blob ${text}\ta.txt`,
        `040000 tree ${sub}\ta`,
        `100644 blob ${text}\ta0`,
        `120000 blob ${link}\tlink`,
        `100755 blob ${script}\trun.sh`,
        '',
      ].join('\n'),
    );
    // git's own mktree builds the same object from the same entries.
    const mktree = gitSync(dir, ['mktree'], {
      input: entries.map((e) => `${e.mode} ${e.type} ${e.oid}\t${e.path}\n`).join(''),
    }).trim();
    expect(mktree).toBe(tree);
    expect(gitSync(dir, ['cat-file', '-p', commit])).toBe(
      `tree ${tree}\nauthor Agora <agora@localhost> 1700000123 +0000\ncommitter Agora <agora@localhost> 1700000123 +0000\n\nagora: first\n\nAgora-Run: r1\n`,
    );

    expect(Buffer.from(await store.readBlob(text)).toString()).toBe('hello\n');
    expect((await store.readTree(tree)).map((e) => e.path)).toEqual(['a-b', 'a.txt', 'a', 'a0', 'link', 'run.sh']);
    expect(await store.readCommit(commit)).toEqual({
      tree,
      parents: [],
      message: 'agora: first\n\nAgora-Run: r1\n',
      author: who,
      committer: who,
    });
  });

  it('writes a history that git log shows in order', async () => {
    const { dir, store } = await repo();
    const c1 = await rootCommit(store, 'one', [], 1_700_000_000_000);
    const c2 = await rootCommit(store, 'two', [c1], 1_700_000_060_000);
    const c3 = await rootCommit(store, 'three', [c2], 1_700_000_120_000);
    const merge = await rootCommit(store, 'merge', [c3, c1], 1_700_000_180_000);
    expect(await store.casRef('refs/heads/main', merge, null)).toBe(true);
    const log = gitSync(dir, ['log', '--format=%H %P %s %an <%ae> %at', 'main']).trim().split('\n');
    expect(log).toEqual([
      `${merge} ${c3} ${c1} merge Agora <agora@localhost> 1700000180`,
      `${c3} ${c2} three Agora <agora@localhost> 1700000120`,
      `${c2} ${c1} two Agora <agora@localhost> 1700000060`,
      `${c1}  one Agora <agora@localhost> 1700000000`,
    ]);
    expect(gitSync(dir, ['fsck', '--strict', '--no-dangling'])).toBe('');
    expect((await store.readCommit(merge)).parents).toEqual([c3, c1]);
  });

  it('reads packed objects and knows which objects exist', async () => {
    const { dir, store } = await repo();
    const c1 = await rootCommit(store, 'packed');
    await store.casRef('refs/heads/main', c1, null);
    gitSync(dir, ['repack', '-a', '-d', '-q']);
    gitSync(dir, ['prune-packed']);
    const { tree } = await store.readCommit(c1);
    const [entry] = await store.readTree(tree);
    expect(existsSync(join(dir, '.git', 'objects', entry!.oid.slice(0, 2), entry!.oid.slice(2)))).toBe(false);
    expect(Buffer.from(await store.readBlob(entry!.oid)).toString()).toBe('packed');
    expect(await store.hasObject(entry!.oid)).toBe(true);
    expect(await store.hasObject(c1)).toBe(true);
    expect(await store.hasObject('0'.repeat(40))).toBe(false);
    expect(await store.hasObject('not-an-id')).toBe(false);
    const err = await expectAgoraError(store.readBlob('1'.repeat(40)), 'object-not-found');
    expect(err.message).toContain('1'.repeat(40));
  });

  it('rejects invalid tree entries before writing', async () => {
    const { store } = await repo();
    const oid = await store.writeBlob('x');
    await expectAgoraError(store.writeTree([{ mode: '100644', path: 'a/b', oid, type: 'blob' }]), 'tree-invalid');
    await expectAgoraError(store.writeTree([{ mode: '100644', path: '.git', oid, type: 'blob' }]), 'tree-invalid');
    await expectAgoraError(
      store.writeTree([
        { mode: '100644', path: 'x', oid, type: 'blob' },
        { mode: '100755', path: 'x', oid, type: 'blob' },
      ]),
      'tree-invalid',
    );
    await expectAgoraError(store.writeTree([{ mode: '040000', path: 'x', oid, type: 'blob' }]), 'tree-invalid');
  });
});

describe('refs', () => {
  it('resolves HEAD through its symbolic ref, and an unborn HEAD to null', async () => {
    const { dir, store } = await repo();
    expect(await store.resolveRef('HEAD')).toBeNull();
    gitSync(dir, ['commit', '-q', '--allow-empty', '-m', 'init']);
    const head = gitSync(dir, ['rev-parse', 'HEAD']).trim();
    expect(await store.resolveRef('HEAD')).toBe(head);
    expect(await store.resolveRef('refs/heads/main')).toBe(head);
    expect(await store.resolveRef('refs/heads/nope')).toBeNull();
  });

  it('compare-and-swaps: create, refuse a second create, refuse a stale expectation, accept the current one', async () => {
    const { dir, store } = await repo();
    const a = await rootCommit(store, 'a');
    const b = await rootCommit(store, 'b', [a]);
    const c = await rootCommit(store, 'c', [b]);
    const ref = 'refs/agora/runs/r1';
    expect(await store.casRef(ref, a, null)).toBe(true);
    expect(await store.casRef(ref, b, null)).toBe(false);
    expect(await store.resolveRef(ref)).toBe(a);
    expect(await store.casRef(ref, c, b)).toBe(false);
    expect(await store.resolveRef(ref)).toBe(a);
    expect(await store.casRef(ref, b, a)).toBe(true);
    expect(gitSync(dir, ['rev-parse', ref]).trim()).toBe(b);
    expect(await readFile(join(dir, '.git', ref), 'utf8')).toBe(`${b}\n`);
    expect(existsSync(join(dir, '.git', `${ref}.lock`))).toBe(false);
    // The git CLI's own CAS interoperates: it sees our value as the current one.
    gitSync(dir, ['update-ref', ref, c, b]);
    expect(await store.resolveRef(ref)).toBe(c);
    expect(await store.casRef(ref, a, b)).toBe(false);
  });

  it('refuses refs outside refs/, malformed names and missing objects', async () => {
    const { store } = await repo();
    const a = await rootCommit(store, 'a');
    await expectAgoraError(store.casRef('HEAD', a, null), 'ref-invalid');
    await expectAgoraError(store.casRef('refs/agora/x..y', a, null), 'ref-invalid');
    await expectAgoraError(store.casRef('refs/agora/x.lock', a, null), 'ref-invalid');
    await expectAgoraError(store.casRef('refs/agora/a b', a, null), 'ref-invalid');
    await expectAgoraError(store.casRef('refs/agora/x', '2'.repeat(40), null), 'object-not-found');
  });

  it('reads, updates and deletes packed refs (with annotated tags kept intact)', async () => {
    const { dir, store } = await repo();
    const a = await rootCommit(store, 'a');
    const b = await rootCommit(store, 'b', [a]);
    await store.flushObjects(); // git is another process: it sees objects once written out
    gitSync(dir, ['update-ref', 'refs/agora/runs/one', a]);
    gitSync(dir, ['update-ref', 'refs/agora/runs/two', a]);
    gitSync(dir, ['update-ref', 'refs/heads/main', a]);
    gitSync(dir, ['tag', '-a', '-m', 'tagged', 'v1', a]);
    gitSync(dir, ['pack-refs', '--all']);
    expect(existsSync(join(dir, '.git', 'refs/agora/runs/one'))).toBe(false);
    const packedBefore = await readFile(join(dir, '.git', 'packed-refs'), 'utf8');
    expect(packedBefore).toContain('refs/agora/runs/one');
    expect(packedBefore).toMatch(/^\^[0-9a-f]{40}$/m); // the tag's peeled line

    expect(await store.resolveRef('refs/agora/runs/one')).toBe(a);
    expect(await store.casRef('refs/agora/runs/one', b, b)).toBe(false);
    expect(await store.casRef('refs/agora/runs/one', b, null)).toBe(false);
    expect(await store.casRef('refs/agora/runs/one', b, a)).toBe(true);
    expect(gitSync(dir, ['rev-parse', 'refs/agora/runs/one']).trim()).toBe(b);

    // Deleting a ref that is both loose (b) and packed (a): both go, git agrees.
    expect(await store.deleteRef('refs/agora/runs/one', a)).toBe(false);
    expect(await store.deleteRef('refs/agora/runs/one', b)).toBe(true);
    expect(await store.resolveRef('refs/agora/runs/one')).toBeNull();
    expect(await readFile(join(dir, '.git', 'packed-refs'), 'utf8')).not.toContain('refs/agora/runs/one');
    // Deleting a packed-only ref.
    expect(await store.deleteRef('refs/agora/runs/two', a)).toBe(true);
    expect(gitSync(dir, ['for-each-ref', '--format=%(refname)', 'refs/agora/'])).toBe('');
    // The rest of packed-refs survives, including the tag's peeled line.
    expect(gitSync(dir, ['show-ref', '-d', 'v1']).trim().split('\n')).toHaveLength(2);
    expect(gitSync(dir, ['rev-parse', 'v1^{commit}']).trim()).toBe(a);
    expect(await store.resolveRef('refs/heads/main')).toBe(a);
    expect(gitSync(dir, ['fsck', '--strict', '--no-dangling'])).toBe('');
    expect(existsSync(join(dir, '.git', 'packed-refs.lock'))).toBe(false);
    expect(await store.deleteRef('refs/agora/runs/two', a)).toBe(false);
  });

  it('deletes a loose ref and prunes the directories it leaves empty', async () => {
    const { dir, store } = await repo();
    const a = await rootCommit(store, 'a');
    expect(await store.casRef('refs/agora/patches/r1/item', a, null)).toBe(true);
    expect(await store.deleteRef('refs/agora/patches/r1/item', a)).toBe(true);
    expect(existsSync(join(dir, '.git', 'refs/agora/patches/r1'))).toBe(false);
    expect(await store.casRef('refs/agora/patches/r1/item', a, null)).toBe(true);
  });

  it('lists loose and packed refs under a prefix, sorted, loose winning', async () => {
    const { dir, store } = await repo();
    const a = await rootCommit(store, 'a');
    const b = await rootCommit(store, 'b', [a]);
    await store.flushObjects(); // git is another process: it sees objects once written out
    for (const name of ['runs/b', 'runs/a', 'runs/ab', 'inbox/x']) gitSync(dir, ['update-ref', `refs/agora/${name}`, a]);
    gitSync(dir, ['pack-refs', '--all']);
    await store.casRef('refs/agora/runs/a', b, a); // loose now, newer than its packed line
    await store.casRef('refs/agora/runs/c/d', b, null);
    await writeFile(join(dir, '.git', 'refs/agora/runs/z.lock'), `${a}\n`); // a lock is not a ref
    expect(await store.listRefs('refs/agora/runs/')).toEqual([
      { ref: 'refs/agora/runs/a', oid: b },
      { ref: 'refs/agora/runs/ab', oid: a },
      { ref: 'refs/agora/runs/b', oid: a },
      { ref: 'refs/agora/runs/c/d', oid: b },
    ]);
    expect((await store.listRefs('refs/agora/runs/a')).map((r) => r.ref)).toEqual(['refs/agora/runs/a', 'refs/agora/runs/ab']);
    expect((await store.listRefs('refs/agora/')).map((r) => r.ref)).toContain('refs/agora/inbox/x');
    expect(await store.listRefs('refs/agora/none/')).toEqual([]);
  });
});

describe('ref locks', () => {
  it('leaves a git lock (no writer named) older than 30 s to a person: ref-locked naming the file, even where agora recovers its own', async () => {
    const { dir, store } = await repo();
    store.recoverAbandonedLocks();
    const a = await rootCommit(store, 'a');
    const lock = join(dir, '.git', 'refs/agora/runs/r1.lock');
    await mkdir(join(dir, '.git', 'refs/agora/runs'), { recursive: true });
    await writeFile(lock, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const err = await expectAgoraError(store.casRef('refs/agora/runs/r1', a, null), 'ref-locked');
    expect(err.message).toContain(lock);
    expect(err.message).toContain('not agora');
    expect(err.hint).toContain(`remove ${lock}`);
    expect(err.hint).toContain('no git process is running');
    expect(existsSync(lock)).toBe(true); // never removed behind the user's back
  });

  it('waits for a live lock: false once the bounded wait is over, true when the holder lets go in time', async () => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const store = await openLocalStore(r.dir, { maxWaitMs: 300 });
    const a = await rootCommit(store, 'a');
    const lock = join(r.gitdir, 'refs/agora/runs/r1.lock');
    await mkdir(join(r.gitdir, 'refs/agora/runs'), { recursive: true });
    await writeFile(lock, '');
    const started = Date.now();
    expect(await store.casRef('refs/agora/runs/r1', a, null)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(existsSync(lock)).toBe(true);
    expect(await store.resolveRef('refs/agora/runs/r1')).toBeNull();

    // A store that waits far longer than the holder takes to let go, however late the timer fires.
    const patient = await openLocalStore(r.dir, { maxWaitMs: scaled(60_000) });
    const release = setTimeout(() => void rm(lock), 100);
    try {
      expect(await patient.casRef('refs/agora/runs/r1', a, null)).toBe(true);
    } finally {
      clearTimeout(release);
    }
    expect(existsSync(lock)).toBe(false);
    expect(await patient.resolveRef('refs/agora/runs/r1')).toBe(a);
  });

  it('makes the git CLI wait or fail while Agora holds a lock, never corrupting the ref', async () => {
    const { dir, store } = await repo();
    const a = await rootCommit(store, 'a');
    const b = await rootCommit(store, 'b', [a]);
    await store.casRef('refs/agora/runs/r1', a, null);
    const lock = join(dir, '.git', 'refs/agora/runs/r1.lock');
    await writeFile(lock, '');
    expect(() => gitSync(dir, ['update-ref', 'refs/agora/runs/r1', b, a])).toThrow(/cannot lock ref/);
    await rm(lock);
    expect(await store.resolveRef('refs/agora/runs/r1')).toBe(a);
  });
});

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCommit } from '../../src/git/commit-object.js';
import { openLocalStore } from '../../src/git/local-store.js';
import { parseTree, sortTreeEntries } from '../../src/git/tree-object.js';
import type { TreeEntryMode } from '../../src/git/types.js';
import { cliEnv, initRepo } from './git-fixtures.js';

/**
 * Small loose commits and trees (what Agora writes) are read in-process (parseCommit, parseTree); the
 * rest still goes through isomorphic-git. Whichever way an object is read, readCommit and readTree must
 * give what isomorphic-git gives, and an object the in-process reader does not take must fall back.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const PARENT = 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3';
const BLOB = 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391';

/** Writes `content` as a loose object of `type` exactly as given (git checks nothing with --literally). */
function writeRaw(gitdir: string, type: string, content: Buffer | string): string {
  return execFileSync('git', ['--git-dir', gitdir, 'hash-object', '-w', '--literally', '-t', type, '--stdin'], { env: cliEnv(), input: content })
    .toString()
    .trim();
}

function treeEntry(mode: string, name: Buffer | string, oid: string): Buffer {
  return Buffer.concat([Buffer.from(`${mode} `), Buffer.from(name), Buffer.from([0]), Buffer.from(oid, 'hex')]);
}

const commits: Array<[string, Buffer | string, boolean]> = [
  [
    'a commit as Agora writes it',
    `tree ${TREE}\nparent ${PARENT}\nauthor Agora <agora@example.invalid> 1700000000 +0000\ncommitter Agora <agora@example.invalid> 1700000000 +0000\n\nitem: done\n`,
    true,
  ],
  ['a root commit', `tree ${TREE}\nauthor A <a@x> 1 +0530\ncommitter B <b@y> 2 -0800\n\nroot\n`, true],
  ['a merge', `tree ${TREE}\nparent ${PARENT}\nparent ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nmerge\n\nbody ✓\n`, true],
  ['a zone of -0000', `tree ${TREE}\nauthor A <a@x> 1 -0000\ncommitter A <a@x> 1 -0000\n\nm\n`, true],
  ['an empty name and email', `tree ${TREE}\nauthor  <> 1 +0000\ncommitter  <> 1 +0000\n\nm\n`, true],
  [
    'a signed commit',
    `tree ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nsigned\n`,
    false,
  ],
  ['an encoding header', `tree ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\nencoding ISO-8859-1\n\nm\n`, false],
  ['a message with carriage returns', `tree ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nsubject\r\n\r\nbody\r\n`, false],
  ['a message with no trailing newline', `tree ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nm`, false],
  ['a timestamp with a leading zero', `tree ${TREE}\nauthor A <a@x> 01 +0000\ncommitter A <a@x> 1 +0000\n\nm\n`, false],
  ['a name with angle brackets', `tree ${TREE}\nauthor a <b> <c@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nm\n`, false],
  [
    'a message that is not UTF-8',
    Buffer.concat([Buffer.from(`tree ${TREE}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\n`), Buffer.from([0xe9, 0x0a])]),
    false,
  ],
  ['a name with a carriage return', `tree ${TREE}\nauthor A\r <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nm\n`, false],
  ['an email with a paragraph separator', `tree ${TREE}\nauthor A <a\u2029@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nm\n`, false],
  ['a parent after the author', `tree ${TREE}\nauthor A <a@x> 1 +0000\nparent ${PARENT}\ncommitter A <a@x> 1 +0000\n\nm\n`, false],
];

const trees: Array<[string, Buffer, boolean]> = [
  ['a tree as git writes it', Buffer.concat([treeEntry('100644', 'a.txt', BLOB), treeEntry('40000', 'dir', TREE), treeEntry('100755', 'run', BLOB)]), true],
  [
    'a directory sorted as its name and a slash',
    Buffer.concat([treeEntry('100644', 'a.b', BLOB), treeEntry('40000', 'a', TREE), treeEntry('100644', 'a0', BLOB)]),
    true,
  ],
  ['every kind of entry', Buffer.concat([treeEntry('120000', 'link', BLOB), treeEntry('160000', 'sub', PARENT), treeEntry('100644', 'ü.txt', BLOB)]), true],
  ['the empty tree', Buffer.alloc(0), true],
  ['a mode git no longer writes', treeEntry('100664', 'a.txt', BLOB), false],
  ['a directory mode with its leading zero', treeEntry('040000', 'dir', TREE), false],
  ['entries out of git order', Buffer.concat([treeEntry('100644', 'b', BLOB), treeEntry('100644', 'a', BLOB)]), false],
  ['a name that is not UTF-8', treeEntry('100644', Buffer.from([0x61, 0xff]), BLOB), false],
];

describe('reading commits and trees in-process', () => {
  it.each(commits)('reads %s as isomorphic-git does', async (_name, content, inProcess) => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const oid = writeRaw(r.gitdir, 'commit', content);
    const parsed = parseCommit(Buffer.from(content));
    expect(parsed !== null).toBe(inProcess);
    const store = await openLocalStore(r.dir);
    const theirs = await git.readCommit({ fs, gitdir: r.gitdir, oid }).then(
      ({ commit }) => ({ tree: commit.tree, parents: commit.parent, message: commit.message, author: commit.author, committer: commit.committer }),
      () => 'refused',
    );
    // The parser's own answer, not only the store's (which would fall back to isomorphic-git if it were wrong).
    if (parsed !== null) expect(parsed).toStrictEqual(theirs); // -0 and 0 told apart
    expect(await store.readCommit(oid).catch((e: { code?: string }) => (e.code === 'commit-invalid' ? 'refused' : e))).toStrictEqual(theirs);
  });

  it.each(trees)('reads %s as isomorphic-git does', async (_name, content, inProcess) => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const oid = writeRaw(r.gitdir, 'tree', content);
    const parsed = parseTree(content);
    expect(parsed !== null).toBe(inProcess);
    const store = await openLocalStore(r.dir);
    // The store gives entries in git's order; isomorphic-git keeps the object's.
    const theirs = await git.readTree({ fs, gitdir: r.gitdir, oid }).then(
      ({ tree }) => sortTreeEntries(tree.map((e) => ({ mode: e.mode as TreeEntryMode, path: e.path, oid: e.oid, type: e.type }))),
      () => 'refused',
    );
    if (parsed !== null) expect(parsed).toEqual(theirs);
    const mine = await store.readTree(oid).catch(() => 'refused');
    expect(mine).toEqual(theirs);
  });

  // `.git` under the names NTFS and HFS+ give it, and a backslash (a separator on Windows): isomorphic-git
  // refuses each, so the in-process reader must too, or a loose and a packed copy of one tree would differ.
  it.each(['..', '.git', '.GIT', '.git.', '.git ', 'git~1', '.GIT::$INDEX_ALLOCATION', '.g\u200cit', '\ufeff..', 'a\\b'])(
    'refuses a tree with an entry named %j, which git refuses, by either reader',
    async (name) => {
      const r = await initRepo();
      cleanups.push(r.cleanup);
      const oid = writeRaw(r.gitdir, 'tree', treeEntry('100644', name, BLOB));
      expect(parseTree(treeEntry('100644', name, BLOB))).toBeNull();
      const store = await openLocalStore(r.dir);
      await expect(store.readTree(oid)).rejects.toMatchObject({ code: 'tree-invalid' });
      await expect(git.readTree({ fs, gitdir: r.gitdir, oid })).rejects.toMatchObject({ code: 'UnsafeFilepathError' });
      // Nor is such a name written, or checked out by the in-process method.
      await expect(store.writeTree([{ mode: '100644', path: name, oid: BLOB, type: 'blob' }])).rejects.toMatchObject({ code: 'tree-invalid' });
    },
  );

  it.each(['a:b', 'git~0', 'git~10', '.gitx', 'x.git', ' .git'])('reads a tree with an entry named %j in-process, as isomorphic-git does', async (name) => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const oid = writeRaw(r.gitdir, 'tree', treeEntry('100644', name, BLOB));
    const entry = { mode: '100644', path: name, oid: BLOB, type: 'blob' };
    expect(parseTree(treeEntry('100644', name, BLOB))).toEqual([entry]);
    expect((await git.readTree({ fs, gitdir: r.gitdir, oid })).tree).toEqual([entry]);
  });

  it('reads a commit, its tree (also through the commit) and a blob while every thread of the pool is blocked', async () => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const store = await openLocalStore(r.dir);
    const blob = await store.writeBlob('hello\n');
    const tree = await store.writeTree([{ mode: '100644', path: 'hello.txt', oid: blob, type: 'blob' }]);
    const who = { name: 'Agora', email: 'agora@example.invalid', timestamp: 1_700_000_000, timezoneOffset: 0 };
    const commit = await store.writeCommit({ tree, parents: [], message: 'm\n', author: who, committer: who });
    // Opening a FIFO for reading blocks a thread of libuv's pool until a writer opens it: with every
    // thread so held, a read that goes through the pool cannot finish until they are let go.
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    const fifos = Array.from({ length: threads }, (_, i) => join(r.dir, `fifo-${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const held = fifos.map((f) => open(f, 'r').then((h) => h.close()));
    let read = false;
    try {
      const reads = Promise.all([store.readCommit(commit), store.readTree(tree), store.readTree(commit), store.readBlob(blob)]).then((got) => {
        read = true;
        return got;
      });
      const [c, t, peeled, b] = await Promise.race([reads, new Promise<null>((done) => setImmediate(() => setImmediate(() => done(null))))]).then(
        (got) => got ?? [null, null, null, null],
      );
      expect(read).toBe(true);
      expect(c).toMatchObject({ tree, parents: [], message: 'm\n' });
      expect(t).toEqual([{ mode: '100644', path: 'hello.txt', oid: blob, type: 'blob' }]);
      expect(peeled).toEqual(t);
      expect(Buffer.from(b!).toString()).toBe('hello\n');
    } finally {
      // A writer's open waits for its reader, which holds a thread until then: each lets one thread go.
      for (const f of fifos) fs.closeSync(fs.openSync(f, 'w'));
      await Promise.all(held);
    }
  });
});

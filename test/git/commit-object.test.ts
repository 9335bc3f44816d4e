import fs from 'node:fs';
import git from 'isomorphic-git';
import { afterEach, describe, expect, it } from 'vitest';
import { renderCommit } from '../../src/git/commit-object.js';
import { openLocalStore } from '../../src/git/local-store.js';
import type { CommitData } from '../../src/git/types.js';
import { gitSync, initRepo } from './git-fixtures.js';

/**
 * Commits are written in-process (src/git/commit-object.ts). Their bytes must be the ones isomorphic-git
 * wrote before, or every commit id Agora makes from the same inputs would change; and git must read them.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const PARENT = 'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3';

const cases: Array<[string, CommitData]> = [
  ['a root commit in UTC', { tree: TREE, parents: [], message: 'agora: run\n', author: who(0), committer: who(0) }],
  ['two parents, zones east and west', { tree: TREE, parents: [PARENT, TREE], message: 'm', author: who(-330), committer: who(480) }],
  ['a zone of -0 and one of 100 hours', { tree: TREE, parents: [PARENT], message: 'x\n', author: who(-0), committer: who(-6000) }],
  [
    'a message with carriage returns, leading and trailing newlines, and trailers',
    { tree: TREE, parents: [PARENT], message: '\n\nsubject\r\n\r\nbody ✓\n\nAgora-Run: r1\n\n\n', author: who(60), committer: who(-60) },
  ],
];

function who(timezoneOffset: number) {
  return { name: 'Agora Bot', email: 'agora@example.invalid', timestamp: 1_700_000_123, timezoneOffset };
}

describe('commit objects', () => {
  it.each(cases)('renders %s exactly as isomorphic-git does', async (_name, commit) => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const theirs = await git.writeCommit({
      fs,
      gitdir: r.gitdir,
      commit: { tree: commit.tree, parent: commit.parents, message: commit.message, author: commit.author, committer: commit.committer },
    });
    const { object } = await git.readObject({ fs, gitdir: r.gitdir, oid: theirs, format: 'content' });
    expect(renderCommit(commit).equals(Buffer.from(object as Uint8Array))).toBe(true);
    const store = await openLocalStore(r.dir);
    expect(await store.writeCommit(commit)).toBe(theirs);
  });

  it('writes a commit git reads back, and that readCommit returns as given (message normalised)', async () => {
    const r = await initRepo();
    cleanups.push(r.cleanup);
    const store = await openLocalStore(r.dir);
    const tree = await store.writeTree([]);
    const commit = { tree, parents: [], message: 'subject\r\n\r\nbody\n\n', author: who(-120), committer: who(-120) };
    const oid = await store.writeCommit(commit);
    await store.flushObjects(); // git is another process: it sees objects once written out
    expect(gitSync(r.dir, ['cat-file', '-t', oid])).toBe('commit\n');
    expect(gitSync(r.dir, ['log', '-1', '--format=%an <%ae> %at %ai%n%B', oid])).toBe(
      'Agora Bot <agora@example.invalid> 1700000123 2023-11-15 00:15:23 +0200\nsubject\n\nbody\n\n',
    );
    expect(await store.readCommit(oid)).toEqual({ ...commit, message: 'subject\n\nbody\n' });
    gitSync(r.dir, ['fsck', '--strict', '--no-dangling']);
  });
});

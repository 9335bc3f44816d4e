import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listRefs, readPackedRefsFile, readRef } from '../../src/git/ref-read.js';
import { gitSync, initRepo } from './git-fixtures.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A repository with `n` commits, one after the other; returns their ids in order. */
async function repoWithCommits(n: number): Promise<{ dir: string; gitdir: string; commits: string[] }> {
  const repo = await initRepo();
  cleanups.push(repo.cleanup);
  const commits: string[] = [];
  for (let i = 0; i < n; i++) {
    gitSync(repo.dir, ['commit', '--allow-empty', '-q', '-m', `commit ${i}`]);
    commits.push(gitSync(repo.dir, ['rev-parse', 'HEAD']).trim());
  }
  return { ...repo, commits };
}

describe('packed refs, read through a snapshot validated by stat', () => {
  it('sees every rewrite git makes, including ones that keep the file the same size', async () => {
    const { dir, gitdir, commits } = await repoWithCommits(6);
    // Each round moves the ref and packs it: the file is rewritten with the same length every time.
    for (const commit of commits) {
      gitSync(dir, ['update-ref', 'refs/agora/patches/r/item', commit]);
      gitSync(dir, ['pack-refs', '--all']);
      expect(await readRef(gitdir, 'refs/agora/patches/r/item')).toBe(commit);
      expect(await listRefs(gitdir, 'refs/agora/patches/')).toEqual([{ ref: 'refs/agora/patches/r/item', oid: commit }]);
    }
  });

  it('sees a packed ref deleted, and the file removed or written in place', async () => {
    const { dir, gitdir, commits } = await repoWithCommits(2);
    gitSync(dir, ['update-ref', 'refs/agora/a', commits[0]!]);
    gitSync(dir, ['update-ref', 'refs/agora/b', commits[1]!]);
    gitSync(dir, ['pack-refs', '--all']);
    expect(await readRef(gitdir, 'refs/agora/a')).toBe(commits[0]);

    gitSync(dir, ['update-ref', '-d', 'refs/agora/a']);
    expect(await readRef(gitdir, 'refs/agora/a')).toBeNull();
    expect(await readRef(gitdir, 'refs/agora/b')).toBe(commits[1]);

    // Written in place by some other tool (no rename): a new size still shows.
    await writeFile(join(gitdir, 'packed-refs'), `${commits[0]} refs/agora/a\n${commits[1]} refs/agora/b\n`);
    expect(await readRef(gitdir, 'refs/agora/a')).toBe(commits[0]);

    await rm(join(gitdir, 'packed-refs'));
    expect(await readRef(gitdir, 'refs/agora/b')).toBeNull();
    expect((await readPackedRefsFile(gitdir)).refs).toEqual([]);
  });

  it('hands each caller its own copy of the parsed file', async () => {
    const { dir, gitdir, commits } = await repoWithCommits(1);
    gitSync(dir, ['update-ref', 'refs/agora/a', commits[0]!]);
    gitSync(dir, ['pack-refs', '--all']);
    const first = await readPackedRefsFile(gitdir);
    first.refs.length = 0; // a caller that edits what it got (ref-lock.ts rewrites the file from it)
    expect((await readPackedRefsFile(gitdir)).refs.map((r) => r.ref)).toContain('refs/agora/a');
  });
});

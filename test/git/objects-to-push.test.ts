import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLocalStore, type LocalGitStore } from '../../src/git/local-store.js';
import { objectsToPush } from '../../src/git/objects-to-push.js';
import { cliEnv, gitSync, initRepo } from './git-fixtures.js';

let repo: Awaited<ReturnType<typeof initRepo>>;
let store: LocalGitStore;
const commits: string[] = [];

async function commitFiles(files: Record<string, string | null>, message: string): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    if (text === null) await rm(join(repo.dir, path), { recursive: true });
    else {
      await mkdir(join(repo.dir, path, '..'), { recursive: true });
      await writeFile(join(repo.dir, path), text);
    }
  }
  gitSync(repo.dir, ['add', '-A']);
  gitSync(repo.dir, ['commit', '-q', '--allow-empty', '-m', message]);
  return gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
}

/** What git itself would send: `git rev-list --objects <tips> --not <known>`. */
function gitWouldSend(tips: string[], known: string[]): string[] {
  const out = gitSync(repo.dir, ['rev-list', '--objects', ...tips, '--not', ...known]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[0]!)
    .sort();
}

beforeAll(async () => {
  repo = await initRepo();
  commits.push(await commitFiles({ 'README.md': 'one\n', 'src/a.ts': 'a1\n', 'src/lib/b.ts': 'b1\n', 'docs/x.md': 'x\n' }, 'first'));
  commits.push(await commitFiles({ 'src/lib/b.ts': 'b2\n' }, 'a nested change'));
  commits.push(await commitFiles({ 'docs/x.md': null, 'new/dir/c.ts': 'c\n', 'src/a.ts': 'a3\n' }, 'a deletion, a new directory'));
  commits.push(await commitFiles({}, 'nothing changed'));
  store = await openLocalStore(repo.dir);
});
afterAll(() => repo.cleanup());

describe('the objects a push carries', () => {
  it('are exactly what git would send, from the new commits back to one the remote has', async () => {
    for (let known = 0; known < commits.length - 1; known += 1) {
      const tip = commits.at(-1)!;
      const ours = await objectsToPush(store, [tip], (c) => c === commits[known]);
      expect(ours?.objects.sort(), `known: commit ${known}`).toEqual(gitWouldSend([tip], [commits[known]!]));
    }
  });

  it('for a root commit, its whole tree; for a tip the remote has, nothing', async () => {
    const root = await objectsToPush(store, [commits[0]!], () => false);
    expect(root?.objects.sort()).toEqual(gitWouldSend([commits[0]!], []).sort());
    expect(root?.deltaBases.size).toBe(0);
    expect(await objectsToPush(store, [commits[2]!], (c) => c === commits[2])).toEqual({ objects: [], commits: [], deltaBases: new Map() });
  });

  it('are the same when the history is packed (read through isomorphic-git, not in-process)', async () => {
    const tip = commits.at(-1)!;
    const loose = await objectsToPush(store, [tip], (c) => c === commits[0]);
    gitSync(repo.dir, ['repack', '-a', '-d', '-q']);
    gitSync(repo.dir, ['prune-packed']);
    expect(gitSync(repo.dir, ['count-objects', '-v'])).toMatch(/^count: 0$/m);
    const packed = await objectsToPush(await openLocalStore(repo.dir), [tip], (c) => c === commits[0]);
    expect(packed?.objects.sort()).toEqual(gitWouldSend([tip], [commits[0]!]));
    expect(packed?.objects.sort()).toEqual(loose?.objects.sort());
    expect(packed?.deltaBases).toEqual(loose?.deltaBases);
  });

  it('pair each object that replaces one at the same path with it: the remote has the base, and it is of the same type', async () => {
    const tip = commits.at(-1)!;
    const ours = (await objectsToPush(store, [tip], (c) => c === commits[0]))!;
    const remoteHas = new Set(gitWouldSend([commits[0]!], []));
    const at = (rev: string, path: string) => gitSync(repo.dir, ['rev-parse', `${rev}:${path}`]).trim();
    // b.ts changed in commit 1, a.ts in 2: their bases are what commit 0 had at those paths (commit 1's
    // own src trees are sent too, so src's newest tree has no base the remote holds).
    expect(ours.deltaBases.get(at(commits[1]!, 'src/lib/b.ts'))).toBe(at(commits[0]!, 'src/lib/b.ts'));
    expect(ours.deltaBases.get(at(commits[1]!, 'src/lib'))).toBe(at(commits[0]!, 'src/lib'));
    expect(ours.deltaBases.get(at(commits[1]!, ''))).toBe(at(commits[0]!, ''));
    expect(ours.deltaBases.has(at(tip, 'src'))).toBe(false);
    expect(ours.deltaBases.has(at(tip, 'new/dir/c.ts'))).toBe(false); // a new path: nothing to be a delta of
    for (const [oid, base] of ours.deltaBases) {
      expect(ours.objects).toContain(oid);
      expect(remoteHas.has(base), `${base} is on the remote`).toBe(true);
      expect(gitSync(repo.dir, ['cat-file', '-t', base])).toBe(gitSync(repo.dir, ['cat-file', '-t', oid]));
    }
    // Known from the newest commit back: every changed path's base is the one commit 2 had.
    const last = (await objectsToPush(store, [commits[2]!], (c) => c === commits[1]))!;
    expect(last.deltaBases.get(at(commits[2]!, 'src/a.ts'))).toBe(at(commits[1]!, 'src/a.ts'));
    expect(last.deltaBases.get(at(commits[2]!, 'src'))).toBe(at(commits[1]!, 'src'));
  });

  it('gives up (null, the caller asks git) past its bounds or at a merge', async () => {
    expect(await objectsToPush(store, [commits.at(-1)!], () => false, { maxCommits: 2 })).toBeNull();
    expect(await objectsToPush(store, [commits[0]!], () => false, { maxObjects: 3 })).toBeNull();
    gitSync(repo.dir, ['checkout', '-q', '-b', 'side', commits[1]!]);
    const side = await commitFiles({ 'side.txt': 'side\n' }, 'on the side');
    gitSync(repo.dir, ['checkout', '-q', '-']);
    gitSync(repo.dir, ['merge', '-q', '--no-edit', side]);
    const merge = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    expect(await objectsToPush(store, [merge], (c) => c === commits.at(-1))).toBeNull();
  });

  it('read every kind of tree entry as git does: a symlink, an executable, a submodule commit, a name that is not UTF-8', async () => {
    const before = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    await mkdir(join(repo.dir, 'kinds'), { recursive: true });
    await symlink('../README.md', join(repo.dir, 'kinds', 'link'));
    await writeFile(join(repo.dir, 'kinds', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(Buffer.concat([Buffer.from(join(repo.dir, 'kinds', 'latin-')), Buffer.from([0xe9, 0xff])]), 'not utf-8\n');
    gitSync(repo.dir, ['add', '-A']);
    gitSync(repo.dir, ['update-index', '--add', '--cacheinfo', `160000,${commits[0]},kinds/sub`]); // a commit of another repository
    gitSync(repo.dir, ['commit', '-q', '-m', 'every kind of entry']);
    const tip = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    expect(gitSync(repo.dir, ['ls-tree', 'HEAD:kinds']).match(/^\d+/gm)?.sort()).toEqual(['100644', '100755', '120000', '160000']);
    expect((await objectsToPush(store, [tip], (c) => c === before))?.objects.sort()).toEqual(gitWouldSend([tip], [before]));
  });

  it('never pair a file with a directory: a worker that swaps one for the other gets a pack git completes from what the remote has', async () => {
    await commitFiles({ 'swap/was-file': 'a file\n', 'swap/was-dir/inner.txt': 'inside\n', 'swap/same.txt': 'same\n' }, 'before the swap');
    const known = gitSync(repo.dir, ['rev-parse', 'HEAD']).trim();
    // One commit swaps them: the tip's parent has a file where the tip has a directory, and the reverse.
    await rm(join(repo.dir, 'swap', 'was-file'));
    await rm(join(repo.dir, 'swap', 'was-dir'), { recursive: true });
    const tip = await commitFiles(
      { 'swap/was-file/now-inside.txt': 'now a directory\n', 'swap/was-dir': 'now a file\n', 'swap/same.txt': 'same, changed\n' },
      'the swap',
    );
    const ours = (await objectsToPush(store, [tip], (c) => c === known))!;
    expect(ours.objects.sort()).toEqual(gitWouldSend([tip], [known]));
    for (const [oid, base] of ours.deltaBases) expect(gitSync(repo.dir, ['cat-file', '-t', base])).toBe(gitSync(repo.dir, ['cat-file', '-t', oid]));
    // Only what the remote has is a base: a repository holding the known commit alone completes the pack.
    const remote = await initRepo({ bare: true });
    try {
      gitSync(repo.dir, ['push', '-q', remote.gitdir, `${known}:refs/heads/known`]);
      const pack = await store.packObjects(ours.objects, ours.deltaBases);
      execFileSync('git', ['index-pack', '--stdin', '--fix-thin', '--strict'], {
        cwd: remote.gitdir,
        input: pack,
        env: cliEnv(),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      gitSync(remote.gitdir, ['update-ref', 'refs/heads/tip', tip]);
      gitSync(remote.gitdir, ['fsck', '--connectivity-only', '--no-dangling']);
      expect(gitSync(remote.gitdir, ['cat-file', '-p', `${tip}:swap/was-dir`])).toBe('now a file\n');
    } finally {
      await remote.cleanup();
    }
  });
});

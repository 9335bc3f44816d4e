import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AgoraError } from '../../src/errors.js';
import { agoraIdentity } from '../../src/git/identity.js';
import { openLocalStore } from '../../src/git/local-store.js';
import type { Oid } from '../../src/git/types.js';
import { replayPatches, type ReplayResult } from '../../src/runs/replay.js';
import { gitListTree, gitSync } from '../git/git-fixtures.js';
import { cleanupTempDirs, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

const NOW = 1_700_000_123_456;

/** Runs git in `repo` (isolated config, fixed Test identity and dates unless `env` says otherwise). */
function git(repo: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): string {
  return gitSync(repo, args, opts).trim();
}

function write(repo: string, path: string, content: string): void {
  mkdirSync(dirname(join(repo, path)), { recursive: true });
  writeFileSync(join(repo, path), content);
}

/** A repository on `main` whose only commit (the run's plan commit, `base`) holds `files`. */
function makeBase(files: Record<string, string>): { repo: string; base: Oid } {
  const repo = tempDir('agora-replay-');
  git(repo, ['init', '-q', '-b', 'main']);
  for (const [path, content] of Object.entries(files)) write(repo, path, content);
  git(repo, ['add', '--all']);
  git(repo, ['commit', '-q', '--allow-empty', '-m', 'plan']);
  return { repo, base: git(repo, ['rev-parse', 'HEAD']) };
}

/** Commits everything in the working tree with `message`; returns the commit id. */
function commitAll(repo: string, message: string, env: Record<string, string> = {}): Oid {
  git(repo, ['add', '--all']);
  git(repo, ['commit', '-q', '--allow-empty', '-F', '-'], { input: message, env });
  return git(repo, ['rev-parse', 'HEAD']);
}

/** An integration commit message the way src/runs/patches.ts writes them. */
function patchMessage(item: string): string {
  return `${item}: paths changed by agora run run-1\n\n  M somewhere\n\nAgora-Run: run-1\nAgora-Item: ${item}\nAgora-Patch: ${'ab'.repeat(20)}\n`;
}

function replayed(result: ReplayResult): Extract<ReplayResult, { kind: 'replayed' }> {
  if (result.kind !== 'replayed') throw new Error(`expected a replay, got ${JSON.stringify(result)}`);
  return result;
}

describe('replayPatches', () => {
  it('replays patches over unrelated human commits to the trees git cherry-pick gives, keeping messages and authors; Agora commits', async () => {
    const { repo, base } = makeBase({
      'a.txt': 'a1\n',
      'gone.txt': 'bye\n',
      'tool.sh': '#!/bin/sh\necho tool\n',
      'dir/b.txt': 'b1\n',
      'human.txt': 'h1\n',
      'keep/x.txt': 'x\n',
    });
    // The run's integration commits, on their own branch.
    git(repo, ['checkout', '-q', '-b', 'integration']);
    write(repo, 'a.txt', 'a2 by the patch\n');
    rmSync(join(repo, 'gone.txt'));
    write(repo, 'new/deep/n.txt', 'added deep\n');
    write(repo, 'dir/b.txt', 'b2\n');
    const alice = { GIT_AUTHOR_NAME: 'Alice Worker', GIT_AUTHOR_EMAIL: 'alice@example.org', GIT_AUTHOR_DATE: '1690000000 +0200' };
    const p1 = commitAll(repo, patchMessage('item-a'), alice);
    chmodSync(join(repo, 'tool.sh'), 0o755); // a mode-only change
    write(repo, 'bin/run', '#!/bin/sh\nexec tool\n');
    chmodSync(join(repo, 'bin/run'), 0o755);
    symlinkSync('../a.txt', join(repo, 'bin/a-link'));
    const p2 = commitAll(repo, patchMessage('item-b'), { GIT_AUTHOR_NAME: 'Bob', GIT_AUTHOR_EMAIL: 'bob@example.org', GIT_AUTHOR_DATE: '1690000100 -0500' });
    const head = p2;

    // People push to main meanwhile, near the patched paths but not on them.
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'human.txt', 'h2\n');
    write(repo, 'a.txt.orig', 'a sibling, not a.txt\n');
    commitAll(repo, 'human one');
    write(repo, 'dir2/b.txt', 'another directory\n');
    rmSync(join(repo, 'keep/x.txt'));
    write(repo, 'newer/n.txt', 'not below new/\n');
    const onto = commitAll(repo, 'human two');

    // What git itself makes of the same replay.
    git(repo, ['checkout', '-q', '-b', 'expect', onto]);
    git(repo, ['cherry-pick', p1, p2]);
    const expectTrees = [git(repo, ['rev-parse', 'expect~1^{tree}']), git(repo, ['rev-parse', 'expect^{tree}'])];

    const store = await openLocalStore(repo);
    const result = replayed(await replayPatches(store, { base, head, onto, now: NOW }));
    await store.flushObjects(); // the replayed commits wait in memory: git is another process
    expect(result.commits.map((c) => c.original)).toEqual([p1, p2]);
    expect(result.head).toBe(result.commits[1]!.replayed);
    for (const [i, { original, replayed: copy }] of result.commits.entries()) {
      const orig = await store.readCommit(original);
      const made = await store.readCommit(copy);
      expect(made.tree).toBe(expectTrees[i]);
      expect(made.parents).toEqual([i === 0 ? onto : result.commits[i - 1]!.replayed]);
      expect(made.message).toBe(orig.message);
      expect(made.author).toEqual(orig.author);
      expect(made.committer).toEqual(agoraIdentity(NOW));
    }
    // The same facts through the git CLI: a chain on onto, the patch's trailers, authors, Agora as committer.
    expect(git(repo, ['rev-list', '--first-parent', `${onto}..${result.head}`]).split('\n')).toEqual([result.head, result.commits[0]!.replayed]);
    expect(
      git(repo, ['log', '--format=%(trailers:key=Agora-Item,valueonly,separator=)', `${onto}..${result.head}`])
        .split('\n')
        .filter(Boolean),
    ).toEqual(['item-b', 'item-a']);
    expect(git(repo, ['log', '--format=%an <%ae> %ad|%cn <%ce> %ct', '--date=raw', `${onto}..${result.head}`]).split('\n')).toEqual([
      `Bob <bob@example.org> 1690000100 -0500|Agora <agora@localhost> ${Math.floor(NOW / 1000)}`,
      `Alice Worker <alice@example.org> 1690000000 +0200|Agora <agora@localhost> ${Math.floor(NOW / 1000)}`,
    ]);
    // Spot checks that the fixture exercises what it claims to: modes, a symlink, deletions, nested additions.
    const listing = gitListTree(join(repo, '.git'), result.head).map((l) => `${l.split(' ')[0]} ${l.split(' ')[2]}`);
    expect(listing).toEqual(
      expect.arrayContaining(['100755 tool.sh', '100755 bin/run', '120000 bin/a-link', '100644 new/deep/n.txt', '100644 human.txt', '100644 dir2/b.txt']),
    );
    expect(listing.some((l) => l.endsWith(' gone.txt') || l.endsWith(' keep/x.txt'))).toBe(false);
    expect(git(repo, ['show', `${result.head}:a.txt`])).toBe('a2 by the patch');
    expect(git(repo, ['show', `${result.head}:human.txt`])).toBe('h2');
    // No refs moved.
    expect(git(repo, ['rev-parse', 'main', 'integration']).split('\n')).toEqual([onto, head]);
  });

  it('replays a file deleted in one patch and added back in the next, and a file turned into a directory', async () => {
    const { repo, base } = makeBase({ 'f.txt': 'f\n', node: 'a file\n', 'other.txt': 'o\n' });
    git(repo, ['checkout', '-q', '-b', 'integration']);
    rmSync(join(repo, 'f.txt'));
    rmSync(join(repo, 'node'));
    write(repo, 'node/child.txt', 'now a directory\n');
    const p1 = commitAll(repo, patchMessage('item-del'));
    write(repo, 'f.txt', 'f is back\n');
    const p2 = commitAll(repo, patchMessage('item-add'));
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'other.txt', 'o2\n');
    const onto = commitAll(repo, 'human');
    git(repo, ['checkout', '-q', '-b', 'expect', onto]);
    git(repo, ['cherry-pick', p1, p2]);

    const store = await openLocalStore(repo);
    const result = replayed(await replayPatches(store, { base, head: p2, onto, now: NOW }));
    await store.flushObjects(); // the replayed commits wait in memory: git is another process
    const trees = await Promise.all(result.commits.map(async (c) => (await store.readCommit(c.replayed)).tree));
    expect(trees).toEqual([git(repo, ['rev-parse', 'expect~1^{tree}']), git(repo, ['rev-parse', 'expect^{tree}'])]);
    expect(git(repo, ['ls-tree', '--name-only', result.commits[0]!.replayed, 'f.txt'])).toBe('');
    expect(git(repo, ['show', `${result.head}:f.txt`])).toBe('f is back');
    expect(git(repo, ['show', `${result.head}:node/child.txt`])).toBe('now a directory');
  });

  it('reports every path a patch and a person both changed, with the item and the human commits, oldest first', async () => {
    const { repo, base } = makeBase({ 'a.txt': 'a\n', 'c.txt': 'c\n', 'd.txt': 'd\n', 'calm.txt': 'calm\n' });
    git(repo, ['checkout', '-q', '-b', 'integration']);
    write(repo, 'a.txt', 'patched a\n');
    write(repo, 'c.txt', 'patched c\n');
    write(repo, 'calm.txt', 'patched calm\n');
    const p1 = commitAll(repo, patchMessage('item-one'));
    write(repo, 'd.txt', 'patched d\n');
    const p2 = commitAll(repo, patchMessage('item-two'));
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'unrelated.txt', 'u\n');
    commitAll(repo, 'unrelated');
    write(repo, 'a.txt', 'human a\n');
    const h1 = commitAll(repo, 'human a');
    write(repo, 'a.txt', 'human a again\n');
    write(repo, 'd.txt', 'human d\n');
    rmSync(join(repo, 'c.txt'));
    const h2 = commitAll(repo, 'human a, c, d');
    write(repo, 'calm.txt', 'touched\n');
    commitAll(repo, 'touch calm');
    write(repo, 'calm.txt', 'calm\n');
    const onto = commitAll(repo, 'undo calm'); // net unchanged since base: no conflict on calm.txt

    const store = await openLocalStore(repo);
    const result = await replayPatches(store, { base, head: p2, onto, now: NOW });
    expect(result).toEqual({
      kind: 'conflict',
      conflicts: [
        { path: 'a.txt', patchCommit: p1, item: 'item-one', changedBy: [h1, h2] },
        { path: 'c.txt', patchCommit: p1, item: 'item-one', changedBy: [h2] },
        { path: 'd.txt', patchCommit: p2, item: 'item-two', changedBy: [h2] },
      ],
    });
    expect(git(repo, ['rev-parse', 'main'])).toBe(onto);
  });

  it('reports a conflict when a person turned the directory a patch writes into into a file', async () => {
    const { repo, base } = makeBase({ 'lib/util.ts': 'u\n', 'lib/other.ts': 'o\n', 'top.txt': 't\n' });
    git(repo, ['checkout', '-q', '-b', 'integration']);
    write(repo, 'lib/new.ts', 'added by the patch\n');
    const p1 = commitAll(repo, 'lib: no trailers here\n');
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'top.txt', 't2\n');
    commitAll(repo, 'unrelated');
    git(repo, ['rm', '-q', '-r', 'lib']);
    write(repo, 'lib', 'lib is a file now\n');
    const h = commitAll(repo, 'lib becomes a file');

    const store = await openLocalStore(repo);
    const result = await replayPatches(store, { base, head: p1, onto: h, now: NOW });
    expect(result).toEqual({ kind: 'conflict', conflicts: [{ path: 'lib/new.ts', patchCommit: p1, item: null, changedBy: [h] }] });
  });

  it('reports a conflict when a person put files below a path a patch made a file', async () => {
    const { repo, base } = makeBase({ 'x.txt': 'x\n' });
    git(repo, ['checkout', '-q', '-b', 'integration']);
    write(repo, 'tools', 'a file from the patch\n');
    const p1 = commitAll(repo, patchMessage('item-tools'));
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'tools/run.sh', 'a directory from a person\n');
    const h = commitAll(repo, 'tools dir');

    const store = await openLocalStore(repo);
    const result = await replayPatches(store, { base, head: p1, onto: h, now: NOW });
    expect(result).toEqual({ kind: 'conflict', conflicts: [{ path: 'tools', patchCommit: p1, item: 'item-tools', changedBy: [h] }] });
  });

  it('says diverged when onto does not descend from base, or only beyond maxCommits', async () => {
    const { repo, base } = makeBase({ 'a.txt': 'a\n' });
    git(repo, ['checkout', '-q', '-b', 'integration']);
    write(repo, 'p.txt', 'p\n');
    const p1 = commitAll(repo, patchMessage('item-p'));
    git(repo, ['checkout', '-q', 'main']);
    write(repo, 'h.txt', 'h\n');
    commitAll(repo, 'human one');
    write(repo, 'h2.txt', 'h\n');
    const onto = commitAll(repo, 'human two');
    // A force-push: the plan commit rewritten, then work on top of the rewrite.
    git(repo, ['checkout', '-q', '--orphan', 'rewritten', base]);
    git(repo, ['commit', '-q', '-m', 'plan, rewritten'], { env: { GIT_AUTHOR_DATE: '1700009999 +0000' } });
    write(repo, 'z.txt', 'z\n');
    const rewritten = commitAll(repo, 'on the rewrite');

    const store = await openLocalStore(repo);
    const diverged = await replayPatches(store, { base, head: p1, onto: rewritten, now: NOW });
    expect(diverged.kind).toBe('diverged');
    expect(diverged.kind === 'diverged' && diverged.why).toContain(base);
    expect((await replayPatches(store, { base, head: p1, onto, now: NOW, maxCommits: 1 })).kind).toBe('diverged');
    expect(replayed(await replayPatches(store, { base, head: p1, onto, now: NOW, maxCommits: 2 })).commits).toHaveLength(1);
  });

  it('returns onto itself when the run integrated nothing (head === base)', async () => {
    const { repo, base } = makeBase({ 'a.txt': 'a\n' });
    write(repo, 'a.txt', 'a person changed it\n');
    const onto = commitAll(repo, 'human');
    const store = await openLocalStore(repo);
    expect(await replayPatches(store, { base, head: base, onto, now: NOW })).toEqual({ kind: 'replayed', head: onto, commits: [] });
  });

  it('refuses a head that does not descend from base', async () => {
    const { repo, base } = makeBase({ 'a.txt': 'a\n' });
    git(repo, ['checkout', '-q', '--orphan', 'elsewhere']);
    const stranger = commitAll(repo, 'unrelated root');
    const store = await openLocalStore(repo);
    const err = await replayPatches(store, { base, head: stranger, onto: base, now: NOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgoraError);
    expect((err as AgoraError).code).toBe('replay-invalid');
    expect((err as AgoraError).message).toContain(stranger);
  });
});

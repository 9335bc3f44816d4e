import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join, sep } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { captureWorkspace } from '../../src/git/workspace.js';
import { AgoraError } from '../../src/errors.js';
import { workDirFor } from '../../src/runs/work-dir.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import { cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';

afterAll(cleanupTempDirs);

describe('WorkspacePool', () => {
  // Released as the attempt does after a capture (only the captured paths are restored, the bases' difference
  // applied), and as after a failed worker (nothing captured: every tracked file compared).
  it.each(['captured', 'not captured'] as const)(
    're-targets a used workspace to exactly the next commit, whatever the last worker left in it (%s)',
    async (how) => {
      const repo = makeRepo({ 'a.txt': 'a1\n', 'dir/b.txt': 'b1\n', 'gone.txt': 'g\n', '.gitignore': 'build/\n', 'tool.sh': '#!/bin/sh\n' });
      chmodSync(join(repo, 'tool.sh'), 0o755);
      git(repo, 'add', 'tool.sh');
      git(repo, 'commit', '-qm', 'exec bit');
      const first = git(repo, 'rev-parse', 'HEAD').trim();
      writeFileSync(join(repo, 'a.txt'), 'a2\n');
      git(repo, 'rm', '-q', 'gone.txt');
      writeFileSync(join(repo, 'new.txt'), 'n\n');
      git(repo, 'add', '-A');
      git(repo, 'commit', '-qm', 'second');
      const second = git(repo, 'rev-parse', 'HEAD').trim();

      const store = await openLocalStore(repo);
      const pool = WorkspacePool.outsideRepository(store);
      await pool.clear();
      const ws = await pool.acquire(first);
      // A worker makes a mess: edits, deletes, untracked and ignored files, a nested repository, a mode change.
      writeFileSync(join(ws.dir, 'a.txt'), 'scribbled\n');
      rmSync(join(ws.dir, 'dir/b.txt'));
      writeFileSync(join(ws.dir, 'untracked.txt'), 'u\n');
      mkdirSync(join(ws.dir, 'build'));
      writeFileSync(join(ws.dir, 'build/out.o'), 'o\n');
      mkdirSync(join(ws.dir, 'nested/.git'), { recursive: true });
      chmodSync(join(ws.dir, 'tool.sh'), 0o644);
      mkdirSync(join(ws.dir, 'dir/.git'), { recursive: true }); // in a tracked directory: clean leaves it
      writeFileSync(join(ws.dir, 'dir/.git/config'), '[core]\n\tfsmonitor = "touch pwned"\n');
      symlinkSync('a.txt', join(ws.dir, 'link'));
      rmSync(join(ws.dir, 'new.txt'), { force: true });
      mkdirSync(join(ws.dir, 'new.txt')); // where the next base has a file: a directory
      writeFileSync(join(ws.dir, 'new.txt/inside'), 'x\n');
      if (how === 'captured') {
        const captured = await captureWorkspace(ws);
        expect(captured.changes.map((c) => c.path)).toEqual(['a.txt', 'dir/b.txt', 'link', 'new.txt/inside', 'tool.sh', 'untracked.txt']);
        await pool.release(ws, true, captured);
      } else {
        await pool.release(ws, true);
      }

      const again = await pool.acquire(second);
      expect(again.dir).toBe(ws.dir); // reused, not checked out afresh
      const captured = await captureWorkspace(again);
      expect(captured.changes).toEqual([]);
      expect(captured.tree).toBe(git(repo, 'rev-parse', `${second}^{tree}`).trim());
      expect(readFileSync(join(again.dir, 'a.txt'), 'utf8')).toBe('a2\n');
      expect(existsSync(join(again.dir, 'gone.txt'))).toBe(false);
      expect(existsSync(join(again.dir, 'build'))).toBe(false);
      expect(existsSync(join(again.dir, 'untracked.txt'))).toBe(false);
      expect(existsSync(join(again.dir, 'nested'))).toBe(false);
      expect(existsSync(join(again.dir, 'dir', '.git'))).toBe(false);
      expect(existsSync(join(again.dir, 'link'))).toBe(false);
      expect(readFileSync(join(again.dir, 'new.txt'), 'utf8')).toBe('n\n');
      expect(statSync(join(again.dir, 'tool.sh')).mode & 0o111).toBe(0o111);
      await pool.release(again, true);
      await pool.clear();
      expect(existsSync(join(await pool.workDir(), 'pool'))).toBe(false);
    },
  );

  // A worker that plants a repository at its workspace root (`.git/config` with core.fsmonitor, a hook)
  // must not reach the next attempt that takes the workspace: `git status` there would run it.
  it.each(['cli', 'isomorphic-git'] as const)('leaves nothing of a .git a worker planted at the root for the next attempt (%s)', async (method) => {
    const repo = makeRepo({ 'a.txt': 'a\n', 'dir/b.txt': 'b\n' });
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const store = await openLocalStore(repo);
    const pool = WorkspacePool.outsideRepository(store, { method });
    await pool.clear();
    const a = await pool.acquire(head);
    expect(a.method).toBe(method);
    mkdirSync(join(a.dir, '.git', 'hooks'), { recursive: true });
    writeFileSync(join(a.dir, '.git', 'config'), '[core]\n\tfsmonitor = "touch pwned"\n');
    writeFileSync(join(a.dir, '.git', 'hooks', 'post-checkout'), '#!/bin/sh\ntouch pwned\n', { mode: 0o755 });
    writeFileSync(join(a.dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await pool.release(a, true);

    const b = await pool.acquire(head);
    expect(b.dir).toBe(a.dir); // the same directory, re-targeted
    expect(existsSync(join(b.dir, '.git', 'config'))).toBe(false);
    expect(existsSync(join(b.dir, '.git', 'hooks', 'post-checkout'))).toBe(false);
    expect(existsSync(join(b.dir, '.git'))).toBe(false);
    expect(readFileSync(join(b.dir, 'a.txt'), 'utf8')).toBe('a\n');
    await pool.clear();
  });

  // A worker controls its files' times and sizes. The first worker only touches a file (a past mtime, the
  // same content); the next, in the same pooled workspace, changes it keeping its size and that mtime.
  // The repository's config asks git to compare only mtime and size; a capture must not listen to it,
  // and must not have learnt the first worker's mtime as the file's.
  it('catches a same-size change that keeps the mtime an earlier worker set, whatever the repository config says about stat data', async () => {
    const repo = makeRepo({ 'in/x.txt': 'x\n', 'out/y.txt': 'old\n' });
    git(repo, 'config', 'core.trustctime', 'false');
    git(repo, 'config', 'core.checkStat', 'minimal');
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const store = await openLocalStore(repo);
    const pool = WorkspacePool.outsideRepository(store);
    await pool.clear();
    const past = new Date('2001-02-03T04:05:06Z');
    const first = await pool.acquire(head);
    utimesSync(join(first.dir, 'out/y.txt'), past, past);
    const touched = await captureWorkspace(first);
    expect(touched.changes).toEqual([]);
    await pool.release(first, true, touched);

    const second = await pool.acquire(head);
    expect(second.dir).toBe(first.dir);
    writeFileSync(join(second.dir, 'out/y.txt'), 'new\n');
    utimesSync(join(second.dir, 'out/y.txt'), past, past);
    expect(statSync(join(second.dir, 'out/y.txt')).mtime).toEqual(past);
    const changed = await captureWorkspace(second);
    expect(changed.changes.map((c) => c.path)).toEqual(['out/y.txt']);
    await pool.release(second, true, changed);

    const third = await pool.acquire(head); // and the change does not reach the next attempt
    expect(readFileSync(join(third.dir, 'out/y.txt'), 'utf8')).toBe('old\n');
    expect((await captureWorkspace(third)).changes).toEqual([]);
    await pool.clear();
  });

  it('gives concurrent attempts separate workspaces', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n' });
    const store = await openLocalStore(repo);
    const pool = WorkspacePool.outsideRepository(store);
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const [x, y] = await Promise.all([pool.acquire(head), pool.acquire(head)]);
    expect(x!.dir).not.toBe(y!.dir);
    await pool.clear();
  });

  // Issue 11: under <gitdir>/agora/work/pool a worker's `git` found the orchestrator's repository (a
  // read-only item ran `git replace` on the integration head there).
  it('keeps workspaces outside the repository, private, where a worker’s git finds no repository', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n' });
    const store = await openLocalStore(repo);
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    // What an earlier version left inside the git dir goes at the first clear.
    mkdirSync(join(store.gitdir, 'agora', 'work', 'pool', '1'), { recursive: true });
    const pool = WorkspacePool.outsideRepository(store);
    await pool.clear();
    expect(existsSync(join(store.gitdir, 'agora', 'work'))).toBe(false);
    const ws = await pool.acquire(head);
    const real = realpathSync(ws.dir);
    for (const inside of [realpathSync(repo), realpathSync(store.gitdir)]) expect(real.startsWith(inside + sep)).toBe(false);
    for (const dir of [await pool.workDir(), join(await pool.workDir(), '..')]) expect(statSync(dir).mode & 0o777).toBe(0o700);
    // The worker's view: its own environment, plain git, in its workspace.
    const probe = spawnSync('git', ['rev-parse', '--absolute-git-dir'], { cwd: ws.dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: ws.dir } });
    expect(probe.status).not.toBe(0);
    expect(probe.stderr).toContain('not a git repository');
    await pool.release(ws, true);
    await pool.clear();
  });

  it('refuses a work dir inside a git repository, or one that is not private, naming it and the fix', async () => {
    const repo = makeRepo({ 'a.txt': 'a\n' });
    const store = await openLocalStore(repo);
    const err = await workDirFor(store.gitdir, join(repo, 'scratch')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgoraError);
    expect((err as AgoraError).code).toBe('work-dir-in-repository');
    expect((err as AgoraError).hint).toContain('AGORA_WORK_DIR');
    const open = tempDir();
    mkdirSync(join(open, `agora-${process.getuid!()}`), { mode: 0o755 });
    chmodSync(join(open, `agora-${process.getuid!()}`), 0o755);
    const unsafe = await workDirFor(store.gitdir, open).catch((e: unknown) => e);
    expect((unsafe as AgoraError).code).toBe('work-dir-unsafe');
    const linked = tempDir();
    symlinkSync(open, join(linked, `agora-${process.getuid!()}`));
    expect(((await workDirFor(store.gitdir, linked).catch((e: unknown) => e)) as AgoraError).code).toBe('work-dir-unsafe');
  });
});

import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { captureWorkspace, materializeWorkspace, removeWorkspace } from '../../src/git/workspace.js';
import { surveyWorkspace } from '../../src/git/workspace-stamps.js';
import { WorkspacePool } from '../../src/runs/workspace-pool.js';
import type { Workspace } from '../../src/git/workspace-types.js';
import { cleanupTempDirs, git, makeRepo, tempDir } from '../support/repo.js';
import { gitOnWorkspace } from './git-fixtures.js';

afterAll(cleanupTempDirs);

const files = { 'deep/a/b/kept.txt': 'kept\n', 'deep/a/other.txt': 'other\n', 'top.txt': 'top\n' };

/**
 * Runs `change` and puts back, to the nanosecond, the access and modification times `paths` had before
 * (with `touch -r`, as a worker could: Node's utimes rounds them).
 */
function keepingTimes(paths: string[], change: () => void): void {
  const saved = paths.map((path, i) => {
    const copy = join(tempDir(), `times-${i}`);
    writeFileSync(copy, '');
    execFileSync('touch', ['-r', path, copy]);
    return { path, copy };
  });
  change();
  for (const { path, copy } of saved) execFileSync('touch', ['-r', copy, path]);
  for (const { path, copy } of saved) expect(statSync(path, { bigint: true }).mtimeNs).toBe(statSync(copy, { bigint: true }).mtimeNs);
}

async function pooled(repoFiles: Record<string, string>) {
  const repo = makeRepo(repoFiles);
  const head = git(repo, 'rev-parse', 'HEAD').trim();
  const store = await openLocalStore(repo);
  const pool = WorkspacePool.outsideRepository(store, { method: 'cli' });
  await pool.clear();
  return { repo, head, store, pool };
}

/**
 * A pooled workspace whose stamps are all older than their marker (none racy), so that what the tests
 * below find is found by the ctime alone: the first checkout, then (once the clock has moved past its
 * last write, seen on a probe file's ctime) a capture and a re-target, whose new marker is later.
 */
async function settled(pool: WorkspacePool, head: string): Promise<Workspace> {
  const ws = await pool.acquire(head);
  const newest = Math.max(...[...ws.stamps!.stamps.values()].map((s) => s.ctimeMs), ws.stamps!.racyFrom);
  const probe = join(tempDir(), 'probe');
  for (let i = 0; i < 100_000 && (!existsSync(probe) || statSync(probe).ctimeMs <= newest); i++) {
    writeFileSync(probe, String(i));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await pool.release(ws, true, await captureWorkspace(ws));
  const again = await pool.acquire(head);
  expect(again.dir).toBe(ws.dir);
  for (const stamp of again.stamps!.stamps.values()) expect(stamp.ctimeMs).toBeLessThan(again.stamps!.racyFrom);
  return again;
}

// A worker controls every time it can set; a directory's ctime is not one of them. These go through the
// workspace's stamps (the capture says so: it carries a survey), not through git walking the workspace.
describe('captures from the workspace stamps, against a worker that restores times', () => {
  it('captures a file added where the directory times were put back, and the re-target removes it', async () => {
    const { head, pool } = await pooled(files);
    const first = await settled(pool, head);
    keepingTimes([join(first.dir, 'deep/a/b')], () => writeFileSync(join(first.dir, 'deep/a/b/new.txt'), 'planted\n'));
    const captured = await captureWorkspace(first);
    expect(captured.survey).toBeDefined();
    expect(captured.changes.map((c) => c.path)).toEqual(['deep/a/b/new.txt']);
    expect(captured.untracked).toEqual(['deep/a/b/new.txt']);
    await pool.release(first, true, captured);

    const second = await pool.acquire(head);
    expect(second.dir).toBe(first.dir);
    expect(existsSync(join(second.dir, 'deep/a/b/new.txt'))).toBe(false);
    const clean = await captureWorkspace(second);
    expect(clean.changes).toEqual([]);
    expect(clean.survey?.touched).toEqual([]);
    await pool.clear();
  });

  it('removes a .git planted where the directory times were put back, before the next worker', async () => {
    const { head, pool } = await pooled(files);
    const first = await settled(pool, head);
    keepingTimes([join(first.dir, 'deep/a')], () => {
      mkdirSync(join(first.dir, 'deep/a/.git/hooks'), { recursive: true });
      writeFileSync(join(first.dir, 'deep/a/.git/config'), '[core]\n\tfsmonitor = "touch pwned"\n');
    });
    const captured = await captureWorkspace(first);
    expect(captured.survey?.changedDirs).toContain('deep/a');
    expect(captured.changes).toEqual([]);
    await pool.release(first, true, captured);

    const second = await pool.acquire(head);
    expect(second.dir).toBe(first.dir);
    expect(lstatSync(join(second.dir, 'deep/a/.git'), { throwIfNoEntry: false })).toBeUndefined();
    await pool.clear();
  });

  it('captures a tracked file changed to the same size with its times put back, and the next worker gets it as it was', async () => {
    const { head, pool } = await pooled(files);
    const first = await settled(pool, head);
    const path = join(first.dir, 'deep/a/other.txt');
    keepingTimes([path], () => writeFileSync(path, 'OTHER\n'));
    const captured = await captureWorkspace(first);
    expect(captured.survey?.touched).toEqual(['deep/a/other.txt']);
    expect(captured.changes.map((c) => c.path)).toEqual(['deep/a/other.txt']);
    await pool.release(first, true, captured);

    const second = await pool.acquire(head);
    expect(readFileSync(join(second.dir, 'deep/a/other.txt'), 'utf8')).toBe('other\n');
    expect((await captureWorkspace(second)).changes).toEqual([]);
    await pool.clear();
  });

  it('records touched files in process as git add does: an exec bit, a file made a link, an unchanged rewrite', async () => {
    const { repo, head, pool } = await pooled(files);
    const ws = await pool.acquire(head);
    const change = (root: string) => {
      chmodSync(join(root, 'top.txt'), 0o755);
      rmSync(join(root, 'deep/a/other.txt'));
      symlinkSync('b/kept.txt', join(root, 'deep/a/other.txt'));
      rmSync(join(root, 'deep/a/b/kept.txt'));
      writeFileSync(join(root, 'deep/a/b/kept.txt'), 'kept\n'); // the same bytes: no change
    };
    change(ws.dir);
    const captured = await captureWorkspace(ws);
    expect(captured.survey?.untracked).toEqual([]); // nothing new: the in-process path
    change(repo);
    git(repo, 'add', '-A');
    expect(captured.tree).toBe(git(repo, 'write-tree').trim());
    expect(captured.changes.map((c) => c.path)).toEqual(['deep/a/other.txt', 'top.txt']);
    await pool.clear();
  });

  it('lets git record a touched file where a .gitattributes applies: the capture is what git add makes of it', async () => {
    const { head, pool, store } = await pooled({ ...files, '.gitattributes': '*.txt text eol=lf\n' });
    const ws = await pool.acquire(head);
    writeFileSync(join(ws.dir, 'top.txt'), 'top\r\nmore\r\n');
    const captured = await captureWorkspace(ws);
    expect(captured.survey?.touched).toEqual(['top.txt']);
    const [change] = captured.changes;
    expect(change?.path).toBe('top.txt');
    expect(Buffer.from((await store.readBlob(change!.after!.oid)) as Uint8Array).toString('utf8')).toBe('top\nmore\n');
    await pool.clear();
  });
});

describe('re-targeting after a worker that changed nothing', () => {
  it('runs no git when the next base is the same: the index stays the file git last wrote, a planted .git still goes', async () => {
    const { repo, head, pool } = await pooled(files);
    const first = await pool.acquire(head);
    const index = statSync(first.indexFile, { bigint: true });
    mkdirSync(join(first.dir, 'deep/.git'));
    writeFileSync(join(first.dir, 'deep/.git/config'), '[core]\n\thooksPath = /tmp\n');
    const captured = await captureWorkspace(first);
    expect(captured.changes).toEqual([]);
    await pool.release(first, true, captured);

    const second = await pool.acquire(head);
    expect(second.dir).toBe(first.dir);
    expect(existsSync(join(second.dir, 'deep/.git'))).toBe(false);
    const after = statSync(second.indexFile, { bigint: true });
    expect([after.ino, after.mtimeNs]).toEqual([index.ino, index.mtimeNs]); // git writes an index by renaming a new file over it

    writeFileSync(join(second.dir, 'top.txt'), 'changed\n'); // a change is checked out again by git
    await pool.release(second, true, await captureWorkspace(second));
    const third = await pool.acquire(head);
    expect(readFileSync(join(third.dir, 'top.txt'), 'utf8')).toBe('top\n');
    // Checked out from the index, which still names the base's blob; git finds the content unchanged.
    const blob = git(repo, 'rev-parse', `${head}:top.txt`).trim();
    expect(gitOnWorkspace(third, 'ls-files', '-s', 'top.txt')).toContain(blob);
    expect(gitOnWorkspace(third, '--no-optional-locks', 'diff', '--name-only')).toBe(''); // by content: the entry may be stat-dirty
    await pool.clear();
  });
});

describe('surveyWorkspace', () => {
  it('takes a stamp no older than the marker as racy: its path counts as touched, its directory as changed', async () => {
    const repo = makeRepo(files);
    const store = await openLocalStore(repo);
    const ws = await materializeWorkspace(store, git(repo, 'rev-parse', 'HEAD').trim(), join(tempDir(), 'ws'), { method: 'cli' });
    const { layout, stamps } = ws;
    expect(layout && stamps).toBeTruthy();
    expect(await surveyWorkspace(ws.dir, layout!, stamps!)).toMatchObject({ touched: [], untracked: [], changedDirs: [] });
    // The marker's tick at (or before) the file's and its directory's: both stamps are racy.
    const tick = Math.min(stamps!.stamps.get('deep/a/other.txt')!.ctimeMs, stamps!.stamps.get('deep/a')!.ctimeMs);
    const racy = await surveyWorkspace(ws.dir, layout!, { stamps: stamps!.stamps, racyFrom: tick });
    expect(racy?.touched).toContain('deep/a/other.txt');
    expect(racy?.changedDirs).toContain('deep/a');
    expect(racy?.untracked).toEqual([]); // read again, the directory holds only what the base has
    await removeWorkspace(ws);
  });

  it('gives up (for git to walk) where a directory of the base became a link or a file became a directory', async () => {
    const repo = makeRepo(files);
    const store = await openLocalStore(repo);
    const head = git(repo, 'rev-parse', 'HEAD').trim();
    const ws = await materializeWorkspace(store, head, join(tempDir(), 'ws'), { method: 'cli' });
    await import('node:fs/promises').then(async ({ rm, symlink }) => {
      await rm(join(ws.dir, 'deep/a/b'), { recursive: true });
      await symlink('/', join(ws.dir, 'deep/a/b'));
    });
    expect(await surveyWorkspace(ws.dir, ws.layout!, ws.stamps!)).toBeNull();
    const captured = await captureWorkspace(ws);
    expect(captured.survey).toBeUndefined();
    expect(captured.changes.map((c) => [c.path, c.after?.mode ?? null])).toEqual([
      ['deep/a/b', '120000'],
      ['deep/a/b/kept.txt', null],
    ]);
    await removeWorkspace(ws);
  });
});

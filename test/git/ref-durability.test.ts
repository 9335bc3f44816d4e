import { existsSync } from 'node:fs';
import type * as Fs from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { casRefs } from '../../src/git/ref-lock.js';
import { gitSync, initRepo } from './git-fixtures.js';

/**
 * A ref move must survive a power loss before anything acts on it: its value is synced before the rename
 * (writeTemp), and the rename itself only once the directory holding it is synced. This watches, through
 * the real `openSync` and `fsync` of node:fs (a directory is opened with the one and synced with the other,
 * atomic-write.ts), which directories are synced, and what each held by then.
 */
const seen = vi.hoisted(() => ({ syncs: [] as Array<{ dir: string; entries: string[] }> }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof Fs>();
  const directories = new Map<number, string>();
  const openSync = ((...args: Parameters<typeof real.openSync>) => {
    const fd = real.openSync(...args);
    const path = String(args[0]);
    if (real.statSync(path).isDirectory()) directories.set(fd, path);
    else directories.delete(fd);
    return fd;
  }) as typeof real.openSync;
  const fsync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    const dir = directories.get(fd);
    if (dir !== undefined) seen.syncs.push({ dir, entries: real.readdirSync(dir) });
    real.fsync(fd, callback);
  }) as typeof real.fsync;
  return { ...real, openSync, fsync, default: { ...real, openSync, fsync } };
});

let repo: { dir: string; gitdir: string; cleanup: () => Promise<void> };
let commit: string;

beforeAll(async () => {
  repo = await initRepo();
  commit = gitSync(repo.dir, ['commit-tree', gitSync(repo.dir, ['mktree'], { input: '' }).trim(), '-m', 'root']).trim();
});
afterAll(() => repo.cleanup());

describe('a ref transaction', () => {
  it('syncs the directory of each ref it moved, after the rename, and every directory it had to make', async () => {
    seen.syncs.length = 0;
    expect(await casRefs(repo.gitdir, [{ ref: 'refs/agora/runs/r1', next: commit, expected: null }])).toBe(true);
    const synced = new Map(seen.syncs.map((s) => [s.dir, s.entries]));
    // refs/agora and refs/agora/runs were made for it: each, and refs where the first was made.
    expect([...synced.keys()].sort()).toEqual(['refs', 'refs/agora', 'refs/agora/runs'].map((d) => join(repo.gitdir, d)));
    expect(synced.get(join(repo.gitdir, 'refs/agora/runs'))).toContain('r1');

    seen.syncs.length = 0;
    const swaps = [
      { ref: 'refs/agora/runs/r2', next: commit, expected: null },
      { ref: 'refs/agora/runs/r1', next: commit, expected: commit },
    ];
    expect(await casRefs(repo.gitdir, swaps)).toBe(true);
    // Nothing new to make: the one directory both refs are in, once, holding both.
    expect(seen.syncs.map((s) => s.dir)).toEqual([join(repo.gitdir, 'refs/agora/runs')]);
    expect(seen.syncs[0]!.entries).toEqual(expect.arrayContaining(['r1', 'r2']));
    expect(existsSync(join(repo.gitdir, 'refs/agora/runs/r2'))).toBe(true);
  });
});

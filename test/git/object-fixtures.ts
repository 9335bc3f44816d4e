import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { openLocalStore } from '../../src/git/local-store.js';
import { gitAsync, initRepo } from './git-fixtures.js';

/**
 * Fixtures of the object-store tests (loose-objects, packed-objects): repositories removed after each
 * test, a writer killed at a crash point, git's verdict, and a disk that fills.
 */

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const childScript = fileURLToPath(new URL('./object-child.ts', import.meta.url));

/** A list of cleanups run (last first) after each test of the calling file. */
export function cleanupsAfterEach(): Array<() => Promise<void> | void> {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });
  return cleanups;
}

/** A fresh repository (removed by `cleanups`) and a store opened on it. */
export async function repoWithStore(cleanups: Array<() => Promise<void> | void>) {
  const r = await initRepo();
  cleanups.push(r.cleanup);
  return { ...r, store: await openLocalStore(r.dir) };
}

/** object-child.ts writing `text` as a blob into `dir`, with AGORA_CRASH_AT=`crashAt`; how it ended. */
export function runObjectChild(dir: string, text: string, crashAt: string): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--import', 'tsx', childScript, dir, text], {
    cwd: projectRoot,
    env: { ...process.env, AGORA_CRASH_AT: crashAt },
    encoding: 'utf8',
  });
}

/** `git fsck --full --strict` finds nothing broken (with no refs yet it says so in a `notice:`, which is fine). */
export async function fsckClean(dir: string): Promise<void> {
  const r = await gitAsync(dir, ['fsck', '--full', '--strict', '--no-dangling']);
  expect((r.stderr + r.stdout).split('\n').filter((l) => l && !l.startsWith('notice: '))).toEqual([]);
  expect(r.code).toBe(0);
}

/**
 * A tiny tmpfs of `kib` KiB (root only, else null) where the disk really fills; its unmount is pushed
 * onto `cleanups`.
 */
export function smallDisk(kib: number, cleanups: Array<() => void>): string | null {
  if (process.getuid?.() !== 0) return null;
  const mnt = execFileSync('mktemp', ['-d', '/tmp/agora-full-XXXXXX'], { encoding: 'utf8' }).trim();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', mnt]);
  } catch {
    rmSync(mnt, { recursive: true, force: true });
    return null;
  }
  cleanups.push(() => {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

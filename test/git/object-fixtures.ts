import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { expect } from 'vitest';
import { gitAsync } from './git-fixtures.js';

/** Fixtures of the object-store tests (loose-objects, packed-objects): git's verdict, and a disk that fills. */

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

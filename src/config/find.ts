import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { AgoraError } from '../errors.js';
import { isWithin } from '../path-inside.js';
import { DEFAULT_CONFIG_FILE } from './load.js';

/**
 * The config a command uses when none is named: the nearest `agora.config.mjs` at or above `start`, never
 * above `top` (the repository's root: a config is code, and one outside the repository is not the
 * repository's to run). `start` outside `top` looks in `top` alone; no `top` at all, in `start` alone.
 * Null: none, so the built-in defaults apply.
 */
export async function findConfigFile(start: string, top: string | null): Promise<string | null> {
  const limit = top === null ? resolve(start) : resolve(top);
  const from = top === null || isWithin(start, top) ? resolve(start) : limit;
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, DEFAULT_CONFIG_FILE);
    const info = await stat(file).catch(() => null);
    if (info?.isFile()) {
      assertOwnedByUs(file, info.uid);
      return file;
    }
    if (dir === limit || dirname(dir) === dir) return null;
  }
}

/**
 * A config found (not named) is imported, so it runs: one another user could write is refused, as git
 * refuses a repository of dubious ownership. Naming it with `--config` is the way to trust it anyway.
 */
function assertOwnedByUs(file: string, uid: number): void {
  const me = process.getuid?.();
  if (me === undefined || uid === me) return;
  throw new AgoraError(
    'config-not-owned',
    `${file} belongs to user id ${uid}, not to you (${me}): agora does not run a config it found that someone else owns`,
    `if you trust it, name it with --config ${file}; otherwise remove it or run agora elsewhere`,
  );
}

import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { isWithin } from '../path-inside.js';
import { DEFAULT_CONFIG_FILE } from './load.js';

/**
 * The config a command uses when none is named: the nearest `agora.config.mjs` at or above `start`, never
 * above `top` (the repository's root: a config is code, and one outside the repository is not the
 * repository's to run). `start` outside `top`, or no `top` at all, looks in `start` alone. Null: none,
 * so the built-in defaults apply.
 */
export async function findConfigFile(start: string, top: string | null): Promise<string | null> {
  const from = resolve(start);
  const limit = top === null || !isWithin(from, resolve(top)) ? from : resolve(top);
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, DEFAULT_CONFIG_FILE);
    if ((await stat(file).catch(() => null))?.isFile()) return file;
    if (dir === limit || dirname(dir) === dir) return null;
  }
}

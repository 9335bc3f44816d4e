import { crashPoint } from './crash-points.js';
import { TEMP_SUFFIX_PATTERN, tempSuffix } from './temp-name.js';
import { closeSync, fsync, openSync } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644; created with it, so a private key is never briefly readable). */
  mode?: number;
  /** Refuse to replace an existing file (the rename becomes a hard link, which fails if `path` exists). */
  exclusive?: boolean;
  /** A crash point (crash-points.ts) passed once the temporary file is whole and synced, before it takes `path`. */
  crashPoint?: string;
}

/** The temporary file {@link writeFileAtomic} writes `path` through: `.<name>.<temp suffix>.tmp` beside it. */
function atomicTempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${tempSuffix()}.tmp`);
}

const ATOMIC_TEMP_NAME = new RegExp(`^\\.(.+)\\.${TEMP_SUFFIX_PATTERN}\\.tmp$`);

/**
 * What a file name of {@link writeFileAtomic}'s temporary files says: the name it was to take and the pid
 * of the process that wrote it (temp-name.ts's suffix); null for any other name.
 */
export function atomicTempOf(name: string): { target: string; pid: number } | null {
  const m = ATOMIC_TEMP_NAME.exec(name);
  return m ? { target: m[1]!, pid: Number(m[2]) } : null;
}

/**
 * Writes `data` to `path` so that readers see either the old file or the whole new one: a temporary file in
 * the same directory, fsync, rename over `path`, fsync of the directory. With `exclusive`, an existing
 * `path` is never replaced (the error has code `EEXIST`).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, modeOrOptions: number | AtomicWriteOptions = {}): Promise<void> {
  const options = typeof modeOrOptions === 'number' ? { mode: modeOrOptions } : modeOrOptions;
  const dir = dirname(path);
  const temp = atomicTempName(path);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    try {
      // The umask may have narrowed the creation mode; set it exactly.
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.crashPoint !== undefined) crashPoint(options.crashPoint);
    if (options.exclusive) {
      // link() refuses an existing target, unlike rename(): this is the atomic create-if-absent.
      await link(temp, path);
      await rm(temp, { force: true });
    } else {
      await rename(temp, path);
    }
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
}

/** fsync(2) of an open descriptor on the thread pool (it waits on the disk): the one wrapper, for objects and refs alike. */
export const fsyncAsync = promisify(fsync);

/**
 * fsync of a file or directory by its path. Opened and closed with synchronous calls (cheap): only the sync
 * takes a round trip through the thread pool, and each round trip also waits for the event loop, which on a
 * busy orchestrator costs more than the call itself.
 */
export async function syncPath(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync of directory `dir`, so that a rename or a new entry in it survives a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    await syncPath(dir);
  } catch {
    // Some file systems (and Windows) cannot fsync a directory; the rename itself is still atomic.
  }
}

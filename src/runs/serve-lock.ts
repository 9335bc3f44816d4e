import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { AgoraError } from '../errors.js';

/**
 * One `serve` per repository: a lock file `<gitdir>/agora/serve.lock` naming the holder. A second serve
 * refuses with a clear message; a lock left by a process that no longer exists is taken over. (State
 * writes are compare-and-swap anyway; the lock keeps two servers from running the same item twice.)
 */
export interface ServeLock {
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
}

export function serveLockPath(gitdir: string): string {
  return join(gitdir, 'agora', 'serve.lock');
}

export async function acquireServeLock(gitdir: string, now: number): Promise<ServeLock> {
  const path = serveLockPath(gitdir);
  await mkdir(dirname(path), { recursive: true });
  for (let tries = 0; tries < 5; tries += 1) {
    try {
      const fh = await open(path, 'wx');
      const me: Holder = { pid: process.pid, host: hostname(), startedAt: new Date(now).toISOString() };
      await fh.writeFile(`${JSON.stringify(me)}\n`);
      await fh.sync();
      await fh.close();
      return {
        release: async () => {
          const holder = await readHolder(path);
          if (holder?.pid === process.pid) await unlink(path).catch(() => {});
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readHolder(path);
    if (holder && holder.host === hostname() && isAlive(holder.pid)) {
      throw new AgoraError(
        'serve-running',
        `another agora serve (pid ${holder.pid}, since ${holder.startedAt}) is already serving this repository`,
        'stop it first, or hand it work with `agora orch submit`; it will run the submission',
      );
    }
    if (holder && holder.host !== hostname()) {
      throw new AgoraError(
        'serve-running',
        `agora serve on host ${holder.host} (pid ${holder.pid}) holds ${path}`,
        `if that server is gone, delete ${path}`,
      );
    }
    await unlink(path).catch(() => {}); // stale: its process is gone
  }
  throw new AgoraError('serve-lock', `could not take ${path}`, 'another server keeps taking it; try again');
}

/** The pid of a live local serve holding the lock, if any. */
export async function serveLockHolder(gitdir: string): Promise<number | null> {
  const holder = await readHolder(serveLockPath(gitdir));
  return holder && holder.host === hostname() && isAlive(holder.pid) ? holder.pid : null;
}

async function readHolder(path: string): Promise<Holder | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Holder;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

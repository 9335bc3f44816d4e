import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../atomic-write.js';
import { AgoraError } from '../errors.js';
import { liveness, parseIdentity, selfIdentity, type ProcessIdentity } from '../process-identity.js';

/**
 * One `serve` per repository: a lock file `<gitdir>/agora/serve.lock` naming the holder (pid, host, boot
 * id and process start time: src/process-identity.ts). A second serve refuses with a clear message; a
 * lock left by a process that is provably gone (no such pid, a zombie, a pid reused by a process started
 * at another time, a reboot) is taken over. Holding it is also what allows a serve to remove the ref
 * locks of dead Agora writers (docs/storage.md). State writes are compare-and-swap anyway; the lock keeps
 * two servers from running the same item twice.
 */
export interface ServeLock {
  release(): Promise<void>;
}

interface Holder extends ProcessIdentity {
  startedAt: string;
  /** The one run the holder serves (`agora orch run`); absent for a `serve`, which serves every run. */
  only?: string;
}

/** A live local holder of the lock: its pid, and the one run it serves if it is an `agora orch run`. */
export interface LockHolder {
  pid: number;
  only?: string;
}

export function serveLockPath(gitdir: string): string {
  return join(gitdir, 'agora', 'serve.lock');
}

export async function acquireServeLock(gitdir: string, now: number, only?: string): Promise<ServeLock> {
  const path = serveLockPath(gitdir);
  await mkdir(dirname(path), { recursive: true });
  return retryOnConflict(
    path,
    5,
    async (): Promise<ServeLock | typeof LOST_RACE> => {
      try {
        // Created whole (a hard link of a written temporary file): never seen empty, even after a crash.
        const me: Holder = { ...selfIdentity(), startedAt: new Date(now).toISOString(), ...(only === undefined ? {} : { only }) };
        await writeFileAtomic(path, `${JSON.stringify(me)}\n`, { exclusive: true });
        return {
          release: async () => {
            const holder = await readHolder(path);
            if (holder?.pid === process.pid) await unlink(path).catch(() => {});
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const { holder, text } = await readHolderText(path);
      const state = holder ? liveness(holder) : 'gone';
      if (holder && state === 'alive') {
        throw new AgoraError(
          'serve-running',
          `another agora serve (pid ${holder.pid}, since ${holder.startedAt}) is already serving this repository`,
          'stop it first, or hand it work with `agora orch submit`; it will run the submission',
        );
      }
      if (holder && state === 'elsewhere') {
        throw new AgoraError('serve-running', `agora serve on host ${holder.host} (pid ${holder.pid}) holds ${path}`, `if that server is gone, delete ${path}`);
      }
      // Stale: its process is gone (or the file is unreadable). Remove it only if it is still that file.
      if ((await readHolderText(path)).text === text) await unlink(path).catch(() => {});
      return LOST_RACE;
    },
    'another server keeps taking it; try again',
  );
}

/** The live local process holding the lock, if any (a lock an older Agora wrote names no `only`: a serve). */
export async function serveLockHolder(gitdir: string): Promise<LockHolder | null> {
  const holder = await readHolder(serveLockPath(gitdir));
  if (!holder || liveness(holder) !== 'alive') return null;
  return holder.only === undefined ? { pid: holder.pid } : { pid: holder.pid, only: holder.only };
}

async function readHolder(path: string): Promise<Holder | null> {
  return (await readHolderText(path)).holder;
}

async function readHolderText(path: string): Promise<{ holder: Holder | null; text: string | null }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { holder: null, text: null };
  }
  try {
    const parsed = JSON.parse(text) as { startedAt?: unknown; only?: unknown };
    const id = parseIdentity(parsed);
    // A lock written before boot and start were recorded names only pid and host.
    const legacy = id ?? parseIdentity({ boot: null, start: null, ...parsed });
    const only = typeof parsed.only === 'string' ? { only: parsed.only } : {};
    return { holder: legacy ? { ...legacy, startedAt: String(parsed.startedAt ?? '?'), ...only } : null, text };
  } catch {
    return { holder: null, text };
  }
}

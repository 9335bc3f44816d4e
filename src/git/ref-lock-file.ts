import { processTempTag, tempSuffix } from '../temp-name.js';
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncAsync, syncDirectory } from '../atomic-write.js';
import { crashPoint } from '../crash-points.js';
import { AgoraError } from '../errors.js';
import { liveness, parseIdentity, selfIdentity, type ProcessIdentity } from '../process-identity.js';
import { errCode, storageError } from './loose-objects.js';

/**
 * git's lockfile protocol with Agora's addition (see ref-lock.ts): taking `<path>.lock` exclusively with
 * the writer's identity in it, waiting for a live writer, recovering a lock whose Agora writer is provably
 * gone, and committing a new value by a synced temporary file renamed into place.
 */

/** How long to wait for a lock another live writer holds, and when a lock counts as abandoned. */
export interface RefLockOptions {
  /** Give up waiting for a lock held by another writer after this long (default 2,000 ms). */
  maxWaitMs?: number;
  /** A lock that names no writer (git's own) and is older than this was left by a crashed git (default 30,000 ms). */
  staleMs?: number;
  /**
   * Remove locks whose Agora writer is provably gone (src/process-identity.ts). Only for a process that
   * holds the serve lock: no other Agora process recovers locks of this repository at the same time.
   */
  recoverAbandoned?: boolean;
}

const DEFAULT_MAX_WAIT_MS = 2_000;
const DEFAULT_STALE_MS = 30_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A held `<path>.lock`. Git's lock files name no writer, so Agora's do: the lock is created already
 * holding its writer's identity (the process's synced owner file hard-linked into place, which fails if
 * the lock exists), and the new value goes to a temporary file renamed over the ref while the lock is
 * held. A lock whose writer is provably gone can then be told from one a live process holds.
 */
export interface HeldLock {
  path: string;
  /** `<gitdir>/agora/tmp`: where new values are written before they are renamed into place. */
  tmpDir: string;
  /** The outermost directory taking the lock created (the ref's namespace was new), if any. */
  createdDir?: string;
}

/** What a lock file says about who holds it. */
type LockOwner = { agora: ProcessIdentity; text: string } | { foreign: true } | null;

const recovering = new Map<string, Promise<void>>();

async function readLockOwner(lockPath: string): Promise<LockOwner> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return null;
    throw e;
  }
  const id = lockOwnerIdentity(text);
  return id ? { agora: id, text } : { foreign: true };
}

/**
 * The writer an Agora lock (or the owner file it is a link of) records, as `ownerFile` writes it; null for
 * anything else (git's own lock: empty, or the new value being written).
 */
export function lockOwnerIdentity(text: string): ProcessIdentity | null {
  try {
    const parsed = JSON.parse(text) as { agoraRefLock?: unknown } | null;
    return parsed?.agoraRefLock === 1 ? parseIdentity(parsed) : null;
  } catch {
    return null;
  }
}

/** Creates `lockPath` exclusively, already holding this process's identity. False if it exists. */
async function createLock(lockPath: string, tmpDir: string): Promise<boolean> {
  const ownerPromise = ownerFile(tmpDir);
  const owner = await ownerPromise;
  try {
    linkSync(owner, lockPath);
    return true;
  } catch (e) {
    if (errCode(e) === 'EEXIST') return false;
    // Removed under us, or at the file system's limit of links to one file: a new owner file is written.
    if ((errCode(e) === 'ENOENT' && !existsSync(owner)) || errCode(e) === 'EMLINK') {
      if (ownerFiles.get(tmpDir) === ownerPromise) ownerFiles.delete(tmpDir);
      return createLock(lockPath, tmpDir);
    }
    throw e;
  }
}

/**
 * This process's identity as a lock's content, one synced file per repository (its `agora/tmp`), written
 * once and hard-linked as every lock the process takes there: a lock costs one `link`, not a write and a
 * sync of its own. It is written before the process's first ref value too ({@link writeRefValue}), so
 * that every value a killed process leaves has its writer's identity beside it (ref-temp-sweep.ts). When
 * the process exits, its ref values there and then its owner files are removed; what a killed process
 * leaves, a serve removes once it is provably gone.
 */
const ownerFiles = new Map<string, Promise<string>>();

function ownerFile(tmpDir: string): Promise<string> {
  let file = ownerFiles.get(tmpDir);
  if (!file) {
    if (!removalRegistered) process.once('exit', removeOwnFiles);
    removalRegistered = true;
    file = writeTemp(tmpDir, `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity() })}\n`, 'owner');
    ownerFiles.set(tmpDir, file);
    file.then(
      (path) => written.add(path),
      () => ownerFiles.delete(tmpDir),
    );
  }
  return file;
}

const written = new Set<string>();
let removalRegistered = false;

/** At exit: the ref values this process had not renamed (a transaction cut short), then its owner files. */
function removeOwnFiles(): void {
  const values = `ref-${processTempTag()}_`;
  for (const path of written) {
    const dir = dirname(path);
    try {
      for (const name of readdirSync(dir)) if (name.startsWith(values)) unlinkQuietly(join(dir, name));
    } catch {
      // the directory is gone
    }
    unlinkQuietly(path);
  }
}

/**
 * Writes a ref's new value to a synced temporary file in `tmpDir` (`ref-*`), once this process's owner
 * file is there (written again if it was removed); its path.
 */
export async function writeRefValue(tmpDir: string, content: string): Promise<string> {
  const owner = ownerFile(tmpDir);
  // Removed under this process (a sweep that judged it wrongly, or a person): written again first.
  if (!existsSync(await owner)) {
    if (ownerFiles.get(tmpDir) === owner) ownerFiles.delete(tmpDir);
    await ownerFile(tmpDir);
  }
  return writeTemp(tmpDir, content, 'ref');
}

/**
 * Writes `content` to a new file in `tmpDir` and syncs it. The file is opened, written and closed with
 * synchronous calls (a few bytes: cheaper than the thread pool's round trips); only the sync, which waits
 * on the disk, goes to the thread pool.
 */
async function writeTemp(tmpDir: string, content: string, prefix: 'ref' | 'owner'): Promise<string> {
  const temp = join(tmpDir, `${prefix}-${tempSuffix()}`);
  let fd: number;
  try {
    try {
      fd = openSync(temp, 'wx');
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
      mkdirSync(tmpDir, { recursive: true });
      fd = openSync(temp, 'wx');
    }
  } catch (e) {
    throw storageError(e, `write ${temp}`);
  }
  try {
    try {
      writeFileSync(fd, content, 'utf8');
      await fsyncAsync(fd);
    } finally {
      // Once: Linux frees the descriptor even when close fails, and a second close could hit a reused one.
      closeSync(fd);
    }
  } catch (e) {
    unlinkQuietly(temp);
    throw storageError(e, `write ${temp}`);
  }
  return temp;
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // never created, or already gone
  }
}

/**
 * Removes a lock whose Agora writer is gone, if it still holds exactly `text`. Only a process that holds
 * the serve lock does this (no other Agora process recovers at the same time), and recoveries in this
 * process run one at a time, so between the check and the unlink nobody else can replace the file: only
 * recoverers remove others' locks, and the dead writer cannot.
 */
async function recoverLock(lockPath: string, text: string): Promise<void> {
  while (recovering.has(lockPath)) await recovering.get(lockPath);
  const done = (async () => {
    const now = await readLockOwner(lockPath);
    if (now && 'agora' in now && now.text === text) unlinkQuietly(lockPath);
  })();
  recovering.set(lockPath, done);
  try {
    await done;
  } finally {
    recovering.delete(lockPath);
  }
}

/** `<gitdir>/agora/tmp`: where new ref values (and this process's lock owner file) are written before they are renamed into place. */
export function refTempDir(gitdir: string): string {
  return join(gitdir, 'agora', 'tmp');
}

/**
 * Creates `lockPath` exclusively. While a live writer holds it, retries with a small random backoff for up
 * to `maxWaitMs` and then returns null. A lock left by an Agora process that is provably gone is removed
 * when `recoverAbandoned` is set, else reported (`ref-locked`) once the wait is over. A lock that names no
 * writer (git's own) and is older than `staleMs` throws `ref-locked`: only a person can know that no git
 * process holds it.
 */
export async function acquireLock(gitdir: string, lockPath: string, what: string, opts: RefLockOptions): Promise<HeldLock | null> {
  const maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS;
  const deadline = Date.now() + maxWaitMs;
  const tmpDir = refTempDir(gitdir);
  let createdDir: string | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      if (await createLock(lockPath, tmpDir)) return { path: lockPath, tmpDir, ...(createdDir ? { createdDir } : {}) };
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT') {
        // A parent directory is missing (or was just removed by a deletion): create it and try again.
        const made = await mkdir(dirname(lockPath), { recursive: true }).catch((err: unknown) => {
          if (errCode(err) === 'ENOTDIR' || errCode(err) === 'EEXIST') throw refConflict(lockPath, what);
          throw err;
        });
        if (made !== undefined) createdDir = made;
        continue;
      }
      if (code === 'ENOTDIR') throw refConflict(lockPath, what);
      throw storageError(e, `lock ${what}`);
    }
    const owner = await readLockOwner(lockPath);
    if (owner === null) continue; // released meanwhile
    if ('agora' in owner) {
      if (liveness(owner.agora) === 'gone') {
        if (opts.recoverAbandoned) {
          await recoverLock(lockPath, owner.text);
          continue;
        }
        if (Date.now() >= deadline) {
          throw new AgoraError(
            'ref-locked',
            `${lockPath} was left by agora process ${owner.agora.pid}, which is gone, while it updated ${what}`,
            `\`agora orch serve\` removes it when it next updates ${what}; or remove ${lockPath} yourself`,
          );
        }
      }
    } else {
      let since: number;
      try {
        since = (await stat(lockPath)).mtimeMs;
      } catch (e) {
        if (errCode(e) === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      if (Date.now() - since > staleMs) {
        // When it was taken, not for how long: the same lock gives the same message at every look, and a
        // serve that says each blocked ref once tells one lock from another by it (blocked-runs.ts).
        throw new AgoraError(
          'ref-locked',
          `${lockPath} has been held since ${new Date(since).toISOString()} by a process that is not agora (git's lock files do not say which): a git process probably crashed while updating ${what}`,
          `remove ${lockPath} if no git process is running on this repository`,
        );
      }
    }
    if (Date.now() >= deadline) return null;
    const ceiling = Math.min(50, 2 ** Math.min(attempt, 6));
    await sleep(1 + Math.random() * ceiling);
  }
}

function refConflict(lockPath: string, what: string): AgoraError {
  return new AgoraError(
    'ref-conflict',
    `cannot create ${lockPath}: a ref that is a prefix of ${what} exists as a file`,
    'ref names must not nest inside one another (refs/x and refs/x/y cannot both exist); choose another name',
  );
}

export async function releaseLock(lock: HeldLock): Promise<void> {
  try {
    unlinkSync(lock.path);
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * Writes `content` to a synced temporary file, renames it over `target` and releases the lock. Readers
 * see the whole old or the whole new value; a crash after the rename leaves only the lock, whose writer
 * is then gone.
 */
export async function commitLock(lock: HeldLock, target: string, content: string): Promise<void> {
  try {
    await renameInto(await writeRefValue(lock.tmpDir, content), target);
    await syncRefDirectories([{ lock, target }]);
  } finally {
    await releaseLock(lock);
  }
}

/**
 * Syncs the directories of refs just renamed into place, so that the moves survive a power loss before
 * anything acts on them: each ref's directory, once, and where taking its lock created directories,
 * every one of them and the directory it was made in.
 */
export async function syncRefDirectories(moved: ReadonlyArray<{ lock: HeldLock; target: string }>): Promise<void> {
  const dirs = new Set<string>();
  for (const { lock, target } of moved) {
    let dir = dirname(target);
    dirs.add(dir);
    if (lock.createdDir === undefined) continue;
    const outermost = dirname(lock.createdDir);
    while (dir !== outermost && dir !== dirname(dir)) {
      dir = dirname(dir);
      dirs.add(dir);
    }
  }
  await Promise.all([...dirs].map((d) => syncDirectory(d)));
}

export async function renameInto(temp: string, target: string): Promise<void> {
  crashPoint('ref-temp-written');
  try {
    renameSync(temp, target);
  } catch (e) {
    unlinkQuietly(temp);
    // A directory of the ref's name made after the transaction checked for one (a ref being created below it).
    if (errCode(e) === 'EISDIR') {
      throw new AgoraError(
        'ref-conflict',
        `cannot create ${target}: refs are being created below it (it is a directory)`,
        'ref names must not nest inside one another (refs/x and refs/x/y cannot both exist); delete the refs below it or choose another name',
      );
    }
    throw e;
  }
  crashPoint('ref-renamed');
}

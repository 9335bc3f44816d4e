/**
 * Refs of a local repository, read and updated by git's own lockfile protocol so that Agora and the `git`
 * CLI can share one repository (DESIGN.md §7): an update creates `<ref>.lock` exclusively (naming its
 * writer, so that a lock left by a killed Agora process can be proven abandoned: docs/storage.md), checks
 * the current value under the lock, writes and fsyncs the new value into a temporary file, renames it over
 * the ref and removes the lock. Readers therefore only ever see a whole old or a whole new value. Loose refs win over
 * `packed-refs`; a deletion removes the ref from `packed-refs` (under `packed-refs.lock`) before it
 * removes the loose file, so no reader sees an older packed value come back.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { crashPoint } from '../crash-points.js';
import { AgoraError } from '../errors.js';
import { liveness, parseIdentity, selfIdentity, type ProcessIdentity } from '../process-identity.js';
import { storageError } from './loose-objects.js';
import type { Oid, RefSwap } from './types.js';

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
const OID_RE = /^[0-9a-f]{40}$/;
const MAX_SYMREF_DEPTH = 5;

/** True when `oid` is a full, lower-case SHA-1 object id. */
export function isOid(oid: string): boolean {
  return OID_RE.test(oid);
}

/**
 * Checks `ref` against git's ref-name rules (git-check-ref-format) restricted to names under `refs/`.
 * Throws AgoraError('ref-invalid') naming the ref and the broken rule.
 */
export function assertRefName(ref: string): void {
  const problem = refNameProblem(ref);
  if (problem) {
    throw new AgoraError('ref-invalid', `ref name "${ref}" is not valid: ${problem}`, 'use a full ref name such as refs/agora/runs/<run>');
  }
}

function refNameProblem(ref: string): string | null {
  if (!ref.startsWith('refs/')) return 'it must start with refs/';
  if (ref.endsWith('/')) return 'it must not end with /';
  if (ref.endsWith('.')) return 'it must not end with .';
  if (ref.includes('..')) return 'it must not contain ..';
  if (ref.includes('@{')) return 'it must not contain @{';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return 'it must not contain spaces, control characters or any of ~ ^ : ? * [ \\';
  for (const part of ref.split('/')) {
    if (part === '') return 'it must not contain an empty component (//)';
    if (part.startsWith('.')) return `component "${part}" must not start with .`;
    if (part.endsWith('.lock')) return `component "${part}" must not end with .lock`;
  }
  return null;
}

function assertOid(oid: string, what: string): void {
  if (!isOid(oid)) throw new AgoraError('oid-invalid', `${what} "${oid}" is not a 40-character hexadecimal object id`);
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------------------
// Reading

/** One line of `packed-refs`: a ref and the object it points at. */
interface PackedRef {
  ref: string;
  oid: Oid;
}

/** The parsed `packed-refs` file: header line (if any) and refs in file order, with their peeled lines. */
interface PackedRefsFile {
  header: string | null;
  refs: Array<PackedRef & { peeled: string | null }>;
}

async function readPackedRefsFile(gitdir: string): Promise<PackedRefsFile> {
  let text: string;
  try {
    text = await readFile(join(gitdir, 'packed-refs'), 'utf8');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return { header: null, refs: [] };
    throw e;
  }
  const file: PackedRefsFile = { header: null, refs: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      file.header ??= line;
      continue;
    }
    if (line.startsWith('^')) {
      const last = file.refs[file.refs.length - 1];
      if (last) last.peeled = line;
      continue;
    }
    const space = line.indexOf(' ');
    const oid = line.slice(0, space);
    const ref = line.slice(space + 1);
    if (space > 0 && isOid(oid)) file.refs.push({ ref, oid, peeled: null });
  }
  return file;
}

async function readPackedRef(gitdir: string, ref: string): Promise<Oid | null> {
  const file = await readPackedRefsFile(gitdir);
  return file.refs.find((r) => r.ref === ref)?.oid ?? null;
}

/** The content of a loose ref file: an object id, a symbolic target, or nothing (no such file). */
type LooseRef = { oid: Oid } | { symref: string } | null;

async function readLooseRef(gitdir: string, ref: string): Promise<LooseRef> {
  const path = join(gitdir, ref);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = errCode(e);
    // A directory of that name (refs/x when refs/x/y exists) or a missing parent is simply "no ref".
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') return null;
    throw e;
  }
  const value = text.trim();
  if (value.startsWith('ref: ')) return { symref: value.slice(5).trim() };
  if (isOid(value)) return { oid: value };
  throw new AgoraError(
    'ref-corrupt',
    `${path} does not hold an object id (${JSON.stringify(value.slice(0, 60))})`,
    `check that no other tool writes this ref in place; restore it with \`git update-ref ${ref} <commit>\``,
  );
}

/**
 * The object `ref` points at (loose ref first, then `packed-refs`; symbolic refs such as `HEAD` are
 * followed), or null when it does not exist. Reads the loose file before `packed-refs`: `git pack-refs`
 * writes `packed-refs` before it prunes the loose file, so a ref being packed is never missed.
 */
export async function readRef(gitdir: string, ref: string): Promise<Oid | null> {
  let name = ref;
  for (let depth = 0; depth <= MAX_SYMREF_DEPTH; depth++) {
    if (name !== 'HEAD') assertRefName(name);
    const loose = await readLooseRef(gitdir, name);
    if (loose === null) return name === 'HEAD' ? null : readPackedRef(gitdir, name);
    if ('oid' in loose) return loose.oid;
    name = loose.symref;
  }
  throw new AgoraError('ref-corrupt', `${ref} is a chain of more than ${MAX_SYMREF_DEPTH} symbolic refs`, 'point it at a commit or a branch directly');
}

async function walkLooseRefs(gitdir: string, dir: string, out: Map<string, Oid>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(join(gitdir, dir));
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw e;
  }
  for (const name of names) {
    if (name.endsWith('.lock')) continue;
    const ref = `${dir}/${name}`;
    let info;
    try {
      info = await lstat(join(gitdir, ref));
    } catch (e) {
      if (errCode(e) === 'ENOENT') continue; // deleted meanwhile
      throw e;
    }
    if (info.isDirectory()) {
      await walkLooseRefs(gitdir, ref, out);
    } else if (info.isFile()) {
      const loose = await readLooseRef(gitdir, ref);
      if (loose && 'oid' in loose) out.set(ref, loose.oid);
    }
  }
}

/** Every ref whose name starts with `prefix` (loose and packed; loose wins), sorted by name (bytewise). */
export async function listRefs(gitdir: string, prefix: string): Promise<Array<{ ref: string; oid: Oid }>> {
  // Walk from the deepest complete directory of the prefix, then filter by the full prefix.
  const slash = prefix.lastIndexOf('/');
  const base = slash > 0 ? prefix.slice(0, slash) : 'refs';
  const loose = new Map<string, Oid>();
  if (base === 'refs' || base.startsWith('refs/')) await walkLooseRefs(gitdir, base, loose);
  const packed = await readPackedRefsFile(gitdir);
  const all = new Map<string, Oid>();
  for (const r of packed.refs) if (r.ref.startsWith(prefix)) all.set(r.ref, r.oid);
  for (const [ref, oid] of loose) if (ref.startsWith(prefix)) all.set(ref, oid);
  return [...all]
    .map(([ref, oid]) => ({ ref, oid, key: Buffer.from(ref) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ ref, oid }) => ({ ref, oid }));
}

// ---------------------------------------------------------------------------------------------------
// Locking and writing

/**
 * A held `<path>.lock`. Git's lock files name no writer, so Agora's do: the lock is created already
 * holding its writer's identity (written to a temporary file and hard-linked into place, which fails if
 * the lock exists), and the new value goes to a temporary file renamed over the ref while the lock is
 * held. A lock whose writer is provably gone can then be told from one a live process holds.
 */
interface HeldLock {
  path: string;
  /** `<gitdir>/agora/tmp`: where new values are written before they are renamed into place. */
  tmpDir: string;
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
  try {
    const parsed = JSON.parse(text) as { agoraRefLock?: unknown };
    const id = parsed.agoraRefLock === 1 ? parseIdentity(parsed) : null;
    if (id) return { agora: id, text };
  } catch {
    // git's own lock (empty, or the new value being written): no writer recorded
  }
  return { foreign: true };
}

/** Creates `lockPath` exclusively, already holding this process's identity. False if it exists. */
async function createLock(lockPath: string, tmpDir: string): Promise<boolean> {
  const temp = await writeTemp(tmpDir, `${JSON.stringify({ agoraRefLock: 1, ...selfIdentity() })}\n`);
  try {
    await link(temp, lockPath);
    return true;
  } catch (e) {
    if (errCode(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

async function writeTemp(tmpDir: string, content: string): Promise<string> {
  const temp = join(tmpDir, `ref-${process.pid}-${randomBytes(6).toString('hex')}`);
  let handle;
  try {
    handle = await open(temp, 'wx');
  } catch (e) {
    if (errCode(e) !== 'ENOENT') throw e;
    await mkdir(tmpDir, { recursive: true });
    handle = await open(temp, 'wx');
  }
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw storageError(e, `write ${temp}`);
  }
  await handle.close();
  return temp;
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
    if (now && 'agora' in now && now.text === text) await unlink(lockPath).catch(() => undefined);
  })();
  recovering.set(lockPath, done);
  try {
    await done;
  } finally {
    recovering.delete(lockPath);
  }
}

/**
 * Creates `lockPath` exclusively. While a live writer holds it, retries with a small random backoff for up
 * to `maxWaitMs` and then returns null. A lock left by an Agora process that is provably gone is removed
 * when `recoverAbandoned` is set, else reported (`ref-locked`) once the wait is over. A lock that names no
 * writer (git's own) and is older than `staleMs` throws `ref-locked`: only a person can know that no git
 * process holds it.
 */
async function acquireLock(gitdir: string, lockPath: string, what: string, opts: RefLockOptions): Promise<HeldLock | null> {
  const maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS;
  const deadline = Date.now() + maxWaitMs;
  const tmpDir = join(gitdir, 'agora', 'tmp');
  for (let attempt = 0; ; attempt++) {
    try {
      if (await createLock(lockPath, tmpDir)) return { path: lockPath, tmpDir };
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT') {
        // A parent directory is missing (or was just removed by a deletion): create it and try again.
        await mkdir(dirname(lockPath), { recursive: true }).catch((err: unknown) => {
          if (errCode(err) === 'ENOTDIR' || errCode(err) === 'EEXIST') throw refConflict(lockPath, what);
          throw err;
        });
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
      let ageMs: number;
      try {
        ageMs = Date.now() - (await stat(lockPath)).mtimeMs;
      } catch (e) {
        if (errCode(e) === 'ENOENT') continue; // released meanwhile
        throw e;
      }
      if (ageMs > staleMs) {
        throw new AgoraError(
          'ref-locked',
          `${lockPath} has been held for ${Math.round(ageMs / 1000)} s by a process that is not agora (git's lock files do not say which): a git process probably crashed while updating ${what}`,
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

async function releaseLock(lock: HeldLock): Promise<void> {
  await unlink(lock.path).catch((e: unknown) => {
    if (errCode(e) !== 'ENOENT') throw e;
  });
}

/**
 * Writes `content` to a synced temporary file, renames it over `target` and releases the lock. Readers
 * see the whole old or the whole new value; a crash after the rename leaves only the lock, whose writer
 * is then gone.
 */
async function commitLock(lock: HeldLock, target: string, content: string): Promise<void> {
  try {
    await renameInto(await writeTemp(lock.tmpDir, content), target);
  } finally {
    await releaseLock(lock);
  }
}

async function renameInto(temp: string, target: string): Promise<void> {
  crashPoint('ref-temp-written');
  await rename(temp, target).catch(async (e: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw e;
  });
  crashPoint('ref-renamed');
}

/** The current value of `ref` as an update must see it: the loose file, else `packed-refs`. */
async function currentValue(gitdir: string, ref: string): Promise<Oid | null> {
  const loose = await readLooseRef(gitdir, ref);
  if (loose === null) return readPackedRef(gitdir, ref);
  if ('oid' in loose) return loose.oid;
  throw new AgoraError('ref-symbolic', `${ref} is a symbolic ref (to ${loose.symref}); Agora updates only direct refs`, `update ${loose.symref} instead`);
}

/**
 * Compare-and-swap: points `ref` at `next` only if it currently points at `expected` (null: only if it
 * does not exist). Returns false when the ref had moved, or when another live writer kept the lock for
 * longer than `maxWaitMs`. Throws `ref-locked` for a lock abandoned by a crashed writer.
 */
export async function casRef(gitdir: string, ref: string, next: Oid, expected: Oid | null, opts: RefLockOptions = {}): Promise<boolean> {
  return casRefs(gitdir, [{ ref, next, expected }], opts);
}

/**
 * A transaction of compare-and-swaps, all or none, as `git update-ref --stdin` does one (start, prepare,
 * commit) on the files backend: every ref's lock is taken (in name order, so two transactions never wait
 * on each other in a cycle) and every current value checked before any ref moves; then each new value is
 * written and synced, and the refs are renamed into place in the order given, the last one last. Returns
 * false, having moved nothing, when any ref had moved or stayed locked by another writer. A crash during
 * the renames leaves the refs before it moved and the rest behind (their locks then name a dead writer):
 * callers put the ref that others act on last, so that what it names is already in place.
 */
export async function casRefs(gitdir: string, swaps: readonly RefSwap[], opts: RefLockOptions = {}): Promise<boolean> {
  const seen = new Set<string>();
  for (const s of swaps) {
    assertRefName(s.ref);
    assertOid(s.next, 'new value');
    if (s.expected !== null) assertOid(s.expected, 'expected value');
    if (seen.has(s.ref)) throw new Error(`casRefs: ${s.ref} appears twice in one transaction`);
    seen.add(s.ref);
  }
  const locks = new Map<string, HeldLock>();
  const releaseAll = () => Promise.all([...locks.values()].map((l) => releaseLock(l)));
  try {
    for (const s of [...swaps].sort((a, b) => Buffer.compare(Buffer.from(a.ref), Buffer.from(b.ref)))) {
      const lock = await acquireLock(gitdir, `${join(gitdir, s.ref)}.lock`, s.ref, opts);
      if (!lock) return false;
      locks.set(s.ref, lock);
      if ((await currentValue(gitdir, s.ref)) !== s.expected) return false;
    }
    const written = await Promise.allSettled(swaps.map((s) => writeTemp(locks.get(s.ref)!.tmpDir, `${s.next}\n`)));
    const temps = written.flatMap((w) => (w.status === 'fulfilled' ? [w.value] : []));
    const failed = written.find((w) => w.status === 'rejected');
    let renamed = 0;
    try {
      if (failed) throw failed.reason;
      for (const [i, s] of swaps.entries()) {
        await renameInto(temps[i]!, join(gitdir, s.ref));
        renamed = i + 1;
      }
    } finally {
      await Promise.all(temps.slice(renamed).map((t) => unlink(t).catch(() => undefined)));
    }
    return true;
  } finally {
    await releaseAll();
  }
}

/**
 * Deletes `ref` only if it currently points at `expected`. Removes it from `packed-refs` first (under
 * `packed-refs.lock`), then the loose file, all while holding `<ref>.lock`; empty parent directories of
 * the loose ref are removed as git does. Returns false when the ref had moved (or was already gone).
 */
export async function deleteRef(gitdir: string, ref: string, expected: Oid, opts: RefLockOptions = {}): Promise<boolean> {
  assertRefName(ref);
  assertOid(expected, 'expected value');
  const path = join(gitdir, ref);
  const lock = await acquireLock(gitdir, `${path}.lock`, ref, opts);
  if (!lock) return false;
  try {
    if ((await currentValue(gitdir, ref)) !== expected) return false;
    if ((await readPackedRef(gitdir, ref)) !== null) {
      const removed = await removeFromPackedRefs(gitdir, ref, opts);
      if (!removed) return false;
    }
    await unlink(path).catch((e: unknown) => {
      if (errCode(e) !== 'ENOENT') throw e;
    });
    return true;
  } finally {
    await releaseLock(lock);
    await pruneEmptyDirs(gitdir, dirname(ref));
  }
}

/** Rewrites `packed-refs` without `ref` under `packed-refs.lock`. False if the lock stayed busy. */
async function removeFromPackedRefs(gitdir: string, ref: string, opts: RefLockOptions): Promise<boolean> {
  const target = join(gitdir, 'packed-refs');
  const lock = await acquireLock(gitdir, `${target}.lock`, 'packed-refs', opts);
  if (!lock) return false;
  const file = await readPackedRefsFile(gitdir).catch(async (e: unknown) => {
    await releaseLock(lock);
    throw e;
  });
  const lines: string[] = [];
  if (file.header) lines.push(file.header);
  for (const r of file.refs) {
    if (r.ref === ref) continue;
    lines.push(`${r.oid} ${r.ref}`);
    if (r.peeled) lines.push(r.peeled);
  }
  await commitLock(lock, target, lines.length > 0 ? `${lines.join('\n')}\n` : '');
  return true;
}

/** Removes now-empty directories from `dir` up to (not including) `refs/`, stopping at the first non-empty one. */
async function pruneEmptyDirs(gitdir: string, dir: string): Promise<void> {
  let current = dir;
  while (current.startsWith('refs/') && current.split('/').length > 2) {
    try {
      await rmdir(join(gitdir, current));
    } catch {
      return; // not empty, or already gone
    }
    current = dirname(current);
  }
}

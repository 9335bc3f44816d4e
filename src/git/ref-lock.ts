/**
 * Refs of a local repository, read and updated by git's own lockfile protocol so that Agora and the `git`
 * CLI can share one repository (DESIGN.md §7): an update creates `<ref>.lock` exclusively (naming its
 * writer, so that a lock left by a killed Agora process can be proven abandoned: docs/storage.md), checks
 * the current value under the lock, renames over the ref the new value written and fsynced to a temporary
 * file before the lock was taken, and removes the lock. Readers therefore only ever see a whole old or a whole new value. Loose refs win over
 * `packed-refs`; a deletion removes the ref from `packed-refs` (under `packed-refs.lock`) before it
 * removes the loose file, so no reader sees an older packed value come back.
 *
 * This module is the updates (compare-and-swap of one ref or a transaction, deletion); the names are
 * checked by ref-names.ts, refs are read by ref-read.ts and the lock files are ref-lock-file.ts's.
 */
import { crashPoint } from '../crash-points.js';
import { rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AgoraError } from '../errors.js';
import { errCode } from './loose-objects.js';
import {
  acquireLock,
  commitLock,
  refTempDir,
  releaseLock,
  renameInto,
  syncRefDirectories,
  writeRefValue,
  type HeldLock,
  type RefLockOptions,
} from './ref-lock-file.js';
import { assertOid, assertRefName } from './ref-names.js';
import { currentValue, readPackedRef, readPackedRefsFile } from './ref-read.js';
import type { Oid, RefSwap } from './types.js';

export type { RefLockOptions } from './ref-lock-file.js';
export { assertRefName, isOid } from './ref-names.js';
export { listRefs, readRef } from './ref-read.js';

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
 * commit) on the files backend. Each new value is first written and synced to a temporary file (while
 * `objectsDurable`, the write of what the values name, is still going on: nothing reads those files, so
 * the two waits on the disk overlap). Then every ref's lock is taken (in name order, so two transactions
 * never wait on each other in a cycle) and every current value checked before any ref moves, and the refs
 * are renamed into place in the order given, the last one last. No lock is taken before the objects are
 * durable: a lock outlives a writer killed while it holds it, and only `serve` takes such a lock over.
 * Returns false, having moved nothing, when any ref had moved or stayed locked by another writer; throws,
 * having moved nothing, when `objectsDurable` rejects (its error before a value's) or a value could not
 * be written (so a transaction that would have lost its race throws then too). A
 * crash during the renames leaves the refs before it moved and the rest behind (their locks then name a
 * dead writer): callers put the ref that others act on last, so that what it names is already in place.
 */
export async function casRefs(
  gitdir: string,
  swaps: readonly RefSwap[],
  opts: RefLockOptions = {},
  objectsDurable: Promise<void> = Promise.resolve(),
): Promise<boolean> {
  // Settled (and so never unhandled) whatever happens below.
  const durable = objectsDurable.then(
    () => null,
    (e: unknown) => ({ error: e }),
  );
  const seen = new Set<string>();
  for (const s of swaps) {
    assertRefName(s.ref);
    assertOid(s.next, 'new value');
    if (s.expected !== null) assertOid(s.expected, 'expected value');
    if (seen.has(s.ref)) throw new Error(`casRefs: ${s.ref} appears twice in one transaction`);
    seen.add(s.ref);
  }
  const written = await Promise.allSettled(swaps.map((s) => writeRefValue(refTempDir(gitdir), `${s.next}\n`)));
  crashPoint('ref-values-written'); // no lock taken yet: the values and their owner file are what a kill leaves
  const temps = written.flatMap((w) => (w.status === 'fulfilled' ? [w.value] : []));
  const failed = written.find((w) => w.status === 'rejected');
  const locks = new Map<string, HeldLock>();
  let renamed = 0;
  try {
    const objects = await durable;
    if (objects !== null) throw objects.error;
    if (failed) throw failed.reason;
    for (const s of [...swaps].sort((a, b) => Buffer.compare(Buffer.from(a.ref), Buffer.from(b.ref)))) {
      const lock = await acquireLock(gitdir, `${join(gitdir, s.ref)}.lock`, s.ref, opts);
      if (!lock) return false;
      locks.set(s.ref, lock);
      if ((await currentValue(gitdir, s.ref)) !== s.expected) return false;
      if (s.expected === null) await clearRefDirectory(join(gitdir, s.ref), s.ref);
    }
    for (const [i, s] of swaps.entries()) {
      await renameInto(temps[i]!, join(gitdir, s.ref));
      renamed = i + 1;
    }
    await syncRefDirectories(swaps.map((s) => ({ lock: locks.get(s.ref)!, target: join(gitdir, s.ref) })));
    return true;
  } finally {
    await Promise.all(temps.slice(renamed).map((t) => unlink(t).catch(() => undefined)));
    await Promise.all([...locks.values()].map((l) => releaseLock(l)));
  }
}

/**
 * Before `ref` is created (its lock held): a directory of its name, left by refs below it, would make the
 * rename fail after other refs of the transaction had moved. An empty one is removed, as git does; one
 * that still holds refs is a conflict, found while nothing has moved.
 */
async function clearRefDirectory(path: string, ref: string): Promise<void> {
  try {
    await rmdir(path);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return; // no directory there (ENOTDIR: a file, which the value check read)
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      throw new AgoraError(
        'ref-conflict',
        `cannot create ${ref}: refs exist below it (${path} is a directory)`,
        'ref names must not nest inside one another (refs/x and refs/x/y cannot both exist); delete the refs below it or choose another name',
      );
    }
    throw e;
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

/**
 * The local-repository implementation of the storage port (DESIGN.md §2): objects in-process (blobs,
 * trees and commits written by object-database.ts: small ones packed at each ref update, large ones
 * loose; read in-process when they are whole objects, through isomorphic-git with one shared `cache` per
 * store otherwise: {@link LocalGitStore.readObject}), refs by git's own lockfile protocol
 * (src/git/ref-lock.ts) so that the `git` CLI and Agora can share the repository safely.
 */
import { looksLikeGitdir } from './discover.js';
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import git, { type PromiseFsClient } from 'isomorphic-git';
import { AgoraError, errorMessage } from '../errors.js';
import { parseCommit, renderCommit } from './commit-object.js';
import { objectDatabase, type ObjectDatabase } from './object-database.js';
import { objectSize } from './object-size.js';
import { assertRefName, casRefs, deleteRef, isOid, listRefs, readRef, type RefLockOptions } from './ref-lock.js';
import { writePack, type PackEntry } from './pack-file.js';
import { RecentObjects } from './recent-objects.js';
import { removeAbandonedRefTemps } from './ref-temp-sweep.js';
import { encodeDelta } from './pack-delta.js';
import { assertEntryName, parseTree, renderTree, sortTreeEntries, typeForMode } from './tree-object.js';
import type { CommitData, GitObject, GitStore, Oid, RefSwap, TreeEntry, TreeEntryMode } from './types.js';

/** A local repository as a GitStore, plus where its work tree is (null for a bare repository). */
export class LocalGitStore implements GitStore {
  /** isomorphic-git's object cache (pack indexes), shared by every store on this repository; renewed when packs go. */
  private get cache(): object {
    return this.objects.isomorphicGitCache;
  }
  /** The objects this process writes: small ones packed before a ref names them, large ones loose; bad loose ones rewritten. */
  private readonly objects: ObjectDatabase;
  /** The fs every isomorphic-git call gets (Node's, with object writes and existence checks made safe). */
  private readonly fs: PromiseFsClient;

  constructor(
    /** The repository's git directory (absolute). */
    readonly gitdir: string,
    /** The work tree (absolute), or null for a bare repository. */
    readonly dir: string | null,
    /** Lock waiting and staleness for ref updates. */
    private lockOptions: RefLockOptions = {},
  ) {
    this.objects = objectDatabase(gitdir);
    this.fs = this.objects.loose.fs;
  }

  async readBlob(oid: Oid): Promise<Uint8Array> {
    const loose = this.readSmall(oid);
    if (loose?.type === 'blob') return Buffer.from(loose.content); // its own memory, not a view of the header as well
    return this.guard(oid, async () => (await git.readBlob({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache })).blob);
  }

  /**
   * The size in bytes of object `oid`, read from its header without loading it (object-size.ts), so that
   * a limit is checked before a large object costs memory. Throws `object-not-found` when it is missing.
   */
  async objectSize(oid: Oid): Promise<number> {
    const size = isOid(oid) ? (this.objects.waitingSize(oid) ?? (await objectSize(this.gitdir, oid))) : null;
    if (size === null) throw new AgoraError('object-not-found', `object ${oid} is not in ${this.gitdir}`, 'fetch the missing objects or check the id');
    return size;
  }

  async writeBlob(data: Uint8Array | string): Promise<Oid> {
    return this.objects.writeObject('blob', typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** The entries of tree `oid` (a commit id is peeled to its tree), in git's tree order. */
  async readTree(oid: Oid): Promise<TreeEntry[]> {
    const loose = this.readSmall(oid);
    const peeled = loose?.type === 'commit' ? this.readSmall(parseCommit(loose.content)?.tree) : loose;
    const entries = peeled?.type === 'tree' ? parseTree(peeled.content) : null;
    if (entries) return entries;
    const { tree } = await this.guard(oid, () => git.readTree({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache }));
    return sortTreeEntries(tree.map((e) => ({ mode: e.mode as TreeEntryMode, path: e.path, oid: e.oid, type: e.type })));
  }

  /**
   * Writes a tree object. Entries may come in any order (they are sorted the way git requires); names
   * must be single, valid path components and unique; `type` must agree with `mode`.
   */
  async writeTree(entries: TreeEntry[]): Promise<Oid> {
    const seen = new Set<string>();
    for (const e of entries) {
      assertEntryName(e.path);
      if (seen.has(e.path)) throw new AgoraError('tree-invalid', `tree entry "${e.path}" appears twice`, 'give each entry of one tree a distinct name');
      seen.add(e.path);
      if (!isOid(e.oid)) throw new AgoraError('tree-invalid', `tree entry "${e.path}" has an invalid object id "${e.oid}"`);
      if (typeForMode(e.mode) !== e.type) {
        throw new AgoraError('tree-invalid', `tree entry "${e.path}" has mode ${e.mode} but type ${e.type} (expected ${typeForMode(e.mode)})`);
      }
    }
    return this.objects.writeObject('tree', renderTree(entries));
  }

  async readCommit(oid: Oid): Promise<CommitData> {
    const loose = this.readSmall(oid);
    const parsed = loose?.type === 'commit' ? parseCommit(loose.content) : null;
    if (parsed) return parsed;
    const { commit } = await this.guard(oid, () => git.readCommit({ fs: this.fs, gitdir: this.gitdir, oid, cache: this.cache })).catch((e: unknown) => {
      // isomorphic-git's commit parser fails with a bare TypeError on headers it cannot split (an identity
      // with a CR); guard has read it twice by then (the first failure might have been a pack gone).
      if (e instanceof TypeError) {
        throw new AgoraError('commit-invalid', `commit ${oid} in ${this.gitdir} cannot be read: ${e.message}`, 'use a commit whose headers git wrote');
      }
      throw e;
    });
    return {
      tree: commit.tree,
      parents: [...commit.parent],
      message: commit.message,
      author: { ...commit.author },
      committer: { ...commit.committer },
    };
  }

  /**
   * Writes a commit object. The message is stored the way git stores it: carriage returns removed and
   * exactly one trailing newline (readCommit returns it in that form).
   */
  async writeCommit(commit: CommitData): Promise<Oid> {
    if (!isOid(commit.tree)) throw new AgoraError('commit-invalid', `commit tree "${commit.tree}" is not an object id`);
    for (const p of commit.parents) {
      if (!isOid(p)) throw new AgoraError('commit-invalid', `commit parent "${p}" is not an object id`);
    }
    return this.objects.writeObject('commit', renderCommit(commit));
  }

  async hasObject(oid: Oid): Promise<boolean> {
    if (!isOid(oid)) return false;
    // An empty or corrupt loose file (a write cut short) is no object: the next write of it replaces it.
    const stored = await this.objects.state(oid);
    if (stored !== 'missing') return stored === 'ok';
    const lookUp = () => git.readObject({ fs: this.fs, gitdir: this.gitdir, oid, format: 'deflated', cache: this.cache });
    try {
      // Once more on a bare error: a pack listed may have gone before it was opened (see guard).
      await lookUp().catch((e: unknown) => (isKnownReadError(e) ? Promise.reject(e) : lookUp()));
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'NotFoundError') return false;
      throw e;
    }
  }

  /**
   * A pack (version 2) of `oids`, which must all be in this repository. An object with an entry in
   * `deltaBases` (a base the receiver has, of the same type) goes as a delta against it when that is
   * smaller; every other object goes whole.
   */
  async packObjects(oids: readonly Oid[], deltaBases: ReadonlyMap<Oid, Oid> = new Map()): Promise<Uint8Array> {
    const entries: PackEntry[] = [];
    for (const oid of oids) {
      const object = await this.readObject(oid);
      const base = deltaBases.get(oid);
      entries.push(base === undefined ? object : smaller(object, base, await this.readObject(base)));
    }
    return await writePack(entries);
  }

  /**
   * Object `oid`'s type and content. A small loose object (what Agora writes) is read and checked
   * in-process with synchronous calls; anything else (a pack, a large object) through isomorphic-git.
   */
  async readObject(oid: Oid): Promise<GitObject> {
    const loose = this.readSmall(oid);
    if (loose) return loose;
    const { type, object } = await this.guard(oid, () => git.readObject({ fs: this.fs, gitdir: this.gitdir, oid, format: 'content', cache: this.cache }));
    return { type: type as GitObject['type'], content: Buffer.from(object as Uint8Array) };
  }

  /**
   * A small object Agora wrote (waiting, loose, or whole in a pack), read and checked in-process with
   * synchronous calls: a read through isomorphic-git waits on the thread pool, behind whatever fsyncs are
   * under way. Null for anything else (a delta in git's packs, large, missing), which the caller reads
   * through isomorphic-git.
   */
  private readSmall(oid: Oid | undefined): GitObject | null {
    if (oid === undefined || !isOid(oid)) return null;
    const known = this.recent.get(oid);
    if (known !== undefined) return known;
    const loose = this.objects.readSmall(oid);
    if (loose !== null) this.recent.set(oid, loose);
    return loose;
  }

  /**
   * Small objects read lately, by id. A run reads the same few (its base's tree, the state's trees, the
   * commits it builds on) several times a transition: five reads per object in an App run of 100 items,
   * each a stat, a read, an inflate and a SHA-1. An object's content cannot change under its id, and the
   * first read checked it; the copies handed out keep the cached bytes from being changed by a caller.
   * An object deleted from disk after its first read (a `git prune` run beside a live server) still reads
   * from here; a ref move still checks on disk only the object it names, as before.
   */
  private readonly recent = new RecentObjects(2048, 8 * 2 ** 20);

  async resolveRef(ref: string): Promise<Oid | null> {
    return readRef(this.gitdir, ref);
  }

  async listRefs(prefix: string): Promise<Array<{ ref: string; oid: Oid }>> {
    return listRefs(this.gitdir, prefix);
  }

  /**
   * CAS by git's lockfile protocol. `next` must be an object in this repository, as `git update-ref`
   * requires. The objects written since the last ref update are made durable first (one batch), so a
   * ref never survives a crash that the objects it names did not.
   */
  async casRef(ref: string, next: Oid, expected: Oid | null): Promise<boolean> {
    return this.casRefs([{ ref, next, expected }]);
  }

  /**
   * Makes the objects written so far durable, and visible to other processes (what a ref update does
   * first), for a caller that can sync them sooner or hands their ids to another program.
   */
  flushObjects(): Promise<void> {
    return this.objects.flush();
  }

  /** {@link casRef} for several refs in one transaction of git's lockfile protocol (ref-lock.ts `casRefs`). */
  async casRefs(swaps: readonly RefSwap[]): Promise<boolean> {
    for (const { ref, next } of swaps) {
      assertRefName(ref);
      if (!(await this.hasObject(next))) {
        throw new AgoraError(
          'object-not-found',
          `cannot point ${ref} at ${next}: no such object in ${this.gitdir}`,
          'write the object before updating the ref',
        );
      }
    }
    // The refs' new values are written while the objects are made durable; no ref moves (nor is locked) before.
    return casRefs(this.gitdir, swaps, this.lockOptions, this.objects.flush());
  }

  async deleteRef(ref: string, expected: Oid): Promise<boolean> {
    return deleteRef(this.gitdir, ref, expected, this.lockOptions);
  }

  /**
   * From now on, ref locks left by Agora processes that are provably gone are removed instead of
   * waited on. Call only while holding the serve lock (src/runs/serve-lock.ts), which proves that no
   * other Agora process recovers locks in this repository at the same time.
   */
  recoverAbandonedLocks(): void {
    this.lockOptions = { ...this.lockOptions, recoverAbandoned: true };
  }

  /**
   * Removes the temporary files of ref updates that processes killed since left (ref-temp-sweep.ts); the
   * paths removed. Call only while holding the serve lock, as {@link recoverAbandonedLocks}.
   */
  removeAbandonedRefTemps(now: number): Promise<string[]> {
    return removeAbandonedRefTemps(this.gitdir, now);
  }

  /**
   * Runs an object read, turning isomorphic-git's "not found" into an AgoraError that names the object,
   * and any failure to read a loose object that is there (empty, truncated, wrong hash) into
   * `object-corrupt`.
   */
  private async guard<T>(oid: Oid, read: () => Promise<T>, retried = false): Promise<T> {
    try {
      return await read();
    } catch (e) {
      if (e instanceof AgoraError) throw e;
      // A pack isomorphic-git listed may have gone before it opened it (merged into a newer one by another
      // process, packed-objects.ts): its read then fails with a bare error. Listed again, the object is found.
      if (!retried && !isKnownReadError(e)) return this.guard(oid, read, true);
      const code = (e as { code?: string }).code;
      if (code === 'NotFoundError') {
        throw new AgoraError('object-not-found', `object ${oid} is not in ${this.gitdir}`, 'fetch the missing objects or check the id');
      }
      if (code === 'ObjectTypeError') {
        throw new AgoraError('object-type', `object ${oid} in ${this.gitdir}: ${errorMessage(e)}`);
      }
      if (code === 'UnsafeFilepathError') {
        // A tree whose entry names a path git refuses (`..`, `.git` under any name, a `\`): pushed on purpose
        // or captured from a worker that made such a file; never checked out.
        throw new AgoraError(
          'tree-invalid',
          `tree ${oid} in ${this.gitdir} has an entry git refuses: ${errorMessage(e)}`,
          'rename that file or directory (git never checks such a tree out; a commit that holds it cannot be used as a base)',
        );
      }
      if (isOid(oid) && (await this.objects.loose.state(oid)) === 'corrupt') {
        throw new AgoraError(
          'object-corrupt',
          `object ${oid} in ${this.gitdir} is unreadable: ${this.objects.loose.pathOf(oid)} is empty or does not hold that object (${errorMessage(e)})`,
          'a write was cut short (a crash or a full disk before this version); restore the object from a clone (`git fsck` lists what is broken)',
        );
      }
      throw e;
    }
  }
}

/** isomorphic-git's errors that say something about the object itself (a retry would say the same). */
function isKnownReadError(e: unknown): boolean {
  const code = (e as { code?: string } | null)?.code;
  return code === 'NotFoundError' || code === 'ObjectTypeError' || code === 'UnsafeFilepathError';
}

/**
 * Opens the repository at `dir`: a work tree (with a `.git` directory) or a bare repository. A `.git`
 * file (a linked worktree or a submodule) is refused: isomorphic-git cannot follow it (DESIGN.md §7).
 */
export async function openLocalStore(dir: string, options: RefLockOptions = {}): Promise<LocalGitStore> {
  const root = resolve(dir);
  const dotGit = join(root, '.git');
  const dotGitInfo = await stat(dotGit).catch(() => null);
  if (dotGitInfo?.isFile()) {
    throw new AgoraError(
      'repo-unsupported',
      `${dotGit} is a file (a linked worktree or a submodule), which Agora cannot use`,
      'pass the main repository (the directory that holds the .git directory) with --repo DIR',
    );
  }
  if (dotGitInfo?.isDirectory() && (await looksLikeGitdir(dotGit))) {
    await assertSupported(dotGit);
    return new LocalGitStore(dotGit, root, options);
  }
  if (await looksLikeGitdir(root)) {
    await assertSupported(root);
    return new LocalGitStore(root, null, options);
  }
  throw new AgoraError(
    'repo-not-found',
    `${root} is not a git repository`,
    'check the path: it must be a git work tree or a bare repository (`git init` makes one)',
  );
}

/** Refuses repositories whose object format or ref storage this adapter cannot handle. */
async function assertSupported(gitdir: string): Promise<void> {
  const config = await readFile(join(gitdir, 'config'), 'utf8').catch(() => '');
  if (/^\s*objectformat\s*=\s*sha256\s*$/im.test(config)) {
    throw new AgoraError('repo-unsupported', `${gitdir} uses SHA-256 object ids, which Agora does not support yet`, 'use a SHA-1 repository');
  }
  if (/^\s*refstorage\s*=\s*reftable\s*$/im.test(config)) {
    throw new AgoraError(
      'repo-unsupported',
      `${gitdir} stores refs in a reftable, which Agora does not support`,
      'use a repository with the files ref backend',
    );
  }
}

/** Objects past this size go whole: the delta encoder indexes its whole base, and what Agora rewrites is small. */
const DELTA_LIMIT = 1 << 20;

/** `object` as a delta against `base` (the base's id and content) when the delta is the smaller of the two. */
function smaller(object: GitObject, baseOid: Oid, base: GitObject): PackEntry {
  if (base.type !== object.type || object.content.length > DELTA_LIMIT || base.content.length > DELTA_LIMIT) return object;
  // Given up as soon as it is no smaller than the object (an unrelated blob would be all inserts).
  const delta = encodeDelta(base.content, object.content, object.content.length);
  return delta === null ? object : { delta, base: baseOid };
}

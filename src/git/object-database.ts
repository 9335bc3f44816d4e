/**
 * Where the objects Agora writes in-process go (issue 16): a small object waits in memory until the next
 * ref update, which writes everything waiting as one pack (packed-objects.ts) instead of a file per object;
 * a large one, or one whose loose file is empty or corrupt (a write cut short, loose-objects.ts), is
 * written loose at once, as before.
 *
 * An object is readable from the moment it is written: this process reads the waiting ones from memory,
 * and every git command Agora runs first writes out what is waiting ({@link flushWaitingObjects}, called
 * by git-cli.ts), so git sees them too; a CLI verb writes out the rest before it exits
 * ({@link finishObjectDatabases}). Other processes see an object once a ref names it, which is also
 * when it is durable. One database serves every store this process opens on the same repository, so two
 * stores never disagree about what is there.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LooseObjects, type LooseObjectState } from './loose-objects.js';
import { PackedObjects } from './packed-objects.js';
import type { GitObject, Oid } from './types.js';

/** Objects up to this size wait for the next pack; larger ones are written loose at once. */
const WAIT_LIMIT = 64 * 1024;
/** Past this many bytes waiting, a write writes them out (a pack no ref names yet) before it returns. */
const WAITING_BYTES_LIMIT = 16 * 2 ** 20;

/** isomorphic-git's cache is renewed once this many packs it may have read are gone. */
const STALE_PACKS_LIMIT = 64;

const open = new Map<string, ObjectDatabase>();

/** The database of the repository at `gitdir` (absolute), shared by every store of this process on it. */
export function objectDatabase(gitdir: string): ObjectDatabase {
  const key = resolve(gitdir);
  let db = open.get(key);
  if (db === undefined) {
    db = new ObjectDatabase(key);
    open.set(key, db);
  }
  return db;
}

/**
 * Writes out the objects waiting in this process for the repository at `gitdir` (what a git command run
 * on it must see); without one (git finds the repository from its working directory), those of every
 * repository. A failure is the caller's only for the repository named: a repository removed while
 * objects waited for it is forgotten, and another's full disk must not stop a git command elsewhere.
 */
export async function flushWaitingObjects(gitdir?: string): Promise<void> {
  if (gitdir !== undefined) {
    const db = open.get(resolve(gitdir));
    if (db !== undefined && db.waitingCount > 0) await db.flush();
    return;
  }
  await Promise.all(
    [...open.values()]
      .filter((db) => db.waitingCount > 0)
      .map((db) =>
        db.flush().catch(() => {
          if (!existsSync(db.gitdir)) open.delete(db.gitdir);
        }),
      ),
  );
}

/**
 * What a process does with its objects before it exits: writes out everything still waiting (an id a
 * verb printed must name something on disk) and removes the packs it merged into newer ones. A failure
 * (a full disk) is thrown, unless the repository itself is gone.
 */
export async function finishObjectDatabases(): Promise<void> {
  for (const db of open.values()) {
    try {
      await db.flush();
      await db.packed.removeRetired();
    } catch (e) {
      if (existsSync(db.gitdir)) throw e;
      open.delete(db.gitdir);
    }
  }
}

export class ObjectDatabase {
  readonly loose: LooseObjects;
  readonly packed: PackedObjects;
  /** Small objects written since the last flush began writing them out, by id. */
  private readonly waiting = new Map<Oid, GitObject>();
  private waitingBytes = 0;
  /** The last flush asked for (each waits for the one before it). */
  private flushing: Promise<void> = Promise.resolve();

  constructor(readonly gitdir: string) {
    this.loose = new LooseObjects(gitdir);
    this.packed = new PackedObjects(gitdir);
  }

  /**
   * isomorphic-git's cache (the pack indexes it read, by file name) for reads that fall through to it;
   * a new one once a pack it may hold has gone, so that it does not grow with every pack merged away.
   */
  get isomorphicGitCache(): object {
    // Not at every pack gone: the cache may hold a large pack of git's, read whole. A few dozen stale
    // entries (small indexes of merged packs) cost less than reading that again.
    if (this.packed.generation - this.cacheGeneration >= STALE_PACKS_LIMIT) {
      this.cache = {};
      this.cacheGeneration = this.packed.generation;
    }
    return this.cache;
  }

  private cache: object = {};
  private cacheGeneration = 0;

  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Writes a blob, tree or commit and returns its id; an object already stored whole is left alone. */
  async writeObject(type: 'blob' | 'tree' | 'commit', content: Uint8Array): Promise<Oid> {
    const oid = createHash('sha1').update(`${type} ${content.byteLength}\0`, 'latin1').update(content).digest('hex');
    if (this.waiting.has(oid)) return oid;
    const loose = await this.loose.state(oid);
    if (loose === 'ok') return oid;
    if (loose === 'corrupt' || content.byteLength > WAIT_LIMIT) return this.loose.writeObject(type, content);
    if (this.packed.has(oid)) return oid;
    // Many bytes waiting already (a large capture without the git CLI): write them out first. If that
    // fails, this object is refused too, so what waits does not grow while the disk is full.
    if (this.waitingBytes + content.byteLength > WAITING_BYTES_LIMIT) await this.flush();
    if (this.waiting.has(oid)) return oid;
    this.waiting.set(oid, { type, content: Buffer.from(content) });
    this.waitingBytes += content.byteLength;
    return oid;
  }

  /** A waiting object, a small loose one or a whole packed one, checked; null otherwise (read it another way). */
  readSmall(oid: Oid): GitObject | null {
    const waiting = this.waiting.get(oid);
    if (waiting !== undefined) return { type: waiting.type, content: Buffer.from(waiting.content) };
    return this.loose.readSmall(oid) ?? this.packed.read(oid);
  }

  /** The size of a waiting object, or null when `oid` is not waiting. */
  waitingSize(oid: Oid): number | null {
    return this.waiting.get(oid)?.content.byteLength ?? null;
  }

  /**
   * Whether `oid` is stored: waiting, loose and whole, or in a pack's index. 'corrupt' when only an empty
   * or corrupt loose file holds it.
   */
  async state(oid: Oid): Promise<LooseObjectState> {
    if (this.waiting.has(oid)) return 'ok';
    const loose = await this.loose.state(oid);
    if (loose === 'ok') return 'ok';
    return this.packed.has(oid, true) ? 'ok' : loose;
  }

  /**
   * Makes every object written so far durable: the waiting ones as one pack, the loose ones synced. Resolves
   * only once every earlier flush has ended too, so no ref moves before what it names is durable.
   */
  flush(): Promise<void> {
    const next = this.flushing.catch(() => undefined).then(() => this.writeOut());
    this.flushing = next;
    return next;
  }

  private async writeOut(): Promise<void> {
    if (this.waiting.size > 0) {
      const batch = [...this.waiting].map(([oid, object]) => ({ oid, object }));
      await this.packed.write(batch);
      // Readable from the pack now; objects written meanwhile stay for the next flush.
      for (const { oid, object } of batch) {
        if (this.waiting.delete(oid)) this.waitingBytes -= object.content.byteLength;
      }
    }
    await this.loose.flush();
  }
}

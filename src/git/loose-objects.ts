/**
 * Loose object files that survive a crash or a full disk (issue 12, finding 4).
 *
 * isomorphic-git writes an object in place and skips the write when a file of that name exists, so a
 * write cut short by a full disk or a crash left an empty or truncated object that every later write of
 * the same content trusted. Here (as the `fs` handed to isomorphic-git):
 *
 * - an object is written to `objects/xx/tmp_obj_…` and renamed into place, so its name only ever holds
 *   whole content (`tmp_obj_` is git's own prefix: `git fsck` ignores such leftovers, `git prune` removes
 *   them);
 * - an existing object file counts as present only if it inflates to content whose SHA-1 is its name;
 *   an empty or corrupt one is written again (the rename replaces it);
 * - nothing is fsynced per object: the files written since the last ref update, and their directories,
 *   are synced together by `flush()`, which the store calls before a ref moves to name them.
 */
import { tempSuffix } from '../temp-name.js';
import fs, { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { deflate, deflateSync, inflateSync } from 'node:zlib';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import type { PromiseFsClient } from 'isomorphic-git';
import { AgoraError } from '../errors.js';
import { syncPath } from '../atomic-write.js';
import { crashPoint } from '../crash-points.js';
import type { GitObject } from './types.js';

/** What is stored under an object's name: its whole, valid content, nothing, or something else. */
export type LooseObjectState = 'ok' | 'missing' | 'corrupt';

const OBJECT_PATH = /\/objects\/([0-9a-f]{2})\/([0-9a-f]{38})$/;
/** Objects up to this size are deflated on the event loop (microseconds); larger ones on the thread pool. */
const SYNC_DEFLATE_LIMIT = 256 * 1024;
const deflateAsync = promisify(deflate);
/**
 * Objects up to this size (deflated) are written and checked with synchronous calls: for a small file, the thread
 * pool's round trips cost more than the writes (a state commit writes a dozen objects of a few hundred
 * bytes). Larger ones are written asynchronously, so the event loop never waits on much I/O.
 */
const SYNC_WRITE_LIMIT = 64 * 1024;
/**
 * isomorphic-git asks whether an fs returns promises by calling `readFile()` without a path, on every
 * call; Node answers with a new error and its stack each time. This one error answers instead.
 */
const NO_PATH = Object.assign(new Error('readFile needs a path'), { code: 'ERR_INVALID_ARG_TYPE' });

export class LooseObjects {
  /** Object files renamed into place and directories created since the last flush. */
  private unsyncedFiles = new Set<string>();
  private unsyncedDirs = new Set<string>();
  /** The `fs` to give isomorphic-git: Node's, with object writes and existence checks replaced. */
  readonly fs: PromiseFsClient;

  constructor(readonly gitdir: string) {
    const objects = join(gitdir, 'objects');
    const oidOf = (path: unknown): string | null => {
      if (typeof path !== 'string' || !path.startsWith(objects)) return null;
      const m = OBJECT_PATH.exec(path);
      return m ? `${m[1]}${m[2]}` : null;
    };
    const promises = fs.promises;
    const checkedStat = async (path: string, ...rest: unknown[]) => {
      const oid = oidOf(path);
      if (oid !== null && (await this.state(oid)) !== 'ok') throw enoent(path);
      return (promises.stat as (p: string, ...r: unknown[]) => Promise<fs.Stats>)(path, ...rest);
    };
    this.fs = {
      promises: {
        ...promises,
        readFile: (path: unknown, ...rest: unknown[]) =>
          path === undefined ? Promise.reject(NO_PATH) : (promises.readFile as (p: unknown, ...r: unknown[]) => Promise<unknown>)(path, ...rest),
        stat: checkedStat,
        lstat: checkedStat,
        writeFile: async (path: string, data: Uint8Array | string, options?: unknown) => {
          const oid = oidOf(path);
          if (oid === null) return (promises.writeFile as (p: string, d: unknown, o?: unknown) => Promise<void>)(path, data, options);
          return this.write(path, typeof data === 'string' ? Buffer.from(data) : data);
        },
      },
    };
  }

  /**
   * Writes a blob, tree or commit as a loose object and returns its id, in-process: the header and content
   * hashed with node:crypto and deflated with node:zlib (isomorphic-git's write path wraps the fs anew on
   * every call and deflates through a web stream, which cost more than the write itself). An object
   * already stored whole is left alone; an empty or corrupt file under its name is replaced.
   */
  async writeObject(type: 'blob' | 'tree' | 'commit', content: Uint8Array): Promise<string> {
    const raw = Buffer.concat([Buffer.from(`${type} ${content.byteLength}\0`, 'latin1'), content]);
    const oid = createHash('sha1').update(raw).digest('hex');
    if ((await this.state(oid)) !== 'ok') {
      await this.write(this.pathOf(oid), await deflateBytes(raw));
    }
    return oid;
  }

  /** The path of object `oid`'s loose file. */
  pathOf(oid: string): string {
    return join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2));
  }

  /** Whether `oid`'s loose file holds the object (inflates, has a sound header, hashes to its name). */
  async state(oid: string): Promise<LooseObjectState> {
    const size = this.storedSize(oid);
    if (size === null) return 'missing';
    let deflated: Buffer;
    try {
      // A small file is read with one synchronous call (a commit or a tree: cheaper than the thread pool's round trips).
      deflated = size <= SYNC_WRITE_LIMIT ? readFileSync(this.pathOf(oid)) : await readFile(this.pathOf(oid));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
      throw e;
    }
    return isWholeObject(deflated, oid) ? 'ok' : 'corrupt';
  }

  /**
   * Object `oid` when it is a small, whole loose object (read and inflated with synchronous calls: at most
   * SYNC_WRITE_LIMIT bytes on disk and SYNC_DEFLATE_LIMIT inflated); null when it is not loose, is larger,
   * or is not whole: the caller reads it another way (isomorphic-git), or finds it missing.
   */
  readSmall(oid: string): GitObject | null {
    const size = this.storedSize(oid);
    if (size === null || size > SYNC_WRITE_LIMIT) return null;
    try {
      return parseLooseObject(readFileSync(this.pathOf(oid)), oid, SYNC_DEFLATE_LIMIT);
    } catch {
      return null;
    }
  }

  /**
   * The size of the file under `oid`'s name, or null when there is none, which is the common case for a
   * new object: one stat, without reading the file or raising an error. Infinity when the stat failed
   * otherwise, for {@link state} to find out by reading.
   */
  private storedSize(oid: string): number | null {
    try {
      return statSync(this.pathOf(oid), { throwIfNoEntry: false })?.size ?? null;
    } catch {
      return Infinity;
    }
  }

  /**
   * Syncs every object file written since the last flush, then their directories; one batch, before a ref
   * names them. Resolves only once every earlier flush has ended too: a flush that found nothing left to
   * sync because another was still syncing it must not let its ref move first.
   */
  flush(): Promise<void> {
    const next = this.flushing.catch(() => undefined).then(() => this.syncPending());
    this.flushing = next;
    return next;
  }

  /** The last flush asked for (each waits for the one before it). */
  private flushing: Promise<void> = Promise.resolve();

  private async syncPending(): Promise<void> {
    if (this.unsyncedFiles.size === 0 && this.unsyncedDirs.size === 0) return;
    const files = [...this.unsyncedFiles];
    const dirs = new Set(this.unsyncedDirs);
    for (const f of files) dirs.add(dirname(f));
    this.unsyncedFiles = new Set();
    this.unsyncedDirs = new Set();
    try {
      await Promise.all(files.map((f) => syncPath(f)));
      await Promise.all([...dirs].map((d) => syncPath(d)));
    } catch (e) {
      // Not durable: keep them for the next flush, and let this ref update fail.
      for (const f of files) this.unsyncedFiles.add(f);
      for (const d of dirs) this.unsyncedDirs.add(d);
      throw storageError(e, 'sync the objects just written');
    }
  }

  /** Writes one deflated object: a temporary file in its directory, renamed over the object's name. */
  private async write(path: string, data: Uint8Array): Promise<void> {
    if (data.byteLength <= SYNC_WRITE_LIMIT) this.writeSmall(path, data);
    else await this.writeLarge(path, data);
    this.unsyncedFiles.add(path);
  }

  /** {@link write} of a small object, with synchronous calls. */
  private writeSmall(path: string, data: Uint8Array): void {
    const dir = dirname(path);
    const temp = join(dir, `tmp_obj_${tempSuffix()}`);
    try {
      let fd: number;
      try {
        fd = openSync(temp, 'wx', 0o444);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        mkdirSync(dir, { recursive: true });
        this.unsyncedDirs.add(dirname(dir));
        fd = openSync(temp, 'wx', 0o444);
      }
      try {
        for (let done = 0; done < data.byteLength;) done += writeSync(fd, data, done);
      } finally {
        closeSync(fd);
      }
      crashPoint('object-temp-written');
      renameSync(temp, path);
    } catch (e) {
      try {
        unlinkSync(temp);
      } catch {
        // never created, or already renamed
      }
      throw storageError(e, `write object ${path}`);
    }
  }

  /** {@link write} of a large object, asynchronously. */
  private async writeLarge(path: string, data: Uint8Array): Promise<void> {
    const dir = dirname(path);
    const temp = join(dir, `tmp_obj_${tempSuffix()}`);
    let handle;
    try {
      try {
        handle = await open(temp, 'wx', 0o444);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        await mkdir(dir, { recursive: true });
        this.unsyncedDirs.add(dirname(dir));
        handle = await open(temp, 'wx', 0o444);
      }
      try {
        await handle.writeFile(data);
      } finally {
        await handle.close();
      }
      crashPoint('object-temp-written');
      await rename(temp, path);
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw storageError(e, `write object ${path}`);
    }
  }
}

/** `data` deflated with zlib: on the event loop up to SYNC_DEFLATE_LIMIT (microseconds), on the thread pool above it. */
export async function deflateBytes(data: Uint8Array): Promise<Buffer> {
  return data.byteLength > SYNC_DEFLATE_LIMIT ? deflateAsync(data) : deflateSync(data);
}

/** True when `deflated` inflates to `<type> <size>\0<content>` whose SHA-1 is `oid`. */
export function isWholeObject(deflated: Uint8Array, oid: string): boolean {
  return parseLooseObject(deflated, oid) !== null;
}

/**
 * The object a loose file holds, when `deflated` is whole (see {@link isWholeObject}); null otherwise,
 * and when it inflates to more than `maxInflated` bytes.
 */
export function parseLooseObject(deflated: Uint8Array, oid: string, maxInflated?: number): GitObject | null {
  if (deflated.length === 0) return null;
  let raw: Buffer;
  try {
    raw = maxInflated === undefined ? inflateSync(deflated) : inflateSync(deflated, { maxOutputLength: maxInflated });
  } catch {
    return null;
  }
  const nul = raw.indexOf(0);
  if (nul < 0) return null;
  const m = /^(blob|tree|commit|tag) (0|[1-9]\d*)$/.exec(raw.subarray(0, nul).toString('latin1'));
  if (!m || Number(m[2]) !== raw.length - nul - 1) return null;
  if (createHash('sha1').update(raw).digest('hex') !== oid) return null;
  return { type: m[1] as GitObject['type'], content: raw.subarray(nul + 1) };
}

function enoent(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no whole object at ${path}`), { code: 'ENOENT', path });
}

/** The errno code of a file-system error (`ENOENT`, `EEXIST`, …), if it has one. */
export function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** A full disk (or quota) becomes a typed error naming what could not be written; other errors pass. */
export function storageError(e: unknown, what: string): unknown {
  const code = errCode(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new AgoraError(
      'disk-full',
      `could not ${what}: the disk is full (${code})`,
      'free space on that file system and run the command again; nothing half-written is used (a restarted serve resumes the run)',
    );
  }
  return e;
}

/**
 * The packs under `objects/pack`, as Agora writes and reads them in-process (issue 16: a file per object
 * cost more than everything else a run does with its state).
 *
 * Writing: the objects a store wrote since the last ref update go into one pack and its index, each
 * written to a temporary file (`tmp_pack_…`, `tmp_idx_…`: git's own prefixes, which `git prune` removes)
 * and synced; only then are both renamed, the pack before its index, so that a reader never finds an
 * index without its pack and a failure leaves neither. The directory is synced before the write
 * resolves, and so before a ref names what the pack holds.
 *
 * Keeping the count small: when a new pack would make more than {@link MERGE_AT} small packs, the smallest
 * are copied into it, entry for entry, as long as the result stays a geometric progression (each pack at
 * least twice all smaller ones together): a run of n updates leaves O(log n) packs and copies each entry
 * O(log n) times. Only packs of whole objects (no deltas), of at most {@link MERGE_LIMIT} bytes, with
 * nothing beside them but their index (no `.keep`, `.rev`, `.bitmap`, `.promisor`, `.mtimes`), and no
 * multi-pack index in the directory, are merged: that is every pack Agora writes, and at most a small
 * pack git received without deltas, whose objects then live on in the new pack. A pack git is still
 * receiving carries a `.keep` until its refs are updated. The merged packs are removed at this process's
 * next write, once the new pack is durable and after readers that listed them have had time to open
 * them; a crash before leaves each object twice, which git tolerates.
 *
 * Reading: an id is looked up in each pack's index (read once, kept by name: a pack's name is its
 * checksum, so its content never changes under it); a small whole entry is read with one `pread`,
 * inflated and checked against its id. A delta entry (git's packs) or a large one is not read here: the
 * caller reads it through isomorphic-git. A pack removed since the listing (another process merged it)
 * makes the lookup list the directory again.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { join } from 'node:path';
import { fsyncAsync, syncPath } from '../atomic-write.js';
import { crashPoint } from '../crash-points.js';
import { tempSuffix } from '../temp-name.js';
import { errCode, storageError } from './loose-objects.js';
import { assemblePack, wholeEntry } from './pack-file.js';
import { PackIndex, renderPackIndex } from './pack-index.js';
import type { GitObject, Oid } from './types.js';

/** A new pack is merged with older small ones once there would be more than this many. */
export const MERGE_AT = 8;
/** Packs larger than this are never merged (rewriting them would cost more than their number saves). */
export const MERGE_LIMIT = 32 * 2 ** 20;

/**
 * Packs up to this size are written, and read for a merge, with synchronous calls (see writeTemp); larger
 * ones (a merge of large packs reaches a few hundred MiB) through the thread pool, so that the event loop
 * is not held while the disk catches up.
 */
const SYNC_IO_LIMIT = 1024 * 1024;
/** Entries up to this size (deflated) are read here, with synchronous calls; larger ones by the caller, asynchronously. */
const READ_LIMIT = 64 * 1024;
/** What such an entry may inflate to: more is not what a small object is (a damaged or hostile pack). */
const INFLATE_LIMIT = 1024 * 1024;

const TYPES = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' } as const;
const PACK_NAME = /^(pack-[0-9a-f]{40})\.idx$/;

export class PackedObjects {
  readonly dir: string;
  /** The packs (by base name, `pack-<sha1>`) last listed; null until the first listing. */
  private listing: string[] | null = null;
  /** Each listed pack's index once read; null when it could not be read (a pack git is still writing, or damage). */
  private readonly indexes = new Map<string, PackIndex | null>();
  /** Counts the times a pack this process knew of went (removed here, or found gone): caches by pack name are stale then. */
  generation = 0;
  /** Packs found to hold deltas (git's own): never merged. */
  private readonly notMergeable = new Set<string>();

  constructor(gitdir: string) {
    this.dir = join(gitdir, 'objects', 'pack');
  }

  /** Whether a pack holds `oid` (by the indexes alone). `fresh` lists the directory again on a miss. */
  has(oid: Oid, fresh = false): boolean {
    for (const again of fresh ? [false, true] : [false]) {
      for (const name of this.names(again)) if (this.index(name)?.find(oid)) return true;
    }
    return false;
  }

  /**
   * Object `oid` when a pack holds it whole and intact (inflated and checked against its id); null when no
   * pack holds it, or only as a delta or damaged: the caller reads it another way, or finds it missing.
   */
  read(oid: Oid): GitObject | null {
    for (const fresh of [false, true]) {
      for (const name of this.names(fresh)) {
        const span = this.index(name)?.find(oid);
        if (!span) continue;
        if (span.end - span.start > READ_LIMIT) return null; // large: read asynchronously by the caller
        const bytes = this.readSpan(name, span.start, span.end);
        if (bytes === null) break; // removed since the listing: list again
        return parseEntry(bytes, oid);
      }
    }
    return null;
  }

  /**
   * Writes `objects` (none of them larger than what the caller keeps in memory) as one pack and its index,
   * durably, merging older small packs into it when there are many (see the module comment). Resolves once
   * the pack is named and its directory synced, and the packs an earlier write merged are removed.
   */
  async write(objects: ReadonlyArray<{ oid: Oid; object: GitObject }>): Promise<void> {
    const entries = objects.map(({ oid, object }) => ({ oid, bytes: wholeEntry(object) }) as { oid: Oid; bytes: Uint8Array; crc?: number });
    const included = new Set(entries.map((e) => e.oid));
    const merged: string[] = [];
    const newBytes = entries.reduce((n, e) => n + e.bytes.byteLength, 0);
    for (const { name, size } of this.mergeChoice(newBytes)) {
      const copied = await this.entriesOf(name, size);
      if (copied === null) continue;
      for (const e of copied) {
        if (included.has(e.oid)) continue;
        included.add(e.oid);
        entries.push(e);
      }
      merged.push(name);
    }
    const { pack, index, checksum } = assemblePack(entries);
    const name = `pack-${checksum.toString('hex')}`;
    // Not recursive: a repository removed meanwhile is not made again around its pack directory.
    const created = makeDirectory(this.dir);
    const indexBytes = renderPackIndex(index, checksum);
    // Both written and synced (at once: they wait on the disk together) before either is named: a failure
    // leaves neither (no pack without its index).
    const [packTemp, indexTemp] = await writeBoth(
      () => this.writeTemp(pack, 'tmp_pack_', `${name}.pack`),
      () => this.writeTemp(indexBytes, 'tmp_idx_', `${name}.idx`),
    );
    const packExisted = fileSize(join(this.dir, `${name}.pack`)) !== null; // the same objects, written before
    await this.rename(packTemp, `${name}.pack`, indexTemp);
    await this.rename(indexTemp, `${name}.idx`, packExisted ? undefined : join(this.dir, `${name}.pack`));
    await syncDirectory(this.dir);
    if (created) await syncDirectory(join(this.dir, '..'));
    this.indexes.set(name, PackIndex.parse(indexBytes, pack.length));
    if (this.listing !== null && !this.listing.includes(name)) this.listing = [name, ...this.listing];
    // Packs merged before are removed now, a write later than the one that copied them: a reader that
    // listed them has had that long to open them (git and isomorphic-git read a pack's index, then the
    // pack, a moment after listing; one that finds a pack gone lists the directory again, as all of
    // Agora's readers do). Those merged now wait for the next write, or the process's end.
    await this.removeRetired();
    for (const old of merged) if (old !== name) this.retired.add(old);
  }

  /** Packs merged into a newer durable one: removed later (best effort: they only cost space). */
  private readonly retired = new Set<string>();

  /**
   * Removes the packs merged into newer ones (at the next write, and at a CLI verb's end). None while a
   * multi-pack index is in the directory: one written since they were merged may name them.
   */
  async removeRetired(): Promise<void> {
    if (this.retired.size === 0) return;
    if (safeReaddir(this.dir).some((f) => f.startsWith('multi-pack-index'))) {
      this.retired.clear();
      return;
    }
    for (const old of this.retired) {
      this.retired.delete(old);
      // The index first: a reader that lists the directory meanwhile no longer finds the pack.
      await unlink(join(this.dir, `${old}.idx`)).catch(() => undefined);
      await unlink(join(this.dir, `${old}.pack`)).catch(() => undefined);
      this.indexes.delete(old);
      if (this.listing !== null) this.listing = this.listing.filter((n) => n !== old);
      this.generation += 1;
    }
  }

  /**
   * The packs to merge into a new one of `newBytes`: none while there are at most MERGE_AT mergeable
   * packs; else the smallest ones, up to the last that is less than twice all smaller ones (the new pack
   * counted among them) together.
   */
  private mergeChoice(newBytes: number): Array<{ name: string; size: number }> {
    const files = safeReaddir(this.dir);
    // A multi-pack index (and its bitmap) names its packs: none of them may go.
    if (files.some((f) => f.startsWith('multi-pack-index'))) return [];
    const present = new Set(files);
    const candidates: Array<{ name: string; size: number }> = [];
    for (const file of files) {
      const m = PACK_NAME.exec(file);
      if (!m || this.notMergeable.has(m[1]!) || this.retired.has(m[1]!)) continue;
      const name = m[1]!;
      // Anything beside the pack and its index (.keep, .rev, .bitmap, .promisor, .mtimes) belongs to git.
      if (files.some((f) => f.startsWith(`${name}.`) && f !== `${name}.idx` && f !== `${name}.pack`) || !present.has(`${name}.pack`)) continue;
      const size = fileSize(join(this.dir, `${name}.pack`));
      if (size !== null && size <= MERGE_LIMIT) candidates.push({ name, size });
    }
    if (candidates.length < MERGE_AT) return [];
    candidates.sort((a, b) => a.size - b.size);
    let sum = newBytes;
    let upTo = 0;
    candidates.forEach((c, i) => {
      if (c.size < 2 * sum) upTo = i + 1;
      sum += c.size;
    });
    return candidates.slice(0, upTo);
  }

  /**
   * The entries of pack `name`, as bytes with their ids and CRCs; null when it holds a delta, is damaged or
   * is gone. Read as a pack of its `size` is written: with one synchronous call, or through the thread pool.
   */
  private async entriesOf(name: string, size: number): Promise<Array<{ oid: Oid; bytes: Uint8Array; crc: number }> | null> {
    const path = join(this.dir, `${name}.pack`);
    const pack = size <= SYNC_IO_LIMIT ? readFileOrNull(path) : await readFile(path).catch(() => null);
    const index = pack === null ? null : this.index(name);
    if (pack === null || index === null) return null;
    const out: Array<{ oid: Oid; bytes: Uint8Array; crc: number }> = [];
    for (const e of index.entries()) {
      const type = (pack[e.start]! >> 4) & 7;
      if (!(type in TYPES) || e.end <= e.start || e.end > pack.length - 20) {
        this.notMergeable.add(name);
        return null;
      }
      out.push({ oid: e.oid, bytes: pack.subarray(e.start, e.end), crc: e.crc });
    }
    return out;
  }

  /** The packs listed (again when `fresh`, or never yet), newest first as far as this process knows. */
  private names(fresh: boolean): string[] {
    if (this.listing !== null && !fresh) return this.listing;
    const names: string[] = [];
    for (const file of safeReaddir(this.dir)) {
      const m = PACK_NAME.exec(file);
      if (m) names.push(m[1]!);
    }
    // Forget the indexes of packs gone, and those that could not be read (perhaps only then).
    for (const [known, index] of this.indexes) if (index === null || !names.includes(known)) this.indexes.delete(known);
    // Keep the order already known (this process's newest packs first); new names go in front.
    const old = this.listing ?? [];
    if (old.some((n) => !names.includes(n))) this.generation += 1;
    this.listing = [...names.filter((n) => !old.includes(n)), ...old.filter((n) => names.includes(n))];
    return this.listing;
  }

  private index(name: string): PackIndex | null {
    if (this.indexes.has(name)) return this.indexes.get(name)!;
    let index: PackIndex | null;
    try {
      index = PackIndex.parse(readFileSync(join(this.dir, `${name}.idx`)), statSync(join(this.dir, `${name}.pack`)).size);
    } catch {
      index = null;
    }
    this.indexes.set(name, index);
    return index;
  }

  /** Bytes `start`..`end` of pack `name`; null when the pack is gone. */
  private readSpan(name: string, start: number, end: number): Buffer | null {
    let fd: number;
    try {
      fd = openSync(join(this.dir, `${name}.pack`), 'r');
    } catch (e) {
      if (errCode(e) === 'ENOENT') return null;
      throw e;
    }
    try {
      const buf = Buffer.alloc(end - start);
      let done = 0;
      while (done < buf.length) {
        const n = readSync(fd, buf, done, buf.length - done, start + done);
        if (n === 0) break;
        done += n;
      }
      return buf.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * `data` in a new temporary file in the pack directory, synced; its path. Opened, written and closed with
   * synchronous calls: a state commit's pack is a few kilobytes, and each round trip through the thread
   * pool also waits for a busy event loop (measured: the two temporary files of a state commit took 5.1 ms
   * in `bench/local-fanout` with three round trips each, 1.7–2.6 ms with one). Only the sync, which waits
   * on the disk, goes to the thread pool. A pack larger than SYNC_IO_LIMIT goes there whole.
   */
  private async writeTemp(data: Uint8Array, prefix: string, what: string): Promise<string> {
    const temp = join(this.dir, `${prefix}${tempSuffix()}`);
    try {
      if (data.byteLength <= SYNC_IO_LIMIT) {
        const fd = openSync(temp, 'wx', 0o444);
        try {
          writeFileSync(fd, data);
          await fsyncAsync(fd);
        } finally {
          closeSync(fd);
        }
      } else {
        const handle = await open(temp, 'wx', 0o444);
        try {
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      crashPoint('pack-temp-written');
      return temp;
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw storageError(e, `write ${join(this.dir, what)}`);
    }
  }

  /** Renames temporary file `temp` to `name` in the pack directory; on failure removes it (and `alsoRemove`). */
  private async rename(temp: string, name: string, alsoRemove?: string): Promise<void> {
    try {
      renameSync(temp, join(this.dir, name));
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      if (alsoRemove !== undefined) await unlink(alsoRemove).catch(() => undefined);
      throw storageError(e, `write ${join(this.dir, name)}`);
    }
  }
}

/** Both temporary files, written at once; when either fails, the other is removed and the failure thrown. */
async function writeBoth(first: () => Promise<string>, second: () => Promise<string>): Promise<[string, string]> {
  const [a, b] = await Promise.allSettled([first(), second()]);
  if (a.status === 'fulfilled' && b.status === 'fulfilled') return [a.value, b.value];
  for (const done of [a, b]) if (done.status === 'fulfilled') await unlink(done.value).catch(() => undefined);
  throw (a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason) as Error;
}

/** The object in a whole pack entry (header, then the content deflated) when it is intact and is `oid`; else null. */
function parseEntry(bytes: Buffer, oid: Oid): GitObject | null {
  let at = 0;
  let byte = bytes[at++];
  if (byte === undefined) return null;
  const type = TYPES[((byte >> 4) & 7) as keyof typeof TYPES] as GitObject['type'] | undefined;
  let size = byte & 15;
  for (let shift = 4; byte & 0x80; shift += 7) {
    byte = bytes[at++];
    if (byte === undefined) return null;
    size += (byte & 0x7f) * 2 ** shift;
  }
  if (type === undefined) return null;
  let content: Buffer;
  try {
    content = inflateSync(bytes.subarray(at), { maxOutputLength: INFLATE_LIMIT });
  } catch {
    return null;
  }
  if (content.length !== size) return null;
  const id = createHash('sha1').update(`${type} ${size}\0`, 'latin1').update(content).digest('hex');
  return id === oid ? { type, content } : null;
}

/** Makes `dir` (not recursively); false when it was there. */
function makeDirectory(dir: string): boolean {
  try {
    mkdirSync(dir);
    return true;
  } catch (e) {
    if (errCode(e) === 'EEXIST') return false;
    throw storageError(e, `create ${dir}`);
  }
}

function readFileOrNull(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  try {
    await syncPath(dir);
  } catch (e) {
    throw storageError(e, `sync ${dir}`);
  }
}

/**
 * The packs under `objects/pack`, as Agora writes and reads them in-process (issue 16: a file per object
 * cost more than everything else a run does with its state).
 *
 * Writing: the objects a store wrote since the last ref update go into one pack and its index, each
 * written to a temporary file (`tmp_pack_…`, `tmp_idx_…`: git's own prefixes, which `git prune` removes),
 * synced and renamed; the pack before its index, so that a reader never finds an index without its pack.
 * The directory is synced before the write resolves, and so before a ref names what the pack holds.
 *
 * Keeping the count small: a pack a ref update makes more than {@link MERGE_AT} small packs, so the smallest
 * are copied into the new one, entry for entry, as long as the result stays a geometric progression (each
 * pack at least twice all smaller ones together): a run of n updates leaves O(log n) packs and copies
 * each entry O(log n) times. Only packs of whole objects (no deltas: what Agora writes), of at most
 * {@link MERGE_LIMIT} bytes and with nothing beside them but their index (no `.keep`, `.rev`, `.bitmap`…)
 * are merged, so git's own packs are never touched. The merged packs are removed only once the new one is
 * durable; a crash in between leaves each object twice, which git tolerates.
 *
 * Reading: an id is looked up in each pack's index (read once, kept by name: a pack's name is its
 * checksum, so its content never changes under it); a whole entry is read with one `pread`, inflated and
 * checked against its id. A delta entry (git's packs) is not resolved here: the caller reads it through
 * isomorphic-git. A pack removed since the listing (another process merged it) makes the lookup list
 * the directory again.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { join } from 'node:path';
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

const TYPES = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' } as const;
const PACK_NAME = /^(pack-[0-9a-f]{40})\.idx$/;

export class PackedObjects {
  readonly dir: string;
  /** The packs (by base name, `pack-<sha1>`) last listed; null until the first listing. */
  private listing: string[] | null = null;
  /** Each listed pack's index once read; null when it could not be read (a pack git is still writing, or damage). */
  private readonly indexes = new Map<string, PackIndex | null>();
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
   * the pack is named and its directory synced; then removes the packs merged into it.
   */
  async write(objects: ReadonlyArray<{ oid: Oid; object: GitObject }>): Promise<void> {
    const entries = objects.map(({ oid, object }) => ({ oid, bytes: wholeEntry(object) }) as { oid: Oid; bytes: Uint8Array; crc?: number });
    const included = new Set(entries.map((e) => e.oid));
    const merged: string[] = [];
    const newBytes = entries.reduce((n, e) => n + e.bytes.byteLength, 0);
    for (const name of this.mergeChoice(newBytes)) {
      const copied = await this.entriesOf(name);
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
    const created = await mkdir(this.dir, { recursive: true }).catch((e: unknown) => {
      throw storageError(e, `create ${this.dir}`);
    });
    const indexBytes = renderPackIndex(index, checksum);
    await this.writeFile(join(this.dir, `${name}.pack`), pack, 'tmp_pack_');
    await this.writeFile(join(this.dir, `${name}.idx`), indexBytes, 'tmp_idx_');
    await syncDirectory(this.dir);
    if (created !== undefined) await syncDirectory(join(this.dir, '..'));
    this.indexes.set(name, PackIndex.parse(indexBytes, pack.length));
    if (this.listing !== null && !this.listing.includes(name)) this.listing = [name, ...this.listing];
    for (const old of merged) {
      if (old === name) continue;
      // The index first: a reader that lists the directory meanwhile no longer finds the pack.
      await unlink(join(this.dir, `${old}.idx`)).catch(ignoreMissing);
      await unlink(join(this.dir, `${old}.pack`)).catch(ignoreMissing);
      this.indexes.delete(old);
      if (this.listing !== null) this.listing = this.listing.filter((n) => n !== old);
    }
  }

  /**
   * The packs to merge into a new one of `newBytes`: none while there are at most MERGE_AT mergeable
   * packs; else the smallest ones, up to the last that is less than twice all smaller ones (the new pack
   * counted among them) together.
   */
  private mergeChoice(newBytes: number): string[] {
    const files = safeReaddir(this.dir);
    const present = new Set(files);
    const candidates: Array<{ name: string; size: number }> = [];
    for (const file of files) {
      const m = PACK_NAME.exec(file);
      if (!m || this.notMergeable.has(m[1]!)) continue;
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
    return candidates.slice(0, upTo).map((c) => c.name);
  }

  /** The entries of pack `name`, as bytes with their ids and CRCs; null when it holds a delta, is damaged or is gone. */
  private async entriesOf(name: string): Promise<Array<{ oid: Oid; bytes: Uint8Array; crc: number }> | null> {
    const pack = await readFile(join(this.dir, `${name}.pack`)).catch(() => null);
    const index = pack === null ? null : this.index(name);
    if (pack === null || index === null) return null;
    const out: Array<{ oid: Oid; bytes: Uint8Array; crc: number }> = [];
    for (const e of index.entries()) {
      const type = (pack[e.start]! >> 4) & 7;
      if (!(type in TYPES) || e.end > pack.length - 20) {
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

  /** `data` at `path`, whole or not at all: a temporary file beside it, synced, then renamed over it. */
  private async writeFile(path: string, data: Uint8Array, prefix: string): Promise<void> {
    const temp = join(this.dir, `${prefix}${tempSuffix()}`);
    try {
      const handle = await open(temp, 'wx', 0o444);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      crashPoint('pack-temp-written');
      await rename(temp, path);
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw storageError(e, `write ${path}`);
    }
  }
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
    content = inflateSync(bytes.subarray(at));
  } catch {
    return null;
  }
  if (content.length !== size) return null;
  const id = createHash('sha1').update(`${type} ${size}\0`, 'latin1').update(content).digest('hex');
  return id === oid ? { type, content } : null;
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

function ignoreMissing(e: unknown): void {
  if (errCode(e) !== 'ENOENT') throw e;
}

async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (e) {
    throw storageError(e, `sync ${dir}`);
  }
}

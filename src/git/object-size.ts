/**
 * The size of a git object without reading it: from the loose object's header (the first few hundred
 * bytes inflated), or from its pack entry's header (and, for a delta, the delta's own header, which
 * states the size of the object it makes). Reads at most a few kilobytes whatever the object's size, so
 * a size limit can be checked before an object is loaded into memory.
 */
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateSync, constants } from 'node:zlib';
import { AgoraError } from '../errors.js';
import type { Oid } from './types.js';

/** Enough compressed bytes for any header this module reads (object header, delta header). */
const HEAD_BYTES = 4096;

/** The object's size in bytes, or null when the repository at `gitdir` does not hold it. */
export async function objectSize(gitdir: string, oid: Oid): Promise<number | null> {
  const loose = await readHead(join(gitdir, 'objects', oid.slice(0, 2), oid.slice(2)), 0);
  if (loose) return looseSize(oid, partialInflate(loose));
  // A pack listed may be gone a moment later (merged into a newer one, packed-objects.ts, or by `git gc`):
  // the directory is then listed again, and the object found where it went.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const size = await packedObjectSize(join(gitdir, 'objects', 'pack'), oid);
    if (size !== PACK_GONE) return size;
  }
  return null;
}

const PACK_GONE = Symbol('a pack listed is gone');

async function packedObjectSize(packDir: string, oid: Oid): Promise<number | null | typeof PACK_GONE> {
  const names = await readdir(packDir).catch(() => [] as string[]);
  for (const idx of names.filter((n) => n.endsWith('.idx'))) {
    const offset: number | null | typeof PACK_GONE = await packOffset(join(packDir, idx), oid).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return PACK_GONE;
      throw e;
    });
    if (offset === PACK_GONE) return PACK_GONE;
    if (offset !== null) {
      const pack = join(packDir, idx.replace(/\.idx$/, '.pack'));
      const head = await readHead(pack, offset);
      return head === null ? PACK_GONE : packedSize(pack, head, offset, oid);
    }
  }
  return null;
}

/** Up to HEAD_BYTES bytes of `file` from `position`; null when there is no such file. */
async function readHead(file: string, position: number): Promise<Buffer | null> {
  const handle = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return null;
    throw e;
  });
  if (!handle) return null;
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(buf, 0, HEAD_BYTES, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Inflates the start of a zlib stream (what the bytes given decode to; the rest of the stream is not needed). */
function partialInflate(bytes: Buffer): Buffer {
  return inflateSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
}

/** `<type> <size>\0…`: the loose object's header. */
function looseSize(oid: Oid, head: Buffer): number {
  const nul = head.indexOf(0);
  const m = nul > 0 ? /^(blob|tree|commit|tag) (\d+)$/.exec(head.subarray(0, nul).toString('latin1')) : null;
  if (!m) throw corrupt(oid, 'its loose object header is not readable');
  return Number(m[2]);
}

/** The pack offset of `oid` from a version 2 pack index, or null when the pack does not hold it. */
async function packOffset(idxFile: string, oid: Oid): Promise<number | null> {
  const handle = await open(idxFile, 'r');
  try {
    const read = async (position: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, position);
      if (bytesRead !== length) throw corrupt(oid, `pack index ${idxFile} is truncated`);
      return buf;
    };
    const header = await read(0, 8);
    if (header.readUInt32BE(0) !== 0xff744f63 || header.readUInt32BE(4) !== 2) throw corrupt(oid, `pack index ${idxFile} is not a version 2 index`);
    const first = parseInt(oid.slice(0, 2), 16);
    const fanout = await read(8, 256 * 4);
    const total = fanout.readUInt32BE(255 * 4);
    const lo = first === 0 ? 0 : fanout.readUInt32BE((first - 1) * 4);
    const hi = fanout.readUInt32BE(first * 4);
    if (hi === lo) return null;
    const names = await read(8 + 1024 + lo * 20, (hi - lo) * 20);
    const want = Buffer.from(oid, 'hex');
    let a = 0;
    let b = hi - lo;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const cmp = names.compare(want, 0, 20, mid * 20, mid * 20 + 20);
      if (cmp === 0) {
        const at = lo + mid;
        const offsets = 8 + 1024 + total * 24;
        const small = (await read(offsets + at * 4, 4)).readUInt32BE(0);
        if ((small & 0x80000000) === 0) return small;
        const large = await read(offsets + total * 4 + (small & 0x7fffffff) * 8, 8);
        return Number(large.readBigUInt64BE(0));
      }
      if (cmp > 0) b = mid;
      else a = mid + 1;
    }
    return null;
  } finally {
    await handle.close();
  }
}

const OFS_DELTA = 6;
const REF_DELTA = 7;

/** The size from a pack entry's header, or from its delta's header (the size of the object the delta makes). */
function packedSize(packFile: string, head: Buffer, offset: number, oid: Oid): number {
  if (head.length === 0) throw corrupt(oid, `pack ${packFile} has no entry at ${offset}`);
  let at = 0;
  let byte = head[at++]!;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  for (let shift = 4; byte & 0x80; shift += 7) {
    byte = head[at++]!;
    size += (byte & 0x7f) * 2 ** shift;
  }
  if (type >= 1 && type <= 4) return size;
  if (type === OFS_DELTA) {
    while (head[at++]! & 0x80); // the base's negative offset: a varint, skipped
  } else if (type === REF_DELTA) at += 20;
  else throw corrupt(oid, `pack ${packFile} has an entry of unknown type ${type} at ${offset}`);
  const delta = partialInflate(head.subarray(at));
  let pos = 0;
  const varint = () => {
    let value = 0;
    let b: number;
    let shift = 0;
    do {
      if (pos >= delta.length) throw corrupt(oid, `the delta header in pack ${packFile} at ${offset} is not readable`);
      b = delta[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return value;
  };
  varint(); // the base's size
  return varint();
}

function corrupt(oid: Oid, why: string): AgoraError {
  return new AgoraError(
    'object-unreadable',
    `cannot read the size of object ${oid}: ${why}`,
    'run `git fsck` on the repository; a fresh clone or fetch repairs a damaged mirror',
  );
}

/**
 * A version 2 pack file, as `git index-pack` and receive-pack read it: "PACK", version 2 and the object
 * count (each a 32-bit big-endian number); per object a header (type in bits 4–6 of the first byte, the
 * content's size in its low 4 bits and 7 more bits per continuation byte, the high bit saying another
 * byte follows) and the content deflated with zlib; then the SHA-1 of everything before it. An object
 * may instead be a REF_DELTA (type 7): the header gives the delta's size, the base's 20-byte id follows,
 * then the delta (pack-delta.ts) deflated. A base the pack does not hold makes it "thin": receive-pack
 * completes it from the objects the repository has (`index-pack --fix-thin`), as it does for `git push`.
 * Written in-process with node:zlib and node:crypto: the App builds one for every push, and a few dozen
 * small objects cost well under a millisecond this way.
 */
import { createHash } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { deflateBytes } from './loose-objects.js';
import type { PackIndexEntry } from './pack-index.js';
import type { GitObject, Oid } from './types.js';

const TYPE_CODES = { commit: 1, tree: 2, blob: 3, tag: 4 } as const;
const REF_DELTA = 7;

/** An object as a pack stores it: whole, or as a delta against a base named by its id. */
export type PackEntry = GitObject | { delta: Uint8Array; base: Oid };

/** The pack holding `objects`, in the order given. */
export async function writePack(objects: readonly PackEntry[]): Promise<Buffer> {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(objects.length, 8);
  const parts: Buffer[] = [head];
  for (const entry of objects) {
    if ('delta' in entry) {
      parts.push(entryHeader(REF_DELTA, entry.delta.byteLength), Buffer.from(entry.base, 'hex'), await deflateBytes(entry.delta));
    } else {
      parts.push(entryHeader(TYPE_CODES[entry.type], entry.content.byteLength), await deflateBytes(entry.content));
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

/**
 * A pack of whole objects whose entries are given as bytes (header and deflated content, as
 * {@link wholeEntry} makes them, or copied from another pack), with what its index needs: each entry's
 * id, offset and CRC-32 (of the entry's bytes), and the pack's trailing SHA-1.
 */
export function assemblePack(entries: ReadonlyArray<{ oid: Oid; bytes: Uint8Array; crc?: number }>): {
  pack: Buffer;
  index: PackIndexEntry[];
  checksum: Buffer;
} {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(entries.length, 8);
  const parts: Uint8Array[] = [head];
  const index: PackIndexEntry[] = [];
  let offset = head.length;
  for (const e of entries) {
    index.push({ oid: e.oid, offset, crc: e.crc ?? crc32(e.bytes) });
    parts.push(e.bytes);
    offset += e.bytes.byteLength;
  }
  const body = Buffer.concat(parts);
  const checksum = createHash('sha1').update(body).digest();
  return { pack: Buffer.concat([body, checksum]), index, checksum };
}

/** The pack entry of a whole object: its header and its content deflated. */
export function wholeEntry(object: GitObject): Buffer {
  return Buffer.concat([entryHeader(TYPE_CODES[object.type], object.content.byteLength), deflateSync(object.content)]);
}

/** A pack entry's header: the type code and the size, little-endian in 7-bit groups after the first 4 bits. */
function entryHeader(typeCode: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (typeCode << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

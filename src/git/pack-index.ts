/**
 * A version 2 pack index (`.idx`), as git reads it beside a pack: the magic `\377tOc`, version 2, a fan-out
 * table of 256 cumulative counts (entry i counts the ids whose first byte is ≤ i), the ids sorted, a CRC-32
 * per entry (of its bytes in the pack), a 32-bit offset per entry (the high bit set: an index into a table
 * of 64-bit offsets that follows), the pack's SHA-1 and the SHA-1 of everything before it. All numbers are
 * big-endian.
 */
import { createHash } from 'node:crypto';
import type { Oid } from './types.js';

const MAGIC = 0xff744f63;
const HEADER = 8;
const FANOUT = 256 * 4;
const LARGE = 0x80000000;

/** One object of a pack: its id, where its entry starts in the pack and the CRC-32 of the entry's bytes. */
export interface PackIndexEntry {
  oid: Oid;
  offset: number;
  crc: number;
}

/** The index of a pack holding `entries` (in any order), whose trailing SHA-1 is `packChecksum`. */
export function renderPackIndex(entries: readonly PackIndexEntry[], packChecksum: Uint8Array): Buffer {
  const sorted = [...entries].sort((a, b) => (a.oid < b.oid ? -1 : a.oid > b.oid ? 1 : 0));
  const n = sorted.length;
  const large = sorted.filter((e) => e.offset >= LARGE);
  const out = Buffer.alloc(HEADER + FANOUT + n * 28 + large.length * 8 + 40);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(2, 4);
  const counts = new Array<number>(256).fill(0);
  for (const e of sorted) counts[parseInt(e.oid.slice(0, 2), 16)]! += 1;
  let total = 0;
  for (let i = 0; i < 256; i += 1) {
    total += counts[i]!;
    out.writeUInt32BE(total, HEADER + i * 4);
  }
  const names = HEADER + FANOUT;
  const crcs = names + n * 20;
  const offsets = crcs + n * 4;
  const largeOffsets = offsets + n * 4;
  let nextLarge = 0;
  sorted.forEach((e, i) => {
    out.write(e.oid, names + i * 20, 'hex');
    out.writeUInt32BE(e.crc >>> 0, crcs + i * 4);
    if (e.offset < LARGE) out.writeUInt32BE(e.offset, offsets + i * 4);
    else {
      out.writeUInt32BE((LARGE | nextLarge) >>> 0, offsets + i * 4);
      out.writeBigUInt64BE(BigInt(e.offset), largeOffsets + nextLarge * 8);
      nextLarge += 1;
    }
  });
  const tail = largeOffsets + large.length * 8;
  Buffer.from(packChecksum).copy(out, tail);
  createHash('sha1')
    .update(out.subarray(0, tail + 20))
    .digest()
    .copy(out, tail + 20);
  return out;
}

/** A pack index read into memory: which ids a pack holds, and where each entry starts and ends. */
export class PackIndex {
  /**
   * The entries' start offsets, ascending, then the end of the last entry: an entry ends where the next
   * begins. Sorted when first needed: a lookup that finds nothing (most, in a repository's large pack)
   * never needs it.
   */
  private bounds: number[] | null = null;

  private constructor(
    private readonly bytes: Buffer,
    readonly count: number,
    private readonly packSize: number,
  ) {}

  /** The index in `bytes` of a pack of `packSize` bytes; null when it is not a whole version 2 index. */
  static parse(bytes: Buffer, packSize: number): PackIndex | null {
    if (bytes.length < HEADER + FANOUT + 40 || bytes.readUInt32BE(0) !== MAGIC || bytes.readUInt32BE(4) !== 2) return null;
    const count = bytes.readUInt32BE(HEADER + 255 * 4);
    if (bytes.length < HEADER + FANOUT + count * 28 + 40) return null;
    return new PackIndex(bytes, count, packSize);
  }

  /** Where `oid`'s entry starts and ends in the pack, or null when the pack does not hold it. */
  find(oid: Oid): { start: number; end: number } | null {
    const first = parseInt(oid.slice(0, 2), 16);
    let lo = first === 0 ? 0 : this.bytes.readUInt32BE(HEADER + (first - 1) * 4);
    let hi = this.bytes.readUInt32BE(HEADER + first * 4);
    const want = Buffer.from(oid, 'hex');
    const names = HEADER + FANOUT;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const cmp = this.bytes.compare(want, 0, 20, names + mid * 20, names + mid * 20 + 20);
      if (cmp === 0) return this.span(this.offsetAt(mid));
      if (cmp > 0) hi = mid;
      else lo = mid + 1;
    }
    return null;
  }

  /** Every entry: its id, its start and end in the pack, and its CRC-32. */
  *entries(): Generator<{ oid: Oid; start: number; end: number; crc: number }> {
    const names = HEADER + FANOUT;
    const crcs = names + this.count * 20;
    for (let i = 0; i < this.count; i += 1) {
      const oid = this.bytes.toString('hex', names + i * 20, names + i * 20 + 20);
      yield { oid, ...this.span(this.offsetAt(i)), crc: this.bytes.readUInt32BE(crcs + i * 4) };
    }
  }

  private offsetAt(i: number): number {
    const offsets = HEADER + FANOUT + this.count * 24;
    const small = this.bytes.readUInt32BE(offsets + i * 4);
    if ((small & LARGE) === 0) return small;
    return Number(this.bytes.readBigUInt64BE(offsets + this.count * 4 + (small & 0x7fffffff) * 8));
  }

  private span(start: number): { start: number; end: number } {
    if (this.bounds === null) {
      const starts: number[] = [];
      for (let i = 0; i < this.count; i += 1) starts.push(this.offsetAt(i));
      starts.sort((a, b) => a - b);
      starts.push(this.packSize - 20);
      this.bounds = starts;
    }
    const bounds = this.bounds;
    let lo = 0;
    let hi = bounds.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bounds[mid]! <= start) lo = mid + 1;
      else hi = mid;
    }
    // An entry that would end before it starts (offsets out of order, a pack cut short) is empty: it reads as damaged.
    return { start, end: Math.max(start, bounds[lo]!) };
  }
}

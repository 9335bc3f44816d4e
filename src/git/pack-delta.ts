/**
 * A git delta: how to build one object (the target) from another (the base), as a pack's REF_DELTA entry
 * carries it (git's `Documentation/gitformat-pack.txt`, "Deltified representation"). The data is the
 * base's size and the target's size (each little-endian in 7-bit groups, the high bit saying another
 * byte follows), then instructions in order: a copy (first byte `1oooossss`: the set `o` bits say which
 * of the offset's four little-endian bytes follow, the set `s` bits which of the size's three) takes a
 * run of the base; an insert (first byte 1–127: that many bytes follow) adds new bytes.
 *
 * The App pushes the next version of a state tree or blob the remote already has: a tree with one
 * entry changed, an item's JSON with a few fields changed. Most of it is a copy, so the encoder here
 * looks for long runs only: it indexes the base in 16-byte blocks, and where the target's next 16
 * bytes are one of them it copies the longest run from there (grown backwards over what it was about to
 * insert); everything else is inserted. Writing this by hand keeps a push in-process (git's own
 * encoder is reached only through `git pack-objects`, a process per push).
 */

/** Bytes the base is indexed by: a run shorter than this is inserted instead of copied. */
const BLOCK = 16;
/** Most bytes one copy may name (three size bytes); longer runs are split. */
const MAX_COPY = 0xff_ffff;
/** Most bytes one insert carries. */
const MAX_INSERT = 0x7f;

/**
 * The delta that builds `target` from `base`. git refuses a delta shorter than 4 bytes (an empty target
 * of a base under 16 KiB): such a target is smaller whole, which is how a pack should carry it.
 */
export function encodeDelta(base: Uint8Array, target: Uint8Array): Buffer;
/** The same, or null as soon as it would reach `maxBytes` (a caller that wants the smaller of delta and object stops early). */
export function encodeDelta(base: Uint8Array, target: Uint8Array, maxBytes: number): Buffer | null;
export function encodeDelta(base: Uint8Array, target: Uint8Array, maxBytes = Infinity): Buffer | null {
  const out: number[] = [...sizeBytes(base.length), ...sizeBytes(target.length)];
  const index = blockIndex(base);
  let pending: number[] = []; // target bytes to insert before the next copy
  let t = 0;
  while (t < target.length) {
    if (out.length + pending.length >= maxBytes) return null;
    const at = t + BLOCK <= target.length ? index.get(blockKey(target, t)) : undefined;
    if (at === undefined) {
      pending.push(target[t]!);
      t += 1;
      continue;
    }
    let from = at;
    let length = BLOCK;
    while (from + length < base.length && t + length < target.length && base[from + length] === target[t + length]) length += 1;
    // The bytes just before may match too (a block boundary rarely falls where a difference ends).
    while (pending.length > 0 && from > 0 && base[from - 1] === pending[pending.length - 1]) {
      pending.pop();
      from -= 1;
      t -= 1;
      length += 1;
    }
    pushInserts(out, pending);
    pending = [];
    pushCopies(out, from, length);
    t += length;
  }
  pushInserts(out, pending);
  return out.length >= maxBytes ? null : Buffer.from(out);
}

/** The offset of each whole 16-byte block of `base` by its bytes (the first such block, where two are equal). */
function blockIndex(base: Uint8Array): Map<string, number> {
  const index = new Map<string, number>();
  for (let at = 0; at + BLOCK <= base.length; at += BLOCK) {
    const key = blockKey(base, at);
    if (!index.has(key)) index.set(key, at);
  }
  return index;
}

function blockKey(bytes: Uint8Array, at: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + at, BLOCK).toString('latin1');
}

/** A size in the delta header: 7 bits a byte, least significant first, the high bit set on all but the last. */
function sizeBytes(size: number): number[] {
  const bytes: number[] = [];
  let rest = size;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return bytes;
}

function pushInserts(out: number[], bytes: readonly number[]): void {
  for (let at = 0; at < bytes.length; at += MAX_INSERT) {
    const chunk = bytes.slice(at, at + MAX_INSERT);
    out.push(chunk.length, ...chunk);
  }
}

/** Copy instructions for `length` bytes of the base from `offset`: only the non-zero bytes of each number are written. */
function pushCopies(out: number[], offset: number, length: number): void {
  for (let done = 0; done < length; done += MAX_COPY) {
    const from = offset + done;
    const size = Math.min(MAX_COPY, length - done);
    let op = 0x80;
    const operands: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      const byte = Math.floor(from / 2 ** (8 * i)) & 0xff;
      if (byte !== 0) {
        op |= 1 << i;
        operands.push(byte);
      }
    }
    for (let i = 0; i < 3; i += 1) {
      const byte = (size >> (8 * i)) & 0xff;
      if (byte !== 0) {
        op |= 0x10 << i;
        operands.push(byte);
      }
    }
    out.push(op, ...operands);
  }
}

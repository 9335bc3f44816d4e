import { createHash, hash } from 'node:crypto';

/**
 * RFC 6962 Merkle Tree Hash (the Certificate Transparency tree, also RFC 9162 §2.1) over the audit log.
 *
 * The leaf *data* are the entry hashes as raw 32 bytes; the tree hashes them itself:
 * `leaf = SHA-256(0x00 ‖ data)`, `node = SHA-256(0x01 ‖ left ‖ right)`, a tree of n > 1 leaves splits at
 * the largest power of two smaller than n, and the empty tree hashes to `SHA-256("")`.
 */

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
const HASH_BYTES = 32;

/** `SHA-256(0x00 ‖ data)`. */
export function leafHash(data: Uint8Array): Uint8Array {
  // One-shot hashing over one buffer: a hash object per node was most of the cost on large logs.
  return digest(Buffer.concat([LEAF_PREFIX, data]));
}

/** `SHA-256(0x01 ‖ left ‖ right)`. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return digest(Buffer.concat([NODE_PREFIX, left, right]));
}

function digest(data: Buffer): Uint8Array {
  const out = hash('sha256', data, 'buffer');
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The root of the empty tree: `SHA-256("")`. */
export function emptyRoot(): Uint8Array {
  return new Uint8Array(createHash('sha256').digest());
}

/** The largest power of two strictly smaller than `n` (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Streaming Merkle Tree Hash: push leaves one at a time and read the root at any point. Keeps one hash per
 * set bit of the leaf count (the perfect subtrees a binary counter would hold), so memory is O(log n).
 */
export class MerkleAccumulator {
  /** Roots of perfect subtrees, largest (leftmost) first; `heights[i]` is the height of `stack[i]`. */
  private readonly stack: Uint8Array[] = [];
  private readonly heights: number[] = [];
  private count = 0;

  /** Appends one leaf's data (it is hashed as a leaf here). */
  push(data: Uint8Array): this {
    let hash = leafHash(data);
    let height = 0;
    // Merge equal-height subtrees, exactly like carrying in a binary increment.
    while (this.heights.length > 0 && this.heights[this.heights.length - 1] === height) {
      const left = this.stack.pop() as Uint8Array;
      this.heights.pop();
      hash = nodeHash(left, hash);
      height += 1;
    }
    this.stack.push(hash);
    this.heights.push(height);
    this.count += 1;
    return this;
  }

  /** Number of leaves pushed so far. */
  get size(): number {
    return this.count;
  }

  /**
   * The RFC 6962 root of the leaves pushed so far. The perfect subtrees, combined right to left, are exactly
   * the tree the largest-power-of-two split describes.
   */
  root(): Uint8Array {
    if (this.stack.length === 0) return emptyRoot();
    let acc = this.stack[this.stack.length - 1] as Uint8Array;
    for (let i = this.stack.length - 2; i >= 0; i--) acc = nodeHash(this.stack[i] as Uint8Array, acc);
    return acc;
  }
}

/** RFC 6962 Merkle Tree Hash of `leaves` (leaf data, hashed here). */
export function merkleRoot(leaves: Iterable<Uint8Array>): Uint8Array {
  const acc = new MerkleAccumulator();
  for (const leaf of leaves) acc.push(leaf);
  return acc.root();
}

/** MTH of `leaves[from, to)` (non-empty). */
function subtreeRoot(leaves: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const acc = new MerkleAccumulator();
  for (let i = from; i < to; i++) acc.push(leaves[i] as Uint8Array);
  return acc.root();
}

/**
 * The audit path of leaf `index` (RFC 6962 §2.1.1 PATH, RFC 9162 §2.1.3.1): sibling hashes from the leaf
 * up to the root. Throws a RangeError when `index` is not a leaf of the tree.
 */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= leaves.length) {
    throw new RangeError(`leaf index ${index} is outside a tree of ${leaves.length} leaves`);
  }
  const path: Uint8Array[] = [];
  // Walk down from the whole tree, collecting the sibling of each subtree we descend into; the path is
  // listed bottom-up, so the collected siblings are reversed at the end.
  let from = 0;
  let to = leaves.length;
  while (to - from > 1) {
    const k = splitPoint(to - from);
    if (index < from + k) {
      path.push(subtreeRoot(leaves, from + k, to));
      to = from + k;
    } else {
      path.push(subtreeRoot(leaves, from, from + k));
      from += k;
    }
  }
  return path.reverse();
}

/**
 * The whole tree in memory (2n hashes), for handing out many audit paths: building is O(n), each proof
 * O(log n), where `inclusionProof` costs O(n) per call. Levels are built bottom-up; an unpaired last node is
 * carried up unchanged, which yields exactly the RFC 6962 tree.
 */
export class MerkleTree {
  private readonly levels: Uint8Array[][];

  constructor(leaves: readonly Uint8Array[]) {
    const levels: Uint8Array[][] = [leaves.map(leafHash)];
    let level = levels[0] as Uint8Array[];
    while (level.length > 1) {
      const next: Uint8Array[] = [];
      for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
      if (level.length % 2 === 1) next.push(level[level.length - 1] as Uint8Array);
      levels.push(next);
      level = next;
    }
    this.levels = levels;
  }

  get size(): number {
    return (this.levels[0] as Uint8Array[]).length;
  }

  root(): Uint8Array {
    return this.size === 0 ? emptyRoot() : ((this.levels[this.levels.length - 1] as Uint8Array[])[0] as Uint8Array);
  }

  /** The audit path of leaf `index`, bottom-up; the same as `inclusionProof(leaves, index)`. */
  inclusionProof(index: number): Uint8Array[] {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`leaf index ${index} is outside a tree of ${this.size} leaves`);
    }
    const path: Uint8Array[] = [];
    let i = index;
    for (let depth = 0; depth < this.levels.length - 1; depth++) {
      const level = this.levels[depth] as Uint8Array[];
      const sibling = i % 2 === 1 ? i - 1 : i + 1;
      // No sibling: this node was carried up unchanged, and contributes no hash at this level.
      if (sibling < level.length) path.push(level[sibling] as Uint8Array);
      i = Math.floor(i / 2);
    }
    return path;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/**
 * Verifies that `leaf` (leaf data, hashed here) is at `index` in the tree of `treeSize` leaves whose root is
 * `root`, following RFC 9162 §2.1.3.2 step by step. Never throws: malformed input is simply `false`.
 */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize)) return false;
  if (index < 0 || index >= treeSize) return false;
  if (root.length !== HASH_BYTES || proof.some((p) => p.length !== HASH_BYTES)) return false;
  let fn = index;
  let sn = treeSize - 1;
  let r = leafHash(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of an even-length hex string; throws a TypeError on anything else (Buffer would silently truncate). */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError(`not a hex string: ${JSON.stringify(hex.slice(0, 80))}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The Merkle root over audit entry hashes (hex), as hex: the value the bundle and the statement carry. */
export function merkleRootHex(entryHashes: Iterable<string>): string {
  const acc = new MerkleAccumulator();
  for (const h of entryHashes) acc.push(fromHex(h));
  return toHex(acc.root());
}

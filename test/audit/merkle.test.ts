import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  MerkleAccumulator,
  MerkleTree,
  emptyRoot,
  fromHex,
  inclusionProof,
  leafHash,
  merkleRoot,
  merkleRootHex,
  nodeHash,
  toHex,
  verifyInclusion,
} from '../../src/log/merkle.js';

/*
 * Reference vectors of the Certificate Transparency / Trillian test suites, as published in
 * github.com/transparency-dev/merkle, proof/verify_test.go (`leaves`, `roots`, `inclusionProofs`):
 * eight leaf data, the root of every tree size 1..8 over them, and audit paths for (leaf, size) with the
 * leaf numbered from 1 there. Used here as data only.
 */
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const EMPTY_TREE = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** `index` is 0-based here (the source numbers leaves from 1). */
const CT_INCLUSION: Array<{ index: number; size: number; proof: string[] }> = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

/** Flips one bit of one byte of a copy of `bytes`. */
function flipped(bytes: Uint8Array, at: number, bit = 0): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[at] = (copy[at] as number) ^ (1 << bit);
  return copy;
}

describe('RFC 6962 Merkle tree hash', () => {
  it('hashes the empty tree to SHA-256 of the empty string', () => {
    expect(toHex(emptyRoot())).toBe(EMPTY_TREE);
    expect(toHex(merkleRoot([]))).toBe(EMPTY_TREE);
    expect(toHex(new MerkleAccumulator().root())).toBe(EMPTY_TREE);
  });

  it('matches the published root of every tree size 1..8, batch and streaming', () => {
    const acc = new MerkleAccumulator();
    for (let n = 1; n <= CT_LEAVES.length; n++) {
      expect(toHex(merkleRoot(CT_LEAVES.slice(0, n))), `size ${n}`).toBe(CT_ROOTS[n - 1]);
      acc.push(CT_LEAVES[n - 1] as Uint8Array);
      expect(acc.size).toBe(n);
      expect(toHex(acc.root()), `streaming size ${n}`).toBe(CT_ROOTS[n - 1]);
    }
  });

  it('uses the 0x00 leaf and 0x01 node prefixes', () => {
    // A one-leaf tree is the leaf hash; a two-leaf tree is the node hash of the two leaf hashes.
    expect(toHex(leafHash(new Uint8Array()))).toBe(CT_ROOTS[0]);
    const [a, b] = CT_LEAVES as [Uint8Array, Uint8Array];
    expect(toHex(nodeHash(leafHash(a), leafHash(b)))).toBe(CT_ROOTS[1]);
    const manual = createHash('sha256').update(Uint8Array.of(1)).update(leafHash(a)).update(leafHash(b)).digest('hex');
    expect(manual).toBe(CT_ROOTS[1]);
  });

  it('produces exactly the published audit paths', () => {
    for (const v of CT_INCLUSION) {
      const proof = inclusionProof(CT_LEAVES.slice(0, v.size), v.index);
      expect(proof.map(toHex), `leaf ${v.index} of ${v.size}`).toEqual(v.proof);
      expect(verifyInclusion(CT_LEAVES[v.index] as Uint8Array, v.index, v.size, v.proof.map(fromHex), fromHex(CT_ROOTS[v.size - 1] as string))).toBe(true);
    }
  });

  it('proves every leaf of every tree size 1..8 against the published root, and rejects corrupted probes', () => {
    for (let size = 1; size <= 8; size++) {
      const tree = CT_LEAVES.slice(0, size);
      const root = fromHex(CT_ROOTS[size - 1] as string);
      for (let index = 0; index < size; index++) {
        const leaf = tree[index] as Uint8Array;
        const proof = inclusionProof(tree, index);
        const where = `leaf ${index} of ${size}`;
        // Proof length is the depth of the leaf in the RFC 6962 shape.
        expect(proof.length, where).toBeLessThanOrEqual(Math.ceil(Math.log2(size)));
        expect(verifyInclusion(leaf, index, size, proof, root), where).toBe(true);
        // The probes the reference suite uses: wrong index, wrong size, wrong leaf/root, garbage.
        if (index > 0) expect(verifyInclusion(leaf, index - 1, size, proof, root), where).toBe(false);
        if (index + 1 < size) expect(verifyInclusion(leaf, index + 1, size, proof, root), where).toBe(false);
        expect(verifyInclusion(leaf, index, size * 2, proof, root), where).toBe(false);
        if (size > 1) expect(verifyInclusion(leaf, index, Math.floor(size / 2), proof, root), where).toBe(false);
        expect(verifyInclusion(new TextEncoder().encode('WrongLeaf'), index, size, proof, root), where).toBe(false);
        expect(verifyInclusion(leaf, index, size, proof, fromHex(EMPTY_TREE)), where).toBe(false);
        expect(verifyInclusion(leaf, index, size, [...proof, root], root), where).toBe(false);
        expect(verifyInclusion(leaf, index, size, [root, ...proof], root), where).toBe(false);
        expect(verifyInclusion(leaf, index, size, [...proof, new Uint8Array()], root), where).toBe(false);
        for (let i = 0; i < proof.length; i++) {
          const bad = proof.map((p, j) => (j === i ? flipped(p, 0, 3) : p));
          expect(verifyInclusion(leaf, index, size, bad, root), `${where}, proof[${i}] flipped`).toBe(false);
        }
        if (proof.length > 0) expect(verifyInclusion(leaf, index, size, proof.slice(0, -1), root), where).toBe(false);
      }
    }
  });

  it('rejects indices outside the tree', () => {
    expect(() => inclusionProof(CT_LEAVES, 8)).toThrow(RangeError);
    expect(() => inclusionProof(CT_LEAVES, -1)).toThrow(RangeError);
    expect(() => inclusionProof([], 0)).toThrow(RangeError);
    const root = fromHex(CT_ROOTS[7] as string);
    expect(verifyInclusion(CT_LEAVES[0] as Uint8Array, 0, 0, [], root)).toBe(false);
    expect(verifyInclusion(CT_LEAVES[0] as Uint8Array, 8, 8, [], root)).toBe(false);
  });

  it('hex helpers round-trip and refuse malformed hex', () => {
    expect(toHex(fromHex('00ff10Ab'))).toBe('00ff10ab');
    expect(() => fromHex('abc')).toThrow(TypeError);
    expect(() => fromHex('zz')).toThrow(TypeError);
    const entryHashes = CT_LEAVES.slice(0, 2).map(() => 'ab'.repeat(32));
    expect(merkleRootHex(entryHashes)).toBe(toHex(merkleRoot(entryHashes.map(fromHex))));
  });
});

/** An independent, deliberately naive RFC 6962 MTH (recursive split) to cross-check the streaming one. */
function naiveRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot();
  if (leaves.length === 1) return leafHash(leaves[0] as Uint8Array);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

describe('Merkle properties', () => {
  const arbLeaves = fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 1, maxLength: 70 });

  it('streaming root equals the recursive definition for random trees', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 70 }), (leaves) => {
        expect(toHex(merkleRoot(leaves))).toBe(toHex(naiveRoot(leaves)));
      }),
    );
  });

  it('every proof of a random tree verifies; any flipped byte in proof, leaf or root fails', () => {
    fc.assert(
      fc.property(
        arbLeaves.chain((leaves) => fc.tuple(fc.constant(leaves), fc.nat({ max: leaves.length - 1 }), fc.nat(), fc.nat({ max: 7 }))),
        ([leaves, index, pick, bit]) => {
          const root = merkleRoot(leaves);
          const leaf = leaves[index] as Uint8Array;
          const proof = inclusionProof(leaves, index);
          expect(verifyInclusion(leaf, index, leaves.length, proof, root)).toBe(true);

          expect(verifyInclusion(flipped(leaf, pick % 32, bit), index, leaves.length, proof, root)).toBe(false);
          expect(verifyInclusion(leaf, index, leaves.length, proof, flipped(root, pick % 32, bit))).toBe(false);
          if (proof.length > 0) {
            const which = pick % proof.length;
            const bad = proof.map((p, j) => (j === which ? flipped(p, (pick >> 5) % 32, bit) : p));
            expect(verifyInclusion(leaf, index, leaves.length, bad, root)).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('MerkleTree gives the same root and the same audit paths as the RFC recursion, for every leaf', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 70 }), (leaves) => {
        const tree = new MerkleTree(leaves);
        expect(tree.size).toBe(leaves.length);
        expect(toHex(tree.root())).toBe(toHex(naiveRoot(leaves)));
        for (let i = 0; i < leaves.length; i++) expect(tree.inclusionProof(i).map(toHex)).toEqual(inclusionProof(leaves, i).map(toHex));
      }),
      { numRuns: 60 },
    );
    // And the published CT paths.
    const ct = new MerkleTree(CT_LEAVES);
    expect(ct.inclusionProof(5).map(toHex)).toEqual(CT_INCLUSION[2]?.proof);
    expect(() => ct.inclusionProof(8)).toThrow(RangeError);
  });

  it('holds 100,000 leaves in O(log n) state', () => {
    const acc = new MerkleAccumulator();
    const all: Uint8Array[] = [];
    for (let i = 0; i < 100_000; i++) {
      const leaf = new Uint8Array(32);
      leaf[0] = i & 0xff;
      leaf[1] = (i >> 8) & 0xff;
      leaf[2] = (i >> 16) & 0xff;
      acc.push(leaf);
      all.push(leaf);
    }
    expect(toHex(acc.root())).toBe(toHex(naiveRoot(all)));
    // Internal state is one subtree root per set bit of the count: popcount(100000) = 6.
    const internal = (acc as unknown as { stack: unknown[] }).stack;
    expect(internal.length).toBe(
      (100_000)
        .toString(2)
        .split('')
        .filter((c) => c === '1').length,
    );
    expect(acc.size).toBe(100_000);
  });
});

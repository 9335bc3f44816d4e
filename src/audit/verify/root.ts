import { fromHex, MerkleAccumulator, toHex } from '../../log/merkle.js';
import type { AuditEntry } from '../../log/entry.js';
import type { Failures } from './failures.js';

/**
 * Step "root": the RFC 6962 root over the entries' hashes, streamed (O(log n) memory), must be the bundle's
 * `root` (`root-mismatch`, e.g. a truncated log).
 */
export class RootStep {
  private readonly acc = new MerkleAccumulator();

  push(e: AuditEntry): void {
    this.acc.push(leafData(e.hash));
  }

  finish(recorded: unknown, f: Failures): void {
    const root = toHex(this.acc.root());
    if (root !== recorded) f.add('root-mismatch', `the entries' Merkle root is ${root}, but the bundle records ${String(recorded)}`);
  }
}

/** Leaf data of an entry hash; a malformed hash still yields a leaf (the chain step already failed it). */
function leafData(hash: unknown): Uint8Array {
  if (typeof hash === 'string' && /^[0-9a-f]{64}$/.test(hash)) return fromHex(hash);
  return new TextEncoder().encode(String(hash));
}

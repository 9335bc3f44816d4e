import { fromHex, verifyInclusion } from '../../log/merkle.js';
import type { ItemEvidence } from '../bundle.js';
import { recomputeHash } from './chain.js';

/**
 * Checks item evidence alone: each entry's hash is its content's, belongs to the item, and its audit path
 * leads to `root` (compare that root with the signed or anchored one). Returns the problems (empty: valid).
 */
export function verifyItemEvidence(evidence: ItemEvidence, root = evidence.root): string[] {
  const problems: string[] = [];
  for (const { index, entry, proof } of evidence.entries) {
    const hash = entry.hash;
    const recomputed = recomputeHash(entry);
    if (recomputed !== hash) problems.push(`entry ${index}: content hashes to ${recomputed ?? '(none)'}, it records ${hash}`);
    if (entry.kind !== 'item' || entry.itemId !== evidence.itemId) problems.push(`entry ${index} is not a transition of item ${evidence.itemId}`);
    let ok: boolean;
    try {
      ok = verifyInclusion(fromHex(hash), index, evidence.treeSize, proof.map(fromHex), fromHex(root));
    } catch {
      ok = false;
    }
    if (!ok) problems.push(`entry ${index}: its inclusion proof does not lead to root ${root}`);
  }
  return problems;
}

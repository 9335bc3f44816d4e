import { entryHash, GENESIS_HASH, type AuditEntry } from '../../log/entry.js';
import type { Failures } from './failures.js';

/**
 * Step "chain": each entry sits at its position (`seq` = its index), belongs to the bundle's run, links to
 * the hash of the entry before it (GENESIS_HASH first) and records the hash of its own content. Fed one entry
 * at a time, so the pipeline walks the log once for this step, the root and the replay.
 */
export class ChainStep {
  private prevHash = GENESIS_HASH;

  constructor(
    private readonly runId: string,
    private readonly f: Failures,
  ) {}

  push(e: AuditEntry, i: number): void {
    const f = this.f;
    if (e.seq !== i) f.add('chain', `entry ${i} has seq ${String(e.seq)}: the log is not contiguous (dropped, duplicated or reordered entries)`, { entry: i });
    if (e.runId !== this.runId) f.add('chain', `entry ${i} belongs to run ${String(e.runId)}, not ${this.runId}`, { entry: i });
    if (e.prevHash !== this.prevHash)
      f.add('chain', `entry ${i} links to ${String(e.prevHash)}, but the entry before it hashes to ${this.prevHash}`, { entry: i });
    const recomputed = recomputeHash(e);
    if (recomputed !== e.hash)
      f.add('chain', `entry ${i}: its content hashes to ${recomputed ?? '(no canonical form)'}, but it records ${String(e.hash)}`, { entry: i });
    this.prevHash = typeof e.hash === 'string' ? e.hash : '';
  }
}

/** The hash an entry's content (everything but `hash`) has, or null when it has no canonical form. */
export function recomputeHash(e: AuditEntry): string | null {
  try {
    const { hash: _hash, ...body } = e;
    return entryHash(body);
  } catch {
    return null;
  }
}

/** The longest a run a blocked ref holds up waits between tries. */
export const BLOCKED_RETRY_MAX_MS = 30_000;

interface BlockedRun {
  /** The blocks said: their text, which names the ref or lock (the same block reads the same at every try). */
  said: Set<string>;
  delayMs: number;
  retryAt: number;
}

/**
 * The runs a serve holds back because a blocked ref (blocked-refs.ts) failed their tick, which then
 * committed nothing. A run is tried again after a delay that doubles from one poll up to
 * BLOCKED_RETRY_MAX_MS: each try redoes the step (a merge commit, a state commit, their objects synced)
 * only to be refused again, which a serve that waits for days must not do twice a second. Each block
 * (each ref or lock in the way) is said once, until the run moves again: another ref found in the way
 * once the first is cleared is said too.
 */
export class BlockedRuns {
  private readonly runs = new Map<string, BlockedRun>();

  constructor(
    private readonly pollMs: number,
    private readonly clock: () => number,
  ) {}

  /** Records that a block failed a try of `runId`: what to say of it, or undefined when it was said before. */
  holdBack(runId: string, block: { reason: string }): string | undefined {
    const b = this.runs.get(runId) ?? { said: new Set<string>(), delayMs: 0, retryAt: 0 };
    b.delayMs = Math.min(BLOCKED_RETRY_MAX_MS, Math.max(this.pollMs, b.delayMs * 2));
    b.retryAt = this.clock() + b.delayMs;
    this.runs.set(runId, b);
    if (b.said.has(block.reason)) return undefined;
    b.said.add(block.reason);
    return `the run waits: ${block.reason}; it is tried again, at least every ${BLOCKED_RETRY_MAX_MS / 1000} s`;
  }

  /** When `runId` is tried next; undefined when nothing holds it back. */
  retryAt(runId: string): number | undefined {
    return this.runs.get(runId)?.retryAt;
  }

  /** Whether `runId` waits for its next try now. */
  waiting(runId: string): boolean {
    const at = this.retryAt(runId);
    return at !== undefined && this.clock() < at;
  }

  /** `runId` moved again, ended or was dropped: a later block is said again, and tried after one poll. */
  clear(runId: string): void {
    this.runs.delete(runId);
  }
}

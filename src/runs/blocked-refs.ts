import { isAgoraError } from '../errors.js';

/**
 * The ref errors that block one run or one inbox entry until something outside Agora changes: a ref
 * someone pushed that another would nest in (`ref-conflict`), a lock a crashed git left (`ref-locked`),
 * an archive of pruned runs' anchors that is not one (`anchor-archive-unreadable`).
 * Each names the ref and how to clear it. They hold up only that run or entry, never a whole serve: an
 * entry is tried again at every pass, a run after a growing delay (blocked-runs.ts).
 */
const BLOCKING_REF_ERRORS: ReadonlySet<string> = new Set(['ref-locked', 'ref-conflict', 'anchor-archive-unreadable']);

/** What blocks, and how to clear it, when `e` is such an error; null for any other failure. */
export function refBlock(e: unknown): { code: string; reason: string } | null {
  if (!(isAgoraError(e) && BLOCKING_REF_ERRORS.has(e.code))) return null;
  return { code: e.code, reason: e.hint ? `${e.message}; ${e.hint}` : e.message };
}

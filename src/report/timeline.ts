import type { AuditEntry } from '../log/entry.js';
import { locksOverlap } from '../plan/locks.js';

/**
 * The run's attempts and lock waits, derived from its audit entries alone (pure: no I/O, no clock).
 *
 * An attempt is an item's `→ running` entry (its start, and the locks it took) up to the item's next entry
 * (its end and outcome). A wait is the time an item spent `ready` before that start while another item's
 * attempt held an overlapping lock: the ready→running interval intersected with each such holder's
 * attempt. Time an item spent ready with no overlapping holder was spent waiting for a slot of the queue's
 * concurrency (or for a retry's backoff), and is not counted as a lock wait.
 */

export interface Attempt {
  itemId: string;
  attempt: number;
  start: number;
  /** When the attempt ended; null while it still runs. */
  end: number | null;
  /** The status it ended in (`done`, `failed`, `ready` for a retry or a lost worker, `cancelled`); null while running. */
  outcome: string | null;
  reason: string | null;
  locks: string[];
  /** When the item last became ready before this attempt (null if the log does not say). */
  readyAt: number | null;
}

export interface LockWait {
  /** The item that waited. */
  itemId: string;
  attempt: number;
  /** The lock it wanted (one of its own keys). */
  lock: string;
  /** The item whose attempt held an overlapping lock meanwhile, and that key. */
  holder: string;
  heldLock: string;
  from: number;
  to: number;
}

export function attemptsOf(entries: readonly AuditEntry[]): Attempt[] {
  const attempts: Attempt[] = [];
  const open = new Map<string, Attempt>();
  const readyAt = new Map<string, number>();
  for (const e of entries) {
    if (e.kind !== 'item') continue;
    const running = open.get(e.itemId);
    if (running && e.from === 'running') {
      running.end = e.at;
      running.outcome = e.to;
      running.reason = e.reason ?? null;
      open.delete(e.itemId);
    }
    if (e.to === 'ready') readyAt.set(e.itemId, e.at);
    if (e.to === 'running') {
      const a: Attempt = {
        itemId: e.itemId,
        attempt: e.attempt,
        start: e.at,
        end: null,
        outcome: null,
        reason: null,
        locks: e.locks ?? [],
        readyAt: readyAt.get(e.itemId) ?? null,
      };
      attempts.push(a);
      open.set(e.itemId, a);
    }
  }
  return attempts;
}

/** Every (waiter, holder) pair of attempts whose locks overlap while the waiter was ready; `now` ends open attempts. */
export function lockWaits(attempts: readonly Attempt[], now: number): LockWait[] {
  const waits: LockWait[] = [];
  const holders = attempts.filter((a) => a.locks.length > 0);
  for (const w of attempts) {
    if (w.readyAt === null || w.readyAt >= w.start || w.locks.length === 0) continue;
    for (const h of holders) {
      if (h === w || h.itemId === w.itemId) continue;
      const from = Math.max(w.readyAt, h.start);
      const to = Math.min(w.start, h.end ?? now);
      if (from >= to) continue;
      const pair = firstOverlap(w.locks, h.locks);
      if (pair) waits.push({ itemId: w.itemId, attempt: w.attempt, lock: pair[0], holder: h.itemId, heldLock: pair[1], from, to });
    }
  }
  return waits;
}

function firstOverlap(mine: readonly string[], theirs: readonly string[]): [string, string] | null {
  for (const a of mine) for (const b of theirs) if (locksOverlap(a, b)) return [a, b];
  return null;
}

import { hash } from 'node:crypto';
import type { Transition } from '../engine/types.js';
import { canonicalJson } from './canonical-json.js';

/**
 * The audit log: one entry per state transition, canonical JSON (RFC 8785),
 * `hash = sha256(canonical(entry without hash) ‖ prevHash)`. Entries are written in the same state
 * commit as the transitions they record, so the log and the state cannot disagree.
 */

export const GENESIS_HASH = '0'.repeat(64);

export type AuditEntry = Transition & {
  /** 0-based position in the run's log. */
  seq: number;
  runId: string;
  prevHash: string;
  hash: string;
};

export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  // sha256 over the UTF-8 of canonical ‖ prevHash, in one shot (a hash object per entry costs more).
  return hash('sha256', canonicalJson(entry) + entry.prevHash, 'hex');
}

/** Chains `transitions` after `last` (null for a new log). Pure. */
export function appendEntries(last: Pick<AuditEntry, 'seq' | 'hash'> | null, runId: string, transitions: readonly Transition[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  let seq = last ? last.seq + 1 : 0;
  let prevHash = last ? last.hash : GENESIS_HASH;
  for (const t of transitions) {
    const body = { ...t, seq, runId, prevHash } as Omit<AuditEntry, 'hash'>;
    // Drop undefined fields: they have no canonical form and must not change the hash.
    for (const k of Object.keys(body) as Array<keyof typeof body>) if (body[k] === undefined) delete body[k];
    const entry = { ...body, hash: entryHash(body) } as AuditEntry;
    out.push(entry);
    seq += 1;
    prevHash = entry.hash;
  }
  return out;
}

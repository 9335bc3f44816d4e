import type { Claim, ClaimsDoc, Wait } from '../engine/cross-run-holdings.js';
import { idProblem, runIdProblem } from '../plan/ids.js';
import { lockKeyProblem } from '../plan/locks.js';

/**
 * The shape of `claims.json` in the claims ref, checked entry by entry. Anyone who may push to the
 * repository can move `refs/agora/claims`, and a reader turns its run ids into refs (`runs/<run>`) and
 * its lock keys into what items may not take; so nothing in it is used until every entry keeps the rule
 * Agora wrote it by: run and item ids by the id rule of plans, lock keys by the lock-key rule, queue
 * names by the plan's rule for `queue` (a string), counters as whole numbers.
 */

/** Why `raw` is not a claims document Agora wrote (naming the first bad entry), or the document. */
export function checkClaimsDoc(raw: unknown): { doc: ClaimsDoc } | { problem: string } {
  if (!isRecord(raw)) return { problem: 'claims.json is not a JSON object' };
  if (raw.version !== 1) return { problem: `claims.json has version ${JSON.stringify(raw.version) ?? 'undefined'}, not 1` };
  const extra = Object.keys(raw).filter((k) => !['version', 'claims', 'waits'].includes(k));
  if (extra.length > 0) return { problem: `claims.json has unknown field ${JSON.stringify(extra[0])}` };
  if (!Array.isArray(raw.claims)) return { problem: 'claims.json has no "claims" list' };
  if (!Array.isArray(raw.waits)) return { problem: 'claims.json has no "waits" list' };
  for (const [i, entry] of raw.claims.entries()) {
    const problem = entryProblem(entry, CLAIM_FIELDS);
    if (problem) return { problem: `entry claims[${i}] ${problem}` };
  }
  for (const [i, entry] of raw.waits.entries()) {
    const problem = entryProblem(entry, WAIT_FIELDS);
    if (problem) return { problem: `entry waits[${i}] ${problem}` };
  }
  return { doc: { version: 1, claims: raw.claims as Claim[], waits: raw.waits as Wait[] } };
}

type FieldCheck = (value: unknown) => string | undefined;

const idField: FieldCheck = (v) => (typeof v === 'string' ? idProblem(v) : 'is not a string');
const runIdField: FieldCheck = (v) => (typeof v === 'string' ? runIdProblem(v) : 'is not a string');
const countField: FieldCheck = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : 'is not a whole number of 0 or more');
const seqField: FieldCheck = (v) => (Number.isSafeInteger(v) && (v as number) >= -1 ? undefined : 'is not a whole number of -1 or more');
const timeField: FieldCheck = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : 'is not a time in epoch milliseconds');
const queueField: FieldCheck = (v) => (typeof v === 'string' ? undefined : 'is not a string');
const locksField: FieldCheck = (v) => {
  if (!Array.isArray(v)) return 'is not a list';
  for (const key of v) {
    const problem = typeof key === 'string' ? lockKeyProblem(key) : `holds ${JSON.stringify(key)}, not a string`;
    if (problem) return problem;
  }
  return undefined;
};

const CLAIM_FIELDS: Record<keyof Claim, FieldCheck> = {
  run: runIdField,
  item: idField,
  attempt: countField,
  afterSeq: seqField,
  queue: queueField,
  locks: locksField,
};
const WAIT_FIELDS: Record<keyof Wait, FieldCheck> = {
  run: runIdField,
  item: idField,
  afterSeq: seqField,
  acceptedAt: timeField,
  queue: queueField,
  locks: locksField,
};

function entryProblem(entry: unknown, fields: Record<string, FieldCheck>): string | undefined {
  if (!isRecord(entry)) return 'is not a JSON object';
  const run = typeof entry.run === 'string' ? ` (run ${JSON.stringify(entry.run)})` : '';
  for (const [name, check] of Object.entries(fields)) {
    const problem = check(entry[name]);
    if (problem) return `field "${name}"${run}: ${problem}`;
  }
  const extra = Object.keys(entry).find((k) => !(k in fields));
  return extra === undefined ? undefined : `has unknown field ${JSON.stringify(extra)}`;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

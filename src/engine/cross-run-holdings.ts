import type { Plan } from '../plan/schema.js';
import { indexPlan } from './plan-index.js';
import type { ItemStatus, RunState } from './types.js';

/**
 * Queues and locks across the runs of one repository, as pure functions of data (the I/O is
 * src/runs/claims.ts). Every run records, in one shared document moved by compare-and-swap, what it
 * holds (a claim per running item: its locks and queue) and what it waits for (its ready items that
 * could not start because of the queue's bound or another run). Nothing in it is ever released by hand:
 * an entry is void once its run's own state has moved past it, so a run that crashed or ended leaks
 * nothing.
 *
 * An entry records `afterSeq`, the audit sequence number of the last entry of the state it was decided
 * on; the run's next state commit has larger numbers. An entry is live while its run's state is not yet
 * past that point (the decision is not recorded yet, or this view of the run is older) or while that
 * state still says what the entry claims: the item running that attempt (a claim), the item ready (a
 * wait). A stale view of another run can therefore only keep an entry alive longer, never end it early.
 *
 * Fairness is FIFO by acceptance: a run's waits reserve, against every run accepted later, the locks
 * the waiting items need and (on the same queue) one slot each, so no later run can keep taking what
 * an earlier one waits for. Each run records at most `concurrency` waits: its items that would start next.
 */

export interface Claim {
  run: string;
  item: string;
  attempt: number;
  afterSeq: number;
  queue: string;
  /** Normalised lock keys. */
  locks: string[];
}

export interface Wait {
  run: string;
  item: string;
  afterSeq: number;
  /** When the waiting run was accepted, for FIFO order (ties: run id). */
  acceptedAt: number;
  queue: string;
  locks: string[];
}

export interface ClaimsDoc {
  version: 1;
  claims: Claim[];
  waits: Wait[];
}

export const EMPTY_CLAIMS: ClaimsDoc = { version: 1, claims: [], waits: [] };

/** What a reader knows of a run named in the document: its last audit seq and its items' status. */
export interface RunView {
  seq: number;
  item(id: string): { status: ItemStatus; attempts: number } | undefined;
}

/** What the other runs hold and reserve, as the engine's step takes it. */
export interface OtherHoldings {
  /** Lock keys held by running items of other runs. */
  locks: readonly string[];
  /** Items of other runs running on this run's queue. */
  running: number;
  /** Lock keys that earlier-accepted runs wait for. */
  reservedLocks: readonly string[];
  /** Slots of this run's queue that earlier-accepted runs wait for. */
  reservedSlots: number;
}

export const NO_OTHER_HOLDINGS: OtherHoldings = { locks: [], running: 0, reservedLocks: [], reservedSlots: 0 };

/** The identity of the run asking, for FIFO order. */
export interface RunKey {
  runId: string;
  queue: string;
  acceptedAt: number;
}

/** True when a claim still holds, given the current view of its run (null: the run is gone). */
export function claimLive(claim: Claim, view: RunView | null): boolean {
  if (!view) return false;
  if (view.seq <= claim.afterSeq) return true;
  const item = view.item(claim.item);
  return item?.status === 'running' && item.attempts === claim.attempt;
}

/** True when a wait still holds: its item is still ready in its run. */
export function waitLive(wait: Wait, view: RunView | null): boolean {
  if (!view) return false;
  if (view.seq <= wait.afterSeq) return true;
  return view.item(wait.item)?.status === 'ready';
}

/** The document without its void entries. `viewOf` is asked about each run it names. */
export function liveEntries(doc: ClaimsDoc, viewOf: (runId: string) => RunView | null): ClaimsDoc {
  return {
    version: 1,
    claims: doc.claims.filter((c) => claimLive(c, viewOf(c.run))),
    waits: doc.waits.filter((w) => waitLive(w, viewOf(w.run))),
  };
}

function earlier(a: Pick<Wait, 'acceptedAt' | 'run'>, b: RunKey): boolean {
  return a.acceptedAt < b.acceptedAt || (a.acceptedAt === b.acceptedAt && a.run < b.runId);
}

/** What the runs other than `self` hold (live entries only) and what earlier runs reserve against it. */
export function holdingsFor(live: ClaimsDoc, self: RunKey): OtherHoldings {
  const locks: string[] = [];
  let running = 0;
  for (const c of live.claims) {
    if (c.run === self.runId) continue;
    locks.push(...c.locks);
    if (c.queue === self.queue) running += 1;
  }
  const reservedLocks: string[] = [];
  let reservedSlots = 0;
  for (const w of live.waits) {
    if (w.run === self.runId || !earlier(w, self)) continue;
    reservedLocks.push(...w.locks);
    if (w.queue === self.queue) reservedSlots += 1;
  }
  return { locks, running, reservedLocks, reservedSlots };
}

/**
 * The document a run must write after a step from `prev` to `state`, or null when it already says what
 * it should. The run's own entries become: a claim for every item running in `prev` or in `state` (an
 * item this step finished keeps its claim until the state commit recording that is durable; after it
 * the claim is void), and a wait for each id in `waiting`. An entry already recorded keeps its
 * `afterSeq`; a new one gets `afterSeq`, the last audit seq of `prev`. Every other run's live entries
 * are kept. A claim this run wrote and then did not record (it crashed, or decided otherwise on a
 * redo) is removed here, so it cannot block anyone while this run waits for them.
 */
export function nextClaims(live: ClaimsDoc, plan: Plan, prev: RunState, state: RunState, waiting: readonly string[], afterSeq: number): ClaimsDoc | null {
  const index = indexPlan(plan);
  const runId = state.runId;
  const claimKey = (item: string, attempt: number) => `${item}\u0000${attempt}`;
  const ownClaims = new Map(live.claims.filter((c) => c.run === runId).map((c) => [claimKey(c.item, c.attempt), c]));
  const ownWaits = new Map(live.waits.filter((w) => w.run === runId).map((w) => [w.item, w]));
  let changed = false;
  const claims: Claim[] = live.claims.filter((c) => c.run !== runId);
  const wanted = new Set<string>();
  for (const id of index.order) {
    for (const item of [prev.items[id], state.items[id]]) {
      if (item?.status !== 'running') continue;
      const key = claimKey(id, item.attempts);
      if (wanted.has(key)) continue;
      wanted.add(key);
      const recorded = ownClaims.get(key);
      if (!recorded) changed = true;
      claims.push(recorded ?? { run: runId, item: id, attempt: item.attempts, afterSeq, queue: state.queue, locks: [...(index.locks.get(id) ?? [])] });
    }
  }
  const waits: Wait[] = live.waits.filter((w) => w.run !== runId);
  for (const id of waiting) {
    const recorded = ownWaits.get(id);
    if (!recorded) changed = true;
    waits.push(recorded ?? { run: runId, item: id, afterSeq, acceptedAt: state.acceptedAt, queue: state.queue, locks: [...(index.locks.get(id) ?? [])] });
  }
  if (wanted.size !== ownClaims.size || waiting.length !== ownWaits.size) changed = true;
  return changed ? { version: 1, claims, waits } : null;
}

import { TERMINAL_ITEM_STATUSES, type ItemState, type ItemStatus } from '../engine/types.js';
import { conclusionOf, type CheckConclusion } from './check-text.js';

/**
 * Which item check runs to create or update, decided from what GitHub shows and what the run's state is.
 * Pure: no I/O, the time is an argument. The reporter (check-reporter.ts) performs the writes in order
 * and records each one as shown only once GitHub accepted it, so a write that failed is planned again by
 * the next report.
 */

/** What the App has shown on GitHub for a run's items. */
export interface ShownChecks {
  /** The check run of each item that has one (the newest, after a reopen). */
  readonly ids: ReadonlyMap<string, number>;
  /** The status each item's check last showed; absent: shown queued, or not shown. */
  readonly statuses: ReadonlyMap<string, ItemStatus>;
  /** The attempt each completed check showed (a large run's retried failure keeps its check). */
  readonly attempts?: ReadonlyMap<string, number>;
}

/**
 * What an item check found on GitHub shows, read from the check itself, never from the run's state: a
 * crash between the state commit and the check's update leaves a check that is behind (red for an item
 * that ended `done`), and only a difference from the state makes the reporter write it again. Undefined:
 * queued (or a conclusion the App does not write).
 */
export function shownStatus(check: { status: string; conclusion?: string | null }): ItemStatus | undefined {
  if (check.status === 'in_progress') return 'running';
  if (check.status !== 'completed') return undefined;
  return ITEM_STATUS_OF_CONCLUSION[check.conclusion ?? ''];
}

const ITEM_STATUS_OF_CONCLUSION: Readonly<Record<string, ItemStatus>> = { success: 'done', failure: 'failed', skipped: 'skipped', cancelled: 'cancelled' };

export interface CheckPlanInput {
  /** The audit seq of the state to report, and of the last state reported (an older one is not reported). */
  seq: number;
  reportedSeq: number;
  items: readonly ItemState[];
  now: number;
  /** How long an item that waited must have been running before its check shows `in_progress`. */
  progressDelayMs: number;
  /** True when the item's attempt already ended here and the next commit records it. */
  pendingOutcome(itemId: string): boolean;
  /**
   * `each`: every item has a check run that follows it. `failures` (a plan larger than the App's
   * itemChecksUpTo): only a failed item gets a check run, at most `maxChecks` of them; a retried one keeps
   * its check, which shows the retry's outcome once it ends.
   */
  checksFor: 'each' | 'failures';
  maxChecks: number;
}

/** Whether a run of `items` items shows a check run per item or only its failures. */
export function checksFor(items: number, itemChecksUpTo: number): 'each' | 'failures' {
  return items <= itemChecksUpTo ? 'each' : 'failures';
}

export type CheckWrite =
  /**
   * The item's check run, created once the item has run for the progress delay (`first`), or a new one for
   * a new attempt after a Retry reopened a finished item (`reopened`; GitHub keeps the old one in the
   * history, and the new one shows at once that the Retry was taken). `shows` is what it shows once
   * created: `running` when created in progress, else nothing (queued).
   */
  | { kind: 'create'; itemId: string; why: 'first' | 'reopened'; status: 'queued' | 'in_progress'; shows: 'running' | undefined }
  /** The item's check goes to `in_progress`. */
  | { kind: 'progress'; itemId: string }
  /**
   * The item's check is completed; a failed item's offers Retry. `create`: the item has no check yet (it
   * ended before it was shown running, or a large run's failure): the check is created completed, in one write.
   */
  | { kind: 'complete'; itemId: string; status: ItemStatus; conclusion: CheckConclusion; retry: boolean; create: boolean };

export interface CheckPlan {
  /** False when the state is older than one already reported: nothing is written. */
  report: boolean;
  writes: CheckWrite[];
  /** When set: report again in this many ms (an item becomes due to show `in_progress` then). */
  laterMs?: number;
}

/**
 * No item is created `queued` (the `agora` check lists what waits): an item's check is created when it has
 * run for the progress delay (`in_progress`, then completed: 2 writes) or, when it ends sooner, completed
 * (1 write). Whatever the machine's speed, no item costs more than 2 writes.
 */
export function planCheckWrites(shown: ShownChecks, input: CheckPlanInput): CheckPlan {
  if (input.seq < input.reportedSeq) return { report: false, writes: [] };
  if (input.checksFor === 'failures') return { report: true, writes: failureWrites(shown, input) };
  const writes: CheckWrite[] = [];
  let laterMs: number | undefined;
  for (const item of input.items) {
    const has = shown.ids.has(item.id);
    const before = shown.statuses.get(item.id);
    const running = item.status === 'running';
    if (has && before === item.status) continue;
    if (has && before !== undefined && TERMINAL_ITEM_STATUSES.has(before) && !TERMINAL_ITEM_STATUSES.has(item.status)) {
      writes.push({ kind: 'create', itemId: item.id, why: 'reopened', status: running ? 'in_progress' : 'queued', shows: running ? 'running' : undefined });
      continue;
    }
    if (TERMINAL_ITEM_STATUSES.has(item.status)) {
      const complete = completion(item, !has);
      if (complete) writes.push(complete);
    } else if (running) {
      const delay = input.progressDelayMs;
      const ranFor = item.startedAt === undefined ? delay : input.now - item.startedAt;
      if (ranFor < delay) {
        laterMs ??= delay - ranFor;
        continue;
      }
      // It already finished here; the next commit records it, and its report completes the check in one write.
      if (input.pendingOutcome(item.id)) continue;
      writes.push(has ? { kind: 'progress', itemId: item.id } : { kind: 'create', itemId: item.id, why: 'first', status: 'in_progress', shows: 'running' });
    }
  }
  return { report: true, writes, ...(laterMs !== undefined ? { laterMs } : {}) };
}

function completion(item: ItemState, create: boolean): CheckWrite | undefined {
  const conclusion = conclusionOf(item.status);
  return conclusion ? { kind: 'complete', itemId: item.id, status: item.status, conclusion, retry: item.status === 'failed', create } : undefined;
}

/** A large run's writes: a check run for each failed item (up to `maxChecks`), created completed. */
function failureWrites(shown: ShownChecks, input: CheckPlanInput): CheckWrite[] {
  const writes: CheckWrite[] = [];
  let checks = shown.ids.size;
  for (const item of input.items) {
    if (!TERMINAL_ITEM_STATUSES.has(item.status)) continue;
    const sameAttempt = shown.attempts?.get(item.id) === undefined || shown.attempts.get(item.id) === item.attempts;
    if (shown.statuses.get(item.id) === item.status && sameAttempt) continue;
    const has = shown.ids.has(item.id);
    if (!has) {
      if (item.status !== 'failed' || checks >= input.maxChecks) continue;
      checks += 1;
    }
    const complete = completion(item, !has);
    if (complete) writes.push(complete);
  }
  return writes;
}

/** What a large run's `agora` check shows of its progress: the title written last, and when. */
export interface ProgressShown {
  readonly title: string;
  readonly at: number;
}

/**
 * Whether a large run's progress title is written now: only when it changed, and at most once per
 * `everyMs` (a run of thousands of items moves its counts on nearly every report). A title held back is
 * not lost: `laterMs` says when to report again, so the newest counts are always written in the end.
 */
export function progressDue(shown: ProgressShown | undefined, input: { title: string; now: number; everyMs: number }): { write: boolean; laterMs?: number } {
  if (shown?.title === input.title) return { write: false };
  const since = shown === undefined ? Infinity : input.now - shown.at;
  if (since >= input.everyMs) return { write: true };
  return { write: false, laterMs: input.everyMs - since };
}

/** The items whose final state the checks do not show yet (a run's checks are completed only once none is left). */
export function unsettledItems(shown: ShownChecks, input: Pick<CheckPlanInput, 'items' | 'checksFor' | 'maxChecks'>): ItemState[] {
  const plan = planCheckWrites(shown, { ...input, seq: 0, reportedSeq: 0, now: Infinity, progressDelayMs: 0, pendingOutcome: () => false });
  const behind = new Set(plan.writes.filter((w) => w.kind === 'complete').map((w) => w.itemId));
  return input.items.filter((i) => behind.has(i.id));
}

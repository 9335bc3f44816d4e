import type { Plan } from '../plan/schema.js';
import { deadlinePassed, deadlineReason, isAllowedFailure } from './deadline.js';
import type { PlanIndex } from './plan-index.js';
import { isTerminal, type ItemState, type RunState, type RunStatus } from './types.js';

/** How a run ends, and the reason it records. */
export interface RunOutcome {
  status: Exclude<RunStatus, 'running'>;
  reason?: string;
}

/**
 * How the run ends now, or undefined while an item is open. Cancelled when a cancel was asked for; done
 * when every item is done or failed within `continue_on_error`; failed otherwise, naming the failed
 * items (and the deadline, when that ended them), the skipped count and the allowed failures.
 */
export function runOutcome(plan: Plan, index: PlanIndex, state: RunState, itemAt: (i: number) => ItemState, now: number): RunOutcome | undefined {
  const counts = { done: 0, failed: 0, skipped: 0, cancelled: 0 };
  for (let i = 0; i < index.order.length; i += 1) {
    const status = itemAt(i).status;
    if (!isTerminal(status)) return undefined;
    counts[status as keyof typeof counts] += 1;
  }
  const total = index.order.length;
  const allowed = index.order.filter((id, i) => isAllowedFailure(index.items.get(id), itemAt(i)));
  const allowedNote = allowed.length > 0 ? `failures allowed by continue_on_error: ${allowed.join(', ')}` : '';
  if (state.cancelRequested) return { status: 'cancelled', reason: `cancelled: ${state.cancelRequested.reason}` };
  if (counts.done + allowed.length === total) return allowedNote ? { status: 'done', reason: allowedNote } : { status: 'done' };
  const allowedSet = new Set(allowed);
  const failed = index.order.filter((id, i) => itemAt(i).status === 'failed' && !allowedSet.has(id));
  const parts = deadlinePassed(plan, state, now)
    ? [`${deadlineReason(plan)}: ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}, ${counts.cancelled} cancelled`]
    : [`${failed.length} of ${total} items failed (${failed.join(', ')})`];
  if (counts.skipped) parts.push(`${counts.skipped} skipped`);
  if (allowedNote) parts.push(allowedNote);
  return { status: 'failed', reason: parts.join(', ') };
}

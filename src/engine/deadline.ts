/**
 * When a run ends early, and what may still run after: the run's deadline (the plan's `timeoutSeconds`,
 * counted from acceptance), a cancel, and the grace period in which `if: always` items (cleanup, report)
 * still run once their dependencies have ended. Pure: `now` is always passed in by the adapter.
 */
import type { Plan, WorkItem } from '../plan/schema.js';
import type { ItemState, RunState } from './types.js';

/** How long `if: always` items may still start and run after a cancel or the run's deadline: 60 s. */
export const ALWAYS_GRACE_MS = 60_000;

/** True for an item that runs whatever happens to its dependencies (`"if": "always"`). */
export function isAlways(item: WorkItem | undefined): boolean {
  return item?.if === 'always';
}

/** True for a failed item whose failure does not hold its dependents back (`continue_on_error`). */
export function isAllowedFailure(item: WorkItem | undefined, state: ItemState): boolean {
  return state.status === 'failed' && item?.continue_on_error === true;
}

/** The run's deadline (epoch ms), if its plan has one. */
export function runDeadline(plan: Plan, state: RunState): number | undefined {
  return plan.timeoutSeconds === undefined ? undefined : state.acceptedAt + Math.round(plan.timeoutSeconds * 1000);
}

/** True once the run's deadline has passed. */
export function deadlinePassed(plan: Plan, state: RunState, now: number): boolean {
  const deadline = runDeadline(plan, state);
  return deadline !== undefined && now >= deadline;
}

/** Why items still open at the deadline are stopped or cancelled. */
export function deadlineReason(plan: Plan): string {
  return `the run's deadline passed (timeoutSeconds ${plan.timeoutSeconds}s after it was accepted)`;
}

/** When the run was ended early (by a cancel or its deadline, whichever came first), or undefined. */
export function endedAt(plan: Plan, state: RunState, now: number): number | undefined {
  const deadline = runDeadline(plan, state);
  const times = [state.cancelRequested?.at, deadline !== undefined && now >= deadline ? deadline : undefined];
  const set = times.filter((t): t is number => t !== undefined);
  return set.length === 0 ? undefined : Math.min(...set);
}

/** The end of the grace period of `if: always` items, once the run was ended early. */
export function graceEndsAt(plan: Plan, state: RunState, now: number): number | undefined {
  const ended = endedAt(plan, state, now);
  return ended === undefined ? undefined : ended + ALWAYS_GRACE_MS;
}

/** The next instant the run's deadline or the grace period will change something, if after `now`. */
export function runWakeAt(plan: Plan, state: RunState, now: number): number | undefined {
  const candidates = [runDeadline(plan, state), graceEndsAt(plan, state, now)].filter((t): t is number => t !== undefined && t > now);
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

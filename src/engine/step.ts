import type { Plan } from '../plan/schema.js';
import { NO_OTHER_HOLDINGS, type OtherHoldings } from './cross-run-holdings.js';
import { Tick } from './tick.js';
import type { ItemState, Run, RunEvent, RunState, StepResult } from './types.js';

export { isTerminal } from './types.js';
export { retryDelayMs } from './retry-delay.js';

/**
 * The engine: pure functions from (plan, state, events, now) to (state', actions, transitions).
 * No I/O, no clock reads, no randomness: the same inputs always give the same outputs, and applying
 * `reconcile` to its own result changes nothing (idempotent).
 */

export interface AcceptOptions {
  runId: string;
  /** The commit the run starts from (its integration head starts here too). */
  base: string;
  concurrency: number;
  now: number;
}

/**
 * A new run: every item pending, and the run's `submitted → running` transition. Nothing starts until
 * the first reconcile, so the accepted state can be made durable before anything acts on it.
 */
export function newRun(plan: Plan, opts: AcceptOptions): StepResult {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${opts.concurrency}`);
  }
  const items: Record<string, ItemState> = {};
  for (const item of plan.items) items[item.id] = { id: item.id, status: 'pending', attempts: 0, failures: 0 };
  const state: RunState = {
    version: 1,
    runId: opts.runId,
    queue: plan.queue,
    concurrency: opts.concurrency,
    status: 'running',
    acceptedAt: opts.now,
    base: opts.base,
    integrationHead: opts.base,
    items,
  };
  return {
    run: { plan, state },
    actions: [],
    transitions: [{ kind: 'run', from: 'submitted', to: 'running', at: opts.now }],
  };
}

/** `newRun` followed by the first reconcile, as one step. */
export function acceptRun(plan: Plan, opts: AcceptOptions): StepResult {
  const created = newRun(plan, opts);
  const result = step(created.run, [], opts.now);
  return { ...result, transitions: [...created.transitions, ...result.transitions] };
}

/** Reconcile with no new events. */
export function reconcile(run: Run, now: number): StepResult {
  return step(run, [], now);
}

export interface StepOptions {
  /**
   * False while a server shuts down: apply the events and settle the state, but start nothing, so the
   * recorded state waits for the next server instead of claiming workers that will never run.
   */
  startItems?: boolean;
  /**
   * What the repository's other runs hold and reserve (cross-run-holdings.ts): their running items'
   * locks and queue slots count as held, and so do what earlier-accepted runs wait for. Default: none.
   */
  others?: OtherHoldings;
}

/** Apply `events` in order, then reconcile. */
export function step(run: Run, events: readonly RunEvent[], now: number, options: StepOptions = {}): StepResult {
  const tick = new Tick(run, now, options.startItems ?? true, options.others ?? NO_OTHER_HOLDINGS);
  for (const event of events) tick.apply(event);
  tick.reconcile();
  return tick.result();
}

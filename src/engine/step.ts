import type { Plan, RetryPolicy } from '../plan/schema.js';
import { NO_OTHER_HOLDINGS, type OtherHoldings } from './cross-run-holdings.js';
import { ALWAYS_GRACE_MS, deadlinePassed, deadlineReason, graceEndsAt, isAllowedFailure, isAlways, runWakeAt } from './deadline.js';
import { addEmission, emissionProblem } from './emission.js';
import { HeldLocks } from './held-locks.js';
import { indexPlan, type PlanIndex } from './plan-index.js';
import {
  TERMINAL_ITEM_STATUSES,
  type Action,
  type ChildCall,
  type Emission,
  type ItemState,
  type ItemStatus,
  type Run,
  type RunEvent,
  type RunState,
  type RunStatus,
  type StepResult,
  type Transition,
} from './types.js';

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

export function isTerminal(status: ItemStatus): boolean {
  return TERMINAL_ITEM_STATUSES.has(status);
}

/** Delay before attempt `failures + 1`, in ms. */
export function retryDelayMs(retry: RetryPolicy | undefined, failures: number): number {
  const initial = retry?.backoff?.initialSeconds ?? 1;
  const factor = retry?.backoff?.factor ?? 2;
  const max = retry?.backoff?.maxSeconds ?? 300;
  return Math.round(Math.min(max, initial * factor ** Math.max(0, failures - 1)) * 1000);
}

/**
 * The keys of each items record a step made or was given, in their order: a step's copy has the same
 * keys as its input, so the next step copies without asking V8 for them again (one `Object.keys` of
 * 10,000 keys is a third of the copy).
 */
const itemKeys = new WeakMap<Record<string, ItemState>, readonly string[]>();

/** A shallow copy of an items record, keys in the same order (a loop over known keys: V8's fastest copy of a large record). */
function copyItems(from: Record<string, ItemState>): Record<string, ItemState> {
  let keys = itemKeys.get(from);
  if (!keys) {
    keys = Object.keys(from);
    itemKeys.set(from, keys);
  }
  const items: Record<string, ItemState> = {};
  for (let i = 0; i < keys.length; i += 1) items[keys[i]!] = from[keys[i]!]!;
  itemKeys.set(items, keys);
  return items;
}

/** One step's working copy: items are copied on first write, the input run is never mutated. */
class Tick {
  private index: PlanIndex;
  private plan: Plan; // plan.json and the items emitted so far (grows when an emission joins)
  private readonly state: RunState;
  /** The items' states by position in the plan index's order (kept in step with `state.items`). */
  private states: (ItemState | undefined)[];
  /** Whether `state.items` is this tick's own record yet (copied on the first write, not before). */
  private itemsCopied = false;
  private readonly copied = new Set<string>();
  private readonly actions: Action[] = [];
  private readonly transitions: Transition[] = [];
  /** Ready items not started because of the queue's bound or another run (at most `concurrency`). */
  private readonly waiting: string[] = [];

  constructor(
    private readonly run: Run,
    private readonly now: number,
    private readonly startItems: boolean,
    private readonly others: OtherHoldings,
  ) {
    this.plan = run.plan;
    this.index = indexPlan(run.plan);
    this.state = { ...run.state };
    this.states = this.index.order.map((id) => run.state.items[id]);
  }

  result(): StepResult {
    const wakeAt = this.wakeAt();
    return {
      run: { plan: this.plan, state: this.state },
      actions: this.actions,
      transitions: this.transitions,
      ...(wakeAt === undefined ? {} : { wakeAt }),
      ...(this.waiting.length === 0 ? {} : { waiting: this.waiting }),
    };
  }

  apply(event: RunEvent): void {
    switch (event.type) {
      case 'item-succeeded': {
        const item = this.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        const refused = event.emitted && emissionProblem(this.plan, this.state, item.id, event.emitted);
        if (refused) {
          // Nothing of it joins, and its patch is not integrated: the emitter fails with the reason.
          this.fail(item, refused, false, { log: event.log, exitCode: event.exitCode });
          this.recordCalls(item.id, event.attempt, event.calls);
          return;
        }
        this.state.integrationHead = event.integrationHead;
        this.move(item, 'done', {
          resultRef: event.resultRef,
          finishedAt: this.now,
          log: event.log,
          exitCode: event.exitCode,
          reason: undefined,
          deadline: undefined,
        });
        // The same step (so the same state commit) that records the emitter done adds what it emitted.
        if (event.emitted && event.emitted.items.length > 0) this.join(item.id, event.attempt, event.emitted);
        this.recordCalls(item.id, event.attempt, event.calls);
        return;
      }
      case 'item-failed': {
        const item = this.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        this.fail(item, event.reason, event.retryable, { log: event.log, exitCode: event.exitCode });
        this.recordCalls(item.id, event.attempt, event.calls);
        return;
      }
      case 'item-lost': {
        const item = this.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        this.move(item, 'ready', {
          reason: `attempt ${item.attempts} lost: ${event.reason}; running it again`,
          deadline: undefined,
          notBefore: undefined,
        });
        return;
      }
      case 'cancel-run': {
        if (this.state.status !== 'running' || this.state.cancelRequested) return;
        this.state.cancelRequested = { reason: event.reason, at: this.now };
        return;
      }
      case 'retry-item': {
        const item = this.state.items[event.itemId];
        if (!item || (item.status !== 'failed' && item.status !== 'cancelled')) return;
        this.reopen([item.id], event.reason);
        return;
      }
      case 'retry-failed': {
        this.reopen(
          this.index.order.filter((id) => this.state.items[id]?.status === 'failed'),
          event.reason,
        );
        return;
      }
    }
  }

  /** Items back to `pending` with a fresh retry budget (and their skipped dependents), the run running again. */
  private reopen(ids: readonly string[], reason: string): void {
    if (ids.length === 0 || this.state.cancelRequested) return;
    if (this.state.status !== 'running') {
      const from = this.state.status;
      this.state.status = 'running';
      delete this.state.reason;
      delete this.state.finishedAt;
      this.transitions.push({ kind: 'run', from, to: 'running', at: this.now, reason });
    }
    for (const id of ids) this.move(this.item(id), 'pending', { reason, failures: 0, finishedAt: undefined });
    for (const id of ids) this.reopenSkippedDependents(id, reason);
  }

  reconcile(): void {
    if (this.state.status !== 'running') return;
    if (this.state.cancelRequested) this.cancelAll(this.state.cancelRequested.reason);
    this.expireRun();
    this.expireDeadlines();
    this.propagate();
    if (this.startItems) this.startReady();
    this.finishIfTerminal();
  }

  // --- reconcile phases -------------------------------------------------------------------------

  private cancelAll(reason: string): void {
    const { order, itemAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.at(i);
      const id = item.id;
      if (isTerminal(item.status)) continue;
      // `if: always` items still run, within the grace period (expireRun ends them after it).
      if (isAlways(itemAt[i])) continue;
      if (item.status === 'running') {
        this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason: `run cancelled: ${reason}` });
      }
      this.move(item, 'cancelled', {
        reason: `run cancelled: ${reason}`,
        finishedAt: this.now,
        deadline: undefined,
        notBefore: undefined,
      });
    }
  }

  /**
   * At the run's deadline every open item but the `if: always` ones ends: running → failed (stopped),
   * pending/ready → cancelled. When the grace period after a cancel or the deadline is over, the
   * `if: always` items still open end the same way.
   */
  private expireRun(): void {
    const plan = this.plan;
    const pastDeadline = deadlinePassed(plan, this.state, this.now);
    const graceEnd = graceEndsAt(plan, this.state, this.now);
    const graceOver = graceEnd !== undefined && this.now >= graceEnd;
    if (!pastDeadline && !graceOver) return;
    const { order, itemAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.at(i);
      const id = item.id;
      if (isTerminal(item.status)) continue;
      const always = isAlways(itemAt[i]);
      if (always && !graceOver) continue;
      const reason = always
        ? `the ${ALWAYS_GRACE_MS / 1000}s grace period of "if": "always" items after the run ${this.state.cancelRequested ? 'was cancelled' : 'passed its deadline'} is over`
        : deadlineReason(plan);
      if (item.status === 'running') {
        this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason });
        this.move(item, 'failed', { reason, failures: item.failures + 1, finishedAt: this.now, deadline: undefined });
      } else {
        this.move(item, 'cancelled', { reason, finishedAt: this.now, notBefore: undefined });
      }
    }
  }

  private expireDeadlines(): void {
    const { order, itemAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.at(i);
      const id = item.id;
      if (item.status !== 'running' || item.deadline === undefined || item.deadline > this.now) continue;
      const seconds = itemAt[i]?.timeoutSeconds ?? 0;
      this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason: `timed out after ${seconds}s` });
      this.fail(item, `timed out after ${seconds}s`, true, {});
    }
  }

  /** pending → ready when every dependency is done; pending/ready → skipped when one cannot be. */
  private propagate(): void {
    const { order, itemAt, depsAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.at(i);
      if (item.status !== 'pending' && item.status !== 'ready') continue;
      let allDone = true;
      let blocker: ItemState | undefined;
      // An `if: always` item waits for its dependencies to end, however they end.
      const always = isAlways(itemAt[i]);
      for (const d of depsAt[i]!) {
        const dep = this.at(d);
        if (dep.status === 'done' || isAllowedFailure(itemAt[d], dep)) continue;
        if (always && isTerminal(dep.status)) continue;
        allDone = false;
        if (always) continue;
        if (dep.status === 'failed' || dep.status === 'skipped' || dep.status === 'cancelled') {
          blocker = dep;
          break;
        }
      }
      if (blocker) {
        // A skipped upstream already names the root cause; pass it on unchanged.
        const reason = blocker.status === 'skipped' && blocker.reason ? blocker.reason : `upstream ${blocker.id} ${blocker.status}`;
        this.move(item, 'skipped', { reason, finishedAt: this.now, notBefore: undefined });
      } else if (allDone && item.status === 'pending') {
        this.move(item, 'ready', {});
      }
    }
  }

  private startReady(): void {
    const held = new HeldLocks();
    // Other runs' holdings and earlier runs' reservations: they block a start like a held lock does,
    // but an item blocked by them (or by the queue) waits, where one blocked by its own run does not.
    const foreign = new HeldLocks();
    foreign.add(this.others.locks);
    foreign.add(this.others.reservedLocks);
    let running = this.others.running + this.others.reservedSlots;
    const { order, itemAt, locksAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      if (this.at(i).status === 'running') {
        running += 1;
        held.add(locksAt[i]!);
      }
    }
    for (let i = 0; i < order.length; i += 1) {
      if (running >= this.state.concurrency && this.waiting.length >= this.state.concurrency) return;
      const item = this.at(i);
      const id = item.id;
      if (item.status !== 'ready') continue;
      if (item.notBefore !== undefined && item.notBefore > this.now) continue;
      const locks = locksAt[i]!;
      if (held.conflicts(locks)) continue;
      if (running >= this.state.concurrency || foreign.conflicts(locks)) {
        if (this.waiting.length < this.state.concurrency) this.waiting.push(id);
        continue;
      }
      const timeout = itemAt[i]?.timeoutSeconds;
      const attempt = item.attempts + 1;
      const deadline = timeout === undefined ? undefined : this.now + Math.round(timeout * 1000);
      this.move(
        item,
        'running',
        {
          attempts: attempt,
          base: this.state.integrationHead,
          startedAt: this.now,
          finishedAt: undefined,
          deadline,
          notBefore: undefined,
        },
        { locks: [...locks], base: this.state.integrationHead },
      );
      this.actions.push({
        type: 'start',
        itemId: id,
        attempt,
        base: this.state.integrationHead,
        ...(deadline === undefined ? {} : { deadline }),
      });
      held.add(locks);
      running += 1;
    }
  }

  private finishIfTerminal(): void {
    const counts = { done: 0, failed: 0, skipped: 0, cancelled: 0 };
    for (let i = 0; i < this.index.order.length; i += 1) {
      const status = this.at(i).status;
      if (!isTerminal(status)) return;
      counts[status as keyof typeof counts] += 1;
    }
    const total = this.index.order.length;
    const allowed = this.index.order.filter((id) => isAllowedFailure(this.index.items.get(id), this.item(id)));
    const allowedNote = allowed.length > 0 ? `failures allowed by continue_on_error: ${allowed.join(', ')}` : '';
    let to: RunStatus;
    let reason: string | undefined;
    if (this.state.cancelRequested) {
      to = 'cancelled';
      reason = `cancelled: ${this.state.cancelRequested.reason}`;
    } else if (counts.done + allowed.length === total) {
      to = 'done';
      if (allowedNote) reason = allowedNote;
    } else {
      to = 'failed';
      const allowedSet = new Set(allowed);
      const failed = this.index.order.filter((id) => this.item(id).status === 'failed' && !allowedSet.has(id));
      const parts = deadlinePassed(this.plan, this.state, this.now)
        ? [`${deadlineReason(this.plan)}: ${failed.length} failed${failed.length ? ` (${failed.join(', ')})` : ''}, ${counts.cancelled} cancelled`]
        : [`${failed.length} of ${total} items failed (${failed.join(', ')})`];
      if (counts.skipped) parts.push(`${counts.skipped} skipped`);
      if (allowedNote) parts.push(allowedNote);
      reason = parts.join(', ');
    }
    this.state.status = to;
    this.state.finishedAt = this.now;
    if (reason) this.state.reason = reason;
    this.transitions.push({ kind: 'run', from: 'running', to, at: this.now, ...(reason ? { reason } : {}) });
  }

  private wakeAt(): number | undefined {
    if (this.state.status !== 'running') return undefined;
    let wake: number | undefined;
    for (const item of this.states) {
      const t = item?.status === 'running' ? item.deadline : item?.status === 'ready' ? item.notBefore : undefined;
      if (t !== undefined && t > this.now && (wake === undefined || t < wake)) wake = t;
    }
    const runWake = runWakeAt(this.plan, this.state, this.now);
    if (runWake !== undefined && (wake === undefined || runWake < wake)) wake = runWake;
    return wake;
  }

  // --- helpers ----------------------------------------------------------------------------------

  /** The child attempts an attempt ran: one audit entry each, in the step that records the attempt's outcome. */
  private recordCalls(itemId: string, attempt: number, calls: readonly ChildCall[] | undefined): void {
    for (const c of calls ?? []) this.transitions.push({ kind: 'call', itemId, attempt, at: this.now, ...c });
  }

  private join(emitterId: string, attempt: number, emission: Emission): void {
    const joined = addEmission(this.plan, this.state, emitterId, attempt, emission, this.now);
    this.plan = joined.plan;
    this.index = indexPlan(joined.plan);
    // addEmission copied the items record: it is this tick's own from here on.
    Object.assign(this.state, { items: joined.state.items, emitted: joined.state.emitted });
    this.itemsCopied = true;
    this.states = this.index.order.map((id) => this.state.items[id]);
    for (const e of emission.items) this.copied.add(e.item.id);
    this.transitions.push(joined.transition);
  }

  private fail(item: ItemState, reason: string, retryable: boolean, extra: Pick<ItemState, 'log' | 'exitCode'>): void {
    const failures = item.failures + 1;
    const retry = this.index.items.get(item.id)?.retry;
    const maxAttempts = retry?.maxAttempts ?? 1;
    if (retryable && failures < maxAttempts) {
      const delay = retryDelayMs(retry, failures);
      this.move(item, 'ready', {
        ...extra,
        failures,
        deadline: undefined,
        notBefore: this.now + delay,
        reason: `attempt ${item.attempts} failed: ${reason}; retrying in ${delay / 1000}s (${failures} of ${maxAttempts} attempts used)`,
      });
      return;
    }
    this.move(item, 'failed', {
      ...extra,
      failures,
      deadline: undefined,
      finishedAt: this.now,
      reason: failures > 1 ? `failed after ${failures} attempts: ${reason}` : reason,
    });
  }

  private reopenSkippedDependents(id: string, reason: string): void {
    for (const childId of this.index.dependents.get(id) ?? []) {
      const child = this.item(childId);
      if (child.status !== 'skipped') continue;
      this.move(child, 'pending', { reason: `reopened: ${reason}`, finishedAt: undefined });
      this.reopenSkippedDependents(childId, reason);
    }
  }

  private runningAttempt(id: string, attempt: number): ItemState | undefined {
    const item = this.state.items[id];
    return item && item.status === 'running' && item.attempts === attempt ? this.item(id) : undefined;
  }

  /** The current state of an item (read only: writes go through `move`). */
  private item(id: string): ItemState {
    const current = this.state.items[id];
    if (!current) throw new Error(`engine: item ${id} has no state (plan and state disagree)`);
    return current;
  }

  /** The current state of the item at position `i` of the plan index's order. */
  private at(i: number): ItemState {
    const current = this.states[i];
    if (!current) throw new Error(`engine: item ${this.index.order[i]} has no state (plan and state disagree)`);
    return current;
  }

  /**
   * The writable copy of an item, copied on first write so the input run is never mutated. The items
   * record itself is copied on the tick's first write (a tick that changes nothing copies nothing).
   */
  private writable(id: string): ItemState {
    const current = this.item(id);
    if (this.copied.has(id)) return current;
    if (!this.itemsCopied) {
      this.state.items = copyItems(this.state.items);
      this.itemsCopied = true;
    }
    const copy = { ...current };
    this.state.items[id] = copy;
    const i = this.index.position.get(id);
    if (i !== undefined) this.states[i] = copy;
    this.copied.add(id);
    return copy;
  }

  private move(
    current: ItemState,
    to: ItemStatus,
    fields: { [K in keyof ItemState]?: ItemState[K] | undefined },
    extra: { locks?: string[]; base?: string } = {},
  ): void {
    const item = this.writable(current.id);
    const from = item.status;
    item.status = to;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) delete (item as unknown as Record<string, unknown>)[k];
      else (item as unknown as Record<string, unknown>)[k] = v;
    }
    const t: Transition = { kind: 'item', itemId: item.id, from, to, attempt: item.attempts, at: this.now };
    if (item.reason !== undefined && to !== 'running' && to !== 'done') t.reason = item.reason;
    if (to === 'done' && item.resultRef) t.resultRef = item.resultRef;
    if (extra.locks) t.locks = extra.locks;
    if (extra.base) t.base = extra.base;
    this.transitions.push(t);
  }
}

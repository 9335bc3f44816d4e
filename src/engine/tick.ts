import type { Plan } from '../plan/schema.js';
import type { OtherHoldings } from './cross-run-holdings.js';
import { ALWAYS_GRACE_MS, deadlinePassed, deadlineReason, graceEndsAt, isAllowedFailure, isAlways, runWakeAt } from './deadline.js';
import { addEmission, emissionProblem } from './emission.js';
import { HeldLocks } from './held-locks.js';
import { indexPlan, type PlanIndex } from './plan-index.js';
import { retryDelayMs } from './retry-delay.js';
import { runOutcome } from './run-outcome.js';
import {
  isTerminal,
  type Action,
  type ChildCall,
  type Emission,
  type ItemState,
  type Run,
  type RunEvent,
  type RunState,
  type StepResult,
  type Transition,
} from './types.js';
import { WorkingItems } from './working-items.js';

/**
 * One step: the events applied in order, then the reconcile phases, over a working copy of the run
 * ({@link WorkingItems}: the input run is never mutated).
 */
export class Tick {
  private index: PlanIndex;
  private plan: Plan; // plan.json and the items emitted so far (grows when an emission joins)
  private readonly state: RunState;
  private readonly items: WorkingItems;
  private readonly actions: Action[] = [];
  private readonly transitions: Transition[] = [];
  /** Ready items not started because of the queue's bound or another run (at most `concurrency`). */
  private readonly waiting: string[] = [];
  /**
   * Ready items (by index) with a dependency that is not done now, as `propagate` found them: a retry
   * reopened it after the item became ready (an `if: always` item, or a dependent of an allowed failure).
   * They stay ready, and start once the dependency has ended again.
   */
  private readonly reopenedUpstream = new Set<number>();

  constructor(
    run: Run,
    private readonly now: number,
    private readonly startItems: boolean,
    private readonly others: OtherHoldings,
  ) {
    this.plan = run.plan;
    this.index = indexPlan(run.plan);
    this.state = { ...run.state };
    this.items = new WorkingItems(this.state, this.index, now, this.transitions);
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
        const item = this.items.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        const refused = event.emitted && emissionProblem(this.plan, this.state, item.id, event.emitted);
        if (refused) {
          // Nothing of it joins, and its patch is not integrated: the emitter fails with the reason.
          this.fail(item, refused, false, { log: event.log, exitCode: event.exitCode });
          this.recordCalls(item.id, event.attempt, event.calls);
          return;
        }
        this.state.integrationHead = event.integrationHead;
        this.items.move(item, 'done', {
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
        const item = this.items.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        this.fail(item, event.reason, event.retryable, { log: event.log, exitCode: event.exitCode });
        this.recordCalls(item.id, event.attempt, event.calls);
        return;
      }
      case 'item-lost': {
        const item = this.items.runningAttempt(event.itemId, event.attempt);
        if (!item) return;
        this.items.move(item, 'ready', {
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
    for (const id of ids) this.items.move(this.items.byId(id), 'pending', { reason, failures: 0, finishedAt: undefined });
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
      const item = this.items.at(i);
      const id = item.id;
      if (isTerminal(item.status)) continue;
      // `if: always` items still run, within the grace period (expireRun ends them after it).
      if (isAlways(itemAt[i])) continue;
      if (item.status === 'running') {
        this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason: `run cancelled: ${reason}` });
      }
      this.items.move(item, 'cancelled', {
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
      const item = this.items.at(i);
      const id = item.id;
      if (isTerminal(item.status)) continue;
      const always = isAlways(itemAt[i]);
      if (always && !graceOver) continue;
      const reason = always
        ? `the ${ALWAYS_GRACE_MS / 1000}s grace period of "if": "always" items after the run ${this.state.cancelRequested ? 'was cancelled' : 'passed its deadline'} is over`
        : deadlineReason(plan);
      if (item.status === 'running') {
        this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason });
        this.items.move(item, 'failed', { reason, failures: item.failures + 1, finishedAt: this.now, deadline: undefined });
      } else {
        this.items.move(item, 'cancelled', { reason, finishedAt: this.now, notBefore: undefined });
      }
    }
  }

  private expireDeadlines(): void {
    const { order, itemAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.items.at(i);
      const id = item.id;
      if (item.status !== 'running' || item.deadline === undefined || item.deadline > this.now) continue;
      const seconds = itemAt[i]?.timeoutSeconds ?? 0;
      this.actions.push({ type: 'stop', itemId: id, attempt: item.attempts, reason: `timed out after ${seconds}s` });
      this.fail(item, `timed out after ${seconds}s`, true, {});
    }
  }

  /**
   * pending → ready when every dependency is done; pending/ready → skipped when one cannot be. A ready
   * item whose dependency was reopened since is held back from starting (`reopenedUpstream`).
   */
  private propagate(): void {
    const { order, itemAt, depsAt } = this.index;
    for (let i = 0; i < order.length; i += 1) {
      const item = this.items.at(i);
      if (item.status !== 'pending' && item.status !== 'ready') continue;
      let allDone = true;
      let blocker: ItemState | undefined;
      // An `if: always` item waits for its dependencies to end, however they end.
      const always = isAlways(itemAt[i]);
      for (const d of depsAt[i]!) {
        const dep = this.items.at(d);
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
        this.items.move(item, 'skipped', { reason, finishedAt: this.now, notBefore: undefined });
      } else if (allDone && item.status === 'pending') {
        this.items.move(item, 'ready', {});
      } else if (!allDone && item.status === 'ready') {
        this.reopenedUpstream.add(i);
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
      if (this.items.at(i).status === 'running') {
        running += 1;
        held.add(locksAt[i]!);
      }
    }
    for (let i = 0; i < order.length; i += 1) {
      if (running >= this.state.concurrency && this.waiting.length >= this.state.concurrency) return;
      const item = this.items.at(i);
      const id = item.id;
      if (item.status !== 'ready' || this.reopenedUpstream.has(i)) continue;
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
      this.items.move(
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
    const outcome = runOutcome(this.plan, this.index, this.state, (i) => this.items.at(i), this.now);
    if (!outcome) return;
    const { status: to, reason } = outcome;
    this.state.status = to;
    this.state.finishedAt = this.now;
    if (reason) this.state.reason = reason;
    this.transitions.push({ kind: 'run', from: 'running', to, at: this.now, ...(reason ? { reason } : {}) });
  }

  private wakeAt(): number | undefined {
    if (this.state.status !== 'running') return undefined;
    let wake: number | undefined;
    for (const item of this.items.all()) {
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
    // addEmission copied the items record: it is this step's own from here on.
    Object.assign(this.state, { items: joined.state.items, emitted: joined.state.emitted });
    this.items.joined(
      this.index,
      emission.items.map((e) => e.item.id),
    );
    this.transitions.push(joined.transition);
  }

  private fail(item: ItemState, reason: string, retryable: boolean, extra: Pick<ItemState, 'log' | 'exitCode'>): void {
    const failures = item.failures + 1;
    const retry = this.index.items.get(item.id)?.retry;
    const maxAttempts = retry?.maxAttempts ?? 1;
    if (retryable && failures < maxAttempts) {
      const delay = retryDelayMs(retry, failures);
      this.items.move(item, 'ready', {
        ...extra,
        failures,
        deadline: undefined,
        notBefore: this.now + delay,
        reason: `attempt ${item.attempts} failed: ${reason}; retrying in ${delay / 1000}s (${failures} of ${maxAttempts} attempts used)`,
      });
      return;
    }
    this.items.move(item, 'failed', {
      ...extra,
      failures,
      deadline: undefined,
      finishedAt: this.now,
      reason: failures > 1 ? `failed after ${failures} attempts: ${reason}` : reason,
    });
  }

  private reopenSkippedDependents(id: string, reason: string): void {
    for (const childId of this.index.dependents.get(id) ?? []) {
      const child = this.items.byId(childId);
      if (child.status !== 'skipped') continue;
      this.items.move(child, 'pending', { reason: `reopened: ${reason}`, finishedAt: undefined });
      this.reopenSkippedDependents(childId, reason);
    }
  }
}

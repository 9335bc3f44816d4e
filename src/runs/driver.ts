import { AgoraError, errorMessage } from '../errors.js';
import { LOST_RACE, retryOnConflict } from '../retry-on-conflict.js';
import { isDeepStrictEqual } from 'node:util';
import { anchorRun } from './anchor.js';
import { crashPoint } from '../crash-points.js';
import { appendEntries } from '../log/entry.js';
import { merkleRootHex } from '../log/merkle.js';
import { step } from '../engine/step.js';
import { holdingsFor, nextClaims } from '../engine/cross-run-holdings.js';
import { ClaimsLedger, type ClaimsRead } from './claims.js';
import type { Action, RunEvent, StepResult, Transition } from '../engine/types.js';
import type { Workspace } from '../git/workspace.js';
import { targetNameOf } from '../executors/build-job.js';
import type { WorkerTarget } from '../executors/types.js';
import { runAttempt, type AttemptContext, type AttemptOutcome } from './attempt.js';
import { refBlock } from './blocked-refs.js';
import { derivedSwaps, syncDerivedRefs } from './derived-refs.js';
import { eventsForOutcomes } from './outcome-events.js';
import { recoverAttempts } from './recovery.js';
import { readCheckedRunAt } from './listed-run.js';
import { logName, readEntries, writeRun, type StoredRun } from './state-store.js';
import { HandOver } from '../executors/hand-over.js';

/**
 * Drives one run inside a serve process: turns finished attempts into engine events, commits each step
 * with compare-and-swap (on conflict: reload and redo), and only then performs the step's actions.
 * Workers whose item the state no longer says is running (cancelled elsewhere, timed out) are stopped.
 */

export interface DriverHooks {
  /** A new state commit landed (by this driver). */
  onCommit?(run: StoredRun, transitions: readonly Transition[]): void;
  /** Something finished and a tick is due. */
  wake(): void;
  /** Something went wrong that does not stop the run (e.g. anchoring refused); for the operator. */
  onWarning?(runId: string, message: string): void;
  /**
   * A blocked ref (blocked-refs.ts) keeps the run's integration and patch refs behind its state at a
   * start (`recover`, `settle`): told here instead of thrown, when given. Only a serve gives it: the
   * App's store pushes before it writes locally, so there a local block is a failure to report.
   */
  onBlockedRefs?(runId: string, reason: string): void;
}

/** A workspace being made ready for the attempt a step starts. */
interface PreparedWorkspace {
  attempt: number;
  ws: Promise<Workspace>;
}

interface Worker {
  attempt: number;
  abort: AbortController;
  done: Promise<void>;
}

export class RunDriver {
  private readonly outcomes: AttemptOutcome[] = [];
  private readonly extraEvents: RunEvent[] = [];
  private readonly workers = new Map<string, Worker>();
  /** Removals of workers kept until their outcome was committed (`AttemptOutcome.release`), still under way. */
  private readonly releasing = new Set<Promise<void>>();
  private wakeAtMs: number | undefined;
  private startsPaused = false;
  private readonly claims: ClaimsLedger;

  constructor(
    private stored: StoredRun,
    private readonly ctx: AttemptContext,
    private readonly hooks: DriverHooks,
  ) {
    this.claims = new ClaimsLedger(ctx.store, ctx.refs);
  }

  get run(): StoredRun {
    return this.stored;
  }

  get runId(): string {
    return this.stored.runId;
  }

  /** The next time the clock alone will change something. */
  get wakeAt(): number | undefined {
    return this.wakeAtMs;
  }

  /** Whether an attempt of `itemId` has finished here and is not committed yet (its end is about to be recorded). */
  hasPendingOutcome(itemId: string): boolean {
    return this.outcomes.some((o) => o.itemId === itemId);
  }

  get busy(): boolean {
    return this.workers.size > 0 || this.outcomes.length > 0 || this.extraEvents.length > 0 || this.releasing.size > 0;
  }

  /** Resolves once the removals of kept workers begun so far have ended. */
  async released(): Promise<void> {
    await Promise.all(this.releasing);
  }

  /**
   * After a restart or a takeover: brings the derived refs to the state, then re-attaches or records lost
   * the attempts the state says are running, and stops the workers of attempts that ended unwatched
   * (`recoverAttempts`). Returns the attempts re-attached (so orphan reaping spares them).
   */
  async recover(): Promise<Set<string>> {
    await this.syncDerived();
    return recoverAttempts({
      state: this.stored.state,
      hasWorker: (itemId) => this.workers.has(itemId),
      targetFor: (itemId) => this.targetFor(itemId),
      reattach: (start) => this.launch(start),
      record: (event) => this.extraEvents.push(event),
      warn: (message) => this.hooks.onWarning?.(this.runId, message),
    });
  }

  /**
   * After a restart, for a run that has ended: a crash between its last state commit and what follows
   * it leaves the integration and patch refs behind the state, and the run unanchored. Brings them up
   * to the state (each step is harmless when already done).
   */
  async settle(): Promise<void> {
    await this.syncDerived();
    if ((await this.ctx.store.resolveRef(this.ctx.refs.anchor(this.runId))) === null) await this.anchor();
  }

  /**
   * Brings the integration and patch refs up to the state. With `onBlockedRefs`, a ref someone pushed
   * that one of them would nest in (or a lock a crashed git left: blocked-refs.ts) is told there, not
   * thrown: the run's next state commits, or the next start, try again.
   */
  private async syncDerived(): Promise<void> {
    try {
      await syncDerivedRefs(this.ctx.store, this.ctx.refs, this.runId, this.stored.state);
    } catch (e) {
      const block = this.hooks.onBlockedRefs ? refBlock(e) : null;
      if (block === null) throw e;
      this.hooks.onBlockedRefs?.(this.runId, block.reason);
    }
  }

  /** One step: fold in what happened, commit it, act on it. Returns the transitions committed. */
  async tick(): Promise<Transition[]> {
    // A lost compare-and-swap means someone else (cancel, another writer) moved the run: reload and redo.
    return retryOnConflict(`the state of run ${this.runId}`, 50, async (): Promise<Transition[] | typeof LOST_RACE> => {
      const ref = this.ctx.refs.run(this.runId);
      const head = await this.ctx.store.resolveRef(ref);
      // Deleted (by a person, or a push): no compare-and-swap could land, and no retry would change that.
      if (head === null) {
        throw new AgoraError(
          'run-not-found',
          `${ref} was deleted while run ${this.runId} was served`,
          `restore it to serve the run again: git update-ref ${ref} ${this.stored.head}`,
        );
      }
      // Checked: a ref overwritten with something that is not a run's state must not become this.stored.
      if (head !== this.stored.head) this.stored = await readCheckedRunAt(this.ctx.store, this.runId, head);
      const now = this.ctx.clock();
      const outcomes = [...this.outcomes];
      const events = [...this.extraEvents, ...(await eventsForOutcomes(this.ctx.store, this.stored, outcomes, now))];
      const { state } = this.stored;
      const claims = await this.claims.read(this.stored);
      const result = step({ plan: this.stored.plan, state }, events, now, {
        startItems: !this.startsPaused,
        others: holdingsFor(claims.live, { runId: this.runId, queue: state.queue, acceptedAt: state.acceptedAt }),
      });
      this.wakeAtMs = result.wakeAt;
      // The workspaces of the items this step starts are made ready while the start is committed. That
      // acts on nothing the state records: no worker runs before the commit has landed, and a workspace
      // not handed to a worker goes back to the pool untouched.
      const prepared = this.prepareWorkspaces(result.actions);
      try {
        return await this.commitStep(outcomes, events, claims, result, prepared, now);
      } finally {
        // Back in the pool before a retry prepares again: it then re-targets these instead of checking out more.
        await Promise.all([...prepared.values()].map((p) => this.returnUnused(p.ws)));
      }
    });
  }

  private async commitStep(
    outcomes: AttemptOutcome[],
    events: RunEvent[],
    claims: ClaimsRead,
    result: StepResult,
    prepared: Map<string, PreparedWorkspace>,
    now: number,
  ): Promise<Transition[] | typeof LOST_RACE> {
    const { state } = this.stored;
    // Across runs: what this step starts is claimed (and what it waits for recorded) in the transaction of
    // the state commit that starts it, ahead of it, so no other run can take the same locks or queue slots meanwhile.
    // The step's plan, not the stored one: items emitted in this step may start in it, and must be claimed.
    const doc = nextClaims(claims.live, result.run.plan, state, result.run.state, result.waiting ?? [], this.stored.last?.seq ?? -1);
    const logs = outcomes.flatMap((o) => (o.log ? [{ name: logName(o.itemId, o.attempt), oid: o.log }] : []));
    if (result.transitions.length === 0 && logs.length === 0 && isDeepStrictEqual(result.run.state, this.stored.state)) {
      // No state commit: the claims (waits that changed) move alone.
      if (doc && !(await this.claims.write(claims, doc, now))) return LOST_RACE;
      this.consume(outcomes, events);
      this.perform(result.actions, prepared);
      return [];
    }
    const entries = appendEntries(this.stored.last, this.runId, result.transitions);
    const doneNow = result.transitions.flatMap((t) => (t.kind === 'item' && t.to === 'done' ? [t.itemId] : []));
    const next = await writeRun(this.ctx.store, this.ctx.refs, {
      runId: this.runId,
      prev: this.stored,
      state: result.run.state,
      entries,
      transitions: result.transitions,
      logs,
      // The claims first, then the integration and patch commits the state names, move with it: one
      // transaction (locally) or one atomic push (on GitHub), so no reader of the refs finds a state naming
      // a commit it lacks or a start its claim is not recorded for.
      moveAlso: [
        ...(doc ? [await this.claims.swapTo(claims, doc, now)] : []),
        ...(await derivedSwaps(this.ctx.store, this.ctx.refs, this.runId, result.run.state, doneNow)),
      ],
      now,
    });
    if (!next) return LOST_RACE;
    this.stored = next;
    crashPoint('state-committed');
    this.consume(outcomes, events);
    if (result.transitions.some((t) => t.kind === 'run' && t.to !== 'running')) await this.anchor();
    this.hooks.onCommit?.(next, result.transitions);
    this.perform(result.actions, prepared);
    return result.transitions;
  }

  /** Starts making a workspace ready at its base for each item `actions` start (none while starts are paused). */
  private prepareWorkspaces(actions: readonly Action[]): Map<string, PreparedWorkspace> {
    const prepared = new Map<string, PreparedWorkspace>();
    if (this.startsPaused) return prepared;
    for (const action of actions) {
      if (action.type !== 'start' || this.workers.get(action.itemId)?.attempt === action.attempt) continue;
      const ws = this.ctx.workspaces.acquire(action.base);
      ws.catch(() => undefined); // a failure is the attempt's to report, when it awaits the workspace
      prepared.set(action.itemId, { attempt: action.attempt, ws });
    }
    return prepared;
  }

  /** Gives a prepared workspace no worker used back to the pool: nothing touched it since it was made ready. */
  private async returnUnused(ws: Promise<Workspace>): Promise<void> {
    try {
      await this.ctx.workspaces.release(await ws, true, { changes: [], untracked: [] });
    } catch (e) {
      // A workspace that failed to get ready is nobody's; one that could not go back is only a lost reuse.
      this.hooks.onWarning?.(this.runId, `could not return an unused workspace to the pool: ${errorMessage(e)}`);
    }
  }

  /**
   * Stop starting new items; stop the running workers and wait for them. A running item whose attempt
   * had already finished (its outcome waits for the next commit) is left to that outcome, not lost: the
   * work is done, and the last tick records it. With `handOver` (another process takes the run over), a
   * worker on a target that can be re-attached to from there (`handsOver`) is left going instead, and its
   * attempt stays running in the state, for that process to pick up (`recover`).
   */
  async shutdown(reason: string, opts: { handOver?: boolean } = {}): Promise<void> {
    this.startsPaused = true;
    // Handed over: left going on a target another process re-attaches to, and not recorded lost.
    const handedOver = new Set<string>();
    for (const [itemId, w] of this.workers) {
      if (opts.handOver && this.handsOver(itemId)) {
        handedOver.add(itemId);
        w.abort.abort(new HandOver(reason));
      } else w.abort.abort(reason);
    }
    await Promise.all([...this.workers.values()].map((w) => w.done));
    for (const item of Object.values(this.stored.state.items)) {
      const finished = this.outcomes.some((o) => o.itemId === item.id && o.attempt === item.attempts && o.kind !== 'stopped');
      // Handed over, or on a target that hands over without a worker here yet (its recovery under way): left
      // running for the process that takes the run over, which re-attaches to it or records it lost.
      if (item.status === 'running' && !finished && !handedOver.has(item.id) && !(opts.handOver && this.handsOver(item.id))) {
        this.extraEvents.push({ type: 'item-lost', itemId: item.id, attempt: item.attempts, reason });
      }
    }
  }

  /** A finished run's log is anchored at once: its Merkle root goes to `refs/agora/anchors/<run>`. */
  private async anchor(): Promise<void> {
    try {
      const entries = await readEntries(this.ctx.store, this.stored.head);
      await anchorRun(this.ctx.store, this.ctx.refs, this.runId, merkleRootHex(entries.map((e) => e.hash)), this.ctx.clock());
    } catch (e) {
      this.hooks.onWarning?.(this.runId, `not anchored: ${errorMessage(e)}`);
    }
  }

  /** Called once `outcomes` are committed to the run's state (or dropped as stale): they are done with. */
  private consume(outcomes: readonly AttemptOutcome[], events: readonly RunEvent[]): void {
    this.outcomes.splice(0, outcomes.length);
    const extra = events.filter((e) => this.extraEvents.includes(e));
    this.extraEvents.splice(0, extra.length);
    for (const o of outcomes) if (o.release) this.release(o.release);
  }

  /**
   * Removes a worker its target kept until the attempt's outcome was committed (a restart before that
   * would have collected it again), without holding up the tick. What is not removed is reported; the
   * next serve's start removes it (`reapOrphans`: the attempt is no longer running). Only serve keeps
   * finished workers (`AttemptContext.keepFinishedWorkers`), because only its start reaps them.
   */
  private release(release: () => Promise<void>): void {
    const done: Promise<void> = release()
      .catch((e: unknown) => this.hooks.onWarning?.(this.runId, `could not remove a finished worker: ${errorMessage(e)}`))
      .finally(() => {
        this.releasing.delete(done);
        this.hooks.wake();
      });
    this.releasing.add(done);
  }

  private perform(actions: readonly Action[], prepared = new Map<string, PreparedWorkspace>()): void {
    for (const action of actions) {
      if (action.type === 'start') {
        const ready = prepared.get(action.itemId);
        if (ready?.attempt === action.attempt && this.launch(action, ready.ws)) prepared.delete(action.itemId);
        else if (!ready) this.launch(action);
      } else this.workers.get(action.itemId)?.abort.abort(action.reason);
    }
    // Whatever the state says is no longer running must not keep running here.
    for (const [itemId, w] of this.workers) {
      const item = this.stored.state.items[itemId];
      if (!item || item.status !== 'running' || item.attempts !== w.attempt) {
        w.abort.abort(item?.reason ?? 'no longer running');
      }
    }
  }

  /** Starts the attempt (with `workspace` when one was made ready for it); false when it was not started. */
  private launch(action: Extract<Action, { type: 'start' }>, workspace?: Promise<Workspace>): boolean {
    if (this.startsPaused) return false;
    const existing = this.workers.get(action.itemId);
    if (existing && existing.attempt === action.attempt) return false; // performing a start twice is harmless
    const abort = new AbortController();
    const spec = { runId: this.runId, plan: this.stored.plan, state: this.stored.state, itemId: action.itemId, attempt: action.attempt, base: action.base };
    const done = runAttempt(this.ctx, spec, abort.signal, workspace)
      .catch((e: unknown): AttemptOutcome => ({
        kind: 'failed',
        itemId: action.itemId,
        attempt: action.attempt,
        reason: `internal error while running the item: ${errorMessage(e)}`,
        retryable: true,
      }))
      .then((outcome) => {
        if (this.workers.get(action.itemId)?.abort === abort) this.workers.delete(action.itemId);
        this.outcomes.push(outcome);
        this.hooks.wake();
      });
    this.workers.set(action.itemId, { attempt: action.attempt, abort, done });
    return true;
  }

  private handsOver(itemId: string): boolean {
    return this.targetFor(itemId)?.handsOver === true;
  }

  private targetFor(itemId: string): WorkerTarget | undefined {
    const item = this.stored.plan.items.find((i) => i.id === itemId);
    const name = item && targetNameOf(item, this.ctx.config);
    return name === undefined ? undefined : this.ctx.targets[name];
  }
}

import { performance } from 'node:perf_hooks';
import type { Transition } from '../engine/types.js';
import type { AttemptContext } from './attempt.js';
import { TargetUnreachable } from '../executors/target-unreachable.js';
import { RunDriver, type DriverHooks } from './driver.js';
import { attemptKey } from './recovery.js';
import { acceptInbox, submissionFate, type AcceptOutcome } from './inbox.js';
import type { Oid } from '../git/types.js';
import type { StoredRun } from './state-store.js';
import { finishWithdrawals, type LeftoverWithdrawals } from './withdrawal.js';
import { removeOrphanSecretStores, type OrphanSecretStores } from './orphan-secret-stores.js';
import { GONE_WRITER_MIN_AGE_MS } from '../process-identity.js';
import { readListedRunAt } from './listed-run.js';
import { refBlock } from './blocked-refs.js';
import { BlockedRuns } from './blocked-runs.js';
import { errorMessage, isAgoraError } from '../errors.js';

/**
 * `agora orch serve`: a loop of load → reconcile → commit (CAS) → act, for every active run in the
 * repository, accepting new submissions from the inbox as they come. It keeps nothing that is not in
 * the repository: killed at any instant and restarted, it resumes from the refs.
 */

export interface ServerOptions extends AttemptContext {
  /** How often to look for new submissions and for state written by other processes. */
  pollMs?: number;
  /** Accept and drive only this run (used by `agora orch run`). */
  only?: string;
  /**
   * Serving `only`: the inbox entry (commit) its submission wrote. What another submission put under the
   * id (`cancel` withdrew this one, and the next `submit` was given the id again) is not accepted or
   * driven: the server has nothing to serve ({@link Server.onlyGone}).
   */
  onlyEntry?: Oid;
  onAccept?(outcome: AcceptOutcome): void;
  onCommit?(run: StoredRun, transitions: readonly Transition[]): void;
  onWarning?(runId: string, message: string): void;
  /** A target could not be reached at start, so what an earlier process left there was not cleaned up. */
  onTargetWarning?(message: string): void;
  /**
   * Withdrawals a stopped `cancel` left unfinished (withdrawal.ts): the run ids whose secret store was
   * removed, and problems (each reported once by this server, though every pass looks again).
   */
  onLeftoverWithdrawals?(leftovers: LeftoverWithdrawals): void;
  /**
   * Secret stores a killed `submit` left with nothing naming them (orphan-secret-stores.ts), looked for at
   * start and every {@link SWEEP_EVERY_MS} while serving (each problem reported once by this server).
   */
  onOrphanSecretStores?(found: OrphanSecretStores): void;
}

/**
 * How often a serve looks again, by its clock, for what killed processes left on the host: the secret
 * stores of a killed `submit`, and the ref values and owner files of a killed ref writer. Each becomes
 * removable once GONE_WRITER_MIN_AGE_MS old, so one left while a serve runs for weeks leaves the host within
 * GONE_WRITER_MIN_AGE_MS plus this. A look reads the `params` directory and, for each store old enough whose
 * writer is gone (every store of a run kept until `gc`), the store, its inbox ref and its run's ref and
 * parameters; and the `agora/tmp` directory, with the owner file of each writer it names.
 */
export const SWEEP_EVERY_MS = GONE_WRITER_MIN_AGE_MS / 2;

export class Server {
  private readonly drivers = new Map<string, RunDriver>();
  private readonly finished = new Map<string, StoredRun>();
  /** Run ref heads seen by the last scan: a finished run whose head moves may have been reopened. */
  private readonly seenHeads = new Map<string, string>();
  private wakeUp: (() => void) | undefined;
  private woken = false;
  /** Run refs (name and value) that hold no run this server can serve, already reported and not read again. */
  private readonly reportedUnreadable = new Set<string>();
  /** Runs a blocked ref holds up (blocked-refs.ts): the blocks already said, and when each is tried next. */
  private readonly blocked: BlockedRuns;
  /** Problems with leftover withdrawal markers already reported: a marker that stays is met on every pass. */
  private readonly reportedLeftovers = new Set<string>();
  /** When the next look for what killed processes left is due (the server's clock); the orphan-store problems already reported. */
  private nextSweep = 0;
  private readonly reportedOrphanProblems = new Set<string>();

  /** Serving `only`: its submission was withdrawn before this server accepted it. */
  private gone = false;

  constructor(private readonly opts: ServerOptions) {
    this.blocked = new BlockedRuns(opts.pollMs ?? 500, () => opts.clock());
  }

  /**
   * Loads the active runs and recovers their attempts: re-attach what survived, reap the rest. A server
   * that serves `only` one run leaves the other runs alone: it neither recovers nor settles them, and
   * spares the workers their running attempts may still collect (see {@link claimedElsewhere}).
   */
  async start(): Promise<void> {
    const { store, refs } = this.opts;
    await this.opts.workspaces.clear();
    await this.finishWithdrawals();
    await this.sweepLeftovers();
    const live = new Set<string>();
    const others = new Set<string>();
    for (const { ref, oid } of await store.listRefs(refs.runsPrefix)) {
      const runId = ref.slice(refs.runsPrefix.length);
      const stored = await this.readListedRun(ref, runId, oid);
      if (stored === undefined) continue;
      if (this.opts.only && (runId !== this.opts.only || !(await this.ownsOnly()))) {
        for (const key of claimedElsewhere(stored)) others.add(key);
        continue;
      }
      if (stored.state.status !== 'running') {
        await new RunDriver(stored, this.opts, { ...this.warningHooks(), wake: () => undefined }).settle();
        // The one run this server is to serve ended before it started (a serve that took the submission
        // meanwhile, then let go): settled, it is served.
        if (runId === this.opts.only) this.finished.set(runId, stored);
        continue;
      }
      const driver = this.driverFor(stored);
      for (const key of await driver.recover()) live.add(key);
    }
    for (const target of Object.values(this.opts.targets)) {
      // Another run's attempt is spared only on a target whose workers a restarted serve re-attaches to
      // (`canResume`): a local worker cannot be collected by anyone once its serve died (that serve's
      // restart kills it and runs the item again), and left running it could write, by the absolute path
      // it was given, into a workspace of this server's pool, which reuses the paths the pool had.
      const spared = target?.canResume ? others : undefined;
      try {
        await target?.reapOrphans?.((runId, itemId, attempt) => {
          const key = attemptKey(runId, itemId, attempt);
          return live.has(key) || spared?.has(key) === true;
        });
      } catch (e) {
        // The engine is down (DOCKER_HOST set for other work, say): the other targets serve all the same.
        if (!(e instanceof TargetUnreachable)) throw e;
        this.opts.onTargetWarning?.(`${e.message} (what an earlier serve left on the ${e.target} target stays until a serve starts with it reachable)`);
      }
    }
  }

  /** Serves until `signal` aborts or `until()` holds, then stops the workers and records them as interrupted. */
  async serve(signal: AbortSignal, until?: (server: Server) => boolean): Promise<void> {
    const onAbort = () => this.wake();
    signal.addEventListener('abort', onAbort);
    let failure: { error: unknown } | undefined;
    try {
      let scanned: number | undefined;
      while (!signal.aborted) {
        // New submissions and runs reopened by another process are looked for once per poll interval
        // (each look lists refs), not on every wake: a busy run wakes the loop once per finished worker.
        if (scanned === undefined || performance.now() - scanned >= (this.opts.pollMs ?? 500)) {
          scanned = performance.now();
          await this.acceptSubmissions();
          await this.adoptReopenedRuns();
          if (this.opts.clock() >= this.nextSweep) await this.sweepLeftovers();
        }
        for (const driver of [...this.drivers.values()]) {
          if (this.blocked.waiting(driver.runId)) continue;
          if (!(await this.tickUnlessOverwritten(driver))) continue;
          if (driver.run.state.status !== 'running' && !driver.busy) {
            this.drivers.delete(driver.runId);
            this.blocked.clear(driver.runId);
            this.finished.set(driver.runId, driver.run);
          }
        }
        if (until?.(this)) break;
        await this.sleep(this.nextDelay());
      }
    } catch (e) {
      failure = { error: e };
    }
    signal.removeEventListener('abort', onAbort);
    const reason = `agora serve stopped${typeof signal.reason === 'string' ? ` (${signal.reason})` : ''}`;
    // Every driver is stopped, whatever one of them throws. What ended the serve is what it throws; a
    // later failure is said, or thrown when nothing failed before it.
    for (const driver of this.drivers.values()) {
      try {
        await driver.shutdown(reason);
        await this.lastTick(driver);
        await driver.released(); // the workers kept until their outcomes were committed, removed
      } catch (e) {
        if (failure === undefined) failure = { error: e };
        else this.opts.onWarning?.(driver.runId, `not stopped cleanly: ${errorMessage(e)}`);
      }
    }
    await this.opts.workspaces.clear();
    if (failure !== undefined) throw failure.error;
  }

  /**
   * The tick that records what a stopped serve's workers did. A blocked ref (blocked-refs.ts) keeps it
   * from landing: said, and left to the next serve, which finds those attempts running and reaps and
   * records them as at any start.
   */
  private async lastTick(driver: RunDriver): Promise<void> {
    try {
      await driver.tick();
    } catch (e) {
      const why = refBlock(e)?.reason ?? (await this.runRefGone(driver))?.why ?? null;
      if (why === null) throw e;
      this.opts.onWarning?.(driver.runId, `what its stopped workers did is not recorded: ${why}`);
    }
  }

  /** A run this server finished, or is driving. */
  run(runId: string): StoredRun | undefined {
    return this.drivers.get(runId)?.run ?? this.finished.get(runId);
  }

  /** Serving `only`: whether its submission was withdrawn before this server accepted it (nothing to serve). */
  get onlyGone(): boolean {
    return this.gone;
  }

  get activeRuns(): number {
    return this.drivers.size;
  }

  private async acceptSubmissions(): Promise<void> {
    const { store, refs, only, onlyEntry } = this.opts;
    const outcomes = await acceptInbox(
      store,
      refs,
      this.opts.config,
      this.opts.scratchDir,
      this.opts.clock(),
      only === undefined ? undefined : { runId: only, ...(onlyEntry !== undefined ? { entry: onlyEntry } : {}) },
    );
    for (const outcome of outcomes) {
      this.opts.onAccept?.(outcome);
      if (outcome.kind === 'accepted') {
        this.opts.onCommit?.(outcome.run, []);
        this.driverFor(outcome.run);
      }
    }
    // The one run to serve, not accepted here: gone when neither its entry nor its run is there (`cancel`
    // withdrew it), or what is there is another submission's. The entry is read first: a serve creates
    // the run before it removes the entry.
    if (only !== undefined && !this.drivers.has(only) && !this.finished.has(only)) {
      this.gone =
        onlyEntry === undefined
          ? (await store.resolveRef(refs.inbox(only))) === null && (await store.resolveRef(refs.run(only))) === null
          : !(await this.ownsOnly());
    }
    await this.finishWithdrawals();
  }

  /**
   * Finishes the withdrawals a `cancel` stopped in the middle of (withdrawal.ts), at the start and on
   * every pass over the inbox, like the secrets of a rejection a pass stopped before removing: a serve
   * that runs for weeks would otherwise leave them on the host until the next cancel. A pass that finds
   * no marker reads one directory that is usually absent.
   */
  private async finishWithdrawals(): Promise<void> {
    const found = await finishWithdrawals(this.opts.store, this.opts.refs, this.opts.scratchDir);
    const problems = notReportedBefore(found.problems, this.reportedLeftovers);
    if (found.removed.length > 0 || problems.length > 0) this.opts.onLeftoverWithdrawals?.({ removed: found.removed, problems });
  }

  /**
   * Removes what killed processes left on the host: the secret stores of a killed `submit`
   * (orphan-secret-stores.ts) and the ref values and owner files of a killed ref writer (ref-temp-sweep.ts),
   * at the start, before anything is served, and every SWEEP_EVERY_MS after, so a serve that runs for weeks
   * does not keep them on the host until its restart.
   */
  private async sweepLeftovers(): Promise<void> {
    const now = this.opts.clock();
    this.nextSweep = now + SWEEP_EVERY_MS;
    await this.opts.store.removeAbandonedRefTemps?.(now);
    const found = await removeOrphanSecretStores(this.opts.store, this.opts.refs, this.opts.scratchDir, now);
    const problems = notReportedBefore(found.problems, this.reportedOrphanProblems);
    if (found.removed.length > 0 || found.removedTemporary.length > 0 || problems.length > 0) this.opts.onOrphanSecretStores?.({ ...found, problems });
  }

  /**
   * Serving `only`: whether what is under its id is its own submission, still waiting or accepted
   * ({@link ServerOptions.onlyEntry}; true when the entry is not known).
   */
  private async ownsOnly(): Promise<boolean> {
    const { store, refs, only, onlyEntry } = this.opts;
    if (only === undefined || onlyEntry === undefined) return true;
    const fate = await submissionFate(store, refs, only, onlyEntry);
    return fate === 'waiting' || fate === 'accepted';
  }

  /** Runs written by another process (`agora orch retry`) that are running again get a driver. */
  private async adoptReopenedRuns(): Promise<void> {
    const { store, refs } = this.opts;
    for (const { ref, oid } of await store.listRefs(refs.runsPrefix)) {
      const runId = ref.slice(refs.runsPrefix.length);
      if (this.seenHeads.get(runId) === oid) continue;
      if (this.drivers.has(runId) || (this.opts.only && (runId !== this.opts.only || !(await this.ownsOnly())))) {
        this.seenHeads.set(runId, oid);
        continue;
      }
      const stored = await this.readListedRun(ref, runId, oid);
      if (stored === undefined) continue; // looked at again next pass: the ref may be mended
      this.seenHeads.set(runId, oid);
      // Its running attempts, if any, are recovered as at start: a run ref that held no readable run at
      // start (and is mended now) had its workers reaped then, and they are recorded lost.
      if (stored.state.status === 'running') await this.driverFor(stored).recover();
    }
  }

  /**
   * One tick of `driver`; false when its run ref was deleted, or overwritten with something that holds no
   * run (anyone who may push can do either), which made the tick fail. Then its workers are stopped and
   * the driver dropped (said once), and the ref is looked at again on every pass: once restored or mended
   * it is adopted like a run found at start, its attempts recorded lost. A tick that a blocked ref failed
   * (a pushed ref one of the run's refs would nest in, a lock a crashed git left: blocked-refs.ts)
   * committed nothing: the run waits, said once, and is tried again later while the others are served
   * ({@link BlockedRuns}). Any other failure propagates.
   */
  private async tickUnlessOverwritten(driver: RunDriver): Promise<boolean> {
    try {
      await driver.tick();
    } catch (e) {
      const block = refBlock(e);
      if (block !== null) {
        const said = this.blocked.holdBack(driver.runId, block);
        if (said !== undefined) this.opts.onWarning?.(driver.runId, said);
        return true;
      }
      const gone = await this.runRefGone(driver);
      if (gone === null) {
        // Restored between the tick's look and this one: the next pass ticks it again.
        if (isAgoraError(e) && e.code === 'run-not-found') return true;
        throw e;
      }
      if (driver.runId === this.opts.only) throw e; // `orch run` of that run fails, rather than wait for a mend
      // Pruned by `agora orch gc` while its last workers were let go: nothing to restore.
      if (gone.deleted && driver.run.state.status === 'running') {
        const ref = this.opts.refs.run(driver.runId);
        this.opts.onWarning?.(
          driver.runId,
          `${gone.why}: the run's workers are stopped; to serve it again, restore the ref (git update-ref ${ref} ${driver.run.head})`,
        );
      } else if (gone.deleted) this.opts.onWarning?.(driver.runId, gone.why);
      await driver.shutdown(gone.why);
      await driver.released();
      this.drivers.delete(driver.runId);
      this.seenHeads.delete(driver.runId);
      this.blocked.clear(driver.runId);
      return false;
    }
    this.blocked.clear(driver.runId); // moving again: a later block is said again
    return true;
  }

  /** Why `driver`'s run ref no longer holds its run (deleted, or overwritten with no run); null while it does. */
  private async runRefGone(driver: RunDriver): Promise<{ deleted: boolean; why: string } | null> {
    const ref = this.opts.refs.run(driver.runId);
    const head = await this.opts.store.resolveRef(ref);
    if (head === null) return { deleted: true, why: `${ref} was deleted` };
    if ((await this.readListedRun(ref, driver.runId, head)) !== undefined) return null;
    return { deleted: false, why: `${ref} was overwritten with a commit that holds no run` };
  }

  /**
   * The run a listed run ref holds, or undefined when it holds none this server can serve (listed-run.ts):
   * said once per value and left alone; it never stops the serve nor the other runs.
   */
  private async readListedRun(ref: string, runId: string, oid: string): Promise<StoredRun | undefined> {
    // Met again at every pass: a value found to hold no run is not read again (mending the ref changes it).
    if (this.reportedUnreadable.has(`${ref} ${oid}`)) return undefined;
    const run = await readListedRunAt(this.opts.store, ref, runId, oid, (u) => {
      this.reportedUnreadable.add(`${ref} ${oid}`);
      this.opts.onWarning?.(runId, `${u.ref} is not served: ${u.problem}`);
    });
    return run ?? undefined;
  }

  /** What every driver of this server says: its warnings, and the derived refs a blocked ref keeps behind (blocked-refs.ts). */
  private warningHooks(): Pick<DriverHooks, 'onWarning' | 'onBlockedRefs'> {
    return {
      onBlockedRefs: (runId, reason) => this.opts.onWarning?.(runId, `its integration and patch refs stay behind its state: ${reason}`),
      ...(this.opts.onWarning ? { onWarning: this.opts.onWarning } : {}),
    };
  }

  private driverFor(stored: StoredRun): RunDriver {
    const driver = new RunDriver(stored, this.opts, {
      ...this.warningHooks(),
      wake: () => this.wake(),
      ...(this.opts.onCommit ? { onCommit: this.opts.onCommit } : {}),
    });
    this.drivers.set(stored.runId, driver);
    return driver;
  }

  private nextDelay(): number {
    const poll = this.opts.pollMs ?? 500;
    const now = this.opts.clock();
    let delay = poll;
    for (const d of this.drivers.values()) {
      // A blocked run is not ticked before its next try, whatever its clock says (its wakeAt may be past).
      const at = this.blocked.retryAt(d.runId) ?? d.wakeAt;
      if (at !== undefined) delay = Math.min(delay, Math.max(0, at - now));
    }
    return delay;
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        this.woken = false;
        done();
      };
    });
  }
}

/** The problems not in `reported` yet, which are added to it: each is reported once, though met on every pass. */
function notReportedBefore(problems: readonly string[], reported: Set<string>): string[] {
  const fresh = problems.filter((p) => !reported.has(p));
  for (const p of fresh) reported.add(p);
  return fresh;
}

/**
 * The attempts a run this server does not drive records as running (none once it ended). A serve that was
 * killed while they ran left their workers behind for its restart to collect as the same attempts: a
 * container still running, or exited and kept until its outcome is committed. Reaping them here would
 * make that restart run the items again, losing work done or under way.
 */
function claimedElsewhere(stored: StoredRun): string[] {
  if (stored.state.status !== 'running') return [];
  return Object.values(stored.state.items)
    .filter((item) => item.status === 'running')
    .map((item) => attemptKey(stored.runId, item.id, item.attempts));
}

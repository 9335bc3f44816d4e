import { HeldLocks } from '../../engine/held-locks.js';
import { TERMINAL_ITEM_STATUSES, type ItemStatus, type RunState } from '../../engine/types.js';
import type { AuditEntry } from '../../log/entry.js';
import { locksOverlap, normalizeLockKey } from '../../plan/locks.js';
import { formatVersion, type AuditBundle, type BundleItem } from '../bundle.js';
import { CallReplay, type RootCaller } from './calls.js';
import { EmissionReplay } from './emission.js';
import { sameSet } from './same-set.js';
import { isItemStatus, isRunStatus, itemMoveAllowed, runMoveAllowed } from './transitions.js';

export { sameSet };
import type { Failures } from './failures.js';

/**
 * Step "replay": the engine's state machine re-run from the log alone. Every transition starts from the
 * state the item (or the run) was in and is one Agora writes (transitions.ts: §4's tables), to a state of
 * §4; the log opens with the run's `submitted → running`, items move (and emit, and record calls) only
 * while the run is running, and the run ends only once every item in it has ended. An item starts only
 * when all its dependencies are done, with exactly its declared locks, none overlapping a running item's;
 * attempt numbers go up by one per start and every other transition names the current attempt; then the
 * bundle's summary must be what the log replays to. A failed check does not stop its entry from being
 * applied, except an entry that names no item of the run, or a state §4 does not have: those change nothing.
 */

/** What replaying the log says about one item. */
export interface Replayed {
  status: ItemStatus;
  attempts: number;
  locks: string[] | null;
  base: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  resultRef: string | null;
  reason: string | null;
}

export interface Start {
  itemId: string;
  seq: number;
  base: string | null;
  /** How many items were done before this start (the integration head it should have run on). */
  doneBefore: number;
}

export interface Completion {
  itemId: string;
  seq: number;
  resultRef: string | null;
}

export interface ReplayResult {
  items: Map<string, Replayed>;
  runStatus: RunState['status'] | 'submitted';
  starts: Start[];
  completions: Completion[];
  /** v4: the digest each emitted item was added with, by item id. */
  emitted: ReadonlyMap<string, string>;
  /** v5: the subagent each item attempt's own worker called as (hop-1 calls), for the repository step. */
  rootCallers: readonly RootCaller[];
}

export class ReplayStep {
  private readonly declared: Map<string, BundleItem>;
  private readonly items = new Map<string, Replayed>();
  private readonly held = new HeldLocks();
  private readonly running = new Set<string>();
  private readonly starts: Start[] = [];
  private readonly completions: Completion[] = [];
  private runStatus: ReplayResult['runStatus'] = 'submitted';
  /** Items' start rules (`always`, `continueOnError`) count only in a v3 bundle. */
  private readonly startRules: boolean;
  /** Which items are in the run so far, and the emit entries' checks (v4). */
  private readonly emission: EmissionReplay;
  /** The call entries' checks (v5). */
  private readonly calls: CallReplay;

  /**
   * `history`: also record each start and completion (what the repository step checks integration with);
   * without a repository they are not needed and not kept, which is most of what replay holds beyond the
   * items' state.
   */
  constructor(
    bundle: AuditBundle,
    private readonly f: Failures,
    private readonly history = true,
  ) {
    this.declared = new Map(bundle.items.map((i) => [i.id, i]));
    this.startRules = formatVersion(bundle) >= 3;
    this.emission = new EmissionReplay(bundle, f);
    this.calls = new CallReplay(bundle, f);
    for (const i of bundle.items) {
      this.items.set(i.id, { status: 'pending', attempts: 0, locks: null, base: null, startedAt: null, finishedAt: null, resultRef: null, reason: null });
    }
  }

  /**
   * A dependency lets an item start when it is done; when it failed with `continueOnError`; and, for an
   * `always` item, when it has ended in any state (v3).
   */
  private dependencyLetsStart(item: BundleItem, dep: string, status: ItemStatus): boolean {
    if (status === 'done') return true;
    if (!this.startRules) return false;
    if (status === 'failed' && this.declared.get(dep)?.continueOnError) return true;
    return item.always === true && TERMINAL_ITEM_STATUSES.has(status);
  }

  push(e: AuditEntry, i: number): void {
    // Replay: the engine's state machine as the log tells it.
    if (e.kind === 'call' && this.calls.enabled) {
      this.whileRunning(e, i);
      this.calls.push(e, i);
      return;
    }
    this.calls.other(e, e.kind === 'item' && this.items.get(e.itemId)?.status === 'running');
    if (e.kind === 'run') {
      this.moveRun(e, i);
      return;
    }
    if (e.kind === 'emit' && this.emission.enabled) {
      this.whileRunning(e, i);
      this.emission.push(e, i, this.items.get(e.itemId));
      return;
    }
    if (e.kind !== 'item') {
      this.f.add('state', `entry ${i} has kind ${JSON.stringify((e as { kind?: unknown }).kind)}: neither an item nor a run transition`, { entry: i });
      return;
    }
    const id = e.itemId;
    const cur = this.items.get(id);
    const item = this.declared.get(id);
    if (!cur || !item) {
      this.f.add('state', `entry ${i} moves item ${String(id)}, which the run does not have`, { entry: i });
      return;
    }
    if (!this.emission.has(id)) {
      this.f.add('emit-missing', `entry ${i} moves item ${id}, which no emit entry has added to the run yet`, { entry: i, item: id });
      return;
    }
    if (!isItemStatus(e.to)) {
      this.f.add('state', `entry ${i}: item ${id} moves to ${JSON.stringify(e.to)}, which is not an item state`, { entry: i, item: id });
      return;
    }
    this.whileRunning(e, i);
    if (e.from !== cur.status) this.f.add('state', `entry ${i}: item ${id} moves from ${e.from}, but it was ${cur.status}`, { entry: i, item: id });
    else if (!itemMoveAllowed(cur.status, e.to))
      this.f.add('state', `entry ${i}: item ${id} moves from ${cur.status} to ${e.to}, a transition Agora never writes`, { entry: i, item: id });
    if (cur.status === 'running' && e.to !== 'running') {
      this.held.remove(cur.locks ?? []);
      this.running.delete(id);
    }
    if (e.to === 'running') {
      if (e.attempt !== cur.attempts + 1) {
        this.f.add('attempts', `entry ${i}: item ${id} starts attempt ${e.attempt}, but attempt ${cur.attempts + 1} was next`, { entry: i, item: id });
      }
      for (const dep of item.dependsOn) {
        const d = this.items.get(dep);
        if (d && this.dependencyLetsStart(item, dep, d.status)) continue;
        this.f.add('order', `entry ${i}: item ${id} started while its dependency ${dep} was ${d?.status ?? 'unknown'}`, { entry: i, item: id });
      }
      const locks = Array.isArray(e.locks) ? e.locks.map(normalizeLockKey) : [];
      if (!sameSet(locks, item.locks)) {
        this.f.add('lock', `entry ${i}: item ${id} took locks [${locks.join(', ')}], but its declared locks are [${item.locks.join(', ')}]`, {
          entry: i,
          item: id,
        });
      }
      if (this.held.conflicts(locks)) {
        const holders = [...this.running].filter((other) => (this.items.get(other)?.locks ?? []).some((a) => locks.some((b) => locksOverlap(a, b))));
        this.f.add('lock', `entry ${i}: item ${id} took [${locks.join(', ')}] while ${holders.join(', ') || 'another item'} held an overlapping lock`, {
          entry: i,
          item: id,
        });
      }
      this.held.add(locks);
      this.running.add(id);
      cur.locks = locks;
      cur.attempts = e.attempt;
      cur.base = e.base ?? null;
      cur.startedAt = e.at;
      cur.finishedAt = null;
      if (this.history) this.starts.push({ itemId: id, seq: i, base: e.base ?? null, doneBefore: this.completions.length });
    } else if (e.attempt !== cur.attempts) {
      this.f.add('attempts', `entry ${i}: item ${id} moves to ${e.to} as attempt ${e.attempt}, but its current attempt is ${cur.attempts}`, {
        entry: i,
        item: id,
      });
    }
    if (e.to === 'done') {
      if (e.from !== 'running') this.f.add('attempts', `entry ${i}: item ${id} is done without a running attempt`, { entry: i, item: id });
      if (!e.resultRef) this.f.add('state', `entry ${i}: item ${id} is done but records no result`, { entry: i, item: id });
      cur.resultRef = e.resultRef ?? null;
      if (this.history) this.completions.push({ itemId: id, seq: i, resultRef: e.resultRef ?? null });
    }
    if (TERMINAL_ITEM_STATUSES.has(e.to)) cur.finishedAt = e.at;
    else if (e.to === 'pending') cur.finishedAt = null;
    cur.reason = e.reason ?? null;
    cur.status = e.to;
  }

  /** A run transition: to a run state, from the run's current one, along §4's table; it ends only once every item has. */
  private moveRun(e: Extract<AuditEntry, { kind: 'run' }>, i: number): void {
    if (!isRunStatus(e.to)) {
      this.f.add('state', `entry ${i}: the run moves to ${JSON.stringify(e.to)}, which is not a run state`, { entry: i });
      return;
    }
    if (e.from !== this.runStatus) this.f.add('state', `entry ${i}: the run moves from ${e.from}, but it was ${this.runStatus}`, { entry: i });
    else if (!runMoveAllowed(this.runStatus, e.to))
      this.f.add('state', `entry ${i}: the run moves from ${this.runStatus} to ${e.to}, a transition Agora never writes`, { entry: i });
    if (e.to !== 'running') {
      const open = [...this.items].filter(([id, r]) => this.emission.has(id) && !TERMINAL_ITEM_STATUSES.has(r.status));
      if (open.length > 0) {
        const shown = open.slice(0, 5).map(([id, r]) => `${id} (${r.status})`);
        if (open.length > shown.length) shown.push(`${open.length - shown.length} more`);
        this.f.add('state', `entry ${i}: the run ends ${e.to} while items are still open: ${shown.join(', ')}`, { entry: i });
      }
    }
    this.runStatus = e.to;
  }

  /** Items move, emit and record calls only while the run is running (after entry 0, between a reopening and the end). */
  private whileRunning(e: Exclude<AuditEntry, { kind: 'run' }>, i: number): void {
    if (this.runStatus === 'running') return;
    const what = e.kind === 'item' ? `moves item ${e.itemId}` : `is a ${e.kind} entry of item ${e.itemId}`;
    this.f.add(
      'state',
      this.runStatus === 'submitted'
        ? `entry ${i} ${what} before the run was accepted: a log starts with the run's submitted → running`
        : `entry ${i} ${what} while the run is ${this.runStatus}: items move only while the run is running`,
      { entry: i, item: e.itemId },
    );
  }

  finish(): ReplayResult {
    this.emission.finish();
    return {
      items: this.items,
      runStatus: this.runStatus,
      starts: this.starts,
      completions: this.completions,
      emitted: this.emission.digests,
      rootCallers: this.calls.roots,
    };
  }
}

/** The bundle's summary (run status, items) must be what the log replays to. */
export function compareSummary(bundle: AuditBundle, items: Map<string, Replayed>, runStatus: ReplayResult['runStatus'], f: Failures): void {
  if (runStatus !== bundle.state) f.add('state', `the bundle says the run is ${bundle.state}, but its log ends with the run ${runStatus}`);
  const seen = new Set<string>();
  for (const item of bundle.items) {
    if (seen.has(item.id)) f.add('state', `item ${item.id} is listed twice`, { item: item.id });
    seen.add(item.id);
    const r = items.get(item.id);
    if (!r) continue;
    const say = (field: string, bundled: unknown, replayed: unknown) =>
      `item ${item.id}: the bundle says ${field} ${JSON.stringify(bundled)}, but the log replays to ${JSON.stringify(replayed)}`;
    if (r.status !== item.status) f.add('state', say('status', item.status, r.status), { item: item.id });
    if (r.attempts !== item.attempts) f.add('attempts', say('attempts', item.attempts, r.attempts), { item: item.id });
    if (r.resultRef !== item.resultRef) f.add('state', say('resultRef', item.resultRef, r.resultRef), { item: item.id });
    if (r.base !== item.base) f.add('state', say('base', item.base, r.base), { item: item.id });
    if (r.startedAt !== item.startedAt) f.add('state', say('startedAt', item.startedAt, r.startedAt), { item: item.id });
    if (r.finishedAt !== item.finishedAt) f.add('state', say('finishedAt', item.finishedAt, r.finishedAt), { item: item.id });
    const explained = item.status === 'failed' || item.status === 'skipped' || item.status === 'cancelled';
    if (explained && r.reason !== item.reason) f.add('state', say('reason', item.reason, r.reason), { item: item.id });
    if (item.status === 'done' && item.reason !== null)
      f.add('state', `item ${item.id} is done but carries reason ${JSON.stringify(item.reason)}`, { item: item.id });
  }
}
